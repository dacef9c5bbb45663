"""Process table built from fork, exec and exit events, keyed by ``(pid, pidversion)``.

Every Endpoint Security message describes its instigating process in full, so the table also
learns processes whose fork or exec happened before the capture began. ``exec`` keeps the pid
and gets a new pidversion. The new image keeps the parent of the old one, so ancestry follows
the real process tree (``zsh -> sudo -> launchctl``) rather than the image history.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from tamperwatch.liveness import LimitRecorder
from tamperwatch.model import Event, Process

Key = tuple[int, int]

# Deepest ancestry walked; a cycle or a pathological chain stops here.
MAX_ANCESTRY_DEPTH = 64

# Entries kept per host. The least recently seen are evicted first, so a fork storm of unique
# pids cannot grow the table without bound.
MAX_ENTRIES = 200_000
TABLE_FULL = "process table full: {count} process images forgotten, ancestry incomplete"

# Characters of command line kept per process (the sum of its arguments). macOS accepts up to
# ARG_MAX (1 MiB) per exec, and every entry and every actor chain keeps a copy.
MAX_ARGS_CHARS = 16 * 1024
ARGS_CUT = (
    f"command line limit: {{count}} command lines longer than {MAX_ARGS_CHARS:,} characters "
    "were cut"
)


@dataclass
class Entry:
    """Facts recorded about one process image."""

    key: Key
    parent: Key | None
    path: str | None
    args: list[str] | None = None
    team_id: str | None = None
    signing_id: str | None = None
    platform_binary: bool | None = None
    tty: bool = False
    euid: int | None = None
    group_id: int | None = None
    session_id: int | None = None
    exited: float | None = None

    @property
    def pid(self) -> int:
        return self.key[0]


class ProcessTable:
    """Per-host table of process images with ancestry lookups."""

    def __init__(self, max_entries: int | None = None, limits: LimitRecorder | None = None) -> None:
        self._entries: OrderedDict[Key, Entry] = OrderedDict()
        self._latest: dict[int, Key] = {}
        # Read at construction, not import, so that a test can lower the module's limit.
        self._max_entries = MAX_ENTRIES if max_entries is None else max_entries
        self.evicted = 0
        # Where evictions and cut command lines are reported, with the time of the event applied.
        self.limits = limits
        self._now = 0.0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Key | None) -> Entry | None:
        return self._entries.get(key) if key is not None else None

    def latest(self, pid: int) -> Entry | None:
        """Return the most recent image seen with this pid."""
        return self.get(self._latest.get(pid))

    def key_of(self, process: Process | None) -> Key | None:
        """Return the table key of a process, guessing the pidversion from the latest image."""
        if process is None:
            return None
        if process.pidversion is not None:
            return (process.pid, process.pidversion)
        known = self._latest.get(process.pid)
        return known if known is not None else (process.pid, -1)

    def observe(self, process: Process | None) -> Entry | None:
        """Learn a process from a record's description of it, or return the known entry."""
        if process is None:
            return None
        key = self.key_of(process)
        assert key is not None
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
            if entry.path is None and process.path is not None:
                entry.path = process.path
            return entry
        return self._insert(key, self._parent_key(process), process)

    def apply(self, event: Event) -> None:
        """Update the table from one event: fork and exec add images, exit marks one ended."""
        self._now = event.time
        actor = self.observe(event.process)
        if event.kind == "fork" and event.target is not None:
            child_key = self.key_of(event.target)
            assert child_key is not None
            parent = actor.key if actor is not None else self._parent_key(event.target)
            self._insert(child_key, parent, event.target)
        elif event.kind == "exec" and event.target is not None:
            image_key = self.key_of(event.target)
            assert image_key is not None
            parent = actor.parent if actor is not None else self._parent_key(event.target)
            entry = self._insert(image_key, parent, event.target)
            if event.target.args is None:
                # The new image's command line is unknown; the old image's is not its own.
                entry.args = None
            if actor is not None and actor.key != image_key:
                actor.exited = event.time
        elif event.kind == "exit" and actor is not None:
            actor.exited = event.time

    def ancestry(self, entry: Entry) -> list[Entry]:
        """Return the ancestors of an entry, nearest first, up to launchd or the first unknown."""
        chain: list[Entry] = []
        seen = {entry.key}
        current = entry
        while len(chain) < MAX_ANCESTRY_DEPTH:
            parent = self._entries.get(current.parent) if current.parent is not None else None
            if parent is None or parent.key in seen:
                break
            chain.append(parent)
            seen.add(parent.key)
            if parent.pid <= 1:
                break
            current = parent
        return chain

    def prune(self, before: float) -> int:
        """Forget images that exited before ``before`` (seconds since the epoch)."""
        stale = [
            key
            for key, entry in self._entries.items()
            if entry.exited is not None and entry.exited < before
        ]
        for key in stale:
            self._remove(key)
        return len(stale)

    def _parent_key(self, process: Process) -> Key | None:
        if process.ppid is None:
            return None
        if process.parent_pidversion is not None:
            return (process.ppid, process.parent_pidversion)
        return self._latest.get(process.ppid, (process.ppid, -1))

    def _insert(self, key: Key, parent: Key | None, process: Process) -> Entry:
        entry = self._entries.get(key)
        if entry is None:
            entry = Entry(key=key, parent=parent, path=process.path)
            self._entries[key] = entry
            if len(self._entries) > self._max_entries:
                oldest, _ = self._entries.popitem(last=False)
                if self._latest.get(oldest[0]) == oldest:
                    del self._latest[oldest[0]]
                self.evicted += 1
                if self.limits is not None:
                    self.limits.dropped(TABLE_FULL, self._now)
        else:
            self._entries.move_to_end(key)
            entry.parent = parent if parent is not None else entry.parent
            entry.path = process.path or entry.path
        entry.team_id = process.team_id or entry.team_id
        entry.signing_id = process.signing_id or entry.signing_id
        if process.platform_binary is not None:
            entry.platform_binary = process.platform_binary
        entry.tty = entry.tty or process.tty
        entry.euid = process.euid if process.euid is not None else entry.euid
        entry.group_id = process.group_id if process.group_id is not None else entry.group_id
        if process.session_id is not None:
            entry.session_id = process.session_id
        if process.args is not None:
            entry.args = self._bounded_args(process.args)
        previous = self._latest.get(key[0])
        if previous is None or previous[1] <= key[1] or previous[1] == -1:
            self._latest[key[0]] = key
        return entry

    def _bounded_args(self, args: list[str] | None) -> list[str] | None:
        """Return ``args``, or a copy cut to :data:`MAX_ARGS_CHARS` characters in all."""
        if args is None or sum(map(len, args)) <= MAX_ARGS_CHARS:
            return args
        kept: list[str] = []
        room = MAX_ARGS_CHARS
        for arg in args:
            if room <= 0:
                break
            kept.append(arg[:room])
            room -= len(arg)
        if self.limits is not None:
            self.limits.dropped(ARGS_CUT, self._now)
        return kept

    def _remove(self, key: Key) -> None:
        self._entries.pop(key, None)
        if self._latest.get(key[0]) == key:
            del self._latest[key[0]]
