"""Command-line interface: ``tamperwatch scan``.

Exit status of ``scan``: 0 when no suspicious incident was found, 1 when at least one was, 2 for
a usage error, an invalid configuration, an input that could not be read, or inputs that held no
usable record at all.
"""

from __future__ import annotations

import enum
import logging
import os
import sys
from pathlib import Path
from typing import IO, Annotated

import typer
from rich.console import Console

from tamperwatch import __version__
from tamperwatch.config import ConfigError, build_inventory, load_config
from tamperwatch.logpatterns import LogPatternError, load_log_patterns
from tamperwatch.render import (
    neutralize,
    print_stats_stderr,
    print_text,
    write_blind_windows,
    write_jsonl,
)
from tamperwatch.scan import InputError, scan

EXIT_CLEAN = 0
EXIT_SUSPICIOUS = 1
EXIT_ERROR = 2

# Columns used for output that goes to a file or a pipe, where no terminal width exists.
NON_TERMINAL_WIDTH = 160

# Columns used for output that goes to a file or a pipe, where no terminal width exists.
NON_TERMINAL_WIDTH = 160

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
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Find and explain impairments of macOS security tooling in endpoint telemetry."""


def _configure_logging(verbose: int) -> None:
    level = logging.WARNING
    if verbose == 1:
        level = logging.INFO
    elif verbose > 1:
        level = logging.DEBUG
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )


class _PipeConsole(Console):
    """A console that stops writing, without exiting, when its reader closes the pipe.

    ``tamperwatch scan ... | head`` must still exit with the status of the scan, because a
    pipeline gate reads it; rich's default exits with status 1.
    """

    def on_broken_pipe(self) -> None:
        self.quiet = True
        _discard_stdout()


def _discard_stdout() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def _console(file: IO[str] | None = None, *, stderr: bool = False) -> Console:
    """Make a console that never re-wraps lines and is wide when it is not a terminal."""
    console = _PipeConsole(file=file, stderr=stderr, highlight=False, soft_wrap=True)
    if not console.is_terminal:
        console.width = NON_TERMINAL_WIDTH
    return console


@app.command("scan")
def scan_command(
    paths: Annotated[
        list[str],
        typer.Argument(
            help="Files or folders to scan, or - for standard input. A folder whose subfolders "
            "hold telemetry is a collection: each subfolder is named after its host.",
            show_default=False,
            metavar="PATH",
        ),
    ],
    host: Annotated[
        str | None,
        typer.Option(
            "--host",
            metavar="NAME",
            help="Host name for records that carry none and are not in a collection.",
        ),
    ] = None,
    config_file: Annotated[
        Path | None,
        typer.Option(
            "--config",
            metavar="FILE",
            help="YAML configuration: thresholds, extra or changed components.",
        ),
    ] = None,
    output_format: Annotated[
        OutputFormat,
        typer.Option("--format", help="text for people, jsonl for one incident per line."),
    ] = OutputFormat.text,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="Write the output to this file instead of standard output.",
        ),
    ] = None,
    blind_windows_file: Annotated[
        Path | None,
        typer.Option(
            "--blind-windows",
            metavar="FILE",
            help="Also write the blind windows (spans without detection) to FILE, one JSON object per line.",
        ),
    ] = None,
    verbose: Annotated[
        int,
        typer.Option(
            "--verbose",
            "-v",
            count=True,
            show_default=False,
            help="Log more to standard error; -vv for debug.",
        ),
    ] = 0,
) -> None:
    """Scan telemetry collected from Macs and report impairments of security components."""
    _configure_logging(verbose)
    err = _console(stderr=True)
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
                try:
                    write_jsonl(result.incidents, sys.stdout.buffer)
                    sys.stdout.flush()
                except BrokenPipeError:
                    _discard_stdout()
            print_stats_stderr(result, err)
        elif output is not None:
            with output.open("w", encoding="utf-8") as text_stream:
                print_text(result, _console(text_stream))
        else:
            print_text(result, _console())
        if blind_windows_file is not None:
            with blind_windows_file.open("wb") as windows_stream:
                write_blind_windows(result.blind_windows, windows_stream)
    except OSError as exc:
        err.print(
            f"error: cannot write output: {neutralize(str(exc))}", markup=False, highlight=False
        )
        raise typer.Exit(EXIT_ERROR) from None

    if result.unreadable:
        raise typer.Exit(EXIT_ERROR)
    if result.records_used == 0:
        err.print(
            "error: no telemetry record could be read from the input; see the reasons above",
            markup=False,
            highlight=False,
        )
        raise typer.Exit(EXIT_ERROR)
    raise typer.Exit(EXIT_SUSPICIOUS if result.suspicious else EXIT_CLEAN)


def main() -> None:
    """Entry point of the ``tamperwatch`` console script."""
    app()
