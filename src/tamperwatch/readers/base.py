"""Shared parts of the readers: format detection, line iteration, counters and located warnings.

A reader module defines a :class:`Reader` subclass with

* ``name``: the short source name used in evidence (``eslogger``, ``unifiedlog``, ``crash``);
* ``sniff(head)``: ``True`` when the first bytes of a file are this format. It must be cheap and
  must not raise. Returning ``False`` means "not my format";
* ``read(source, context)``: yield :class:`~tamperwatch.model.Event` objects. A record that is of
  this format but broken is counted with ``context.skip(line, reason)`` and reading goes on.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, BinaryIO, ClassVar, TypeVar

import msgspec

from tamperwatch.model import Event

log = logging.getLogger(__name__)

# A reader looks at this many bytes from the start of a file to decide whether the file is its
# format.
SNIFF_BYTES = 64 * 1024

# Maximum line length in bytes that a reader accepts. A longer line is skipped with a warning, so one hostile line
# cannot make the scan hold an unbounded buffer.
MAX_LINE_BYTES = 16 * 1024 * 1024

# Distinct reasons counted per file for skipped records and for notes. Some reasons carry
# values from the input (an unknown event type), so past this many kinds the rest share one
# counter named OTHER_KINDS.
MAX_COUNTED_KINDS = 200
OTHER_KINDS = "other kinds (past the first 200 distinct ones)"

# Located warnings kept per file; the counters keep counting after that.
MAX_WARNINGS_PER_FILE = 50

UTF8_BOM = b"\xef\xbb\xbf"

# Event times that every later step can turn back into a date: the first and the last day that
# :class:`datetime.datetime` can hold (years 1 and 9999) are left out, so that a UTC offset
# cannot push a time outside that range.
MIN_EVENT_TIME = datetime(1, 1, 2, tzinfo=UTC).timestamp()
MAX_EVENT_TIME = datetime(9999, 12, 31, tzinfo=UTC).timestamp()

_Record = TypeVar("_Record")


@dataclass(frozen=True)
class InputWarning:
    """A located problem with the input: file, 1-based line (0 for the whole file) and message."""

    file: str
    line: int
    message: str


@dataclass
class FileStats:
    """Counts for one input file. ``read`` = ``used`` + the sum of ``skipped``."""

    file: str
    format: str | None = None
    host: str | None = None
    read: int = 0
    used: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    notes: Counter[str] = field(default_factory=Counter)
    warnings: list[InputWarning] = field(default_factory=list)
    dropped_warnings: int = 0
    # Why the file could not be read at all (permissions, I/O), or None.
    error: str | None = None
    # Why no reader took the file (empty, unknown or unsupported format), or None.
    unrecognised: str | None = None


class ReadContext:
    """Counters and warnings of one file, handed to a reader while it reads that file."""

    def __init__(
        self,
        stats: FileStats,
        host: str | None = None,
        *,
        file_mtime: float | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        self.stats = stats
        self.file = stats.file
        self.host = host
        # Modification time of the file (seconds since the epoch), None for standard input.
        self.file_mtime = file_mtime
        # Reader settings from the configuration, keyed by reader name.
        self.options: Mapping[str, Any] = options or {}

    def record(self) -> None:
        """Count one record read from the file."""
        self.stats.read += 1

    def used(self) -> None:
        """Count one record that became an event."""
        self.stats.used += 1

    def skip(self, line: int, reason: str, detail: str | None = None) -> None:
        """Count a record of this format that could not be used, and keep a located warning."""
        self.stats.skipped[_bounded_key(self.stats.skipped, reason)] += 1
        self.warn(line, reason if detail is None else f"{reason}: {detail}")

    def note(self, what: str) -> None:
        """Count something worth reporting that is not an error (an unknown event type, say)."""
        self.stats.notes[_bounded_key(self.stats.notes, what)] += 1

    def warn(self, line: int, message: str) -> None:
        """Keep a located warning, up to :data:`MAX_WARNINGS_PER_FILE` per file."""
        if len(self.stats.warnings) < MAX_WARNINGS_PER_FILE:
            self.stats.warnings.append(InputWarning(self.file, line, message))
        else:
            self.stats.dropped_warnings += 1
        log.debug("%s:%d: %s", self.file, line, message)


def _bounded_key(counter: Counter[str], key: str) -> str:
    """Return ``key``, or :data:`OTHER_KINDS` once the counter has MAX_COUNTED_KINDS keys."""
    if key in counter or len(counter) < MAX_COUNTED_KINDS:
        return key
    return OTHER_KINDS


class Reader:
    """Base class of the format readers; see the module docstring for the contract."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""

    def sniff(self, head: bytes) -> bool:
        raise NotImplementedError

    def read(self, source: BinaryIO, context: ReadContext) -> Iterator[Event]:
        raise NotImplementedError


def iter_lines(
    source: BinaryIO, context: ReadContext, max_line_bytes: int = MAX_LINE_BYTES
) -> Iterator[tuple[int, bytes]]:
    """Yield ``(line_number, line)`` pairs without the line ending, starting at line 1.

    A line longer than ``max_line_bytes`` is skipped whole (counted and warned about), and the
    reader never keeps more than ``max_line_bytes`` of it in memory. A last line without a newline is
    yielded like any other; the reader decides whether it is complete. A UTF-8 byte-order mark at
    the start of line 1 is dropped.
    """
    number = 0
    while True:
        line = source.readline(max_line_bytes + 1)
        if not line:
            return
        number += 1
        if number == 1:
            line = line.removeprefix(UTF8_BOM)
        if len(line) > max_line_bytes and not line.endswith(b"\n"):
            context.record()
            context.skip(number, "line too long", f"longer than {max_line_bytes} bytes")
            while True:
                rest = source.readline(max_line_bytes + 1)
                if not rest or rest.endswith(b"\n"):
                    break
            continue
        # Rebinding releases the unstripped line before the caller gets the stripped one.
        line = line.rstrip(b"\r\n")
        yield number, line


def ends_cut_off(source: BinaryIO) -> bool:
    """Tell whether the line just read was the last of the file and has no line ending.

    Only a seekable source can tell; for any other this returns ``False``.
    """
    try:
        position = source.tell()
        if position == 0 or source.read(1):
            source.seek(position)
            return False
        source.seek(position - 1)
        return source.read(1) != b"\n"
    except (OSError, ValueError):
        return False


def decode_text(raw: bytes) -> str:
    """Decode a line as UTF-8; invalid bytes become U+FFFD instead of failing the record."""
    return raw.decode("utf-8", errors="replace")


def in_time_range(seconds: float) -> bool:
    """Tell whether an event time lies between :data:`MIN_EVENT_TIME` and :data:`MAX_EVENT_TIME`."""
    return MIN_EVENT_TIME <= seconds <= MAX_EVENT_TIME


def decode_json(
    decoder: msgspec.json.Decoder[_Record], raw: bytes, line: int, context: ReadContext
) -> _Record | None:
    """Decode one JSON record, or count it as skipped and return ``None``.

    The caller counts the record itself with :meth:`ReadContext.record`. Wrong field types skip
    the record as ``invalid record``, and text that is not JSON, or is nested too deeply for the
    decoder, as ``invalid JSON``. msgspec rejects invalid UTF-8 inside strings, so such a line is
    decoded again with the bad bytes replaced by U+FFFD, and a warning names the line.
    """
    try:
        return decoder.decode(raw)
    except msgspec.DecodeError as error:
        # The second decoding copies the line twice, so it runs only for msgspec's UTF-8 error
        # (msgspec 0.23 raises "Invalid UTF-8 encoded string"), not for other broken JSON.
        if isinstance(error, msgspec.ValidationError) or "UTF-8" not in str(error):
            _skip_undecoded(error, line, context)
            return None
    except RecursionError as error:
        _skip_undecoded(error, line, context)
        return None
    try:
        record = decoder.decode(decode_text(raw))
    except (msgspec.DecodeError, RecursionError) as error:
        _skip_undecoded(error, line, context)
        return None
    context.warn(line, "invalid UTF-8 replaced with U+FFFD")
    return record


def _skip_undecoded(error: Exception, line: int, context: ReadContext) -> None:
    if isinstance(error, msgspec.ValidationError):
        context.skip(line, "invalid record", str(error))
    elif isinstance(error, RecursionError):
        context.skip(line, "invalid JSON", "nested too deeply")
    else:
        context.skip(line, "invalid JSON", str(error))


def is_utf8(raw: bytes) -> bool:
    """Tell whether ``raw`` is valid UTF-8."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
