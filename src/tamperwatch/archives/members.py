"""Tar and zip archives: members listed once, then opened one at a time, never extracted."""

from __future__ import annotations

import contextlib
import io
import stat
import struct
import tarfile
import weakref
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, BinaryIO, cast

# Limits are read as ``limits.NAME`` at each check, so that a change to that module applies.
from tamperwatch.archives import limits
from tamperwatch.archives.limits import (
    _BUFFER_BYTES,
    _DAMAGE_ERRORS,
    Budget,
    Cut,
    _decompressed,
    _guard_of,
    _guarded,
    _GuardedRaw,
    _Readable,
    format_size,
)

MEMBER_SEPARATOR = "!"

_TAR_MAGIC_OFFSET = 257

_ZIP_METHODS = {
    zipfile.ZIP_STORED,
    zipfile.ZIP_DEFLATED,
    zipfile.ZIP_BZIP2,
    zipfile.ZIP_LZMA,
}

# Files that macOS adds to archives it creates: resource forks and extended attributes.
_MACOS_METADATA_FOLDER = "__MACOSX"
_APPLEDOUBLE_PREFIX = "._"


class ArchiveError(Exception):
    """An archive member that is not read, with the reason as its message."""


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


def archive_of(head: bytes) -> str | None:
    """Return ``zip`` or ``tar`` when ``head`` is the start of such an archive."""
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    # POSIX ustar ("ustar\0") and GNU tar ("ustar  ") both put the magic here; the 1979 v7
    # format has none and is not recognised.
    if head[_TAR_MAGIC_OFFSET : _TAR_MAGIC_OFFSET + 5] == b"ustar":
        return "tar"
    return None


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
        if self.budget.used > limits.MAX_DECOMPRESSED_BYTES:
            raise ArchiveError(
                "not read: the archive already reached the limit of "
                f"{format_size(limits.MAX_DECOMPRESSED_BYTES)} of decompressed data per input"
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
                if count > limits.MAX_MEMBERS:
                    self.cut = Cut(
                        "limit",
                        f"the archive has more than {limits.MAX_MEMBERS} entries, the limit",
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
        if declared is not None and declared > limits.MAX_MEMBERS:
            self.cut = Cut(
                "limit",
                f"the archive declares {declared} entries, "
                f"more than the limit of {limits.MAX_MEMBERS}",
            )
            return
        with zipfile.ZipFile(source) as archive:
            for index, info in enumerate(archive.infolist()):
                if index >= limits.MAX_MEMBERS:
                    self.cut = Cut(
                        "limit",
                        f"the archive has more than {limits.MAX_MEMBERS} entries, the limit",
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
    return Cut(
        "damaged",
        f"the {archive.label} is damaged ({exc}), so the records read before "
        "this point may be altered too",
    )


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
    if info.file_size > limits.MAX_DECOMPRESSED_BYTES:
        return (
            f"not read: the member declares {format_size(info.file_size)}, more than the limit "
            f"of {format_size(limits.MAX_DECOMPRESSED_BYTES)} of decompressed data per input"
        )
    compressed = max(info.compress_size, 1)
    if (
        info.file_size > limits.RATIO_FREE_BYTES
        and info.file_size > limits.MAX_COMPRESSION_RATIO * compressed
    ):
        return (
            f"not read: the member declares {format_size(info.file_size)} from "
            f"{format_size(compressed)}, more than the limit of {limits.MAX_COMPRESSION_RATIO}:1 "
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
