"""Memory-bounded ordering of a scan's events: an external merge sort per host.

A scan must give each host's engine its events in event time, but the events of one host come
from many files and any file may hold them in any order. :class:`EventSpool` buffers events per
host up to a budget counted across all hosts. Past the budget it sorts the largest buffers and
spills them to run files in a temporary folder. Each host is then fed from a k-way merge of its
runs and what is left of its buffer.

The order is the one ``scan()`` has always used: event time, then eslogger's
``global_seq_num``, then read order. ``list.sort`` is stable, and :func:`heapq.merge` breaks
ties by the position of its input like ``sorted()`` of the inputs chained. Runs are merged
oldest first, with the buffer last, so read order is kept across runs without a counter in the
key. Records that are read twice (one file copied into a collection twice, overlapping exports)
are dropped in the merge and counted per host.

A run file is a sequence of frames: an 8-byte little-endian length, then a msgpack array of up
to :data:`RUN_FRAME_EVENTS` events. A merge keeps one decoded frame per run in memory.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import queue
import shutil
import struct
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import msgspec

from tamperwatch.model import Event, Evidence

log = logging.getLogger(__name__)

# Events held in memory across all hosts before the largest buffers are spilled to disk. An
# event takes about 1 KiB in memory (benchmarks/bench_scan.py), so the buffers stay near
# 200 MiB. The budget counts events, not bytes.
SPOOL_BUDGET_EVENTS = 200_000

# Run files one merge reads at once (one open file and one decoded frame each). A host with
# more runs is merged in passes, which write longer runs.
MAX_OPEN_RUNS = 64

# Events per frame of a run file. A merge of MAX_OPEN_RUNS runs keeps 64 decoded frames in
# memory, about 64 MiB.
RUN_FRAME_EVENTS = 1024

# Identities of distinct records kept for one timestamp while looking for duplicates. Past this
# many records with one time (a snapshot of many rows shares one time), a record is compared
# only with the first ones.
MAX_TIE_IDENTITIES = 65_536

_FRAME_HEADER = struct.Struct("<Q")
# Evidence differs between two copies of one record (file, line), so identities leave it out.
_NO_EVIDENCE = Evidence("", "", 0)


def order_key(event: Event) -> tuple[float, int]:
    """Return the key that orders the events of one host: event time, then eslogger order."""
    return (event.time, event.global_seq_num or 0)


@dataclass
class _Run:
    """A sorted run: a byte range of a spill file, and the keys of its first and last events."""

    path: Path
    start: int
    end: int
    events: int
    first: tuple[float, int]
    last: tuple[float, int]


class _FrameWriter:
    """Append frames to one run file from a background thread.

    On the benchmark machine, writing a run to the page cache took about twice as long as
    encoding it. The write system call releases the GIL, so the scan reads on while the frames
    are written. Until then the frames wait in memory, at most one spill (half the budget) at
    about 0.5 KiB per event.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        # Bytes handed to write(), written or not.
        self.size = 0
        self._stream = path.open("wb")
        self._frames: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._error: OSError | None = None
        self._thread = threading.Thread(
            target=self._write_all, name="tamperwatch-spool-writer", daemon=True
        )
        self._thread.start()

    def write(self, data: bytes) -> None:
        self._frames.put(data)
        self.size += len(data)

    def close(self, *, raise_error: bool = True) -> None:
        """Wait for the frames to be written and close the file.

        Raise :class:`OSError` when a write failed, unless ``raise_error`` is false.
        """
        self._frames.put(None)
        self._thread.join()
        self._stream.close()
        if self._error is not None and raise_error:
            raise OSError(
                f"cannot write the temporary run file {self.path}: {self._error}; free some "
                "space there, or point TMPDIR at a larger disk"
            ) from self._error

    def _write_all(self) -> None:
        while (data := self._frames.get()) is not None:
            if self._error is not None:
                continue
            try:
                self._stream.write(data)
            except OSError as exc:
                self._error = exc


class EventSpool:
    """Buffer events per host within a memory budget and give them back in order, per host.

    Add every event with :meth:`add` (``event.host`` set), then read each host once with
    :meth:`drain`. Close the spool (or use it as a context manager) to remove its temporary
    folder, also when the scan fails.
    """

    def __init__(
        self,
        budget: int = SPOOL_BUDGET_EVENTS,
        *,
        max_open_runs: int = MAX_OPEN_RUNS,
        directory: str | None = None,
    ) -> None:
        if budget < 1:
            raise ValueError(f"spool budget must be at least 1 event, got {budget}")
        if max_open_runs < 2:
            raise ValueError(f"a merge needs at least 2 open runs, got {max_open_runs}")
        self.budget = budget
        self.max_open_runs = max_open_runs
        self._parent_directory = directory
        self._folder: Path | None = None
        self._buffers: dict[str, list[Event]] = {}
        self._runs: dict[str, list[_Run]] = {}
        self._spilled_per_host: dict[str, int] = {}
        # Runs still unread in each spill file; the file is deleted when this reaches zero.
        self._file_runs: dict[Path, int] = {}
        self._buffered = 0
        self._next_file = 0
        # Writes the newest run file in the background until the next spill or drain.
        self._writer: _FrameWriter | None = None
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder = msgspec.msgpack.Decoder(list[Event])
        self.duplicates: dict[str, int] = {}
        self.spilled_events = 0
        self.run_files = 0
        self.merge_passes = 0

    def __enter__(self) -> EventSpool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Drop the buffers and remove the temporary folder with every run file."""
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close(raise_error=False)
        self._buffers.clear()
        self._runs.clear()
        self._file_runs.clear()
        self._buffered = 0
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    @property
    def folder(self) -> Path | None:
        """Temporary folder of the run files, or ``None`` before the first spill."""
        return self._folder

    # adding ------------------------------------------------------------------------------------

    def add(self, event: Event) -> None:
        """Buffer one event under ``event.host``; spill buffers when the budget is exceeded."""
        # The scan calls this once per event, so it does as little as it can.
        host = event.host or ""
        buffer = self._buffers.get(host)
        if buffer is None:
            buffer = self._buffers[host] = []
        buffer.append(event)
        self._buffered += 1
        if self._buffered > self.budget:
            self._spill()

    @property
    def events_per_host(self) -> dict[str, int]:
        """Events added per host, duplicates included."""
        counts = dict(self._spilled_per_host)
        for host, buffer in self._buffers.items():
            counts[host] = counts.get(host, 0) + len(buffer)
        return counts

    def hosts(self) -> list[str]:
        """Return the hosts that have events, sorted by name."""
        return sorted(self.events_per_host)

    def _spill(self) -> None:
        """Spill the largest buffers, one run each, until half the budget is free.

        Freeing half at a time keeps the number of runs low when many hosts share the budget.
        """
        self._finish_writing()
        writer = self._writer = _FrameWriter(self._new_file())
        runs = 0
        while self._buffered > self.budget // 2:
            host = max(self._buffers, key=lambda name: len(self._buffers[name]))
            buffer = self._buffers.pop(host)
            buffer.sort(key=order_key)
            count = len(buffer)
            first, last = order_key(buffer[0]), order_key(buffer[-1])
            start = writer.size
            # Frames are cut from the buffer first, so that each frame's events can be freed as
            # soon as it is encoded.
            frames = [buffer[i : i + RUN_FRAME_EVENTS] for i in range(0, count, RUN_FRAME_EVENTS)]
            del buffer
            for index, frame in enumerate(frames):
                self._write_frame(writer.write, frame)
                frames[index] = []
            run = _Run(writer.path, start, writer.size, count, first, last)
            self._runs.setdefault(host, []).append(run)
            self._spilled_per_host[host] = self._spilled_per_host.get(host, 0) + count
            runs += 1
            self._buffered -= count
            self.spilled_events += count
        self._file_runs[writer.path] = runs
        log.debug("spilling %d run(s) to %s", runs, writer.path)

    def _finish_writing(self) -> None:
        """Wait until the run file being written is complete."""
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()

    def _new_file(self) -> Path:
        if self._folder is None:
            self._folder = Path(
                tempfile.mkdtemp(prefix="tamperwatch-spool-", dir=self._parent_directory)
            )
            log.info("spilling events to %s", self._folder)
        path = self._folder / f"run-{self._next_file:06d}.msgpack"
        self._next_file += 1
        self.run_files += 1
        return path

    def _write_frames(self, write: Callable[[bytes], object], events: Iterable[Event]) -> None:
        frame: list[Event] = []
        for event in events:
            frame.append(event)
            if len(frame) == RUN_FRAME_EVENTS:
                self._write_frame(write, frame)
                frame = []
        if frame:
            self._write_frame(write, frame)

    def _write_frame(self, write: Callable[[bytes], object], frame: list[Event]) -> None:
        data = self._encoder.encode(frame)
        write(_FRAME_HEADER.pack(len(data)) + data)

    # reading -----------------------------------------------------------------------------------

    def drain(self, host: str) -> Iterator[Event]:
        """Yield the events of ``host`` in order, without duplicates, and forget them.

        Each host can be drained once. Duplicates found are counted in :attr:`duplicates`.
        """
        self._finish_writing()
        buffer = self._buffers.pop(host, [])
        self._buffered -= len(buffer)
        buffer.sort(key=order_key)
        runs = self._runs.pop(host, [])
        try:
            if _in_sequence(runs, buffer):
                # Input that arrived in order needs no merge: its runs follow one another.
                merged: Iterator[Event] = itertools.chain(
                    *(self._read_run(run) for run in runs), buffer
                )
            else:
                while len(runs) > self.max_open_runs:
                    runs = self._merge_pass(runs)
                merged = heapq.merge(*(self._read_run(run) for run in runs), buffer, key=order_key)
            yield from self._without_duplicates(host, merged)
        finally:
            for run in runs:
                self._release(run)

    def _merge_pass(self, runs: list[_Run]) -> list[_Run]:
        """Merge the oldest ``max_open_runs`` runs into one, so that fewer remain."""
        first, rest = runs[: self.max_open_runs], runs[self.max_open_runs :]
        path = self._new_file()
        with path.open("wb") as stream:
            merged = heapq.merge(*(self._read_run(run) for run in first), key=order_key)
            self._write_frames(stream.write, merged)
            size = stream.tell()
        for run in first:
            self._release(run)
        self._file_runs[path] = 1
        self.merge_passes += 1
        # The merged run contains the oldest events, so it goes first to keep read order on ties.
        merged_run = _Run(
            path,
            0,
            size,
            sum(run.events for run in first),
            min(run.first for run in first),
            max(run.last for run in first),
        )
        return [merged_run, *rest]

    def _read_run(self, run: _Run) -> Iterator[Event]:
        # Chaining the decoded frames keeps the loop over their events in C.
        return itertools.chain.from_iterable(self._read_frames(run))

    def _read_frames(self, run: _Run) -> Iterator[list[Event]]:
        with run.path.open("rb") as stream:
            stream.seek(run.start)
            position = run.start
            while position < run.end:
                (length,) = _FRAME_HEADER.unpack(stream.read(_FRAME_HEADER.size))
                data = stream.read(length)
                if len(data) != length:
                    raise OSError(f"{run.path}: run file ends inside a frame")
                position += _FRAME_HEADER.size + length
                yield self._decoder.decode(data)

    def _release(self, run: _Run) -> None:
        remaining = self._file_runs.get(run.path)
        if remaining is None:
            return
        if remaining > 1:
            self._file_runs[run.path] = remaining - 1
            return
        del self._file_runs[run.path]
        try:
            os.unlink(run.path)
        except OSError as exc:
            log.debug("cannot remove run file %s: %s", run.path, exc)

    def _without_duplicates(self, host: str, events: Iterator[Event]) -> Iterator[Event]:
        """Drop records equal to an earlier one in all but their evidence.

        Copies of one record share their time, so they meet among the events of that time in
        the merged order. A record is encoded only when another one has the same time.
        """
        tie_time: float | None = None
        first: Event | None = None
        seen: set[bytes] | None = None
        dropped = 0
        for event in events:
            if event.time != tie_time:
                tie_time, first, seen = event.time, event, None
                yield event
                continue
            if seen is None:
                assert first is not None
                seen = {self._identity(first)}
            identity = self._identity(event)
            if identity in seen:
                dropped += 1
                continue
            if len(seen) < MAX_TIE_IDENTITIES:
                seen.add(identity)
            yield event
        if dropped:
            self.duplicates[host] = self.duplicates.get(host, 0) + dropped

    def _identity(self, event: Event) -> bytes:
        return self._encoder.encode(msgspec.structs.replace(event, evidence=_NO_EVIDENCE))


def _in_sequence(runs: list[_Run], buffer: list[Event]) -> bool:
    """Tell whether each run ends at or before the next one starts, and the buffer comes last.

    Then chaining them gives the merged order, ties included, because a tie keeps read order.
    """
    keys = [(run.first, run.last) for run in runs]
    if buffer:
        keys.append((order_key(buffer[0]), order_key(buffer[-1])))
    return all(before[1] <= after[0] for before, after in itertools.pairwise(keys))
