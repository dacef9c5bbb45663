"""Reading limits, and the guarded streams that check them while data is decompressed.

Every check reads the limits from this module when it runs, so a caller (or a test) may change
them here.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import logging
import lzma
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO, Protocol

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

log = logging.getLogger(__name__)

MiB = 1024 * 1024
GiB = 1024 * MiB

MAX_DECOMPRESSED_BYTES = 4 * GiB
MAX_COMPRESSION_RATIO = 200
RATIO_FREE_BYTES = 1 * MiB
MAX_MEMBERS = 100_000
# How many archives or compressed layers may sit inside the input's own one: 1 reads a .gz
# member of a tar, but not a .gz inside a zip inside a tar.
MAX_NESTING = 1
REPLAY_BYTES = 1 * MiB
SPOOL_MEMORY_BYTES = 32 * MiB

# Buffer of each decompressed or member stream, and the block size tarfile reads with.
_BUFFER_BYTES = 256 * 1024
# Most bytes taken from a decompressor or member at once. Damage found in a step loses that
# step's output, and a bad zip CRC is found with the last step.
_PULL_BYTES = 64 * 1024
# Enough to see a tar header (magic at offset 257) and every compression magic.
_PEEK_BYTES = 4096

_BZIP2_BLOCK_MAGICS = (b"\x31\x41\x59\x26\x53\x59", b"\x17\x72\x45\x38\x50\x90")

# Exceptions that decompressors and archive modules raise on damaged or truncated data. bz2
# raises a plain OSError, so only an OSError with an errno is taken as an I/O failure.
# zipfile's errors for encryption and unknown methods are avoided by checking each member
# before it is opened.
_DAMAGE_ERRORS = (
    EOFError,
    OSError,
    zlib.error,
    lzma.LZMAError,
    zipfile.BadZipFile,
    tarfile.TarError,
)


@dataclass(frozen=True)
class Cut:
    """The reason a stream ended before its data did.

    ``kind`` is ``limit`` (a decompression limit), ``damaged`` (truncated or corrupt data) or
    ``io`` (the operating system failed to read).
    """

    kind: str
    reason: str


class Budget:
    """Decompressed bytes of one input, counted against :data:`MAX_DECOMPRESSED_BYTES`."""

    def __init__(self) -> None:
        self.used = 0

    def take(self, size: int) -> bool:
        """Count ``size`` bytes; return ``False`` when they pass the limit."""
        self.used += size
        return self.used <= MAX_DECOMPRESSED_BYTES


def compression_of(head: bytes) -> str | None:
    """Return ``gzip``, ``bzip2``, ``xz`` or ``zstd`` when ``head`` starts with that magic."""
    if head.startswith(b"\x1f\x8b\x08"):
        return "gzip"
    if head.startswith(b"BZh") and head[3:4].isdigit() and head[4:10] in _BZIP2_BLOCK_MAGICS:
        return "bzip2"
    if head.startswith(b"\xfd7zXZ\x00"):
        return "xz"
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        return "zstd"
    return None


def format_size(size: int) -> str:
    """Format a byte count with a binary unit: ``4 GiB``, ``1.5 MiB``, ``512 bytes``."""
    for unit, scale in (("GiB", GiB), ("MiB", MiB), ("KiB", 1024)):
        if size >= scale:
            return f"{size / scale:.4g} {unit}"
    return f"{size} bytes"


class _Readable(Protocol):
    def read1(self, size: int, /) -> bytes: ...

    def close(self) -> None: ...


class _GuardedRaw(io.RawIOBase):
    """A decompressed stream or archive member with limits, error capture and a replayable start.

    Reading stops, returning end of file, when the source raises or a limit is passed, and
    :attr:`cut` records why. The first :data:`REPLAY_BYTES` are kept, so a reader may seek back
    anywhere into them as long as it has not read past them.
    """

    def __init__(
        self,
        source: _Readable,
        *,
        subject: str,
        budget: Budget | None,
        compressed: Callable[[], int] | None,
        parent: _GuardedRaw | None,
    ) -> None:
        super().__init__()
        self._source = source
        self._subject = subject
        self._budget = budget
        # Compressed bytes consumed so far, for the ratio check; None when nothing is inflated.
        self._compressed = compressed
        self._parent = parent
        self._head = bytearray()
        self._position = 0
        self._consumed = 0
        self._newlines = 0
        self.cut: Cut | None = None

    @property
    def consumed(self) -> int:
        """Bytes taken from the source so far."""
        return self._consumed

    @property
    def line(self) -> int:
        """The 1-based line at which the data stopped: one after the last complete line."""
        return self._newlines + 1

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_CUR:
            offset += self._position
        elif whence != io.SEEK_SET:
            raise io.UnsupportedOperation("a decompressed stream has no known end to seek from")
        if offset == self._position:
            return offset
        if offset < 0 or offset > self._consumed or self._consumed > len(self._head):
            raise io.UnsupportedOperation(
                f"a decompressed stream can seek back only within its first {REPLAY_BYTES} bytes"
            )
        self._position = offset
        return offset

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        if self._position < self._consumed:
            # Replay from the kept start. seek() allows this only while it contains every byte
            # taken so far.
            size = min(len(view), self._consumed - self._position)
            view[:size] = self._head[self._position : self._position + size]
            self._position += size
            return size
        data = self._pull(len(view))
        view[: len(data)] = data
        self._position += len(data)
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._source.close()
        super().close()

    def _pull(self, size: int) -> bytes:
        if self.cut is not None or size == 0:
            return b""
        try:
            # read1 returns what one step of the decompressor produced. read() would drop the
            # steps before a failure, and with them the last records before damaged data.
            data = self._source.read1(min(size, _PULL_BYTES))
        except _DAMAGE_ERRORS as exc:
            self.cut = self._cut_for(exc)
            log.debug("%s stopped: %s", self._subject, self.cut.reason)
            return b""
        if not data:
            return data
        produced = self._consumed + len(data)
        if self._budget is not None and not self._budget.take(len(data)):
            self.cut = Cut(
                "limit",
                f"decompression stopped at the limit of {format_size(MAX_DECOMPRESSED_BYTES)} "
                "of decompressed data per input",
            )
            return b""
        if self._compressed is not None and produced > RATIO_FREE_BYTES:
            compressed = max(self._compressed(), 1)
            if produced > MAX_COMPRESSION_RATIO * compressed:
                self.cut = Cut(
                    "limit",
                    f"decompression stopped: the {self._subject} expands {format_size(produced)} "
                    f"from {format_size(compressed)}, more than the limit of "
                    f"{MAX_COMPRESSION_RATIO}:1 (a likely decompression bomb)",
                )
                return b""
        if len(self._head) == self._consumed and self._consumed < REPLAY_BYTES:
            self._head += data[: REPLAY_BYTES - self._consumed]
        self._consumed = produced
        self._newlines += data.count(b"\n")
        return data

    def _cut_for(self, exc: BaseException) -> Cut:
        parent = self._parent
        while parent is not None:
            # The source ended because an outer stream stopped; that is the cause to report.
            if parent.cut is not None:
                return parent.cut
            parent = parent._parent
        if isinstance(exc, OSError) and exc.errno is not None:
            return Cut("io", f"read failed: {exc.strerror or exc}")
        if isinstance(exc, EOFError) or (
            isinstance(exc, tarfile.ReadError) and "unexpected end" in str(exc)
        ):
            return Cut("damaged", f"the {self._subject} ends early (truncated file)")
        return Cut(
            "damaged",
            f"the {self._subject} is damaged ({exc}), so the records read before "
            "this point may be altered too",
        )


def _guard_of(stream: BinaryIO) -> _GuardedRaw | None:
    raw = getattr(stream, "raw", None)
    return raw if isinstance(raw, _GuardedRaw) else None


def _guarded(
    source: _Readable,
    *,
    subject: str,
    budget: Budget | None,
    compressed: Callable[[], int] | None,
    parent: _GuardedRaw | None,
) -> io.BufferedReader:
    raw = _GuardedRaw(source, subject=subject, budget=budget, compressed=compressed, parent=parent)
    return io.BufferedReader(raw, _BUFFER_BYTES)


def _decompressed(
    source: BinaryIO, compression: str, budget: Budget, stack: contextlib.ExitStack
) -> io.BufferedReader:
    """Open a decompressing stream over ``source``; closing it leaves ``source`` open."""
    decompressor: _Readable
    if compression == "gzip":
        decompressor = gzip.GzipFile(fileobj=source, mode="rb")
    elif compression == "bzip2":
        decompressor = bz2.BZ2File(source)
    else:
        decompressor = lzma.LZMAFile(source)  # noqa: SIM115
    # The guarded stream closes the decompressor, and the stack closes the guarded stream.
    stream = _guarded(
        decompressor,
        subject=f"{compression} data",
        budget=budget,
        compressed=source.tell,
        parent=_guard_of(source),
    )
    return stack.enter_context(stream)


def _peek(stream: BinaryIO, size: int = _PEEK_BYTES) -> bytes:
    head = stream.read(size)
    stream.seek(0)
    return head
