"""Reader for management-plane check-ins exported from an MDM or EDR console.

An export is CSV with a header row, or JSON lines with one object per check-in. Every row names a
host, a check-in time, and optionally the agent or component that checked in and its status.
Each row becomes a ``state`` event with subject ``checkin`` (see
:class:`~tamperwatch.model.StateInfo`).

The columns come from the ``checkins`` reader options, which the configuration file sets::

    columns: {host: "Computer Name", component: "Agent", time: "Last Check-in", status: "Status"}
    healthy_status: [online, healthy, connected]
    unhealthy_status: [offline, degraded, "sensor disabled"]
    timezone: UTC

A role without a configured column is guessed from the header names in :data:`COLUMN_GUESSES`.
Names match case-insensitively, and runs of spaces and punctuation count as one underscore, so
``Last Check-in`` matches ``last_check_in``. Without configured lists, the status lists are
:data:`DEFAULT_HEALTHY_STATUS` and :data:`DEFAULT_UNHEALTHY_STATUS`.

Times may be RFC 3339, epoch seconds or milliseconds, or ``YYYY-MM-DD HH:MM[:SS[.fff]]``
followed by an optional zone (``Z``, ``UTC``, ``GMT``, ``+02:00``, ``+0200`` or an IANA name).
A time without a zone is read in the configured ``timezone`` (UTC by default), and a note
counts those rows.
"""

from __future__ import annotations

import csv
import logging
import re
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any, BinaryIO, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from tamperwatch.model import Event, Evidence, StateInfo
from tamperwatch.readers.base import (
    UTF8_BOM,
    ReadContext,
    Reader,
    decode_json,
    decode_text,
    in_time_range,
    iter_lines,
)
from tamperwatch.timeutil import parse_rfc3339

log = logging.getLogger(__name__)

COLUMN_ROLES: Final = ("host", "component", "time", "status")

# Header names tried for each role, in order of preference, after normalisation.
COLUMN_GUESSES: Final[Mapping[str, tuple[str, ...]]] = {
    "host": (
        "host",
        "hostname",
        "host_name",
        "computer",
        "computer_name",
        "device",
        "device_name",
    ),
    "component": ("agent", "component", "product", "sensor", "application"),
    "time": (
        "time",
        "timestamp",
        "last_seen",
        "last_check_in",
        "last_checkin",
        "last_contact",
        "checkin_time",
        "reported_at",
    ),
    "status": ("status", "state", "health"),
}

# Status texts, lower-cased, that mark a check-in healthy or unhealthy when the configuration
# gives no list. Consoles word their states differently, so configure the lists for a real
# export.
DEFAULT_HEALTHY_STATUS: Final = frozenset({"online", "healthy", "connected"})
DEFAULT_UNHEALTHY_STATUS: Final = frozenset({"offline", "unhealthy", "disconnected", "degraded"})

# Maximum size in bytes of one CSV record, including the lines of quoted fields that span lines.
# This bound applies whatever csv.field_size_limit another module set for the process.
MAX_RECORD_BYTES: Final = 1024 * 1024

# Keys of the JSON formats that other readers take. A first object with one of them is not an
# export of check-ins. Compared after normalisation, like column names.
_FOREIGN_JSON_KEYS: Final = frozenset(
    {
        # eslogger and ES-shaped streams
        "event_type",
        "seq_num",
        "global_seq_num",
        "glob_seq_num",
        "schema_version",
        "mach_time",
        "event",
        "process",
        # unified log
        "eventmessage",
        "processimagepath",
        "formatstring",
        "machtimestamp",
        "senderimagepath",
        "messagetype",
        # osquery
        "hostidentifier",
        "calendartime",
        "unixtime",
        "columns",
        "snapshot",
        "diffresults",
    }
)

_NON_WORD: Final = re.compile(r"[^0-9a-z]+")
_NUMBER: Final = re.compile(r"[+-]?\d+(?:\.\d+)?")
_LOCAL_TIME: Final = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[T ](?P<time>\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)"
    r"\s*(?P<zone>Z|UTC|GMT|[+-]\d{2}:?\d{2}|[A-Za-z_]+(?:/[A-Za-z0-9_+-]+)+)?",
    re.IGNORECASE,
)
_OFFSET: Final = re.compile(r"(?P<sign>[+-])(?P<hours>\d{2}):?(?P<minutes>\d{2})")

# Bytes read to find the first line, which distinguishes CSV from JSON lines and shows the
# delimiter.
SNIFF_LINE_BYTES: Final = 64 * 1024

# Epoch values at or above this are milliseconds: 1e11 seconds is in the year 5138.
_EPOCH_MILLISECONDS_FROM: Final = 1e11

# Non-blank lines at the start of a file that decide between JSON lines and CSV.
_FORMAT_VOTE_LINES: Final = 20

# A check-in is one JSON object; any other JSON value is an invalid record.
_JSON_DECODER: Final = msgspec.json.Decoder(dict[str, Any])


def normalise_name(name: str) -> str:
    """Normalise a column name: lower case, runs of other characters as one underscore."""
    return _NON_WORD.sub("_", name.strip().lower()).strip("_")


@dataclass(frozen=True)
class CheckinSettings:
    """Reader settings: configured column names (normalised), status lists and time zone."""

    columns: Mapping[str, str]
    healthy: frozenset[str]
    unhealthy: frozenset[str]
    zone: tzinfo
    zone_name: str


def load_settings(options: Mapping[str, Any] | None) -> tuple[CheckinSettings, list[str]]:
    """Build settings from the ``checkins`` options, with a message for each value not used.

    The configuration loader validates these options. Options built in code may be invalid,
    so an invalid value is reported in the returned messages and its default is used.
    """
    problems: list[str] = []
    options = options if isinstance(options, Mapping) else {}
    columns: dict[str, str] = {}
    configured = options.get("columns") or {}
    if isinstance(configured, Mapping):
        for role, name in configured.items():
            if role in COLUMN_ROLES and isinstance(name, str) and normalise_name(name):
                columns[role] = normalise_name(name)
            else:
                problems.append(f"checkins.columns: ignored {role!r}: {name!r}")
    else:
        problems.append("checkins.columns: ignored, expected a mapping")
    healthy = _status_set(options, "healthy_status", DEFAULT_HEALTHY_STATUS, problems)
    unhealthy = _status_set(options, "unhealthy_status", DEFAULT_UNHEALTHY_STATUS, problems)
    zone_name = options.get("timezone") or "UTC"
    zone = load_zone(zone_name) if isinstance(zone_name, str) else None
    if zone is None:
        problems.append(f"checkins.timezone: unknown time zone {zone_name!r}; using UTC")
        zone, zone_name = UTC, "UTC"
    return CheckinSettings(columns, healthy, unhealthy, zone, zone_name), problems


def _status_set(
    options: Mapping[str, Any], key: str, default: frozenset[str], problems: list[str]
) -> frozenset[str]:
    value = options.get(key)
    if value is None:
        return default
    if not isinstance(value, list | tuple) or not all(isinstance(item, str) for item in value):
        problems.append(f"checkins.{key}: ignored, expected a list of texts")
        return default
    return frozenset(item.strip().lower() for item in value)


def load_zone(name: str) -> tzinfo | None:
    """Return the time zone of an IANA name, or ``None`` when it is unknown.

    ``UTC`` needs no time-zone database, so it works where the system has none.
    """
    if name.strip().upper() in ("UTC", "Z", "GMT"):
        return UTC
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        return None


def parse_checkin_time(value: object, default_zone: tzinfo) -> tuple[float | None, bool]:
    """Parse a check-in time into epoch seconds (``None`` if invalid) and a zone-assumed flag.

    Numbers are epoch seconds, or milliseconds from 1e11 on. A local time without a zone is
    read in ``default_zone``.
    """
    if isinstance(value, bool):
        return None, False
    if isinstance(value, int | float):
        try:
            return _epoch(float(value)), False
        except OverflowError:
            return None, False
    if not isinstance(value, str):
        return None, False
    text = value.strip()
    if _NUMBER.fullmatch(text):
        return _epoch(float(text)), False
    parsed = parse_rfc3339(text)
    if parsed is not None:
        return (parsed if in_time_range(parsed) else None), False
    match = _LOCAL_TIME.fullmatch(text)
    if match is None:
        return None, False
    try:
        naive = datetime.fromisoformat(f"{match['date']}T{match['time']}")
    except ValueError:
        return None, False
    zone_text = match["zone"]
    zone = default_zone if zone_text is None else _zone_of(zone_text)
    if zone is None:
        return None, False
    seconds = naive.replace(tzinfo=zone).timestamp()
    if not in_time_range(seconds):
        return None, False
    return seconds, zone_text is None


def _zone_of(text: str) -> tzinfo | None:
    offset = _OFFSET.fullmatch(text)
    if offset is None:
        return load_zone(text)
    minutes = int(offset["hours"]) * 60 + int(offset["minutes"])
    if minutes > 18 * 60:
        return None
    return timezone(timedelta(minutes=-minutes if offset["sign"] == "-" else minutes))


def _epoch(seconds: float) -> float | None:
    if seconds >= _EPOCH_MILLISECONDS_FROM:
        seconds /= 1000.0
    if not 0 <= seconds < _EPOCH_MILLISECONDS_FROM:
        return None
    return seconds


def resolve_columns(
    names: list[str], configured: Mapping[str, str]
) -> tuple[dict[str, str], list[str]]:
    """Map each role to one of ``names`` (normalised) and list the problems found.

    A configured name wins. When it is not among ``names``, the role is guessed and a problem
    names the missing column. A name serves one role at most.
    """
    available = set(names)
    roles: dict[str, str] = {}
    problems: list[str] = []
    for role in COLUMN_ROLES:
        configured_name = configured.get(role)
        if configured_name is not None:
            if configured_name in available:
                roles[role] = configured_name
                continue
            problems.append(f"configured {role} column {configured_name!r} not found")
        assigned = set(roles.values())
        for candidate in COLUMN_GUESSES[role]:
            if candidate in available and candidate not in assigned:
                roles[role] = candidate
                break
    return roles, problems


def _delimiter(header: str) -> str:
    """Pick the delimiter of a header line: the most frequent of comma, tab and semicolon."""
    counts = {delimiter: header.count(delimiter) for delimiter in (",", "\t", ";")}
    best = max(counts, key=lambda delimiter: counts[delimiter])
    return best if counts[best] else ","


def _first_lines(head: bytes) -> list[str]:
    """Return the first non-blank lines of ``head``, without a byte-order mark.

    Lines end at LF only, as :func:`iter_lines` reads them, so that control characters in a
    damaged line do not split it into many lines.
    """
    lines = decode_text(head.removeprefix(UTF8_BOM)).split("\n")[:_FORMAT_VOTE_LINES]
    return [line.rstrip("\r") for line in lines if line.strip()]


def _first_line(head: bytes) -> str | None:
    lines = _first_lines(head)
    return lines[0] if lines else None


def _is_json_lines(lines: list[str]) -> bool:
    """Tell JSON lines from CSV: JSON when most lines start with a brace, on a tie the first.

    A vote, not the first line alone, so that one damaged first line does not make a file of
    JSON lines read as CSV.
    """
    braces = [line.lstrip().startswith("{") for line in lines]
    votes = 2 * sum(braces)
    return votes > len(braces) or (votes == len(braces) and braces[0])


class _RecordTooLarge(Exception):
    pass


class _LineFeed:
    """Feed lines to :func:`csv.reader`, keep the lines of the current record, replay lines.

    ``ended_inside`` is set when the input ended while :func:`csv.reader` still wanted lines
    for the current record, which happens only inside a quoted field that is never closed.
    """

    def __init__(self, lines: Iterator[tuple[int, bytes]], max_record_bytes: int) -> None:
        self._lines = lines
        self._max_record_bytes = max_record_bytes
        self._replay: deque[tuple[int, bytes]] = deque()
        self.record_lines: list[tuple[int, bytes]] = []
        self.size = 0
        self.ended_inside = False

    def __iter__(self) -> _LineFeed:
        return self

    def __next__(self) -> str:
        if self._replay:
            number, raw = self._replay.popleft()
        else:
            try:
                number, raw = next(self._lines)
            except StopIteration:
                self.ended_inside = bool(self.record_lines)
                raise
        self.record_lines.append((number, raw))
        self.size += len(raw) + 1
        if self.size > self._max_record_bytes:
            raise _RecordTooLarge(f"record larger than {self._max_record_bytes} bytes")
        return decode_text(raw) + "\n"

    def end_record(self) -> list[tuple[int, bytes]]:
        """Close the current record and return its lines."""
        lines = self.record_lines
        self.record_lines = []
        self.size = 0
        self.ended_inside = False
        return lines

    def replay(self, lines: list[tuple[int, bytes]]) -> None:
        """Feed ``lines`` again before the lines not read yet."""
        self._replay.extendleft(reversed(lines))


@dataclass
class _Row:
    """The four values of one check-in, as found in the export."""

    host: object
    component: object
    time: object
    status: object


class CheckinReader(Reader):
    """Check-in exports of MDM and EDR consoles, CSV or JSON lines.

    ``settings`` are the ``checkins`` options used by :meth:`sniff` and, when the read context
    carries none, by :meth:`read`.
    """

    name = "checkins"
    description = "management-plane check-ins, CSV or JSON lines"

    def __init__(self, settings: Mapping[str, Any] | None = None) -> None:
        self._settings, problems = load_settings(settings)
        for problem in problems:
            log.warning("%s", problem)

    def sniff(self, head: bytes) -> bool:
        line = _first_line(head)
        if line is None:
            return False
        stripped = line.lstrip()
        if stripped.startswith("{"):
            return self._sniff_json(stripped)
        if stripped.startswith("["):
            return False
        try:
            header = next(csv.reader([line], delimiter=_delimiter(line)))
        except (csv.Error, StopIteration):
            return False
        if len(header) < 2:
            return False
        roles, _ = resolve_columns([normalise_name(name) for name in header], self._columns())
        return "host" in roles and "time" in roles

    def _sniff_json(self, line: str) -> bool:
        try:
            first = msgspec.json.decode(line)
        except (msgspec.DecodeError, RecursionError):
            return False
        if not isinstance(first, dict):
            return False
        keys = {normalise_name(key): key for key in first if isinstance(key, str)}
        if any(key in _FOREIGN_JSON_KEYS for key in keys) or "@timestamp" in first:
            return False
        roles, _ = resolve_columns(list(keys), self._columns())
        if "host" not in roles or "time" not in roles:
            return False
        # ECS and similar documents carry a host object, but a check-in names the host as text.
        host = first[keys[roles["host"]]]
        when = first[keys[roles["time"]]]
        return isinstance(host, str) and isinstance(when, str | int | float)

    def _columns(self) -> Mapping[str, str]:
        return self._settings.columns

    def read(self, source: BinaryIO, context: ReadContext) -> Iterator[Event]:
        settings = self._settings
        options = context.options.get(self.name)
        if options is not None:
            settings, problems = load_settings(options)
            for problem in problems:
                context.warn(0, problem)
        # The caller may have positioned the source past a byte-order mark, so keep that
        # position.
        start = source.tell()
        lines = _first_lines(source.read(SNIFF_LINE_BYTES))
        source.seek(start)
        if not lines:
            return
        if _is_json_lines(lines):
            yield from self._read_json(source, context, settings)
        else:
            yield from self._read_csv(source, context, settings, _delimiter(lines[0]))

    def _read_csv(
        self, source: BinaryIO, context: ReadContext, settings: CheckinSettings, delimiter: str
    ) -> Iterator[Event]:
        feed = _LineFeed(iter_lines(source, context), MAX_RECORD_BYTES)
        reader = csv.reader(feed, delimiter=delimiter)
        roles: dict[str, int] | None = None
        width = 0
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                return
            except (csv.Error, _RecordTooLarge) as error:
                lines = feed.end_record()
                line = lines[0][0] if lines else 0
                if roles is None:
                    context.warn(line, f"invalid CSV header: {error}; the file is not read")
                    return
                context.record()
                context.skip(line, "invalid CSV row", str(error))
                feed.replay(lines[1:])
                continue
            ended_inside = feed.ended_inside
            lines = feed.end_record()
            if not any(field.strip() for field in fields):
                continue
            line = lines[0][0]
            if roles is None:
                roles = self._csv_roles(fields, line, context, settings)
                width = len(fields)
                if "host" not in roles or "time" not in roles:
                    return
                continue
            context.record()
            if len(lines) > 1 and (ended_inside or len(fields) != width):
                # A stray quote made the csv module join lines. Only the line with the quote
                # is lost: the lines after it are read again as rows of their own.
                context.skip(
                    line, "invalid CSV row", _describe_unbalanced_quote(ended_inside, fields, width)
                )
                feed.replay(lines[1:])
                continue
            row = _Row(*(_field(fields, roles.get(role)) for role in COLUMN_ROLES))
            event = _row_event(row, line, context, settings)
            if event is not None:
                context.used()
                yield event

    @staticmethod
    def _csv_roles(
        header: list[str], line: int, context: ReadContext, settings: CheckinSettings
    ) -> dict[str, int]:
        names = [normalise_name(name) for name in header]
        by_name, problems = resolve_columns(names, settings.columns)
        for problem in problems:
            context.warn(line, problem)
        for role in ("host", "time"):
            if role not in by_name:
                context.warn(line, f"no {role} column in the header; the file is not read")
        return {role: names.index(name) for role, name in by_name.items()}

    def _read_json(
        self, source: BinaryIO, context: ReadContext, settings: CheckinSettings
    ) -> Iterator[Event]:
        for number, raw in iter_lines(source, context):
            if not raw.strip():
                continue
            context.record()
            value = decode_json(_JSON_DECODER, raw, number, context)
            if value is None:
                continue
            keys = {normalise_name(key): key for key in value}
            roles, _ = resolve_columns(list(keys), settings.columns)
            row = _Row(
                *(value.get(keys[roles[role]]) if role in roles else None for role in COLUMN_ROLES)
            )
            event = _row_event(row, number, context, settings)
            if event is not None:
                context.used()
                yield event


def _describe_unbalanced_quote(ended_inside: bool, fields: list[str], width: int) -> str:
    if ended_inside:
        return "a quoted field opened on this line is never closed"
    return f"a quoted field spans lines and the row has {len(fields)} fields, not {width}"


def _field(fields: list[str], index: int | None) -> str | None:
    if index is None or index >= len(fields):
        return None
    return fields[index]


def _text(value: object) -> str | None:
    """Return a scalar as stripped text, ``None`` when empty. Raise TypeError on containers."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value).strip() or None
    raise TypeError("object" if isinstance(value, dict) else "array")


def _row_event(
    row: _Row, line: int, context: ReadContext, settings: CheckinSettings
) -> Event | None:
    """Build the event of one check-in, or count a skip and return ``None``."""
    try:
        host = _text(row.host)
        component = _text(row.component)
        status = _text(row.status)
    except TypeError as error:
        context.skip(line, "invalid record", f"expected text, got a JSON {error}")
        return None
    if host is None:
        context.skip(line, "missing host")
        return None
    if row.time is None or row.time == "":
        context.skip(line, "missing time")
        return None
    when, zone_assumed = parse_checkin_time(row.time, settings.zone)
    if when is None:
        context.skip(line, "invalid time", repr(row.time)[:64])
        return None
    if zone_assumed:
        context.note(f"check-in times without a zone read as {settings.zone_name}")
    state = status.lower() if status is not None else None
    healthy = None
    if state in settings.healthy:
        healthy = True
    elif state in settings.unhealthy:
        healthy = False
    return Event(
        time=when,
        kind="state",
        evidence=Evidence(CheckinReader.name, context.file, line),
        host=host,
        state=StateInfo(subject="checkin", name=component or "", state=state, healthy=healthy),
    )
