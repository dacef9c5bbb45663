"""Readers for text state snapshots of ``systemextensionsctl`` and ``launchctl``.

The formats are ``systemextensionsctl list``, ``launchctl list`` and ``launchctl print``.
Each row of a snapshot (one system extension, one launchd job) becomes a ``state`` event whose
:class:`~tamperwatch.model.StateInfo` names the snapshot it belongs to.

The tools print no time, so the time of a snapshot comes from, in this order:

1. a header line that a collector writes before each snapshot, ``# time: <RFC 3339>`` (or
   ``# collected: ...``). One file may hold a series of snapshots, each after its own header;
2. a UTC time in the file name: ``2026-11-20T10:00:00Z``, ``2026-11-20T10-00-00Z`` or
   ``20261120T100000Z``;
3. the modification time of the file.

Rows with none of these (standard input without a header) are skipped: no time is invented.
Shell prompts, error messages and other command output pasted into the same file are not
records. They are counted as notes, and errors that explain missing rows are also warned about.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import BinaryIO

from tamperwatch.model import Event, Evidence, StateInfo
from tamperwatch.readers.base import (
    SNIFF_BYTES,
    ReadContext,
    Reader,
    decode_text,
    in_time_range,
    iter_lines,
)
from tamperwatch.timeutil import format_rfc3339, parse_rfc3339

# Maximum length of a line parsed as a snapshot row or field. Real rows are far shorter, and the
# limit keeps the row patterns fast on hostile input.
MAX_ROW_CHARS = 4096

# Lines of the sniffed head that the format tests look at.
_SNIFF_MAX_LINES = 500
# Meaningful lines (not blank, not a time header) within which a format marker must appear.
_SNIFF_MARKER_LINES = 10

# --- snapshot time ----------------------------------------------------------------------------

# "# time: 2026-11-20T10:00:00Z", written by our collectors before each snapshot.
_TIME_HEADER = re.compile(r"#\s*(?:time|collected)\s*:\s*(?P<value>.*?)\s*", re.IGNORECASE)
# RFC 3339 date-time. The field ranges are checked separately.
_RFC3339 = re.compile(
    r"(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})[Tt ]"
    r"(?P<hour>\d{2}):(?P<minute>\d{2}):(?P<second>\d{2})(?:\.\d{1,9})?"
    r"(?:[Zz]|[+-]\d{2}:\d{2})"
)
# UTC times in file names: 2026-11-20T10:00:00Z, 2026-11-20T10-00-00Z and 20261120T100000Z.
_NAME_TIME_DASHED = re.compile(
    r"(?<!\d)(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})T"
    r"(?P<hour>\d{2})(?P<sep>[:-])(?P<minute>\d{2})(?P=sep)(?P<second>\d{2})Z"
)
_NAME_TIME_BASIC = re.compile(
    r"(?<!\d)(?P<year>\d{4})(?P<month>\d{2})(?P<day>\d{2})T"
    r"(?P<hour>\d{2})(?P<minute>\d{2})(?P<second>\d{2})Z"
)

_NO_TIME_HELP = (
    "the snapshot has no time: write a header line before the output, for example "
    '{ echo "# time: $(date -u +%Y-%m-%dT%H:%M:%SZ)"; systemextensionsctl list; } >> sysext.txt, '
    "or put a UTC time such as 2026-11-20T10-00-00Z in the file name"
)


def _valid_fields(match: re.Match[str]) -> bool:
    """Check the ranges of the date and time fields of a matched timestamp."""
    year, month, day = int(match["year"]), int(match["month"]), int(match["day"])
    if not 1 <= month <= 12:
        return False
    if not 1 <= day <= calendar.monthrange(year, month)[1]:
        return False
    # Second 60 is a leap second, which RFC 3339 allows.
    return int(match["hour"]) < 24 and int(match["minute"]) < 60 and int(match["second"]) <= 60


def parse_header_time(text: str) -> float | None:
    """Parse the value of a ``# time:`` header: an RFC 3339 time with ``Z`` or a numeric offset."""
    match = _RFC3339.fullmatch(text)
    if match is None or not _valid_fields(match):
        return None
    return _keep_in_range(parse_rfc3339(text))


def _keep_in_range(time: float | None) -> float | None:
    return time if time is not None and in_time_range(time) else None


def time_from_file_name(path: str) -> float | None:
    """Return the UTC time written in a file name, or ``None`` when the name carries none."""
    name = PurePath(path).name
    match = _NAME_TIME_DASHED.search(name) or _NAME_TIME_BASIC.search(name)
    if match is None or not _valid_fields(match):
        return None
    return _keep_in_range(
        parse_rfc3339(
            f"{match['year']}-{match['month']}-{match['day']}T"
            f"{match['hour']}:{match['minute']}:{match['second']}Z"
        )
    )


class _SnapshotClock:
    """The time and id of the snapshot that the current line of a file belongs to."""

    def __init__(self, context: ReadContext) -> None:
        self._context = context
        # Set by the latest "# time:" header. ``_header_seen`` stays True after an invalid one,
        # so the rows it dates are skipped instead of falling back to another time.
        self._header_seen = False
        self._header_time: float | None = None
        self._header_text = ""
        self._fallback_resolved = False
        self._fallback_time: float | None = None
        self._fallback_note: str | None = None
        self._no_time_warned = False

    def header(self, line: int, value: str) -> None:
        """Start a new snapshot at a ``# time:`` header line."""
        self._header_seen = True
        self._header_text = value
        self._header_time = parse_header_time(value)
        if self._header_time is None:
            self._context.warn(
                line,
                f"invalid snapshot time {value[:64]!r}: expected RFC 3339 such as "
                "2026-11-20T10:00:00Z. The rows up to the next header are skipped",
            )

    def time_of_row(self, line: int) -> float | None:
        """Return the time of a row, or count the row as skipped and return ``None``."""
        if self._header_seen:
            if self._header_time is None:
                self._context.skip(line, "invalid snapshot time", self._header_text[:64])
            return self._header_time
        time = self._fallback()
        if time is None:
            if not self._no_time_warned:
                self._no_time_warned = True
                self._context.warn(0, _NO_TIME_HELP)
            self._context.skip(line, "snapshot without a time")
            return None
        if self._fallback_note is not None:
            self._context.note(self._fallback_note)
            self._fallback_note = None
        return time

    def snapshot_id(self, time: float) -> str:
        return f"{self._context.file}@{format_rfc3339(time)}"

    def _fallback(self) -> float | None:
        if not self._fallback_resolved:
            self._fallback_resolved = True
            if self._context.file != "-":
                self._fallback_time = time_from_file_name(self._context.file)
            if self._fallback_time is not None:
                self._fallback_note = "time taken from the file name"
            elif self._context.file_mtime is not None:
                self._fallback_time = self._context.file_mtime
                self._fallback_note = "time taken from the file modification time"
        return self._fallback_time


# --- lines shared by the formats ------------------------------------------------------------

# A pasted shell prompt with its command: "$ launchctl list | grep x", "sh-3.2# launchctl list",
# "~ % systemextensionsctl list", "user@mbp ~ % ...". Up to three words may precede the prompt
# character.
_PROMPT = re.compile(r"(?:[\w.@:~/()\[\]-]+ ){0,3}[\w.@:~/()\[\]-]*[$%#>] +\S.*")


def _is_prompt(text: str) -> bool:
    return len(text) <= MAX_ROW_CHARS and _PROMPT.fullmatch(text.strip()) is not None


def _head_lines(head: bytes) -> list[str]:
    """Split the sniffed head into lines, without a last line that the head cut off."""
    lines = decode_text(head).splitlines()
    if len(head) >= SNIFF_BYTES and not head.endswith(b"\n") and len(lines) > 1:
        lines.pop()
    return lines[:_SNIFF_MAX_LINES]


def _meaningful(lines: list[str]) -> list[str]:
    """Return the stripped lines that are neither blank nor a ``# time:`` header."""
    meaningful: list[str] = []
    for line in lines:
        stripped = line.strip()
        if stripped and _TIME_HEADER.fullmatch(stripped) is None:
            meaningful.append(stripped)
    return meaningful


def _state_event(
    reader: str, context: ReadContext, line: int, time: float, info: StateInfo
) -> Event:
    return Event(
        time=time,
        kind="state",
        evidence=Evidence(reader, context.file, line),
        host=context.host,
        state=info,
    )


def _int_or_none(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


# --- systemextensionsctl list -----------------------------------------------------------------

_SYSEXT_COUNT = re.compile(r"(?P<count>\d+) extension\(s\)")
# "--- com.apple.system_extension.endpoint_security", newer macOS with a
# "(Go to 'System Settings > ...' to modify these system extension(s))" suffix.
_SYSEXT_CATEGORY = re.compile(
    r"--- com\.apple\.system_extension\.(?P<category>[\w.-]+)(?:\s+\(.*\))?"
)
_SYSEXT_COLUMNS = re.compile(
    r"enabled\s+active\s+teamID\s+bundleID\s+\(version\)\s+name\s+\[state\]", re.IGNORECASE
)
_SYSEXT_BUNDLE = re.compile(r"(?P<bundle>[^\s()]+)(?:\s+\((?P<version>[^()]*)\))?")
# A row whose TABs a copy turned into runs of spaces. A row that starts with whitespace has an
# empty "enabled" column, so its single star belongs to "active".
_SYSEXT_SPACED_ROW = re.compile(
    r"(?P<enabled>\*?)[ \t]+(?P<active>\*?)[ \t]+(?P<team>\S+)[ \t]+"
    r"(?P<bundle>[^\s()]+)[ \t]+\((?P<version>[^()]*)\)[ \t]+"
    r"(?P<name>\S(?:.*\S)?)[ \t]+\[(?P<state>[^\[\]]+)\][ \t]*"
)
_SIP_REFUSAL = "At this time, this tool cannot be used if System Integrity Protection is enabled."
# "systemextensionsctl: list command failed: ... Connection refused" (from an App Sandbox).
_SYSEXT_FAILURE = re.compile(r"systemextensionsctl: .*failed.*")


@dataclass
class _SysextRow:
    enabled: bool
    active: bool
    team_id: str | None
    bundle_id: str
    version: str | None
    name: str
    state: str


def _sysext_state(bracketed: str) -> str | None:
    """Turn ``[activated enabled]`` into the db.plist name ``activated_enabled``."""
    text = bracketed.strip()
    if not (text.startswith("[") and text.endswith("]")):
        return None
    words = text[1:-1].split()
    return "_".join(words) or None


def _parse_sysext_row(text: str) -> _SysextRow | None:
    """Parse a row separated by TABs, or failing that by runs of spaces."""
    fields = text.split("\t")
    if len(fields) == 6:
        enabled, active, team, bundle_text, name, bracketed = (part.strip() for part in fields)
        bundle = _SYSEXT_BUNDLE.fullmatch(bundle_text)
        state = _sysext_state(bracketed)
        if enabled in ("", "*") and active in ("", "*") and bundle is not None and state:
            return _SysextRow(
                enabled=enabled == "*",
                active=active == "*",
                team_id=team or None,
                bundle_id=bundle["bundle"],
                version=bundle["version"] or None,
                name=name,
                state=state,
            )
    match = _SYSEXT_SPACED_ROW.fullmatch(text.rstrip())
    if match is None:
        return None
    return _SysextRow(
        enabled=match["enabled"] == "*",
        active=match["active"] == "*",
        team_id=match["team"],
        bundle_id=match["bundle"],
        version=match["version"].strip() or None,
        name=match["name"],
        state="_".join(match["state"].split()),
    )


@dataclass
class _Listing:
    """One ``systemextensionsctl list`` output: its announced count and the rows seen since."""

    count: int | None = None
    count_line: int = 0
    rows: int = 0
    columns_seen: bool = False
    category: str | None = None

    def check(self, context: ReadContext) -> None:
        if self.count is not None and self.count != self.rows:
            context.warn(
                self.count_line,
                f"the listing announces {self.count} extension(s) but {self.rows} rows were "
                "read; the output may be cut off or edited",
            )


class SysextListReader(Reader):
    """``systemextensionsctl list`` output: one state event per system extension row."""

    name = "sysextctl"
    description = "systemextensionsctl list snapshot"

    def sniff(self, head: bytes) -> bool:
        for line in _meaningful(_head_lines(head))[:_SNIFF_MARKER_LINES]:
            if (
                _SYSEXT_COUNT.fullmatch(line)
                or _SYSEXT_CATEGORY.fullmatch(line)
                or _SYSEXT_COLUMNS.fullmatch(line)
                or _SYSEXT_FAILURE.fullmatch(line)
            ):
                return True
        return False

    def read(self, source: BinaryIO, context: ReadContext) -> Iterator[Event]:
        clock = _SnapshotClock(context)
        listing = _Listing()
        for number, raw in iter_lines(source, context):
            text = decode_text(raw)
            # Checked before strip() copies the line; a line of only white space is blank.
            if len(text) > MAX_ROW_CHARS and not text.isspace():
                context.record()
                context.skip(number, "line too long", f"longer than {MAX_ROW_CHARS} characters")
                continue
            stripped = text.strip()
            if not stripped:
                continue
            header = _TIME_HEADER.fullmatch(stripped)
            if header is not None:
                listing.check(context)
                listing = _Listing()
                clock.header(number, header["value"])
                continue
            count = _SYSEXT_COUNT.fullmatch(stripped)
            if count is not None:
                # NOTE: a listing with no rows ("0 extension(s)") yields no event, so a consumer
                # cannot tell an emptied snapshot from a missing one.
                listing.check(context)
                listing = _Listing(count=int(count["count"]), count_line=number)
                continue
            category = _SYSEXT_CATEGORY.fullmatch(stripped)
            if category is not None:
                listing.category = category["category"]
                continue
            if _SYSEXT_COLUMNS.fullmatch(stripped):
                listing.columns_seen = True
                continue
            row = _parse_sysext_row(text)
            if row is not None:
                listing.rows += 1
                event = self._row_event(row, listing, clock, number, context)
                if event is not None:
                    yield event
                continue
            self._other_line(stripped, listing, number, context)
        listing.check(context)

    def _row_event(
        self,
        row: _SysextRow,
        listing: _Listing,
        clock: _SnapshotClock,
        number: int,
        context: ReadContext,
    ) -> Event | None:
        context.record()
        time = clock.time_of_row(number)
        if time is None:
            return None
        detail = f"name: {row.name}"
        if listing.category is not None:
            detail = f"category: {listing.category}; {detail}"
        info = StateInfo(
            subject="system_extension",
            name=row.bundle_id,
            state=row.state,
            team_id=row.team_id,
            version=row.version,
            enabled=row.enabled,
            active=row.active,
            snapshot=clock.snapshot_id(time),
            detail=detail,
        )
        context.used()
        return _state_event(self.name, context, number, time, info)

    @staticmethod
    def _other_line(stripped: str, listing: _Listing, number: int, context: ReadContext) -> None:
        """Count a line that is not part of a listing, or a broken row inside one.

        After the column header, a line that ends like a row, contains a TAB, or comes before
        the announced number of rows is a broken row.
        """
        if listing.columns_seen and stripped.endswith("]"):
            SysextListReader._skip_row(stripped, listing, number, context)
        elif stripped == _SIP_REFUSAL:
            context.note("System Integrity Protection refusal")
        elif _SYSEXT_FAILURE.fullmatch(stripped):
            context.note("systemextensionsctl error message")
            context.warn(number, f"systemextensionsctl failed, so no listing follows: {stripped}")
        elif _is_prompt(stripped):
            context.note("shell prompt line")
        elif listing.columns_seen and (
            "\t" in stripped or (listing.count is not None and listing.rows < listing.count)
        ):
            SysextListReader._skip_row(stripped, listing, number, context)
        else:
            _other_output(stripped, number, context)

    @staticmethod
    def _skip_row(stripped: str, listing: _Listing, number: int, context: ReadContext) -> None:
        listing.rows += 1
        context.record()
        context.skip(number, "invalid row", stripped[:120])


# --- launchctl list ---------------------------------------------------------------------------

_LIST_HEADER = re.compile(r"PID\s+Status\s+Label")
# "<pid or -> <status or -> <label>": "282	-11	com.apple.WindowServer".
_LIST_ROW = re.compile(r"(?P<pid>-|\d+)[ \t]+(?P<status>-|-?\d+)[ \t]+(?P<label>\S(?:.*\S)?)")
# The start of a row, "<pid or -> TAB", which a broken row keeps.
_LIST_ROW_START = re.compile(r"(?:-|\d+)\t")
# A reverse-DNS launchd label such as com.apple.syslogd. Only the format test uses it.
_LABEL_LIKE = re.compile(r"[\w-]+(?:\.[\w-]+)+")


class LaunchctlListReader(Reader):
    """``launchctl list`` output, with or without its header: one state event per job.

    NOTE: the output has no count or end marker, so a listing that a copy cut short reads as a
    complete snapshot with fewer jobs.
    """

    name = "launchctl"
    description = "launchctl list snapshot"

    def sniff(self, head: bytes) -> bool:
        lines = _meaningful(_head_lines(head))
        for line in lines[:_SNIFF_MARKER_LINES]:
            if _LIST_HEADER.fullmatch(line):
                return True
        # Output filtered through grep has no header: every line but the prompts must be a row
        # whose label is reverse-DNS.
        rows = 0
        for line in lines:
            row = _LIST_ROW.fullmatch(line)
            if row is not None and _LABEL_LIKE.fullmatch(row["label"]):
                rows += 1
            elif not _is_prompt(line):
                return False
        return rows > 0

    def read(self, source: BinaryIO, context: ReadContext) -> Iterator[Event]:
        clock = _SnapshotClock(context)
        for number, raw in iter_lines(source, context):
            text = decode_text(raw)
            # Checked before strip() copies the line; a line of only white space is blank.
            if len(text) > MAX_ROW_CHARS and not text.isspace():
                context.record()
                context.skip(number, "line too long", f"longer than {MAX_ROW_CHARS} characters")
                continue
            stripped = text.strip()
            if not stripped:
                continue
            header = _TIME_HEADER.fullmatch(stripped)
            if header is not None:
                clock.header(number, header["value"])
                continue
            if _LIST_HEADER.fullmatch(stripped):
                continue
            row = _LIST_ROW.fullmatch(stripped)
            if row is not None:
                event = self._row_event(row, clock, number, context)
                if event is not None:
                    yield event
            elif text.count("\t") == 2 or _LIST_ROW_START.match(stripped):
                context.record()
                context.skip(number, "invalid row", stripped[:120])
            elif _is_prompt(stripped):
                context.note("shell prompt line")
            else:
                _other_output(stripped, number, context)

    def _row_event(
        self, row: re.Match[str], clock: _SnapshotClock, number: int, context: ReadContext
    ) -> Event | None:
        context.record()
        pid = None if row["pid"] == "-" else _int_or_none(row["pid"])
        # A negative status is the number of the signal that killed the job.
        status = None if row["status"] == "-" else _int_or_none(row["status"])
        time = clock.time_of_row(number)
        if time is None:
            return None
        info = StateInfo(
            subject="launchd_job",
            name=row["label"],
            state="running" if pid is not None else "not running",
            pid=pid,
            last_exit_status=status,
            snapshot=clock.snapshot_id(time),
        )
        context.used()
        return _state_event(self.name, context, number, time, info)


# --- launchctl print --------------------------------------------------------------------------

# "system/com.example.agent = {" (macOS 11+) or "com.example.agent = {" (older macOS).
_PRINT_START = re.compile(r"(?P<target>[^\s=]+) = \{")
# An indented "key = value" line of a block.
_PRINT_FIELD = re.compile(r"(?P<key>[^=\s](?:[^=]*[^=\s])?) = (?P<value>.*)")
# A line that opens a nested block: "arguments = {", "ai.example.SysExt => {".
_PRINT_NESTED = re.compile(r".*\S (?:=|=>) \{")
_PRINT_NOT_FOUND = re.compile(
    r'Could not find service "(?P<label>[^"]+)" in domain for (?P<domain>\S(?:.*\S)?)'
)
_PRINT_BAD_REQUEST = "Bad request."
# Domain prefixes of a service target: system/, gui/501/, user/501/, login/..., pid/123/.
_DOMAIN_PREFIX = re.compile(r"(?:system|(?:gui|user|login|pid|session)/\d+)/")
# A target that names a whole domain ("launchctl print system"), not one service.
_DOMAIN_ONLY = re.compile(r"system|(?:gui|user|login|pid|session)/\d+")
# "Terminated: 15", "Killed: 9": the signal that ended the last run.
_SIGNAL_TEXT = re.compile(r".*:\s*(?P<signal>\d+)")
# "1", "-1", "78: EX_CONFIG".
_EXIT_CODE = re.compile(r"(?P<code>-?\d+)(?::.*)?")

# Top-level keys kept from a service block; the first occurrence wins because nested blocks
# (coalitions, event triggers) repeat keys such as "state".
_PRINT_KEYS = frozenset(
    {
        "state",
        "pid",
        "runs",
        "last exit code",
        "last exit reason",
        "last terminating signal",
        "path",
        "program",
        "type",
        "domain",
        "successive crashes",
    }
)


@dataclass
class _ServiceBlock:
    """A ``launchctl print`` service block being read."""

    target: str
    start_line: int
    time: float | None
    snapshot: str | None
    # Counted as skipped already (no snapshot time), so the block yields nothing.
    skipped: bool
    fields: dict[str, tuple[int, str]] = field(default_factory=dict)
    depth: int = 1
    last_line: int = 0


def _is_service_target(target: str) -> bool:
    """Tell a service target (``system/<label>``, ``<label>``) from a nested block key.

    Nested keys are words (``arguments``) or quoted endpoint names, so this matters only when a
    copy lost the indentation that normally distinguishes them.
    """
    return not target.startswith('"') and ("/" in target or "." in target)


class LaunchctlPrintReader(Reader):
    """``launchctl print <domain>/<label>`` output: one state event per service block.

    Also reads the error ``Could not find service "<label>" in domain for system`` as a state
    event with state ``not loaded``.
    """

    name = "launchctl"
    description = "launchctl print snapshot"

    def sniff(self, head: bytes) -> bool:
        lines = [line for line in _head_lines(head) if line.strip()]
        meaningful = 0
        for index, line in enumerate(lines):
            stripped = line.strip()
            if _TIME_HEADER.fullmatch(stripped):
                continue
            meaningful += 1
            if meaningful > _SNIFF_MARKER_LINES:
                return False
            if _PRINT_NOT_FOUND.fullmatch(stripped):
                return True
            if _PRINT_START.fullmatch(line.rstrip()) and index + 1 < len(lines):
                following = lines[index + 1]
                if following[:1].isspace() and _PRINT_FIELD.fullmatch(following.strip()):
                    return True
        return False

    def read(self, source: BinaryIO, context: ReadContext) -> Iterator[Event]:
        clock = _SnapshotClock(context)
        block: _ServiceBlock | None = None
        # Depth of an open "launchctl print <domain>" block, whose contents are not services.
        domain_depth = 0
        for number, raw in iter_lines(source, context):
            text = decode_text(raw)
            if len(text) > MAX_ROW_CHARS and not text.isspace():
                context.note("line too long")
                context.warn(number, f"line longer than {MAX_ROW_CHARS} characters ignored")
                continue
            stripped = text.strip()
            if not stripped:
                continue
            if domain_depth > 0:
                domain_depth = self._track_domain(stripped, domain_depth)
                continue
            header = _TIME_HEADER.fullmatch(stripped) if not text[:1].isspace() else None
            start = _PRINT_START.fullmatch(text.rstrip())
            if block is not None and (
                header is not None or (start is not None and _is_service_target(start["target"]))
            ):
                # An unindented header or service start inside a block: the block was cut off.
                event = self._finish(block, context, truncated=True)
                block = None
                if event is not None:
                    yield event
            if block is not None:
                if self._add_line(block, text, stripped, number):
                    event = self._finish(block, context, truncated=False)
                    block = None
                    if event is not None:
                        yield event
                continue
            if header is not None:
                clock.header(number, header["value"])
            elif start is not None and _DOMAIN_ONLY.fullmatch(start["target"]):
                context.note("domain description, not a service")
                domain_depth = 1
            elif start is not None:
                block = self._open(start["target"], number, clock, context)
            else:
                event = self._other_line(stripped, number, clock, context)
                if event is not None:
                    yield event
        if block is not None:
            event = self._finish(block, context, truncated=True)
            if event is not None:
                yield event

    @staticmethod
    def _track_domain(stripped: str, depth: int) -> int:
        if stripped == "}":
            return depth - 1
        if _PRINT_NESTED.fullmatch(stripped):
            return depth + 1
        return depth

    @staticmethod
    def _open(
        target: str, number: int, clock: _SnapshotClock, context: ReadContext
    ) -> _ServiceBlock:
        context.record()
        time = clock.time_of_row(number)
        return _ServiceBlock(
            target=target,
            start_line=number,
            time=time,
            snapshot=None if time is None else clock.snapshot_id(time),
            skipped=time is None,
            last_line=number,
        )

    @staticmethod
    def _add_line(block: _ServiceBlock, text: str, stripped: str, number: int) -> bool:
        """Take one line into the block; return ``True`` when it closes the block."""
        block.last_line = number
        if stripped == "}":
            block.depth -= 1
            return block.depth == 0
        if _PRINT_NESTED.fullmatch(stripped):
            block.depth += 1
            return False
        if block.depth == 1:
            match = _PRINT_FIELD.fullmatch(stripped)
            if match is not None and match["key"] in _PRINT_KEYS:
                block.fields.setdefault(match["key"], (number, match["value"].strip()))
        return False

    def _finish(self, block: _ServiceBlock, context: ReadContext, truncated: bool) -> Event | None:
        """Build the event of a service block, or count a skip and return ``None``."""
        label = _DOMAIN_PREFIX.sub("", block.target, count=1)
        if truncated:
            context.warn(
                block.last_line,
                f"truncated output: the block of {label} opened on line {block.start_line} "
                "has no closing brace",
            )
        if block.skipped or block.time is None:
            return None
        if truncated and "state" not in block.fields:
            context.skip(block.start_line, "truncated block", f"{label} has no state line")
            return None
        values = {key: value for key, (_, value) in block.fields.items()}
        detail: list[str] = []
        for key in ("type", "domain", "successive crashes"):
            if key in values:
                detail.append(f"{key}: {values[key]}")

        path = values.get("path")
        if path is not None and path.startswith("("):
            # Jobs without a plist, such as "(submitted by smd[532])" for system extensions.
            detail.append(f"path: {path}")
            path = None

        info = StateInfo(
            subject="launchd_job",
            name=label,
            state=values.get("state"),
            pid=self._int_field(block, "pid", context),
            path=path,
            last_exit_status=self._exit_status(block, values, detail, context),
            last_exit_reason=values.get("last exit reason"),
            runs=self._int_field(block, "runs", context),
            snapshot=block.snapshot,
            detail="; ".join(detail) or None,
        )
        context.used()
        event = _state_event(self.name, context, block.start_line, block.time, info)
        event.path = values.get("program")
        return event

    @staticmethod
    def _int_field(block: _ServiceBlock, key: str, context: ReadContext) -> int | None:
        if key not in block.fields:
            return None
        line, value = block.fields[key]
        number = _int_or_none(value)
        if number is None:
            context.warn(line, f"invalid {key} {value[:64]!r} ignored: expected an integer")
        return number

    @staticmethod
    def _exit_status(
        block: _ServiceBlock, values: dict[str, str], detail: list[str], context: ReadContext
    ) -> int | None:
        """Return the last exit code, or the negated signal number when a signal ended the job.

        launchctl prints ``last terminating signal = Terminated: 15`` in place of the exit code
        line when a signal ended the last run.
        """
        signal_text = values.get("last terminating signal")
        if signal_text is not None:
            detail.append(f"last terminating signal: {signal_text}")
            signal = _SIGNAL_TEXT.fullmatch(signal_text)
            if signal is not None:
                return -int(signal["signal"])
        code_text = values.get("last exit code")
        if code_text is None or code_text == "(never exited)":
            return None
        code = _EXIT_CODE.fullmatch(code_text)
        if code is None:
            line, _ = block.fields["last exit code"]
            context.warn(line, f"invalid last exit code {code_text[:64]!r} ignored")
            return None
        return int(code["code"])

    def _other_line(
        self, stripped: str, number: int, clock: _SnapshotClock, context: ReadContext
    ) -> Event | None:
        """Read a line outside any block: the not-found error, other errors, prompts."""
        missing = _PRINT_NOT_FOUND.fullmatch(stripped)
        if missing is not None:
            context.record()
            time = clock.time_of_row(number)
            if time is None:
                return None
            info = StateInfo(
                subject="launchd_job",
                name=missing["label"],
                state="not loaded",
                snapshot=clock.snapshot_id(time),
                detail=f"domain: {missing['domain']}",
            )
            context.used()
            return _state_event(self.name, context, number, time, info)
        if stripped == _PRINT_BAD_REQUEST:
            context.note("launchctl error message")
            context.warn(
                number, "launchctl rejected the print request (Bad request.); run it as root"
            )
        elif _is_prompt(stripped):
            context.note("shell prompt line")
        else:
            _other_output(stripped, number, context)
        return None


__all__ = [
    "MAX_ROW_CHARS",
    "LaunchctlListReader",
    "LaunchctlPrintReader",
    "SysextListReader",
    "parse_header_time",
    "time_from_file_name",
]


def _other_output(stripped: str, number: int, context: ReadContext) -> None:
    """Count a line that is no part of the listing.

    A JSON object is a record of another telemetry format written into the same file (an
    eslogger capture appended to a snapshot, say). It is counted as a skipped record with a
    warning, so that it is not mistaken for stray terminal output.
    """
    if stripped.startswith("{") and stripped.endswith("}"):
        context.record()
        context.skip(number, "JSON record in a snapshot", "write each format to a file of its own")
    else:
        context.note("other command output")
