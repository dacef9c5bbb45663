"""Compressed inputs and archives: detection by magic bytes, members and bounded decompression.

An input may be compressed with gzip, bzip2 or xz, or be a zip or tar archive (a tar plain or
compressed with one of the three). Only the first bytes decide, never the file name. zstd is
recognised but not read, because Python 3.11's standard library has no zstd decoder.

* A compressed file is decompressed as a stream. The first :data:`REPLAY_BYTES` of the output
  stay in memory, so that format detection can look at the start and the reader can seek back
  to it. Nothing is written to disk.
* An archive member is scanned as a file named ``ARCHIVE!member/path``: the archive's path,
  :data:`MEMBER_SEPARATOR`, then the member's name inside the archive. That name is used in
  the table of inputs, in warnings and in the evidence of incidents.
* Hosts follow the layout of the archive as they follow the layout of a folder. A member
  inside a top-level folder of the archive takes that folder's name as its host. When every
  member sits under one single top-level folder (a tarball of a collection folder), that folder
  is removed from the names first.
* One archive or compressed file inside another (a ``.gz`` or a ``.zip`` member of a tar) is
  read. Anything compressed or archived inside that second level is named in a warning and
  not read (:data:`MAX_NESTING`).

Limits, checked while reading. They are module attributes that each check reads, so a caller
(or a test) may change them:

* :data:`MAX_DECOMPRESSED_BYTES` per input: all bytes produced by decompression, and all
  bytes read from zip members, count toward it;
* :data:`MAX_COMPRESSION_RATIO`: output of one compressed stream or zip member divided by the
  compressed bytes it consumed, checked once the output passes :data:`RATIO_FREE_BYTES`;
* :data:`MAX_MEMBERS` entries per archive.

A limit ends the read at that point: records read before it are kept, the file's ``error``
names the limit, and the scan goes on with the other inputs. Damaged data (a truncated gzip
stream, a zip member with a bad CRC, a tar cut inside a member) also ends the read, with a
warning at the line where the data stopped.

Members are never extracted: links, devices and names that are absolute or contain ``..`` are
named in a warning and skipped. A nested archive that must be listed before it is read (a zip
inside a tar, a tar inside a zip) is copied to a temporary spool first: in memory up to
:data:`SPOOL_MEMORY_BYTES`, then in a file in the system's temporary folder that is deleted
when the member has been read.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import logging
import lzma
import shutil
import stat
import struct
import tarfile
import tempfile
import weakref
import zipfile
import zlib
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, BinaryIO, Protocol, cast

from tamperwatch.readers import describe_unknown
from tamperwatch.readers.base import FileStats, ReadContext

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
MEMBER_SEPARATOR = "!"

# Buffer of each decompressed or member stream, and the block size tarfile reads with.
_BUFFER_BYTES = 256 * 1024
# Most bytes taken from a decompressor or member at once. Damage found in a step loses that
# step's output, and a bad zip CRC is found with the last step.
_PULL_BYTES = 64 * 1024
# Enough to see a tar header (magic at offset 257) and every compression magic.
_PEEK_BYTES = 4096

_TAR_MAGIC_OFFSET = 257
_BZIP2_BLOCK_MAGICS = (b"\x31\x41\x59\x26\x53\x59", b"\x17\x72\x45\x38\x50\x90")
_ZIP_METHODS = {
    zipfile.ZIP_STORED,
    zipfile.ZIP_DEFLATED,
    zipfile.ZIP_BZIP2,
    zipfile.ZIP_LZMA,
}
# Files that macOS adds to archives it creates: resource forks and extended attributes.
_MACOS_METADATA_FOLDER = "__MACOSX"
_APPLEDOUBLE_PREFIX = "._"

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


class ArchiveError(Exception):
    """An archive member that is not read, with the reason as its message."""


@dataclass(frozen=True)
class Cut:
    """The reason a stream ended before its data did.

    ``kind`` is ``limit`` (a decompression limit), ``damaged`` (truncated or corrupt data) or
    ``io`` (the operating system failed to read).
    """

    kind: str
    reason: str


@dataclass(frozen=True)
class Part:
    """Plain content of an input: the file itself, its decompressed data or one member.

    ``inner`` is true for a member of an archive found inside the input's own content (standard
    input, a nested archive), which shares the input's row in the table of inputs.
    """

    stream: BinaryIO
    name: str
    host: str | None
    mtime: float | None
    inner: bool


@dataclass(frozen=True)
class Member:
    """A regular file in an archive: its cleaned name, layout host and place in the archive.

    ``position`` is the header offset in the tar stream, or the index in a zip's central
    directory. ``problem`` is the reason the member is listed but not read (a declared size
    over the limits, encryption, an unsupported compression method).
    """

    path: str
    host: str | None
    mtime: float | None
    position: int
    problem: str | None = None


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


def archive_of(head: bytes) -> str | None:
    """Return ``zip`` or ``tar`` when ``head`` is the start of such an archive."""
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    # POSIX ustar ("ustar\0") and GNU tar ("ustar  ") both put the magic here; the 1979 v7
    # format has none and is not recognised.
    if head[_TAR_MAGIC_OFFSET : _TAR_MAGIC_OFFSET + 5] == b"ustar":
        return "tar"
    return None


def format_size(size: int) -> str:
    """Format a byte count with a binary unit: ``4 GiB``, ``1.5 MiB``, ``512 bytes``."""
    for unit, scale in (("GiB", GiB), ("MiB", MiB), ("KiB", 1024)):
        if size >= scale:
            return f"{size / scale:.4g} {unit}"
    return f"{size} bytes"


# --- guarded streams --------------------------------------------------------------------------


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
        return Cut("damaged", f"the {self._subject} is damaged ({exc})")


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


# --- archives ---------------------------------------------------------------------------------


class Archive:
    """A tar or zip archive: its members, listed once, then opened one at a time in order.

    ``origin`` opens the archive's bytes from the start (registering what it opens on the
    stack it is given), ``compression`` names the layer around a tar. A compressed tar is
    decompressed twice, once to list the members and once to read them, because hosts come
    from the names of all members.
    """

    def __init__(
        self,
        name: str,
        kind: str,
        origin: Callable[[contextlib.ExitStack], BinaryIO],
        *,
        compression: str | None,
        depth: int,
        budget: Budget,
    ) -> None:
        self.name = name
        self.kind = kind
        self.depth = depth
        self.budget = budget
        self.members: list[Member] = []
        # Entries that are not read, as (name for the warning, reason).
        self.skipped: list[tuple[str, str]] = []
        self.cut: Cut | None = None
        self._origin = origin
        self._compression = compression
        self._stack: contextlib.ExitStack | None = None
        self._closer: weakref.finalize[[], Archive] | None = None
        self._tar: tarfile.TarFile | None = None
        self._tar_position = -1
        self._outer: _GuardedRaw | None = None
        self._zip: zipfile.ZipFile | None = None

    @property
    def label(self) -> str:
        return f"{self._compression}-compressed tar" if self._compression else self.kind

    def list_members(self) -> None:
        """Read the archive's directory (zip) or headers (tar) into :attr:`members`."""
        entries: list[tuple[str, float | None, int, str | None]] = []
        metadata = 0
        with contextlib.ExitStack() as stack:
            try:
                source = self._open_bytes(stack, Budget())
                listed = self._list_zip(source) if self.kind == "zip" else self._list_tar(source)
                for path, mtime, position, problem in listed:
                    if _is_macos_metadata(path):
                        metadata += 1
                    else:
                        entries.append((path, mtime, position, problem))
            except _DAMAGE_ERRORS as exc:
                outer = self._outer
                self.cut = outer.cut if outer is not None and outer.cut else _damage(self, exc)
            self._outer = None
        if metadata:
            self.skipped.append(
                (self.name, f"{metadata} macOS metadata member(s) (__MACOSX/, ._ files) skipped")
            )
        self.members = [
            Member(path, host, mtime, position, problem)
            for (path, mtime, position, problem), host in zip(
                entries, layout_hosts([entry[0] for entry in entries]), strict=True
            )
        ]

    def member_stream(self, member: Member) -> io.BufferedReader:
        """Open one member for reading. Raises :class:`ArchiveError` when it cannot be read."""
        if member.problem is not None:
            raise ArchiveError(member.problem)
        if self.budget.used > MAX_DECOMPRESSED_BYTES:
            raise ArchiveError(
                "not read: the archive already reached the limit of "
                f"{format_size(MAX_DECOMPRESSED_BYTES)} of decompressed data per input"
            )
        try:
            if self.kind == "zip":
                return self._open_zip_member(member)
            return self._open_tar_member(member)
        except _DAMAGE_ERRORS as exc:
            if isinstance(exc, OSError) and exc.errno is not None:
                # The archive file itself could not be opened or read; the caller reports it.
                raise
            outer = self._outer
            cut = outer.cut if outer is not None and outer.cut else _damage(self, exc)
            raise ArchiveError(f"not read: {cut.reason}") from exc

    def close(self) -> None:
        """Close what reading the members opened; listing closes its own files."""
        if self._closer is not None:
            self._closer()
        self._stack = self._closer = None
        self._tar = self._zip = self._outer = None
        self._tar_position = -1

    def _reading_stack(self) -> contextlib.ExitStack:
        if self._stack is None:
            self._stack = contextlib.ExitStack()
            # Close the files even when a scan stops before the last member.
            self._closer = weakref.finalize(self, self._stack.close)
        return self._stack

    def _open_bytes(self, stack: contextlib.ExitStack, budget: Budget) -> BinaryIO:
        source = self._origin(stack)
        if self._compression is None:
            return source
        stream = _decompressed(source, self._compression, budget, stack)
        self._outer = _guard_of(stream)
        return stream

    def _list_tar(self, source: BinaryIO) -> Iterator[tuple[str, float | None, int, str | None]]:
        # NOTE: tarfile reads a pax or GNU long-name header into memory whole. Only the
        # decompression limits bound such a header, not a limit of its own.
        with tarfile.open(fileobj=source, mode="r|", bufsize=_BUFFER_BYTES) as tar:
            count = 0
            for info in _tar_entries(tar):
                count += 1
                if count > MAX_MEMBERS:
                    self.cut = Cut(
                        "limit", f"the archive has more than {MAX_MEMBERS} entries, the limit"
                    )
                    return
                path = _clean_name(info.name)
                if info.isdir():
                    continue
                reason = _unsafe_name(info.name)
                if reason is None and (info.issym() or info.islnk()):
                    reason = f"a link to {info.linkname!r}, not followed"
                elif reason is None and not info.isreg():
                    reason = "not a regular file"
                if reason is not None:
                    self.skipped.append((f"{self.name}{MEMBER_SEPARATOR}{path}", reason))
                    continue
                yield path, float(info.mtime), info.offset, None

    def _list_zip(self, source: BinaryIO) -> Iterator[tuple[str, float | None, int, str | None]]:
        declared = _zip_entry_count(source)
        if declared is not None and declared > MAX_MEMBERS:
            self.cut = Cut(
                "limit",
                f"the archive declares {declared} entries, more than the limit of {MAX_MEMBERS}",
            )
            return
        with zipfile.ZipFile(source) as archive:
            for index, info in enumerate(archive.infolist()):
                if index >= MAX_MEMBERS:
                    self.cut = Cut(
                        "limit", f"the archive has more than {MAX_MEMBERS} entries, the limit"
                    )
                    return
                path = _clean_name(info.filename)
                if info.is_dir():
                    continue
                mode = info.external_attr >> 16
                reason = _unsafe_name(info.filename)
                if reason is None and stat.S_ISLNK(mode):
                    reason = "a symbolic link, not followed"
                elif reason is None and stat.S_IFMT(mode) not in (0, stat.S_IFREG):
                    reason = "not a regular file"
                if reason is not None:
                    self.skipped.append((f"{self.name}{MEMBER_SEPARATOR}{path}", reason))
                    continue
                yield path, _zip_mtime(info), index, _zip_problem(info)

    def _open_tar_member(self, member: Member) -> io.BufferedReader:
        if self._tar is None or self._tar_position >= member.position:
            # Members are read in listing order, so this starts a pass only for the first one.
            self.close()
            stack = self._reading_stack()
            source = self._open_bytes(stack, self.budget)
            tar = tarfile.open(fileobj=source, mode="r|", bufsize=_BUFFER_BYTES)  # noqa: SIM115
            self._tar = stack.enter_context(tar)
        for info in _tar_entries(self._tar):
            self._tar_position = info.offset
            if info.offset == member.position:
                return _guarded(
                    self._tar_data(self._tar, info),
                    subject="tar member",
                    budget=None,
                    compressed=None,
                    parent=self._outer,
                )
            if info.offset > member.position:
                break
        raise ArchiveError(f"not read: the member was not found again in the {self.label}")

    @staticmethod
    def _tar_data(tar: tarfile.TarFile, info: tarfile.TarInfo) -> _Readable:
        stream = tar.fileobj
        if info.issparse() or stream is None:
            data = tar.extractfile(info)
            if not isinstance(data, io.BufferedReader):
                raise ArchiveError("not read: tarfile returned no data for the member")
            return data
        # The member's data follows its header in the stream. Reading it here, rather than
        # through extractfile, keeps the bytes before a truncation: extractfile raises for a
        # short read and drops the bytes of that read.
        # In stream mode the tar's file object is tarfile's _Stream, which reads and never
        # seeks back; typeshed types it only as a writer.
        return _TarData(cast(IO[bytes], stream), info.size)

    def _open_zip_member(self, member: Member) -> io.BufferedReader:
        if self._zip is None:
            stack = self._reading_stack()
            self._zip = stack.enter_context(zipfile.ZipFile(self._open_bytes(stack, self.budget)))
        info = self._zip.infolist()[member.position]
        # ZipFile.open in read mode returns a ZipExtFile, typed only as IO[bytes].
        data = cast(zipfile.ZipExtFile, self._zip.open(info))
        # Stored members count too: overlapping entries can repeat the same stored bytes.
        return _guarded(
            data,
            subject="zip member",
            budget=self.budget,
            compressed=(lambda: info.compress_size)
            if info.compress_type != zipfile.ZIP_STORED
            else None,
            parent=None,
        )


class _TarData:
    """The data of the current member of a stream-mode tar, up to the member's size."""

    def __init__(self, stream: IO[bytes], size: int) -> None:
        self._stream = stream
        self._left = size

    def read1(self, size: int, /) -> bytes:
        if self._left <= 0:
            return b""
        data = self._stream.read(min(size, self._left))
        if not data:
            raise EOFError(f"the tar data ends {self._left} bytes before the end of the member")
        self._left -= len(data)
        return data

    def close(self) -> None:
        # The tar stream goes on to the next member; the archive closes it.
        pass


def _tar_entries(tar: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    while (info := tar.next()) is not None:
        # A stream-mode TarFile keeps every header for link lookups; links are not followed
        # here, so drop them to keep memory flat.
        tar.members.clear()  # type: ignore[attr-defined]
        yield info


def _damage(archive: Archive, exc: BaseException) -> Cut:
    if isinstance(exc, OSError) and exc.errno is not None:
        return Cut("io", f"read failed: {exc.strerror or exc}")
    if isinstance(exc, tarfile.ReadError) and "unexpected end" in str(exc):
        return Cut("damaged", f"the {archive.label} ends early (truncated file)")
    return Cut("damaged", f"the {archive.label} is damaged ({exc})")


def _clean_name(name: str) -> str:
    parts = [part for part in name.split("/") if part not in ("", ".")]
    return "/".join(parts)


def _unsafe_name(name: str) -> str | None:
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "an absolute path, not read"
    if ".." in parts:
        return "a name with '..', not read"
    if not _clean_name(name):
        return "an empty name, not read"
    return None


def _is_macos_metadata(path: str) -> bool:
    parts = path.split("/")
    return parts[0] == _MACOS_METADATA_FOLDER or parts[-1].startswith(_APPLEDOUBLE_PREFIX)


def layout_hosts(paths: list[str]) -> list[str | None]:
    """Return the host that each member path implies, by the same rule as a folder's layout.

    A member inside a top-level folder takes that folder's name. When every member shares one
    top-level folder, it is removed first, so ``collection/host-a/es.ndjson`` names ``host-a``.
    """
    tops = {path.split("/", 1)[0] for path in paths}
    strip = len(tops) == 1 and all("/" in path for path in paths)
    hosts: list[str | None] = []
    for path in paths:
        relative = path.split("/", 1)[1] if strip else path
        hosts.append(relative.split("/", 1)[0] if "/" in relative else None)
    return hosts


def _zip_problem(info: zipfile.ZipInfo) -> str | None:
    if info.flag_bits & 0x1:
        return "not read: the member is encrypted; decrypt the archive first"
    if info.compress_type not in _ZIP_METHODS:
        return f"not read: zip compression method {info.compress_type} is not supported"
    if info.file_size > MAX_DECOMPRESSED_BYTES:
        return (
            f"not read: the member declares {format_size(info.file_size)}, more than the limit "
            f"of {format_size(MAX_DECOMPRESSED_BYTES)} of decompressed data per input"
        )
    compressed = max(info.compress_size, 1)
    if info.file_size > RATIO_FREE_BYTES and info.file_size > MAX_COMPRESSION_RATIO * compressed:
        return (
            f"not read: the member declares {format_size(info.file_size)} from "
            f"{format_size(compressed)}, more than the limit of {MAX_COMPRESSION_RATIO}:1 "
            "(a likely decompression bomb)"
        )
    return None


def _zip_mtime(info: zipfile.ZipInfo) -> float | None:
    """Return the UTC modification time from the extended-timestamp extra field (0x5455).

    The DOS time that every zip entry has is local time without a zone, so it is not used.
    """
    extra = info.extra
    offset = 0
    while offset + 4 <= len(extra):
        kind, size = struct.unpack_from("<HH", extra, offset)
        body = extra[offset + 4 : offset + 4 + size]
        if kind == 0x5455 and len(body) >= 5 and body[0] & 0x1:
            return float(struct.unpack_from("<i", body, 1)[0])
        offset += 4 + size
    return None


def _zip_entry_count(source: BinaryIO) -> int | None:
    """Return the entry count from a zip's end-of-central-directory record, or ``None``.

    Read before :class:`zipfile.ZipFile` builds an object for every entry, so that an archive
    that declares millions of entries is rejected before it takes that memory.
    """
    size = source.seek(0, io.SEEK_END)
    tail_size = min(size, 22 + 65535)
    source.seek(size - tail_size)
    tail = source.read(tail_size)
    source.seek(0)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or at + 22 > len(tail):
        return None
    count: int = struct.unpack_from("<H", tail, at + 10)[0]
    locator = at - 20
    if count == 0xFFFF and locator >= 0 and tail[locator : locator + 4] == b"PK\x06\x07":
        # ZIP64: the locator points to a second record with 64-bit counts.
        (record,) = struct.unpack_from("<Q", tail, locator + 8)
        source.seek(record)
        zip64 = source.read(56)
        source.seek(0)
        if len(zip64) == 56 and zip64.startswith(b"PK\x06\x06"):
            count = struct.unpack_from("<Q", zip64, 32)[0]
    return count


# --- inputs -----------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class MemberRef:
    """An input that is an archive member, or the archive itself when no member was listed."""

    archive: Archive
    member: Member | None

    @property
    def last(self) -> bool:
        return self.member is None or self.member is self.archive.members[-1]


def list_archive(path: str, notices: list[str]) -> list[tuple[str, str | None, MemberRef]] | None:
    """List the members of the zip or tar file at ``path`` as inputs, or return ``None``.

    Each input is ``(name, layout host, reference)``. An archive without members is one input
    named after the archive, so that its row in the table gives the reason. Skipped entries go to
    ``notices``. Only a tar, plain or compressed, and a zip that is not compressed again are
    listed here; anything else is read as a file.
    """
    try:
        with open(path, "rb") as file:
            head = file.read(_PEEK_BYTES)
            compression = compression_of(head)
            kind = archive_of(head)
            if compression in ("gzip", "bzip2", "xz"):
                file.seek(0)
                with contextlib.ExitStack() as stack:
                    inner = _decompressed(file, compression, Budget(), stack).read(512)
                kind = "tar" if archive_of(inner) == "tar" else None
            else:
                compression = None
    except OSError:
        # Reported when the file is read.
        return None
    if kind is None:
        return None

    def origin(stack: contextlib.ExitStack) -> BinaryIO:
        return stack.enter_context(open(path, "rb"))

    archive = Archive(path, kind, origin, compression=compression, depth=0, budget=Budget())
    log.info("%s: listing the %s", path, archive.label)
    archive.list_members()
    notices.extend(f"{name}: {reason}" for name, reason in archive.skipped)
    if not archive.members:
        return [(path, None, MemberRef(archive, None))]
    return [
        (f"{path}{MEMBER_SEPARATOR}{member.path}", member.host, MemberRef(archive, member))
        for member in archive.members
    ]


def open_member(ref: MemberRef) -> BinaryIO:
    """Open an input listed by :func:`list_archive`.

    Raises :class:`ArchiveError` for a member that is not read, and :class:`OSError` when the
    archive file cannot be read.
    """
    if ref.member is None:
        return io.BytesIO()
    try:
        return ref.archive.member_stream(ref.member)
    except (ArchiveError, OSError):
        if ref.last:
            ref.archive.close()
        raise


def iter_input_parts(
    source: BinaryIO,
    *,
    name: str,
    ref: MemberRef | None,
    stats: FileStats,
    mtime: float | None,
) -> Iterator[Part]:
    """Yield the plain content of one input, decompressing and opening archives on the way.

    ``source`` is the input opened for reading (for a member, by :func:`open_member`). After
    each part has been read, a limit or damage that ended it is recorded in ``stats``.
    """
    if ref is None:
        yield from _parts(source, name, depth=0, budget=Budget(), stats=stats, mtime=mtime)
        return
    archive, member = ref.archive, ref.member
    if member is None:
        if archive.cut is not None:
            stats.error = f"{archive.cut.reason}; nothing was read"
        else:
            stats.unrecognised = f"a {archive.label} without regular files"
        return
    recorded = yield from _parts(
        source,
        name,
        depth=archive.depth + 1,
        budget=archive.budget,
        stats=stats,
        mtime=member.mtime,
    )
    if ref.last:
        if archive.cut is not None and not recorded:
            _record(
                stats,
                name,
                archive.cut,
                "the archive's members after this one were not read",
                inner=False,
            )
        archive.close()


def _parts(
    source: BinaryIO,
    name: str,
    *,
    depth: int,
    budget: Budget,
    stats: FileStats,
    mtime: float | None,
    host: str | None = None,
    inner: bool = False,
) -> Generator[Part, None, bool]:
    """Yield the parts of ``source``; return whether a cut of its data was recorded."""
    with contextlib.ExitStack() as stack:
        content = _unwrap(source, depth=depth, budget=budget, stack=stack)
        if content.unread is not None:
            if inner:
                _warn(stats, name, 0, f"not read: {content.unread}")
            else:
                stats.unrecognised = content.unread
            return False
        if content.archive is not None:
            return (
                yield from _nested_parts(
                    source, content, name, depth=depth, budget=budget, stats=stats, stack=stack
                )
            )
        yield Part(content.stream, name, host, mtime, inner)
        guard = _guard_of(content.stream)
        if guard is None or guard.cut is None:
            return False
        if guard.consumed == 0:
            # Not even the start decompressed: the input could not be read at all.
            _fail(stats, name, f"{guard.cut.reason}; nothing was read", inner=inner)
        else:
            consequence = f"records from line {guard.line} on were not read"
            _record(stats, name, guard.cut, consequence, line=guard.line, inner=inner)
        return True


@dataclass(frozen=True)
class _Content:
    stream: BinaryIO
    archive: str | None = None
    # The single compression layer between the source and a tar, so that the tar can be read
    # again from the source; None when more layers lie between.
    compression: str | None = None
    # Whether the source can be read again from its start (a file, a spool).
    reopenable: bool = False
    unread: str | None = None


def _unwrap(
    source: BinaryIO, *, depth: int, budget: Budget, stack: contextlib.ExitStack
) -> _Content:
    head = _peek(source)
    compression = compression_of(head)
    kind = archive_of(head)
    if compression == "zstd" or ((compression or kind) and depth > MAX_NESTING):
        return _Content(source, unread=describe_unknown(head))
    reopenable = _guard_of(source) is None and source.seekable()
    if compression is None:
        return _Content(source, archive=kind, reopenable=reopenable)
    stream = _decompressed(source, compression, budget, stack)
    if archive_of(_peek(stream)) == "tar":
        return _Content(stream, archive="tar", compression=compression, reopenable=reopenable)
    # Whatever the compressed data contains sits one level deeper than the compressed file.
    inner = _unwrap(stream, depth=depth + 1, budget=budget, stack=stack)
    return _Content(inner.stream, archive=inner.archive, unread=inner.unread)


def _nested_parts(
    source: BinaryIO,
    content: _Content,
    name: str,
    *,
    depth: int,
    budget: Budget,
    stats: FileStats,
    stack: contextlib.ExitStack,
) -> Generator[Part, None, bool]:
    """Yield the parts of an archive met while reading an input (standard input, a member)."""
    kind = content.archive or "tar"
    compression = content.compression
    origin_stream: BinaryIO = source
    copy_cut: Cut | None = None
    if not content.reopenable or (kind == "zip" and compression is not None):
        # NOTE: the copy may grow up to the per-input decompression limit, on disk in the
        # system's temporary folder. Members are still not extracted from it.
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES)  # noqa: SIM115
        stack.enter_context(spool)
        shutil.copyfileobj(content.stream, spool, _BUFFER_BYTES)
        guard = _guard_of(content.stream)
        copy_cut = guard.cut if guard is not None else None
        origin_stream, compression = spool, None  # type: ignore[assignment]

    def origin(_stack: contextlib.ExitStack) -> BinaryIO:
        origin_stream.seek(0)
        return origin_stream

    archive = Archive(name, kind, origin, compression=compression, depth=depth, budget=budget)
    stack.callback(archive.close)
    archive.list_members()
    for skipped_name, reason in archive.skipped:
        _warn(stats, skipped_name, 0, reason)
    recorded = False
    for member in archive.members:
        member_name = f"{name}{MEMBER_SEPARATOR}{member.path}"
        try:
            stream = archive.member_stream(member)
        except ArchiveError as exc:
            _fail(stats, member_name, str(exc), inner=True)
            continue
        with stream:
            recorded |= yield from _parts(
                stream,
                member_name,
                depth=depth + 1,
                budget=budget,
                stats=stats,
                mtime=member.mtime,
                host=member.host,
                inner=True,
            )
    cut = copy_cut or archive.cut
    if cut is None:
        return recorded
    if archive.members:
        consequence = f"members after {archive.members[-1].path} were not read"
    else:
        consequence = "nothing was read"
    _record(stats, name, cut, consequence, inner=True)
    return True


def _record(
    stats: FileStats, name: str, cut: Cut, consequence: str, *, line: int = 0, inner: bool
) -> None:
    """Record a cut as a warning at ``line``. A limit or I/O failure is also the input's error."""
    message = f"{cut.reason}; {consequence}"
    log.warning("%s: %s", name, message)
    if cut.kind != "damaged" and stats.error is None:
        stats.error = f"{name}: {message}" if inner else message
    # The error names the limit. The warning marks the cut-off at its line, and inside an
    # input with several members it also keeps every cut after the first.
    _warn(stats, name, line, message if cut.kind == "damaged" or inner else consequence)


def _fail(stats: FileStats, name: str, message: str, *, inner: bool) -> None:
    """Set the input's error. A member inside the input also gets a warning under its name."""
    log.warning("%s: %s", name, message)
    if inner:
        _warn(stats, name, 0, message)
        message = f"{name}: {message}"
    if stats.error is None:
        stats.error = message


def _warn(stats: FileStats, name: str, line: int, message: str) -> None:
    context = ReadContext(stats)
    context.file = name
    context.warn(line, message)
