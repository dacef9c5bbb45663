"""Command-line interface: ``tamperwatch scan``.

Exit status of ``scan``: 0 when no suspicious incident was found, 1 when at least one was, 2 for
a usage error, an invalid configuration or an input that could not be read.
"""

from __future__ import annotations

import enum
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from tamperwatch import __version__
from tamperwatch.config import ConfigError, build_inventory, load_config
from tamperwatch.logpatterns import LogPatternError, load_log_patterns
from tamperwatch.render import neutralize, print_stats_stderr, print_text, write_jsonl
from tamperwatch.scan import InputError, scan

EXIT_CLEAN = 0
EXIT_SUSPICIOUS = 1
EXIT_ERROR = 2

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Find and explain impairments of macOS security tooling in endpoint telemetry.",
)


class OutputFormat(enum.StrEnum):
    text = "text"
    jsonl = "jsonl"


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tamperwatch {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, help="More log output (repeat for debug).")
    ] = 0,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    level = logging.WARNING
    if verbose == 1:
        level = logging.INFO
    elif verbose > 1:
        level = logging.DEBUG
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )


@app.command("scan")
def scan_command(
    paths: Annotated[
        list[str],
        typer.Argument(
            help="Files or folders to scan, or - for standard input. A folder whose subfolders "
            "hold telemetry is a collection: each subfolder is named after its host.",
            show_default=False,
        ),
    ],
    host: Annotated[
        str | None,
        typer.Option(
            "--host", help="Host name for records that carry none and are not in a collection."
        ),
    ] = None,
    config_file: Annotated[
        Path | None,
        typer.Option(
            "--config", help="YAML configuration: thresholds, extra or changed components."
        ),
    ] = None,
    output_format: Annotated[
        OutputFormat,
        typer.Option("--format", help="text for people, jsonl for one incident per line."),
    ] = OutputFormat.text,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Write the output to this file instead of standard output."
        ),
    ] = None,
) -> None:
    """Scan telemetry collected from Macs and report impairments of security components."""
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        config = load_config(config_file)
        inventory = build_inventory(config)
        patterns = load_log_patterns()
    except (ConfigError, LogPatternError) as exc:
        err.print(f"error: {neutralize(str(exc))}", markup=False, highlight=False)
        raise typer.Exit(EXIT_ERROR) from None
    try:
        result = scan(paths, host=host, config=config, inventory=inventory, patterns=patterns)
    except InputError as exc:
        err.print(f"error: {neutralize(str(exc))}", markup=False, highlight=False)
        raise typer.Exit(EXIT_ERROR) from None

    try:
        if output_format is OutputFormat.jsonl:
            if output is not None:
                with output.open("wb") as stream:
                    write_jsonl(result.incidents, stream)
            else:
                write_jsonl(result.incidents, sys.stdout.buffer)
                sys.stdout.flush()
            print_stats_stderr(result, err)
        elif output is not None:
            with output.open("w", encoding="utf-8") as text_stream:
                print_text(
                    result, Console(file=text_stream, highlight=False, width=120, soft_wrap=True)
                )
        else:
            print_text(result, Console(highlight=False, soft_wrap=True))
    except OSError as exc:
        err.print(
            f"error: cannot write output: {neutralize(str(exc))}", markup=False, highlight=False
        )
        raise typer.Exit(EXIT_ERROR) from None

    if result.unreadable:
        raise typer.Exit(EXIT_ERROR)
    raise typer.Exit(EXIT_SUSPICIOUS if result.suspicious else EXIT_CLEAN)


def main() -> None:
    """Entry point of the ``tamperwatch`` console script."""
    app()
