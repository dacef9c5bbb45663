"""Reader for osquery logs as JSON lines: scheduled-query results and status lines.

A result line carries one row in ``columns`` with ``action`` ``added`` or ``removed``
(differential logging), all rows of one run in ``snapshot`` with ``action`` ``snapshot``, or both
directions at once in ``diffResults`` (batched logging). Column values are strings, or numbers
when osquery runs with numeric output. ``unixTime`` is a string in older releases and an integer
in newer ones. A line's time is ``unixTime``, else ``calendarTime``
(``Thu Dec 28 14:40:08 2017 UTC``). Its host is ``hostIdentifier``, else the ``hostname``
decoration. A status line (``severity``, ``filename``, ``line``, ``message``) becomes a ``log``
event of process ``osqueryd`` and subsystem ``osquery``, with the glog severity name (``info``,
``warning``, ``error``, ``fatal``) as its category.

A result line names its scheduled query, not its table, so the table is inferred from the
columns of each row. The first rule that matches wins:

=====================  =====================================================================
table                  columns the row must have
=====================  =====================================================================
es_process_events      ``event_type`` and ``pid``, but neither ``filename`` nor
                       ``dest_filename`` (those belong to es_process_file_events)
crashes                ``crash_path`` or ``exception_type``
system_extensions      ``identifier`` and ``state``
launchd                ``label`` and one of ``program``, ``program_arguments``,
                       ``run_at_load``, ``disabled``
osquery_info           ``instance_id`` or ``config_hash``
osquery_schedule       ``name``, ``executions`` and ``last_executed``
alf                    ``global_state`` and one of ``stealth_enabled``, ``logging_enabled``,
                       ``firewall_unload``
gatekeeper             ``assessments_enabled``
sip_config             ``config_flag`` and ``enabled``
preferences            ``domain``, ``key`` and ``value``
processes              ``pid`` and ``name``
=====================  =====================================================================

A query that selects fewer columns, or joins these tables with others, may match another rule
or none. Rows that match no rule are counted as a note, not as errors.

Events per table: es_process_events rows become ``exec``, ``fork`` and ``exit`` events, and
crashes rows become ``crash`` events. alf, gatekeeper, sip_config and preferences rows become
``state`` events of subject ``setting``, named ``<table>.<column>`` (``alf.global_state``) or
``<domain> <key>`` for preferences. The other tables become ``state`` events (see
:class:`~tamperwatch.model.StateInfo`). A ``removed`` row of a state table gets state
``removed``, and its detail keeps the state the row had. Rows of a ``snapshot`` line name their
snapshot as ``<query name>@<unix time>``.
"""

from __future__ import annotations

import logging
import posixpath
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import BinaryIO, Final

import msgspec

from tamperwatch.model import CrashInfo, Event, Evidence, Process, StateInfo
from tamperwatch.readers.base import ReadContext, Reader, decode_json, in_time_range, iter_lines
from tamperwatch.timeutil import format_rfc3339, parse_local_with_offset, parse_rfc3339

log = logging.getLogger(__name__)

UNRECOGNISED_QUERY_NOTE: Final = "rows of an unrecognised query"
REMOVED_EVENT_ROW_NOTE: Final = "removed rows of crashes or es_process_events (not events)"
REPEATED_CRASH_NOTE: Final = "crash rows already read from an earlier line"
EMPTY_RESULT_NOTE: Final = "result lines without rows"

# Status lines carry no pid, but a Process needs one. -1 is never a real pid, so the process
# table cannot confuse it with a running process.
STATUS_LINE_PID: Final = -1

# Crash rows remembered per file to drop repeats: a snapshot query of the crashes table lists
# every report still on disk at each run. Past this many, the oldest half is forgotten.
MAX_REMEMBERED_CRASHES: Final = 100_000

# ES_EVENT_TYPE_NOTIFY_* values from the packaged es_event_types.csv. osquery subscribes to the
# notify events.
_ES_EVENT_TYPES: Final = {"exec": 9, "fork": 11, "exit": 15}

# glog severities of osquery status lines.
_SEVERITY_NAMES: Final = {0: "info", 1: "warning", 2: "error", 3: "fatal"}

_MONTHS: Final = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
        start=1,
    )
}

# asctime-like with the day padded by a space: "Mon Jan  8 14:51:55 2018 UTC".
_CALENDAR_TIME: Final = re.compile(
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (?P<month>[A-Z][a-z]{2}) +(?P<day>\d{1,2}) "
    r"(?P<hour>\d{2}):(?P<minute>\d{2}):(?P<second>\d{2}) (?P<year>\d{4}) UTC"
)

# "EXC_CRASH (SIGKILL)" and "EXC_BAD_ACCESS (SIGSEGV)" split into the type and the signal.
_EXCEPTION_TYPE: Final = re.compile(r"(?P<type>\S+)(?:\s+\((?P<signal>SIG[A-Z0-9]+))?.*")

_Value = str | int | float | bool | None
_Row = dict[str, _Value]


class _Decorations(msgspec.Struct):
    hostname: str | None = None


class _DiffResults(msgspec.Struct):
    added: list[_Row] = msgspec.field(default_factory=list)
    removed: list[_Row] = msgspec.field(default_factory=list)


class _Line(msgspec.Struct):
    """The keys of a result line and of a status line. A line has the keys of one of them."""

    name: str | None = None
    host_identifier: str | None = msgspec.field(default=None, name="hostIdentifier")
    calendar_time: str | None = msgspec.field(default=None, name="calendarTime")
    unix_time: int | float | str | None = msgspec.field(default=None, name="unixTime")
    decorations: _Decorations | None = None
    action: str | None = None
    columns: _Row | None = None
    snapshot: list[_Row] | None = None
    diff_results: _DiffResults | None = msgspec.field(default=None, name="diffResults")
    message: str | None = None
    severity: int | str | None = None


def parse_calendar_time(text: str) -> float | None:
    """Parse osquery's ``calendarTime`` such as ``Mon Jan  8 14:51:55 2018 UTC``.

    The month names are English whatever the locale, so the text is matched here rather than
    with :func:`time.strptime`.
    """
    match = _CALENDAR_TIME.fullmatch(text.strip())
    if match is None:
        return None
    month = _MONTHS.get(match["month"])
    if month is None:
        return None
    hour, minute, second = int(match["hour"]), int(match["minute"]), int(match["second"])
    if not (hour <= 23 and minute <= 59 and second <= 60):
        return None
    try:
        # datetime rejects year 0 and days past the end of the month, such as February 30.
        midnight = datetime(int(match["year"]), month, int(match["day"]), tzinfo=UTC)
    except ValueError:
        return None
    return midnight.timestamp() + hour * 3600 + minute * 60 + second


def _epoch_seconds(value: int | float | str | None) -> float | None:
    """Return epoch seconds from an integer, a float or a decimal string, else ``None``."""
    if value is None or isinstance(value, bool):
        return None
    try:
        seconds = float(value) if isinstance(value, int | float) else float(value.strip())
    except (ValueError, OverflowError):
        return None
    if not 0 <= seconds < 1e11:
        return None
    return seconds


class _RowError(Exception):
    """A row of a recognised table that cannot become an event: skip reason and detail."""

    def __init__(self, reason: str, detail: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


class _Columns:
    """Typed access to one row, whose values may be strings or numbers."""

    def __init__(self, values: _Row) -> None:
        self.values = values

    def __contains__(self, key: str) -> bool:
        return key in self.values

    def text(self, key: str) -> str | None:
        """Return the value as text; an empty string, as osquery writes for NULL, is ``None``."""
        value = self.values.get(key)
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            return "1" if value else "0"
        return value if isinstance(value, str) else str(value)

    def required_text(self, key: str) -> str:
        value = self.text(key)
        if value is None:
            raise _RowError("missing column", key)
        return value

    def integer(self, key: str) -> int | None:
        value = self.values.get(key)
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            raise _RowError("invalid record", f"{key} {value!r} is not a whole number")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise _RowError("invalid record", f"{key} {value!r} is not a whole number")

    def required_integer(self, key: str) -> int:
        value = self.integer(key)
        if value is None:
            raise _RowError("missing column", key)
        return value

    def flag(self, key: str) -> bool | None:
        """Return an osquery boolean column (``1``/``0``) as a bool, ``None`` when empty."""
        value = self.integer(key)
        return None if value is None else value != 0


def table_of(keys: set[str] | frozenset[str]) -> str | None:
    """Return the osquery table a row comes from, judged by its column names (module docstring)."""
    if "event_type" in keys and "pid" in keys and not keys & {"filename", "dest_filename"}:
        return "es_process_events"
    if "crash_path" in keys or "exception_type" in keys:
        return "crashes"
    if "identifier" in keys and "state" in keys:
        return "system_extensions"
    if "label" in keys and keys & {"program", "program_arguments", "run_at_load", "disabled"}:
        return "launchd"
    if "instance_id" in keys or "config_hash" in keys:
        return "osquery_info"
    if {"name", "executions", "last_executed"} <= keys:
        return "osquery_schedule"
    if "global_state" in keys and keys & {"stealth_enabled", "logging_enabled", "firewall_unload"}:
        return "alf"
    if "assessments_enabled" in keys:
        return "gatekeeper"
    if {"config_flag", "enabled"} <= keys:
        return "sip_config"
    if {"domain", "key", "value"} <= keys:
        return "preferences"
    if "pid" in keys and "name" in keys:
        return "processes"
    return None


def split_cmdline(cmdline: str, count: int | None = None) -> list[str]:
    """Split an es_process_events ``cmdline`` into arguments.

    osquery ends every argument with a space. Releases whose es_utils.cpp has
    ``appendQuotedString`` write an argument that contains a space or a double quote with
    ``std::quoted`` (double quotes, backslash before ``"`` and ``\\``), and every other argument
    as it is, backslashes and single quotes included. Shell rules would therefore misread
    unquoted arguments. Older releases quote nothing. The text is split on whitespace instead
    when a quote is not closed, or when only that split gives ``count`` arguments (the
    ``cmdline_count`` column).
    """
    fields = cmdline.split()
    words: list[str] = []
    position = 0
    length = len(cmdline)
    while position < length:
        if cmdline[position] == " ":
            position += 1
            continue
        if cmdline[position] != '"':
            end = position
            while end < length and cmdline[end] != " ":
                end += 1
            words.append(cmdline[position:end])
            position = end
            continue
        position += 1
        characters: list[str] = []
        while position < length and cmdline[position] != '"':
            if cmdline[position] == "\\" and position + 1 < length:
                position += 1
            characters.append(cmdline[position])
            position += 1
        if position >= length:
            return fields
        words.append("".join(characters))
        position += 1
    if count is not None and len(words) != count and len(fields) == count:
        return fields
    return words


class _FileState:
    """State kept across the lines of one file: the crash rows already read."""

    def __init__(self) -> None:
        self.crashes: dict[tuple[str | None, str], None] = {}

    def first_sighting(self, host: str | None, crash: str) -> bool:
        """Remember a crash row; return ``False`` when the same row was seen before."""
        key = (host, crash)
        if key in self.crashes:
            return False
        if len(self.crashes) >= MAX_REMEMBERED_CRASHES:
            for old in list(self.crashes)[: MAX_REMEMBERED_CRASHES // 2]:
                del self.crashes[old]
        self.crashes[key] = None
        return True


class _LineInfo(msgspec.Struct):
    """The parts of a result line that every row of it shares."""

    time: float
    host: str | None
    evidence: Evidence
    snapshot: str | None


class OsqueryReader(Reader):
    """osquery result and status logs as JSON lines (filesystem, TLS or forwarded logger)."""

    name = "osquery"
    description = "osquery results and status log, JSON lines"

    def __init__(self) -> None:
        self._decoder = msgspec.json.Decoder(_Line)

    def sniff(self, head: bytes) -> bool:
        text = head.lstrip()
        if not text.startswith(b"{"):
            return False
        first = text.split(b"\n", 1)[0]
        if b'"unixTime"' not in first and b'"calendarTime"' not in first:
            return False
        return any(
            key in first
            for key in (b'"hostIdentifier"', b'"columns"', b'"snapshot"', b'"diffResults"')
        )

    def read(self, source: BinaryIO, context: ReadContext) -> Iterator[Event]:
        decoder = self._decoder
        state = _FileState()
        for number, raw in iter_lines(source, context):
            if not raw.strip():
                continue
            line = decode_json(decoder, raw, number, context)
            if line is None:
                context.record()
                continue
            yield from self._line_events(line, number, context, state)

    def _line_events(
        self, line: _Line, number: int, context: ReadContext, state: _FileState
    ) -> Iterator[Event]:
        is_result = (
            line.columns is not None or line.snapshot is not None or line.diff_results is not None
        )
        if not is_result and line.message is None:
            context.record()
            context.skip(
                number, "invalid record", "no columns, snapshot, diffResults or message key"
            )
            return
        when = _line_time(line)
        if when is None:
            context.record()
            if line.unix_time is None and line.calendar_time is None:
                context.skip(number, "missing timestamp")
            else:
                bad_time = line.unix_time if line.unix_time is not None else line.calendar_time
                context.skip(number, "invalid timestamp", repr(bad_time)[:64])
            return

        host = line.host_identifier or None
        if host is None and line.decorations is not None:
            host = line.decorations.hostname or None
        if host is None:
            host = context.host
        evidence = Evidence(self.name, context.file, number)

        if not is_result:
            context.record()
            context.used()
            yield _status_event(line, when, host, evidence)
            return

        rows = _rows(line, number, context)
        if rows is None:
            return
        if not rows:
            context.note(EMPTY_RESULT_NOTE)
            return

        snapshot = None
        if line.action == "snapshot":
            snapshot = f"{line.name or 'unnamed query'}@{int(when)}"
        info = _LineInfo(when, host, evidence, snapshot)
        for action, row in rows:
            event = _row_event(action, _Columns(row), info, number, context, state)
            if event is not None:
                context.used()
                yield event


def _line_time(line: _Line) -> float | None:
    if line.unix_time is not None:
        return _epoch_seconds(line.unix_time)
    if line.calendar_time is not None:
        seconds = parse_calendar_time(line.calendar_time)
        return seconds if seconds is not None and in_time_range(seconds) else None
    return None


def _rows(line: _Line, number: int, context: ReadContext) -> list[tuple[str, _Row]] | None:
    """Return ``(action, row)`` pairs of a result line, or count a skip and return ``None``."""
    if line.diff_results is not None:
        added = [("added", row) for row in line.diff_results.added]
        return added + [("removed", row) for row in line.diff_results.removed]
    if line.action == "snapshot":
        if line.snapshot is None:
            context.record()
            context.skip(number, "invalid record", "action snapshot without a snapshot array")
            return None
        return [("snapshot", row) for row in line.snapshot]
    if line.columns is None:
        context.record()
        context.skip(number, "invalid record", f"action {line.action!r} without columns")
        return None
    # Event-based queries and differential results name the action. A line without one is read
    # as an added row.
    action = line.action or "added"
    if action not in ("added", "removed"):
        context.record()
        context.skip(number, "invalid record", f"unknown action {action[:32]!r}")
        return None
    return [(action, line.columns)]


def _status_event(line: _Line, when: float, host: str | None, evidence: Evidence) -> Event:
    severity = line.severity
    if isinstance(severity, str):
        try:
            severity = int(severity)
        except ValueError:
            severity = None
    return Event(
        time=when,
        kind="log",
        evidence=evidence,
        host=host,
        process=Process(pid=STATUS_LINE_PID, name="osqueryd"),
        message=line.message,
        subsystem="osquery",
        category=_SEVERITY_NAMES.get(severity) if isinstance(severity, int) else None,
    )


def _row_event(
    action: str,
    columns: _Columns,
    info: _LineInfo,
    number: int,
    context: ReadContext,
    state: _FileState,
) -> Event | None:
    """Convert one row into an event, or count it (skip or note) and return ``None``."""
    table = table_of(frozenset(columns.values))
    if table is None:
        context.note(UNRECOGNISED_QUERY_NOTE)
        return None
    removed = action == "removed"
    if removed and table in ("crashes", "es_process_events"):
        context.note(REMOVED_EVENT_ROW_NOTE)
        return None
    if table == "crashes":
        crash_key = columns.text("crash_path") or repr(sorted(columns.values.items()))
        if not state.first_sighting(info.host, crash_key):
            context.note(REPEATED_CRASH_NOTE)
            return None
    context.record()
    try:
        if table == "es_process_events":
            return _es_process_event(columns, info)
        if table == "crashes":
            return _crash_event(columns, info)
        row_state = _STATE_BUILDERS[table](columns)
    except _RowError as error:
        context.skip(number, error.reason, error.detail)
        return None
    if removed:
        _mark_removed(row_state)
    row_state.snapshot = info.snapshot
    return Event(
        time=info.time, kind="state", evidence=info.evidence, host=info.host, state=row_state
    )


def _mark_removed(row_state: StateInfo) -> None:
    """Turn the state of a removed row into ``removed``, keeping the old state in the detail."""
    if row_state.state is not None:
        before = f"state before removal: {row_state.state}"
        row_state.detail = f"{row_state.detail}; {before}" if row_state.detail else before
    row_state.state = "removed"
    # The row left the results, so it no longer reports on health. A differential query
    # reports a changed row as one removed row and one added row.
    row_state.healthy = None


def _system_extension(columns: _Columns) -> StateInfo:
    return StateInfo(
        subject="system_extension",
        name=columns.required_text("identifier"),
        state=columns.text("state"),
        team_id=columns.text("team"),
        version=columns.text("version"),
        path=columns.text("path"),
        detail=columns.text("category"),
    )


def _launchd_plist(columns: _Columns) -> StateInfo:
    # The launchd table reads plist files. An empty ``disabled`` means the plist has no
    # Disabled key, which launchd treats as enabled. Overrides made with ``launchctl disable``
    # live elsewhere and are not visible here.
    enabled = None
    if "disabled" in columns:
        enabled = not columns.flag("disabled")
    return StateInfo(
        subject="launchd_plist",
        name=columns.required_text("label"),
        enabled=enabled,
        path=columns.text("path"),
        detail=columns.text("program") or columns.text("program_arguments"),
    )


def _process_row(columns: _Columns) -> StateInfo:
    return StateInfo(
        subject="process",
        name=columns.required_text("name"),
        pid=columns.required_integer("pid"),
        path=columns.text("path"),
        # ps-style letter: R running, S sleeping, T stopped (for example by SIGSTOP), Z zombie.
        state=columns.text("state"),
        detail=columns.text("cmdline"),
    )


def _osquery_info(columns: _Columns) -> StateInfo:
    parts: list[str] = []
    for key, label in (
        ("instance_id", "instance"),
        ("config_hash", "config hash"),
        ("watcher", "watcher pid"),
    ):
        value = columns.text(key)
        if value is not None:
            parts.append(f"{label} {value}")
    config_valid = columns.flag("config_valid")
    if config_valid is False:
        parts.append("configuration invalid")
    return StateInfo(
        subject="agent_health",
        name="osquery",
        pid=columns.integer("pid"),
        version=columns.text("version"),
        healthy=config_valid is not False,
        detail=", ".join(parts) or None,
    )


def _osquery_schedule(columns: _Columns) -> StateInfo:
    query = columns.required_text("name")
    executions = columns.text("executions") or "0"
    last_executed = columns.integer("last_executed")
    if not last_executed:
        last = "never"
    elif _epoch_seconds(last_executed) is None:
        last = f"at invalid time {last_executed}"
    else:
        last = format_rfc3339(last_executed)
    detail = f"query {query}: {executions} executions, last {last}"
    # The watchdog denylists a query that exceeded its CPU or memory limits, and a denylisted
    # query does not run.
    denylisted = columns.flag("denylisted")
    if denylisted:
        detail += ", denylisted"
    return StateInfo(
        subject="agent_health",
        name="osquery",
        healthy=False if denylisted else None,
        detail=detail,
    )


def _settings(prefix: str, names: tuple[str, ...]) -> Callable[[_Columns], StateInfo]:
    """Build a row reader for a table of security settings: one ``setting`` per row."""

    def build(columns: _Columns) -> StateInfo:
        values = {name: columns.text(name) for name in names}
        present = {name: value for name, value in values.items() if value is not None}
        if not present:
            raise _RowError("invalid row", f"none of the columns {', '.join(names)}")
        first = next(iter(present))
        return StateInfo(
            subject="setting",
            name=f"{prefix}.{first}",
            state=present[first],
            detail=", ".join(f"{prefix}.{name}={value}" for name, value in present.items()),
        )

    return build


def _preference(columns: _Columns) -> StateInfo:
    domain = columns.required_text("domain")
    key = columns.required_text("key")
    return StateInfo(
        subject="setting",
        name=f"{domain} {key}",
        state=columns.text("value"),
        detail=f"username {columns.text('username') or '-'}, forced {columns.text('forced') or '-'}",
    )


def _sip_config(columns: _Columns) -> StateInfo:
    flag = columns.required_text("config_flag")
    return StateInfo(subject="setting", name=f"sip_config.{flag}", state=columns.text("enabled"))


_STATE_BUILDERS: Final = {
    "system_extensions": _system_extension,
    "launchd": _launchd_plist,
    "processes": _process_row,
    "osquery_info": _osquery_info,
    "osquery_schedule": _osquery_schedule,
    "alf": _settings(
        "alf", ("global_state", "firewall_unload", "stealth_enabled", "logging_enabled")
    ),
    "gatekeeper": _settings("gatekeeper", ("assessments_enabled", "dev_id_enabled")),
    "sip_config": _sip_config,
    "preferences": _preference,
}


def _crash_event(columns: _Columns, info: _LineInfo) -> Event:
    pid = columns.required_integer("pid")
    path = columns.text("path")
    identifier = columns.text("identifier")
    name = posixpath.basename(path) if path else identifier
    crash = CrashInfo(
        process_name=name,
        bundle_id=identifier,
        version=columns.text("version"),
    )
    exception = _EXCEPTION_TYPE.fullmatch(columns.text("exception_type") or "")
    if exception is not None:
        crash.exception_type = exception["type"]
        crash.signal = exception["signal"]
    crash.indicator = columns.text("exception_notes")
    time = info.time
    datetime_text = columns.text("datetime")
    if datetime_text is not None:
        parsed = parse_local_with_offset(datetime_text) or parse_rfc3339(datetime_text)
        if parsed is not None and in_time_range(parsed):
            time = parsed
    return Event(
        time=time,
        kind="crash",
        evidence=info.evidence,
        host=info.host,
        process=Process(pid=pid, ppid=columns.integer("parent"), path=path, name=name),
        crash=crash,
    )


def _es_process_event(columns: _Columns, info: _LineInfo) -> Event:
    kind = columns.required_text("event_type").lower()
    if kind not in _ES_EVENT_TYPES:
        raise _RowError("unknown event_type", kind[:32])
    pid = columns.required_integer("pid")
    parent = columns.integer("parent")
    row_time = columns.text("time")
    time = _epoch_seconds(row_time) if row_time is not None else info.time
    if time is None:
        raise _RowError("invalid timestamp", repr(row_time)[:64])
    image = Process(
        pid=pid,
        ppid=parent,
        path=columns.text("path"),
        team_id=columns.text("team_id"),
        signing_id=columns.text("signing_id"),
        platform_binary=columns.flag("platform_binary"),
        # The euid column is not read: getProcessProperties in osquery's es_utils.cpp fills it
        # with audit_token_to_egid, so it contains the effective group id.
    )
    event = Event(
        time=time,
        kind=kind,
        evidence=info.evidence,
        host=info.host,
        event_type=_ES_EVENT_TYPES[kind],
        seq_num=columns.integer("seq_num"),
        global_seq_num=columns.integer("global_seq_num"),
    )
    if kind == "exec":
        cmdline = columns.text("cmdline")
        if cmdline is not None:
            image.args = split_cmdline(cmdline, columns.integer("cmdline_count"))
        event.target = image
        # The process that called exec has the same pid. Its image before the exec is not in
        # the row, so only the pid and the parent are known.
        event.process = Process(pid=pid, ppid=parent)
    elif kind == "fork":
        child = columns.integer("child_pid")
        if child is None or child <= 0:
            raise _RowError("missing column", "child_pid")
        event.process = image
        event.target = Process(pid=child, ppid=pid, path=image.path)
    else:
        event.process = image
        event.status = columns.integer("exit_code")
    return event
