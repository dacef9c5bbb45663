"""Run the command-line interface with ``python -m tamperwatch``."""

from tamperwatch.cli import main

if __name__ == "__main__":
    main()
