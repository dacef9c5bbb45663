"""Turn each input into its plain parts: the file itself, its decompressed data or its members.

An archive file is listed as one input per member (:func:`list_archive`). A limit or damage that
ends a part is recorded in the input's statistics as an error or a warning.
"""

from __future__ import annotations

import contextlib
import io
import logging
import shutil
import tempfile
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import BinaryIO

# Limits are read as ``limits.NAME`` at each check, so that a change to that module applies.
from tamperwatch.archives import limits
from tamperwatch.archives.limits import (
    _BUFFER_BYTES,
    _PEEK_BYTES,
    Budget,
    Cut,
    _decompressed,
    _guard_of,
    _peek,
    compression_of,
)
from tamperwatch.archives.members import (
    MEMBER_SEPARATOR,
    Archive,
    ArchiveError,
    Member,
    archive_of,
)
from tamperwatch.readers import describe_unknown
from tamperwatch.readers.base import FileStats, ReadContext

log = logging.getLogger(__name__)


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
    if compression == "zstd" or ((compression or kind) and depth > limits.MAX_NESTING):
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
        spool = tempfile.SpooledTemporaryFile(max_size=limits.SPOOL_MEMORY_BYTES)  # noqa: SIM115
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
    log.info("%s: %s", name, message)
    if cut.kind != "damaged" and stats.error is None:
        stats.error = f"{name}: {message}" if inner else message
    # The error names the limit. The warning marks the cut-off at its line, and inside an
    # input with several members it also keeps every cut after the first.
    _warn(stats, name, line, message if cut.kind == "damaged" or inner else consequence)


def _fail(stats: FileStats, name: str, message: str, *, inner: bool) -> None:
    """Set the input's error. A member inside the input also gets a warning under its name."""
    log.info("%s: %s", name, message)
    if inner:
        _warn(stats, name, 0, message)
        message = f"{name}: {message}"
    if stats.error is None:
        stats.error = message


def _warn(stats: FileStats, name: str, line: int, message: str) -> None:
    context = ReadContext(stats)
    context.file = name
    context.warn(line, message)
