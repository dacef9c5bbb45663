"""Readers for macOS unified log exports made with ``log show`` and ``log stream``.

:class:`UnifiedLogNdjsonReader` reads ``--style ndjson`` (one JSON object per line, closed by
``{"count":N,"finished":1}`` after ``log show``) and ``--style json`` (one pretty-printed array of
the same objects). :class:`UnifiedLogTextReader` reads the default and compact text styles and
recognises rows copied from Console.app, which carry no date and are counted as skipped.

Neither style names the host. The process name is not a field of the JSON styles, so it is taken
from the last component of ``processImagePath``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

import msgspec

from tamperwatch.model import Event, Evidence, Process
from tamperwatch.readers.base import (
    UTF8_BOM,
    ReadContext,
    Reader,
    decode_json,
    decode_text,
    ends_cut_off,
    in_time_range,
    iter_lines,
)
from tamperwatch.timeutil import parse_local_with_offset

# Maximum size, in bytes, of a ``--style json`` export. The array is one JSON document and is
# held in memory whole, so the rest of a larger file is not read and a warning reports it.
MAX_JSON_ARRAY_BYTES = 64 * 1024 * 1024

# Note counted for the closing {"count":N,"finished":1} line of log show, which is not an event.
END_MARKER_NOTE = "log show closing count line (checked, not an event)"

# Maximum message size of one text-style entry, in bytes of the original lines. Continuation
# lines past it are dropped with a warning.
MAX_TEXT_MESSAGE_BYTES = 64 * 1024

# Keys that only unified-log JSON objects carry; one of them in the first object is enough to
# tell this format from other JSON lines.
_UNIFIED_LOG_KEYS = (
    b'"eventMessage"',
    b'"processImagePath"',
    b'"formatString"',
    b'"machTimestamp"',
    b'"senderImagePath"',
)

# ``log show`` and ``log stream`` print this line first when a predicate is given.
_FILTERING_PREFIX = "Filtering the log data using"
_FILTERING_PREFIX_BYTES = _FILTERING_PREFIX.encode()


class _LogRecord(msgspec.Struct):
    """The fields of one JSON unified-log object that become an event.

    ``count`` and ``finished`` are set only in the end-of-output marker of ``log show``.
    ``traceID`` is not selected, so a value above 2**53 is never converted.
    """

    timestamp: str | None = None
    process_id: int | None = msgspec.field(default=None, name="processID")
    process_image_path: str | None = msgspec.field(default=None, name="processImagePath")
    user_id: int | None = msgspec.field(default=None, name="userID")
    event_message: str | None = msgspec.field(default=None, name="eventMessage")
    subsystem: str | None = None
    category: str | None = None
    count: int | None = None
    finished: int | None = None


_RECORD_DECODER = msgspec.json.Decoder(_LogRecord)
_RAW_ARRAY_DECODER = msgspec.json.Decoder(list[msgspec.Raw])

# Strings and braces of a JSON text, used to find the complete objects of a cut-off array.
_JSON_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[{}]', re.DOTALL)


def _first_meaningful_line(head: bytes) -> str | None:
    """Return the first non-blank line of ``head`` that is not the ``Filtering ...`` banner."""
    for line in decode_text(head).splitlines()[:20]:
        stripped = line.strip()
        if stripped and not stripped.startswith(_FILTERING_PREFIX):
            return stripped.lstrip("\ufeff")
    return None


def _is_end_marker(record: _LogRecord) -> bool:
    return record.finished is not None and record.timestamp is None and record.event_message is None


def _basename(path: str | None) -> str | None:
    if not path:
        return None
    return path.rsplit("/", 1)[-1] or None


def _json_event(record: _LogRecord, line: int, context: ReadContext) -> Event | None:
    """Build the event of one JSON object, or count a skip and return ``None``."""
    if record.timestamp is None:
        context.skip(line, "missing timestamp")
        return None
    time = parse_local_with_offset(record.timestamp)
    if time is None or not in_time_range(time):
        context.skip(line, "invalid timestamp", record.timestamp[:64])
        return None
    process = None
    if record.process_id is not None:
        process = Process(
            pid=record.process_id,
            path=record.process_image_path or None,
            name=_basename(record.process_image_path),
            euid=record.user_id,
        )
    return Event(
        time=time,
        kind="log",
        evidence=Evidence(UnifiedLogNdjsonReader.name, context.file, line),
        host=context.host,
        process=process,
        message=record.event_message,
        subsystem=record.subsystem or None,
        category=record.category or None,
    )


def _array_spans(data: bytes) -> list[tuple[int, int | None]]:
    """Return ``(start, end)`` byte offsets of the objects in a JSON array of objects.

    The fast path lets msgspec parse the array and finds each object again by its bytes. When
    the array does not parse (a cut-off file), a scan of strings and braces keeps the complete
    objects, and the incomplete last one is returned with ``end`` ``None``.
    """
    try:
        items = _RAW_ARRAY_DECODER.decode(data)
    except (msgspec.DecodeError, RecursionError):
        return _scan_object_spans(data)
    spans: list[tuple[int, int | None]] = []
    position = 0
    for item in items:
        chunk = bytes(item)
        start = data.find(chunk, position)
        if start < 0:
            return _scan_object_spans(data)
        position = start + len(chunk)
        spans.append((start, position))
    return spans


def _scan_object_spans(data: bytes) -> list[tuple[int, int | None]]:
    spans: list[tuple[int, int | None]] = []
    depth = 0
    start = 0
    for match in _JSON_TOKEN.finditer(data):
        token = match.group()
        if token == b"{":
            if depth == 0:
                start = match.start()
            depth += 1
        elif token == b"}" and depth > 0:
            depth -= 1
            if depth == 0:
                spans.append((start, match.end()))
    if depth > 0:
        spans.append((start, None))
    return spans


class UnifiedLogNdjsonReader(Reader):
    """``log show|stream --style ndjson`` lines, and ``--style json`` arrays."""

    name = "unifiedlog"
    description = "unified log, log show/stream --style ndjson or --style json"

    def sniff(self, head: bytes) -> bool:
        first = _first_meaningful_line(head)
        if first is None:
            return False
        if first.startswith("{"):
            if first.startswith('{"count":') and '"finished"' in first:
                return True
            return any(key in head for key in _UNIFIED_LOG_KEYS)
        if first.startswith("["):
            rest = head.removeprefix(UTF8_BOM).lstrip()[1:].lstrip()
            return rest.startswith(b"{") and any(key in head for key in _UNIFIED_LOG_KEYS)
        return False

    def read(self, source: BinaryIO, context: ReadContext) -> Iterator[Event]:
        # Event lines since the start or the last end-of-output marker, so that concatenated
        # ``log show`` outputs are each checked against their own marker.
        segment_lines = 0
        seen_content = False
        for number, raw in iter_lines(source, context):
            stripped = raw.strip()
            if not stripped:
                continue
            if segment_lines == 0 and stripped.startswith(_FILTERING_PREFIX_BYTES):
                continue
            if not seen_content and stripped.startswith(b"["):
                yield from self._read_array(raw, number, source, context)
                return
            seen_content = True
            record = decode_json(_RECORD_DECODER, raw, number, context)
            if record is None:
                context.record()
                segment_lines += 1
                continue
            if _is_end_marker(record):
                self._check_end_marker(record, segment_lines, number, context)
                segment_lines = 0
                continue
            segment_lines += 1
            context.record()
            event = _json_event(record, number, context)
            if event is not None:
                context.used()
                yield event

    @staticmethod
    def _check_end_marker(
        record: _LogRecord, event_lines: int, line: int, context: ReadContext
    ) -> None:
        context.note(END_MARKER_NOTE)
        if record.count is not None and record.count != event_lines:
            context.warn(
                line,
                f"end-of-output marker counts {record.count} events, "
                f"but {event_lines} event lines were read",
            )

    def _read_array(
        self, first: bytes, first_line: int, source: BinaryIO, context: ReadContext
    ) -> Iterator[Event]:
        """Read a ``--style json`` array that starts on line ``first_line``."""
        rest = source.read(max(0, MAX_JSON_ARRAY_BYTES - len(first)) + 1)
        data = first + b"\n" + rest
        if len(data) > MAX_JSON_ARRAY_BYTES:
            data = data[:MAX_JSON_ARRAY_BYTES]
            context.warn(
                first_line,
                f"JSON array larger than {MAX_JSON_ARRAY_BYTES} bytes; the rest is not read",
            )
        line = first_line
        counted_to = 0
        for start, end in _array_spans(data):
            line += data.count(b"\n", counted_to, start)
            counted_to = start
            if end is None:
                context.record()
                context.skip(line, "invalid JSON", "object cut off at the end of the file")
                continue
            record = decode_json(_RECORD_DECODER, data[start:end], line, context)
            if record is None:
                context.record()
                continue
            if _is_end_marker(record):
                context.note(END_MARKER_NOTE)
                continue
            context.record()
            event = _json_event(record, line, context)
            if event is not None:
                context.used()
                yield event


# --- text styles -------------------------------------------------------------------------------

_ROW_START = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")

# 2025-01-26 12:05:56.987806-0600 0x168d     Default     0x4e64               108    0    rest
# pid_t is 32 bits wide, so a pid has at most 10 digits in both styles.
_DEFAULT_COLUMNS = r"""
    (?P<timestamp>\d{4}-\d{2}-\d{2}\ \d{2}:\d{2}:\d{2}\.\d+[+-]\d{4})\s+
    (?P<thread>0x[0-9a-fA-F]+)\s+
    (?P<type>[A-Za-z]+)\s+
    (?P<activity>0x[0-9a-fA-F]+)\s+
    (?P<pid>\d{1,10})\s+
    (?P<ttl>\d+)"""

# 2024-05-01 10:00:00.123 Df launchd[1:2f2b54bb] rest   (the UTC offset may be absent)
_COMPACT_COLUMNS = r"""
    (?P<timestamp>\d{4}-\d{2}-\d{2}\ \d{2}:\d{2}:\d{2}(?:\.\d+)?)(?P<offset>[+-]\d{4})?\s+
    (?P<type>[A-Z][a-z]?)\s+
    (?P<process>[^\[\]]+?)\[(?P<pid>\d{1,10}):(?P<tid>[0-9a-fA-F]+)\]"""

_MESSAGE_COLUMN = r"(?:\s+(?P<rest>.*))?"
_DEFAULT_ROW = re.compile(_DEFAULT_COLUMNS + _MESSAGE_COLUMN, re.VERBOSE)
_COMPACT_ROW = re.compile(_COMPACT_COLUMNS + _MESSAGE_COLUMN, re.VERBOSE)
# Only the fixed columns, for sniffing a first line that the end of the head may have cut.
_DEFAULT_ROW_START = re.compile(_DEFAULT_COLUMNS, re.VERBOSE)
_COMPACT_ROW_START = re.compile(_COMPACT_COLUMNS, re.VERBOSE)

# Console.app "Copy": level TAB time TAB process TAB message; some copies omit the level.
# default	16:34:06.314364-0700	sysextd	attempting to realize extension ...
_CONSOLE_ROW = re.compile(
    r"(?:(?:default|info|debug|error|fault|activity)\t)?"
    r"\d{1,2}:\d{2}:\d{2}(?:\.\d+)?(?:[+-]\d{4})?\t[^\t]*\t",
    re.IGNORECASE,
)

_DEFAULT_HEADER = re.compile(r"Timestamp\s+Thread\s+Type\s+Activity\s+PID\s+TTL\s*")
_COMPACT_HEADER = re.compile(r"Timestamp\s+Ty\s+Process\[PID:TID\]\s*")

# ``log show`` ends both text styles with a dashed rule and per-type counts such as
# "Log      - Default:          2, Info:                0, ...".
# NOTE: the wording comes from macOS output seen outside the saved samples; none of them has it.
_SUMMARY_RULE = re.compile(r"-{20,}")
_SUMMARY_LINE = re.compile(r"(?:Log|Activity|Signpost|Statistics)\s+-\s+\w+:")

# "process: " at the start of a default-style message.
_SENDER = re.compile(r"(?P<process>[^:]+?): (?P<body>.*)", re.DOTALL)

# Optional "(library) " and "[subsystem:category] " before the message text.
_LIBRARY_AND_SUBSYSTEM = re.compile(
    r"(?:\((?P<library>[^()]*)\)\ )?"
    r"(?:\[(?P<subsystem>[A-Za-z0-9_.\-]+):(?P<category>[^\]]*)\]\ ?)?"
    r"(?P<message>.*)",
    re.DOTALL,
)


@dataclass
class _Entry:
    """One text-style entry being collected: its first line and its continuation lines.

    ``style`` is ``default``, ``compact`` or ``console`` for a recognised row, ``invalid`` for
    a line that starts with a timestamp but has neither row shape, and ``orphan`` for text
    before the first row.
    """

    line: int
    style: str
    first: str
    match: re.Match[str] | None = None
    continuation: list[bytes] = field(default_factory=list)
    size: int = 0
    cut: bool = False

    def append(self, raw: bytes, line: int, context: ReadContext) -> None:
        if self.cut:
            return
        room = MAX_TEXT_MESSAGE_BYTES - self.size
        if len(raw) + 1 > room:
            self.continuation.append(raw[: max(0, room - 1)])
            self.size = MAX_TEXT_MESSAGE_BYTES
            self.cut = True
            context.warn(
                line, f"message longer than {MAX_TEXT_MESSAGE_BYTES} bytes; the rest is dropped"
            )
            return
        self.continuation.append(raw)
        self.size += len(raw) + 1


# Entry styles of recognised rows, which continuation lines extend.
_ROW_STYLES = frozenset({"default", "compact", "console"})


def _classify_row(text: str) -> tuple[str, re.Match[str] | None] | None:
    """Return the style and match of a line that starts an entry, or ``None``."""
    if _ROW_START.match(text):
        for style, pattern in (("default", _DEFAULT_ROW), ("compact", _COMPACT_ROW)):
            match = pattern.fullmatch(text)
            if match is not None:
                return style, match
        return "invalid", None
    if _CONSOLE_ROW.match(text):
        return "console", None
    return None


def _is_header(text: str) -> bool:
    stripped = text.strip()
    return bool(
        stripped.startswith(_FILTERING_PREFIX)
        or _DEFAULT_HEADER.fullmatch(stripped)
        or _COMPACT_HEADER.fullmatch(stripped)
    )


def _split_message(rest: str, with_sender: bool) -> tuple[str | None, str | None, str | None, str]:
    """Split the message column into process name, subsystem, category and message text."""
    process_name = None
    if with_sender:
        sender = _SENDER.match(rest)
        if sender is not None:
            process_name = sender["process"].strip() or None
            rest = sender["body"]
    parts = _LIBRARY_AND_SUBSYSTEM.match(rest)
    if parts is None:  # every part of the pattern is optional, so this branch is never taken
        return process_name, None, None, rest
    return process_name, parts["subsystem"], parts["category"] or None, parts["message"]


def _text_event(entry: _Entry, context: ReadContext) -> Event | None:
    """Build the event of one finished entry, or count a skip and return ``None``."""
    if entry.style == "orphan":
        context.skip(entry.line, "text outside a log entry", entry.first[:80])
        return None
    if entry.style == "console":
        context.skip(entry.line, "no date in Console copy")
        return None
    match = entry.match
    if entry.style == "invalid" or match is None:
        context.skip(entry.line, "invalid row", entry.first[:80])
        return None

    timestamp = match["timestamp"]
    if entry.style == "compact":
        if match["offset"] is None:
            context.skip(
                entry.line,
                "timestamp without offset",
                "this compact-style time has no UTC offset; export with --style ndjson",
            )
            return None
        timestamp += match["offset"]
    time = parse_local_with_offset(timestamp)
    if time is None or not in_time_range(time):
        context.skip(entry.line, "invalid timestamp", timestamp)
        return None

    process_name, subsystem, category, message = _split_message(
        match["rest"] or "", with_sender=entry.style == "default"
    )
    if entry.style == "compact":
        process_name = match["process"].strip() or None
    if entry.continuation:
        lines = [message, *(decode_text(raw) for raw in entry.continuation)]
        while len(lines) > 1 and not lines[-1].strip():
            lines.pop()
        message = "\n".join(lines)

    return Event(
        time=time,
        kind="log",
        evidence=Evidence(UnifiedLogTextReader.name, context.file, entry.line),
        host=context.host,
        process=Process(pid=int(match["pid"]), name=process_name),
        message=message,
        subsystem=subsystem,
        category=category,
    )


class UnifiedLogTextReader(Reader):
    """``log show|stream`` default and compact text styles, and Console.app copies."""

    name = "unifiedlog"
    description = "unified log, log show/stream default or compact text style"

    def sniff(self, head: bytes) -> bool:
        first = _first_meaningful_line(head)
        if first is None:
            return False
        if _DEFAULT_HEADER.fullmatch(first) or _COMPACT_HEADER.fullmatch(first):
            return True
        return bool(
            _DEFAULT_ROW_START.match(first)
            or _COMPACT_ROW_START.match(first)
            or _CONSOLE_ROW.match(first)
        )

    def read(self, source: BinaryIO, context: ReadContext) -> Iterator[Event]:
        entry: _Entry | None = None
        # A dashed line is held back until the next line shows whether it opens the summary.
        held_rule: tuple[int, bytes] | None = None
        in_summary = False
        for number, raw in iter_lines(source, context):
            text = decode_text(raw)
            if held_rule is not None:
                rule_line, rule_raw = held_rule
                held_rule = None
                if _SUMMARY_LINE.match(text):
                    in_summary = True
                    context.note("end-of-output summary")
                elif entry is not None:
                    entry.append(rule_raw, rule_line, context)
            row = _classify_row(text)
            if (
                row is not None
                and row[0] == "invalid"
                and entry is not None
                and entry.style in _ROW_STYLES
                and not ends_cut_off(source)
            ):
                # Inside an entry, a line that starts with a date but has no row shape is more
                # likely message text (a logged log line) than a broken row. The last line of
                # a file that ends without a newline is a row cut off instead.
                row = None
            if row is None and _is_header(text):
                row = ("header", None)
            if row is not None:
                in_summary = False
                if entry is not None:
                    yield from self._finish(entry, context)
                    entry = None
                style, match = row
                if style != "header":
                    entry = _Entry(line=number, style=style, first=text, match=match)
                continue
            if in_summary:
                continue
            if _SUMMARY_RULE.fullmatch(text.strip()):
                held_rule = (number, raw)
                continue
            if entry is not None and (entry.style != "orphan" or text.strip()):
                entry.append(raw, number, context)
            elif text.strip():
                entry = _Entry(line=number, style="orphan", first=text)
        if held_rule is not None and entry is not None:
            entry.append(held_rule[1], held_rule[0], context)
        if entry is not None:
            yield from self._finish(entry, context)

    @staticmethod
    def _finish(entry: _Entry, context: ReadContext) -> Iterator[Event]:
        context.record()
        event = _text_event(entry, context)
        if event is not None:
            context.used()
            yield event
