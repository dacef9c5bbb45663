"""Command-line interface: ``tamperwatch scan``, ``report`` and the ``ledger`` commands.

Exit status of ``scan``: 0 when no suspicious incident was found, 1 when at least one was. It is
2 for a usage error, an invalid configuration, an input that could not be read, or inputs that
held no usable record at all. The ``ledger`` commands exit with 0, or 2 for a usage error, a ledger that
cannot be opened or written, or an unknown id.
"""

from __future__ import annotations

import enum
import logging
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from tamperwatch import __version__
from tamperwatch.config import ConfigError, build_inventory, load_config
from tamperwatch.ecs import write_ecs
from tamperwatch.incident import Incident
from tamperwatch.ledger import (
    DEFAULT_LOCATION,
    IncidentEntry,
    Ledger,
    LedgerError,
    LedgerFilter,
    OutageEntry,
    csv_cell,
    format_time,
    ledger_url,
    parse_time,
    write_entries_jsonl,
    write_incidents_csv,
    write_outages_csv,
)
from tamperwatch.logpatterns import LogPatternError, load_log_patterns
from tamperwatch.ocsf import write_ocsf
from tamperwatch.render import (
    neutralize,
    print_actor,
    print_signals,
    print_stats_stderr,
    print_text,
    write_blind_windows,
    write_jsonl,
)
from tamperwatch.report import ReportError, ReportView, attach_records, write_html
from tamperwatch.report import from_ledger as report_from_ledger
from tamperwatch.report import from_scan as report_from_scan
from tamperwatch.scan import InputError, ScanResult, scan

EXIT_CLEAN = 0
EXIT_SUSPICIOUS = 1
EXIT_ERROR = 2

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
    ecs = "ecs"
    ocsf = "ocsf"


# Writers of the formats that print one JSON object per incident and send the counts to stderr.
JSON_LINES_WRITERS: dict[OutputFormat, Callable[[Iterable[Incident], IO[bytes]], None]] = {
    OutputFormat.jsonl: write_jsonl,
    OutputFormat.ecs: write_ecs,
    OutputFormat.ocsf: write_ocsf,
}


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


class _NeutralFormatter(logging.Formatter):
    """A log formatter that shows control characters of a message as escapes.

    Library messages name files and hosts taken from telemetry, which may hold terminal escape
    sequences. Tracebacks are formatted as usual.
    """

    def formatMessage(self, record: logging.LogRecord) -> str:
        safe = logging.makeLogRecord(record.__dict__)
        safe.message = neutralize(record.message, limit=sys.maxsize)
        return super().formatMessage(safe)


def _configure_logging(verbose: int) -> None:
    level = logging.WARNING
    if verbose == 1:
        level = logging.INFO
    elif verbose > 1:
        level = logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_NeutralFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])


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
        typer.Option(
            "--format",
            help="text for people, jsonl for one incident per line, ecs for one Elastic Common "
            "Schema alert document per line, ocsf for one OCSF Detection Finding event per line.",
        ),
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
    ledger: Annotated[
        str | None,
        typer.Option(
            "--ledger",
            metavar="PATH|URL",
            help="After printing, record the incidents and blind windows in this ledger: an "
            "SQLite file, 'default' for the file in the user data folder, or "
            "postgresql+psycopg://USER@HOST/DATABASE.",
        ),
    ] = None,
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
    except OSError as exc:
        # Input files that cannot be read are reported per file. An OSError that reaches here
        # comes from the scan's own temporary storage, such as a full disk while sorting.
        err.print(f"error: scan failed: {neutralize(str(exc))}", markup=False, highlight=False)
        raise typer.Exit(EXIT_ERROR) from None

    try:
        write = JSON_LINES_WRITERS.get(output_format)
        if write is not None:
            if output is not None:
                with output.open("wb") as stream:
                    write(result.incidents, stream)
            else:
                try:
                    write(result.incidents, sys.stdout.buffer)
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

    if ledger is not None:
        _record_scan(result, ledger, err)

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


# ledger ------------------------------------------------------------------------------------------

ledger_app = typer.Typer(
    no_args_is_help=True,
    help="Keep incidents and telemetry outages across scans, with who explained or resolved them.",
)
app.add_typer(ledger_app, name="ledger")


class EntryKind(enum.StrEnum):
    incidents = "incidents"
    outages = "outages"


class StatusChoice(enum.StrEnum):
    open = "open"
    explained = "explained"
    resolved = "resolved"


class ExportFormat(enum.StrEnum):
    csv = "csv"
    jsonl = "jsonl"


LedgerOption = Annotated[
    str | None,
    typer.Option(
        "--ledger",
        metavar="PATH|URL",
        help="The ledger: an SQLite file or postgresql+psycopg://USER@HOST/DATABASE. "
        "Default: ledger.sqlite3 in the user data folder.",
    ),
]
StatusOption = Annotated[
    StatusChoice | None, typer.Option("--status", help="Only entries with this status.")
]
HostOption = Annotated[
    str | None, typer.Option("--host", metavar="NAME", help="Only entries of this host.")
]
ComponentOption = Annotated[
    str | None,
    typer.Option("--component", metavar="ID", help="Only entries that involve this component id."),
]
SinceOption = Annotated[
    str | None,
    typer.Option(
        "--since",
        metavar="TIME",
        help="Only entries that end at or after this time (RFC 3339, or a date in UTC).",
    ),
]
UntilOption = Annotated[
    str | None,
    typer.Option(
        "--until",
        metavar="TIME",
        help="Only entries that start at or before this time (RFC 3339, or a date in UTC).",
    ),
]
KindOption = Annotated[
    EntryKind, typer.Option("--kind", help="Incidents, or telemetry outages (blind windows).")
]
ReasonOption = Annotated[
    str, typer.Option("--reason", metavar="TEXT", help="Why the status changes.")
]
ByOption = Annotated[str, typer.Option("--by", metavar="NAME", help="Who changes the status.")]


def _fail(message: str) -> NoReturn:
    _console(stderr=True).print(f"error: {neutralize(message)}", markup=False, highlight=False)
    raise typer.Exit(EXIT_ERROR)


@contextmanager
def _open_ledger(location: str | None, *, create: bool = False) -> Iterator[Ledger]:
    """Open the ledger and turn every ledger error, on opening or later, into exit status 2.

    Only recording a scan creates a ledger. The other commands stop when an SQLite ledger file
    does not exist, so that a mistyped path is not taken for an empty ledger.
    """
    if not create:
        _require_existing_ledger(location)
    try:
        with Ledger.open(location) as store:
            yield store
    except LedgerError as exc:
        _fail(str(exc))


def _require_existing_ledger(location: str | None) -> None:
    try:
        url = ledger_url(location)
    except LedgerError as exc:
        _fail(str(exc))
    if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists():
        option_value = DEFAULT_LOCATION if location is None else location
        _fail(
            f"no ledger at {url.database}: record scans in it first with "
            f"'tamperwatch scan PATH --ledger {option_value}'"
        )


def _record_scan(result: ScanResult, location: str, err: Console) -> None:
    with _open_ledger(location, create=True) as store:
        counts = store.record(result)
        where = store.location
    err.print(
        f"ledger {neutralize(where)}: {counts.incidents_added} incident(s) added, "
        f"{counts.incidents_updated} updated; {counts.outages_added} outage(s) added, "
        f"{counts.outages_updated} updated",
        markup=False,
        highlight=False,
    )


def _time_option(name: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_time(value)
    except ValueError:
        _fail(
            f"invalid {name} {value!r}: expected an RFC 3339 time with a UTC offset, such as "
            "2026-11-18T14:00:00Z, or a date such as 2026-11-18"
        )


def _filters(
    status: StatusChoice | None,
    host: str | None,
    component: str | None,
    since: str | None,
    until: str | None,
) -> LedgerFilter:
    return LedgerFilter(
        status=status.value if status is not None else None,
        host=host,
        component=component,
        since=_time_option("--since", since),
        until=_time_option("--until", until),
    )


def _table_time(moment: datetime) -> str:
    # Tables show whole seconds to leave room for titles; show and export keep microseconds.
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _incident_table(entries: list[IncidentEntry]) -> Table:
    # The last-seen time is left to 'ledger show' and the exports, to fit 100 columns.
    table = Table(title=f"{len(entries)} incident(s)", title_justify="left")
    table.add_column("id", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("severity", no_wrap=True)
    table.add_column("host", overflow="fold")
    table.add_column("first seen", no_wrap=True)
    table.add_column("components", overflow="fold")
    table.add_column("title", min_width=20)
    for entry in entries:
        table.add_row(
            entry.id,
            entry.status,
            entry.severity,
            Text(neutralize(entry.host)),
            _table_time(entry.first_seen),
            Text(neutralize(", ".join(entry.components))),
            Text(neutralize(entry.title)),
        )
    return table


def _outage_table(entries: list[OutageEntry]) -> Table:
    table = Table(title=f"{len(entries)} outage(s)", title_justify="left")
    table.add_column("id", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("host", overflow="fold")
    table.add_column("component", overflow="fold")
    table.add_column("start", no_wrap=True)
    table.add_column("end", no_wrap=True)
    table.add_column("events lost", justify="right")
    table.add_column("reason", min_width=20)
    for entry in entries:
        table.add_row(
            entry.id,
            entry.status,
            Text(neutralize(entry.host)),
            Text(neutralize(entry.component) or "-"),
            _table_time(entry.start),
            _table_time(entry.end),
            "-" if entry.events_lost is None else str(entry.events_lost),
            Text(neutralize(entry.reason)),
        )
    return table


@ledger_app.command("list")
def ledger_list(
    status: StatusOption = None,
    host: HostOption = None,
    component: ComponentOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    kind: KindOption = EntryKind.incidents,
    ledger: LedgerOption = None,
) -> None:
    """Print the incidents or outages in the ledger as a table, oldest first."""
    filters = _filters(status, host, component, since, until)
    with _open_ledger(ledger) as store:
        table = (
            _incident_table(store.incidents(filters))
            if kind is EntryKind.incidents
            else _outage_table(store.outages(filters))
        )
    _console().print(table)


def _print_history(entry: IncidentEntry | OutageEntry, console: Console) -> None:
    console.print()
    if not entry.history:
        console.print(Text("history: no status change yet"))
        return
    console.print(Text("history:", style="bold"))
    for change in entry.history:
        console.print(
            Text(
                f"  {format_time(change.at)}  {change.status}  by {neutralize(change.by)}: "
                f"{neutralize(change.reason)}"
            )
        )


def _print_incident_entry(entry: IncidentEntry, console: Console) -> None:
    incident = entry.incident
    console.print(Text(f"incident {entry.id}", style="bold"))
    console.print(Text(f"  status:     {entry.status}"))
    console.print(Text(f"  host:       {neutralize(entry.host)}"))
    console.print(Text(f"  seen:       {incident.first_seen} .. {incident.last_seen}"))
    console.print(Text(f"  severity:   {entry.severity}"))
    console.print(Text(f"  title:      {neutralize(entry.title)}"))
    components = ", ".join(f"{c.product} ({c.id})" for c in incident.components)
    console.print(Text(f"  components: {neutralize(components)}"))
    verdict: str = incident.status
    if incident.explanation:
        verdict += f": {incident.explanation}"
    console.print(Text(f"  scan:       {neutralize(verdict)}"))
    console.print(Text(f"  recorded:   {format_time(entry.created_at)}"))
    if incident.actor is not None:
        print_actor(incident.actor, console)
    print_signals(incident.signals, console)


def _print_outage_entry(entry: OutageEntry, console: Console) -> None:
    console.print(Text(f"outage {entry.id}", style="bold"))
    console.print(Text(f"  status:      {entry.status}"))
    console.print(Text(f"  host:        {neutralize(entry.host)}"))
    console.print(Text(f"  component:   {neutralize(entry.component) or '- (the whole host)'}"))
    console.print(Text(f"  span:        {format_time(entry.start)} .. {format_time(entry.end)}"))
    console.print(Text(f"  reason:      {neutralize(entry.reason)}"))
    if entry.events_lost is not None:
        console.print(Text(f"  events lost: {entry.events_lost}"))
    if entry.explanation is not None:
        console.print(
            Text(
                f"  explained:   {neutralize(entry.explanation)} "
                f"(by {neutralize(entry.explained_by)}, {format_time(entry.explained_at)})"
            )
        )
    console.print(Text(f"  recorded:    {format_time(entry.created_at)}"))
    where = ", ".join(f"{item.file}:{item.line}" for item in entry.evidence)
    if where:
        console.print(Text(f"  evidence:    {neutralize(where)}"))


@ledger_app.command("show")
def ledger_show(
    entry_id: Annotated[
        str, typer.Argument(metavar="ID", help="Id of an incident (tw-...) or outage (bw-...).")
    ],
    ledger: LedgerOption = None,
) -> None:
    """Print one incident or outage with its status history."""
    with _open_ledger(ledger) as store:
        entry = store.find(entry_id)
    console = _console()
    if isinstance(entry, IncidentEntry):
        _print_incident_entry(entry, console)
    else:
        _print_outage_entry(entry, console)
    _print_history(entry, console)


def _change_status(
    change: Callable[..., IncidentEntry | OutageEntry], entry_id: str, reason: str, by: str
) -> None:
    entry = change(entry_id, reason=reason, by=by)
    _console().print(
        Text(f"{entry.id} is now {entry.status} (by {neutralize(entry.history[-1].by)})")
    )


@ledger_app.command("explain")
def ledger_explain(
    entry_id: Annotated[str, typer.Argument(metavar="ID", help="Id of an incident or outage.")],
    reason: ReasonOption,
    by: ByOption,
    ledger: LedgerOption = None,
) -> None:
    """Mark an incident or outage as explained, keeping the change in its history."""
    with _open_ledger(ledger) as store:
        _change_status(store.explain, entry_id, reason, by)


@ledger_app.command("resolve")
def ledger_resolve(
    entry_id: Annotated[str, typer.Argument(metavar="ID", help="Id of an incident or outage.")],
    reason: ReasonOption,
    by: ByOption,
    ledger: LedgerOption = None,
) -> None:
    """Mark an incident or outage as resolved, keeping the change in its history."""
    with _open_ledger(ledger) as store:
        _change_status(store.resolve, entry_id, reason, by)


@ledger_app.command("export")
def ledger_export(
    export_format: Annotated[
        ExportFormat,
        typer.Option(
            "--format", help="csv (latest status change per row) or jsonl (whole history)."
        ),
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="Write to this file instead of standard output.",
        ),
    ] = None,
    status: StatusOption = None,
    host: HostOption = None,
    component: ComponentOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    kind: KindOption = EntryKind.incidents,
    ledger: LedgerOption = None,
) -> None:
    """Write the incidents or outages of the ledger as CSV or JSON lines, for audits."""
    filters = _filters(status, host, component, since, until)
    incidents: list[IncidentEntry] = []
    outages: list[OutageEntry] = []
    with _open_ledger(ledger) as store:
        if kind is EntryKind.incidents:
            incidents = store.incidents(filters)
        else:
            outages = store.outages(filters)

    def write_csv(stream: IO[str], cell: Callable[[str], str]) -> None:
        if kind is EntryKind.incidents:
            write_incidents_csv(incidents, stream, cell=cell)
        else:
            write_outages_csv(outages, stream, cell=cell)

    def write_jsonl(stream: IO[bytes]) -> None:
        write_entries_jsonl(incidents if kind is EntryKind.incidents else outages, stream)

    try:
        if output is not None and export_format is ExportFormat.jsonl:
            with output.open("wb") as binary_file:
                write_jsonl(binary_file)
        elif output is not None:
            with output.open("w", encoding="utf-8", newline="") as text_file:
                write_csv(text_file, csv_cell)
        else:
            _export_to_stdout(export_format, write_csv, write_jsonl)
    except OSError as exc:
        _fail(f"cannot write the export: {exc}")


def _export_to_stdout(
    export_format: ExportFormat,
    write_csv: Callable[[IO[str], Callable[[str], str]], None],
    write_jsonl: Callable[[IO[bytes]], None],
) -> None:
    try:
        if export_format is ExportFormat.jsonl:
            write_jsonl(sys.stdout.buffer)
        elif sys.stdout.isatty():
            # Telemetry text reaches a terminal here, so its escapes are made visible as in tables.
            write_csv(sys.stdout, lambda value: csv_cell(neutralize(value, limit=sys.maxsize)))
        else:
            write_csv(sys.stdout, csv_cell)
        sys.stdout.flush()
    except BrokenPipeError:
        _discard_stdout()


# report ------------------------------------------------------------------------------------------


@app.command("report")
def report_command(
    html: Annotated[
        Path,
        typer.Option(
            "--html",
            metavar="FILE",
            help="Write the report to FILE: one self-contained HTML page that fetches nothing.",
        ),
    ],
    paths: Annotated[
        list[str] | None,
        typer.Argument(
            help="Telemetry files or folders to scan for the report. Without them, the report "
            "shows the ledger's incidents and outages.",
            show_default=False,
            metavar="[PATH]...",
        ),
    ] = None,
    host: HostOption = None,
    config_file: Annotated[
        Path | None,
        typer.Option("--config", metavar="FILE", help="YAML configuration for the scan of PATHs."),
    ] = None,
    ledger: LedgerOption = None,
    status: StatusOption = None,
    component: ComponentOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    records: Annotated[
        bool,
        typer.Option(
            "--records/--no-records",
            help="Show the text of each evidence record, read back from the scanned files.",
        ),
    ] = True,
    verbose: Annotated[
        int,
        typer.Option(
            "--verbose", "-v", count=True, show_default=False, help="Log more to standard error."
        ),
    ] = 0,
) -> None:
    """Write an HTML report: fleet overview, a timeline per host and a page per incident.

    With PATHs the report shows a new scan of them, and --host names records without a host.
    Without PATHs it shows the ledger, filtered by --host, --status, --component, --since and
    --until.
    """
    _configure_logging(verbose)
    err = _console(stderr=True)
    generated = datetime.now(UTC)
    if paths:
        if ledger is not None or status is not None or since is not None or until is not None:
            _fail(
                "give telemetry PATHs to scan, or --ledger and its filters, not both; "
                "run 'tamperwatch scan PATH --ledger ...' first to report from the ledger"
            )
        view = _report_of_scan(paths, host, config_file, generated, err)
    else:
        filters = _filters(status, host, component, since, until)
        with _open_ledger(ledger) as store:
            incidents, outages = store.incidents(filters), store.outages(filters)
            location = store.location
        try:
            view = report_from_ledger(
                incidents, outages, source=f"ledger {location}", generated=generated
            )
        except ReportError as exc:
            _fail(str(exc))
    if records:
        found, requested = attach_records(view)
        if found < requested:
            err.print(
                f"note: {requested - found} of {requested} evidence records could not be read back and "
                "are shown by location only: the files moved, or their paths are relative to "
                "the folder the scan ran in",
                markup=False,
                highlight=False,
            )
    try:
        write_html(view, html)
    except OSError as exc:
        _fail(f"cannot write the report: {exc}")
    err.print(
        f"report written to {neutralize(str(html))}: {len(view.hosts)} host(s), "
        f"{len(view.incidents)} incident(s), "
        f"{sum(len(h.windows) for h in view.hosts)} blind window(s)",
        markup=False,
        highlight=False,
    )


def _report_of_scan(
    paths: list[str],
    host: str | None,
    config_file: Path | None,
    generated: datetime,
    err: Console,
) -> ReportView:
    try:
        config = load_config(config_file)
        inventory = build_inventory(config)
        patterns = load_log_patterns()
        result = scan(paths, host=host, config=config, inventory=inventory, patterns=patterns)
    except (ConfigError, LogPatternError, InputError) as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"scan failed: {exc}")
    print_stats_stderr(result, err)
    try:
        return report_from_scan(
            result, source=f"scan of {' '.join(paths)}", generated=generated, inventory=inventory
        )
    except ReportError as exc:
        _fail(str(exc))


def main() -> None:
    """Entry point of the ``tamperwatch`` console script."""
    app()
