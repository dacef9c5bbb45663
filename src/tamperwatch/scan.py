"""Batch scan: find input files, detect their formats, read them and run each host's engine.

Host names come, in this order, from the layout of a collection (one subfolder per host), from
the caller (``--host``), or from the records themselves (Jamf Protect's ``host`` object). Records
with none of these are scanned under :data:`UNKNOWN_HOST` and reported in a warning.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from tamperwatch import archives
from tamperwatch.config import Config
from tamperwatch.engine import HostEngine
from tamperwatch.fleet import fold_fleet_outages
from tamperwatch.incident import Incident
from tamperwatch.inventory import Inventory
from tamperwatch.liveness import BlindWindow
from tamperwatch.logpatterns import LogPatterns, load_log_patterns
from tamperwatch.model import Event
from tamperwatch.readers import Reader, describe_unknown, detect, readers_for
from tamperwatch.readers.base import SNIFF_BYTES, FileStats, ReadContext
from tamperwatch.spool import SPOOL_BUDGET_EVENTS, EventSpool

log = logging.getLogger(__name__)

UNKNOWN_HOST = "(unknown host)"
STDIN = "-"
UTF8_BOM = b"\xef\xbb\xbf"

# Standard input is spooled to a temporary file past this size, so that format detection can
# look at its start and readers can seek.
STDIN_SPOOL_BYTES = 32 * 1024 * 1024


class InputError(Exception):
    """A path given on the command line cannot be read."""


@dataclass(frozen=True)
class InputFile:
    """One file to scan and the host its location implies (``None`` when it implies none).

    An archive member has a ``path`` of the form ``ARCHIVE!member/path`` and its ``archive``
    reference.
    """

    path: str
    host: str | None
    archive: archives.MemberRef | None = field(default=None, compare=False)
    # Why the entry cannot be read at all, found while listing it (a folder without
    # permission to list it), or None.
    error: str | None = field(default=None, compare=False)


@dataclass(frozen=True)
class HostSummary:
    """Summary of one host in a scan: time span (epoch seconds), event count and components."""

    first: float
    last: float
    events: int
    # Ids of the components that showed life on the host.
    components: tuple[str, ...]


@dataclass
class ScanResult:
    """Everything a scan produced: incidents, per-file counts and scan-level warnings."""

    incidents: list[Incident]
    files: list[FileStats]
    events_per_host: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    blind_windows: list[BlindWindow] = field(default_factory=list)
    hosts: dict[str, HostSummary] = field(default_factory=dict)

    @property
    def suspicious(self) -> list[Incident]:
        return [incident for incident in self.incidents if incident.status == "suspicious"]

    @property
    def records_used(self) -> int:
        return sum(stats.used for stats in self.files)

    @property
    def unreadable(self) -> list[FileStats]:
        return [stats for stats in self.files if stats.error is not None]


def discover(paths: Sequence[str], notices: list[str] | None = None) -> list[InputFile]:
    """Expand the command-line paths into files, with the host implied by a collection layout.

    Entries that are not scanned (symbolic links to folders, sockets, pipes, devices) are named
    in ``notices``, and so is a file reached a second time under another name (a link), which
    is read once. A zip or tar archive becomes one input per member (see
    :mod:`tamperwatch.archives`). Raises :class:`InputError` for a path that does not exist.
    """
    notices = notices if notices is not None else []
    found: list[InputFile] = []
    seen: dict[tuple[int, int], str] = {}
    for raw in paths:
        if raw == STDIN:
            found.append(InputFile(STDIN, None))
            continue
        path = Path(raw)
        if not path.exists() and not path.is_symlink():
            raise InputError(f"{raw}: no such file or folder")
        if path.is_dir():
            candidates: Iterator[InputFile] = _walk_folder(path, notices)
        else:
            candidates = iter([InputFile(str(path), None)])
        for item in candidates:
            found.extend(_expand(item, seen, notices))
    return found


def _expand(
    item: InputFile, seen: dict[tuple[int, int], str], notices: list[str]
) -> list[InputFile]:
    """Return the inputs of one found file: none for a file already found, members for an
    archive, else the file itself."""
    try:
        status = os.stat(item.path)
    except OSError:
        # A broken link or a file that is already gone: reading it reports the reason.
        return [item]
    if not stat.S_ISREG(status.st_mode):
        # A pipe or device named on the command line is read as a stream, never probed.
        return [item]
    key = (status.st_dev, status.st_ino)
    if key in seen:
        notices.append(f"{item.path}: same file as {seen[key]}, read once")
        return []
    seen[key] = item.path
    members = archives.list_archive(item.path, notices)
    if members is None:
        return [item]
    # A host folder of the collection names the host of everything in it, archives included.
    return [InputFile(name, item.host or host, ref) for name, host, ref in members]


def _walk_folder(root: Path, notices: list[str]) -> Iterator[InputFile]:
    """Yield the files under ``root``; each subfolder is a collection entry named after its host."""
    try:
        entries = sorted(os.scandir(root), key=lambda entry: entry.name)
    except OSError as exc:
        raise InputError(f"{root}: cannot list folder: {exc.strerror}") from exc
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            for file, error in _files_below(Path(entry.path), notices):
                yield InputFile(str(file), entry.name, error=error)
        elif _is_scannable(Path(entry.path), notices):
            yield InputFile(entry.path, None)


def _files_below(folder: Path, notices: list[str]) -> Iterator[tuple[Path, str | None]]:
    """Yield each file below ``folder``, and each folder that cannot be listed with the reason."""
    unlisted: list[OSError] = []
    # Symbolic links to folders are not followed, so a link loop cannot make the walk endless.
    walk = os.walk(folder, followlinks=False, onerror=unlisted.append)
    for directory, subfolders, files in walk:
        yield from _unlisted_folders(unlisted)
        subfolders.sort()
        for name in sorted(files):
            path = Path(directory) / name
            if _is_scannable(path, notices):
                yield path, None
        for name in subfolders:
            if (Path(directory) / name).is_symlink():
                notices.append(f"{Path(directory) / name}: symbolic link to a folder, not followed")
    yield from _unlisted_folders(unlisted)


def _unlisted_folders(errors: list[OSError]) -> Iterator[tuple[Path, str]]:
    for error in errors:
        yield Path(error.filename), f"cannot list folder: {error.strerror or error}"
    errors.clear()


def _is_scannable(path: Path, notices: list[str]) -> bool:
    """Tell whether a folder entry is read: regular files and links to them (broken links too,
    so that the scan reports them as unreadable)."""
    if path.is_symlink() and path.is_dir():
        notices.append(f"{path}: symbolic link to a folder, not followed")
        return False
    if path.is_file() or (path.is_symlink() and not path.exists()):
        return True
    notices.append(f"{path}: not a regular file, not read")
    return False


def scan(
    paths: Sequence[str],
    *,
    host: str | None = None,
    config: Config,
    inventory: Inventory,
    patterns: LogPatterns | None = None,
    stdin: BinaryIO | None = None,
    spool_budget: int = SPOOL_BUDGET_EVENTS,
) -> ScanResult:
    """Read every input, run the per-host engines and return incidents and counts.

    ``spool_budget`` is the number of events held in memory across all hosts; past it, events
    are sorted into temporary run files (see :mod:`tamperwatch.spool`).
    """
    patterns = patterns if patterns is not None else load_log_patterns()
    notices: list[str] = []
    inputs = discover(paths, notices)
    if host is not None and any(item.host is not None for item in inputs):
        notices.append(
            f"--host {host} applies only to files outside host subfolders; files in a "
            "subfolder take the subfolder's name as their host"
        )
    options: dict[str, Any] = {"checkins": config.checkins} if config.checkins else {}
    readers = readers_for(options)
    files: list[FileStats] = []
    hostless: dict[str, int] = {}
    with EventSpool(spool_budget) as spool:
        for item in inputs:
            stats = FileStats(file=item.path)
            files.append(stats)
            fixed_host = item.host or host
            record_hosts: set[str] = set()
            for event in _read_file(item, stats, stdin, fixed_host, readers, options):
                if fixed_host is not None:
                    event.host = fixed_host
                elif event.host is None:
                    event.host = UNKNOWN_HOST
                    hostless[item.path] = hostless.get(item.path, 0) + 1
                elif len(record_hosts) < 2:
                    record_hosts.add(event.host)
                spool.add(event)
            if fixed_host is not None:
                stats.host = fixed_host
            elif record_hosts:
                stats.host = (
                    record_hosts.pop() if len(record_hosts) == 1 else "(several, from the records)"
                )
            log.info(
                "%s: %s, %d records read, %d used",
                item.path,
                stats.format or stats.unrecognised or stats.error,
                stats.read,
                stats.used,
            )
        if spool.spilled_events:
            log.info(
                "%d of %d events were sorted on disk in %d run file(s), %d merge pass(es)",
                spool.spilled_events,
                sum(spool.events_per_host.values()),
                spool.run_files,
                spool.merge_passes,
            )
        warnings = notices + [
            f"{path}: {count} record(s) carry no host name; they are scanned as {UNKNOWN_HOST}. "
            "Pass --host NAME, or lay the files out as one folder per host."
            for path, count in hostless.items()
        ]
        incidents: list[Incident] = []
        blind_windows: list[BlindWindow] = []
        reporting_hosts: dict[str, set[str]] = {}
        per_host: dict[str, int] = {}
        summaries: dict[str, HostSummary] = {}
        for host_name in spool.hosts():
            # Sources interleave in event time; ties keep eslogger's global order, then read order.
            engine = HostEngine(host_name, inventory, patterns, config)
            for event in spool.drain(host_name):
                engine.feed(event)
            per_host[host_name] = engine.events
            # The host's span leaves out records set aside as a wrong clock.
            first, last = engine.liveness.started, engine.liveness.watermark
            if first is not None and last is not None:
                summaries[host_name] = HostSummary(
                    first=first,
                    last=last,
                    events=engine.events,
                    components=tuple(sorted(engine.liveness.components_seen)),
                )
            incidents.extend(engine.finish())
            blind_windows.extend(engine.blind_windows)
            warnings.extend(_host_warnings(engine, spool.duplicates.get(host_name, 0)))
            for component_id in engine.liveness.components_seen:
                reporting_hosts.setdefault(component_id, set()).add(host_name)
    incidents = fold_fleet_outages(
        incidents,
        reporting_hosts,
        share=config.fleet_outage_share,
        min_hosts=config.fleet_outage_min_hosts,
        window=config.telemetry_gap_threshold,
    )
    blind_windows.sort(key=lambda w: (w.host, w.start))
    return ScanResult(incidents, files, per_host, warnings, blind_windows, summaries)


def _host_warnings(engine: HostEngine, duplicates: int) -> list[str]:
    """Return the warnings about one host's input that the scan reports after its incidents."""
    host_name = engine.host
    warnings: list[str] = []
    if duplicates:
        warnings.append(
            f"host {host_name}: {duplicates} records were read more than once (the same record "
            "in one file twice, or in two files) and were used once"
        )
    for name, count in sorted(engine.unknown_names.items()):
        warnings.append(
            f"host {host_name}: {count} check-in or health records name {name!r}, which fits no "
            "single component; map it with checkins.component_names in the configuration"
        )
    if engine.unknown_names_dropped:
        warnings.append(
            f"host {host_name}: {engine.unknown_names_dropped} more check-in or health records "
            f"name components that fit none; only the first {len(engine.unknown_names)} names "
            "are listed"
        )
    if engine.liveness.clock_jumps:
        warnings.append(
            f"host {host_name}: {engine.liveness.clock_jumps} record(s) are dated more than a week "
            "before or after the host's other records (a wrong clock?); they were not used for "
            "silence and blind windows"
        )
    if engine.liveness.clock_step_evidence is not None:
        later, earlier = engine.liveness.clock_step_evidence
        warnings.append(
            f"host {host_name}: {engine.liveness.clock_steps_back} record(s) are numbered "
            "before Endpoint Security records dated more than an hour earlier (for example "
            f"{earlier.file}:{earlier.line} before {later.file}:{later.line}); the host clock "
            "probably stepped back, so blind windows and silences near there may be false"
        )
    return warnings


def _read_file(
    item: InputFile,
    stats: FileStats,
    stdin: BinaryIO | None,
    host: str | None,
    readers: tuple[Reader, ...],
    reader_options: Mapping[str, Any],
) -> Iterator[Event]:
    if item.error is not None:
        stats.error = item.error
        return
    try:
        source = _open(item, stdin)
    except archives.ArchiveError as exc:
        stats.error = str(exc)
        log.info("%s: %s", item.path, stats.error)
        return
    except OSError as exc:
        stats.error = f"cannot read: {_open_failure(item.path, exc)}"
        log.info("%s: %s", item.path, stats.error)
        return
    mtime = None if item.archive is not None else _mtime(item.path)
    with source:
        parts = archives.iter_input_parts(
            source, name=item.path, ref=item.archive, stats=stats, mtime=mtime
        )
        try:
            for part in parts:
                yield from _read_part(part, stats, host, readers, reader_options)
        except OSError as exc:
            # Decompression problems end a part without raising; this is the file system
            # failing, or a temporary copy that could not be written.
            stats.error = f"read failed: {exc.strerror or exc}"
            log.info("%s: %s", item.path, stats.error)


def _read_part(
    part: archives.Part,
    stats: FileStats,
    host: str | None,
    readers: tuple[Reader, ...],
    reader_options: Mapping[str, Any],
) -> Iterator[Event]:
    """Detect the format of one file, decompressed file or archive member, and read it."""
    source = part.stream
    head = source.read(SNIFF_BYTES)
    # Some editors and exporters start UTF-8 text with a byte-order mark; readers skip it.
    start = len(UTF8_BOM) if head.startswith(UTF8_BOM) else 0
    head = head[start:]
    source.seek(start)
    # Inside an archive read as one input, a member's folder names its host unless the input
    # has a host of its own.
    member_host = part.host if host is None else None
    context = ReadContext(stats, host or member_host, file_mtime=part.mtime, options=reader_options)
    context.file = part.name
    reader = detect(head, readers)
    if reader is None:
        if part.inner:
            context.warn(0, f"not read: {describe_unknown(head)}")
        else:
            stats.unrecognised = describe_unknown(head)
        return
    if stats.format is None:
        stats.format = reader.name
    elif reader.name not in stats.format.split(", "):
        stats.format = f"{stats.format}, {reader.name}"
    for event in reader.read(source, context):
        if member_host is not None:
            event.host = member_host
        yield event


def _open_failure(path: str, exc: OSError) -> str:
    """Describe the failure to open a file, naming link problems as such."""
    if exc.errno == errno.ELOOP:
        return "symbolic link loop (a link that leads back to itself)"
    if exc.errno == errno.ENOENT and os.path.islink(path):
        return f"broken symbolic link to {os.readlink(path)}"
    return str(exc.strerror or exc)


def _mtime(path: str) -> float | None:
    if path == STDIN:
        return None
    try:
        return os.stat(path).st_mtime
    except OSError:
        return None


def _open(item: InputFile, stdin: BinaryIO | None) -> BinaryIO:
    if item.archive is not None:
        return archives.open_member(item.archive)
    if item.path == STDIN:
        return _spool(stdin if stdin is not None else sys.stdin.buffer)
    file = open(item.path, "rb")  # noqa: SIM115
    if stat.S_ISREG(os.fstat(file.fileno()).st_mode):
        return file
    # A pipe or device named on the command line, such as the path that bash's <(command)
    # passes, is spooled like standard input. Detection can then look at its start, and
    # readers can seek.
    with file:
        return _spool(file)


def _spool(stream: BinaryIO) -> BinaryIO:
    spool = tempfile.SpooledTemporaryFile(max_size=STDIN_SPOOL_BYTES)  # noqa: SIM115
    shutil.copyfileobj(stream, spool)
    spool.seek(0)
    return spool  # type: ignore[return-value]
