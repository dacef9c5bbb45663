"""Liveness of components and blind windows of a host, in event time.

Every record that proves a component alive (an event of its process, its own log line, a
snapshot showing it running, a check-in) moves the component's last-seen time. When the host's
telemetry keeps flowing past a component's threshold while the component stays quiet, the
component is silent. When the whole host goes quiet for longer than the telemetry gap threshold,
that is a blind window of the host, not an impairment of any component. Gaps in the sequence
numbers of an Endpoint Security client are blind windows with a count of lost events.

The watermark of a host is the latest event time seen for it. It only moves forward, so one
record from a clock far in the future cannot make the host's components look silent. A few
records dated long before all the others (a clock reset to 1970 until the network set it) are
set aside the same way when the rest of the host's records arrive.

Data an engine drops to stay within a memory bound is reported as a blind window too, through
:class:`LimitRecorder`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from tamperwatch.inventory import Component
from tamperwatch.model import Event, Evidence

# A component with a stated heartbeat is silent after this many heartbeat intervals without a
# sign of life. Without one, it is silent after the telemetry gap threshold.
HEARTBEAT_INTERVALS_BEFORE_SILENT = 2

# A jump of the event time further than this past the watermark is treated as a bad clock, not as
# time passing (seconds).
MAX_CLOCK_JUMP_SECONDS = 7 * 24 * 3600

# Records before a jump past the clock limit that can be the wrong clock themselves. In time
# order, records from a clock stuck in the past (reset to 1970 until the network set it) come
# first. So when fewer than this many records came before the jump, and more records than that
# arrive after it, the earlier records are set aside and time restarts.
# NOTE: a host with more records than this before a jump keeps the earlier clock, so a second
# capture more than a week after the first is set aside as a wrong clock (with a warning).
CLOCK_SETTLE_RECORDS = 100

# A sequence number this far below the previous one means the ES client restarted.
SEQUENCE_RESTART_DROP = 1000

# A record whose sequence number is below one dated this much earlier (seconds) shows that the
# host clock stepped back between them.
CLOCK_STEP_BACK_SECONDS = 3600.0

# Gaps held per sequence while later records may still fill them; the oldest is reported when
# more open up.
MAX_OPEN_GAPS = 1000

# Blind windows kept per host. Each host gap and each sequence gap makes one, so spread-out or
# gapped input could make millions. Past this, further windows are merged into one.
MAX_BLIND_WINDOWS = 10_000
WINDOWS_MERGED = "blind window limit: {count} more blind windows of this host merged into this one"


@dataclass
class BlindWindow:
    """A span of event time in which detection on a host was impossible, and why."""

    host: str
    start: float
    end: float
    reason: str
    component: str | None = None
    events_lost: int | None = None
    evidence: list[Evidence] = field(default_factory=list)


@dataclass
class _Dropped:
    start: float
    end: float
    count: int


# Margin (seconds) by which the earliest time a component can become overdue is lowered, so that
# rounding in the sum never skips a check that the exact test would pass.
DUE_MARGIN_SECONDS = 0.001

# Reasons and components counted separately by a LimitRecorder. Drops of further components are
# counted without their component.
MAX_LIMIT_KEYS = 1_000


class LimitRecorder:
    """Data one host's engine dropped to stay within a memory bound, reported as blind windows.

    Each kind of drop is one window from its first to its last occurrence, with the count in its
    reason. ``reason`` is a constant template with a ``{count}`` field.
    """

    def __init__(self, host: str) -> None:
        self.host = host
        self._dropped: dict[tuple[str, str | None], _Dropped] = {}

    def dropped(
        self,
        reason: str,
        start: float,
        end: float | None = None,
        *,
        count: int = 1,
        component: str | None = None,
    ) -> None:
        """Count ``count`` items dropped from ``start`` to ``end`` (seconds since the epoch)."""
        end = start if end is None else end
        key = (reason, component)
        entry = self._dropped.get(key)
        if entry is None and component is not None and len(self._dropped) >= MAX_LIMIT_KEYS:
            key = (reason, None)
            entry = self._dropped.get(key)
        if entry is None:
            self._dropped[key] = _Dropped(start, end, count)
            return
        entry.start = min(entry.start, start)
        entry.end = max(entry.end, end)
        entry.count += count

    def count(self, reason: str, component: str | None = None) -> int:
        """Return how many items were dropped for one reason (and component)."""
        entry = self._dropped.get((reason, component))
        return entry.count if entry is not None else 0

    def windows(self) -> list[BlindWindow]:
        """Return one blind window per reason and component, in the order first recorded."""
        return [
            BlindWindow(
                self.host,
                entry.start,
                entry.end,
                reason.format(count=f"{entry.count:,}"),
                component=component,
            )
            for (reason, component), entry in self._dropped.items()
        ]


@dataclass
class _Gap:
    """Sequence numbers missing between two records, until the input ends or they arrive."""

    after: int
    before: int
    missing: int
    start: float
    end: float
    evidence: list[Evidence]


@dataclass
class _Life:
    component: Component
    last_seen: float
    last_evidence: Evidence
    threshold: float
    silent_since: float | None = None


@dataclass
class Silence:
    """A component that stopped showing signs of life while its host kept reporting."""

    component: Component
    since: float
    detected_at: float
    last_evidence: Evidence
    proof_of_host: Evidence
    # When the component became overdue: its last sign of life plus its threshold.
    overdue_at: float = 0.0
    ended_at: float | None = None
    end_evidence: Evidence | None = None


class LivenessTracker:
    """Track signs of life of one host's components, host gaps and sequence gaps."""

    def __init__(
        self, host: str, gap_threshold: float, limits: LimitRecorder | None = None
    ) -> None:
        self.host = host
        self.gap_threshold = gap_threshold
        self.watermark: float | None = None
        self.blind_windows: list[BlindWindow] = []
        # Counts the blind windows past MAX_BLIND_WINDOWS; the engine reports them.
        self.limits = limits if limits is not None else LimitRecorder(host)
        self._life: dict[str, _Life] = {}
        self._open_silence: dict[str, Silence] = {}
        # No component outside an open silence can be overdue before this time, so most events
        # skip the loop over the components.
        self._next_due = math.inf
        self._last_event: tuple[float, Evidence] | None = None
        # (file, sequence kind) -> last sequence number and the evidence of its record. Kinds
        # are the ES event names the readers know (and "unknown"), so this grows with the
        # number of input files only, as the scan's per-file counts do.
        self._sequences: dict[tuple[str, str], tuple[int, float, Evidence]] = {}
        self._gaps: dict[tuple[str, str], list[_Gap]] = {}
        self.clock_jumps = 0
        # Records numbered before records that carry an earlier time, and the first such pair:
        # (record with the later number, record with the earlier number).
        # NOTE: such a step back is only reported. The blind window that the stepped-back
        # records open in event time stays, and may be false.
        self.clock_steps_back = 0
        self.clock_step_evidence: tuple[Evidence, Evidence] | None = None
        # Records accepted since time started (or restarted), and records past the clock limit
        # since the last accepted one.
        self._accepted = 0
        self._ahead = 0
        # Whether the last event given to advance() was set aside as a bad clock.
        self.rejected = False
        # Time of the first record accepted since time started or restarted (epoch seconds).
        self.started: float | None = None

    # time --------------------------------------------------------------------------------------

    def advance(self, event: Event) -> list[Silence]:
        """Move the watermark with one event and return the components found silent by it."""
        when = event.time
        self.rejected = (
            self.watermark is not None and when > self.watermark + MAX_CLOCK_JUMP_SECONDS
        )
        if self.rejected and self._accepted < CLOCK_SETTLE_RECORDS:
            self._ahead += 1
            if self._ahead > self._accepted:
                self._restart_clock(when)
        if self.rejected:
            self.clock_jumps += 1
            return []
        if self._accepted == 0:
            self.started = when
        self._accepted += 1
        if self._ahead:
            self._ahead = 0
        previous = self._last_event
        self._last_event = (when, event.evidence)
        if previous is not None and when - previous[0] > self.gap_threshold:
            self.add_window(
                BlindWindow(
                    self.host,
                    previous[0],
                    when,
                    "no telemetry from the host",
                    evidence=[previous[1], event.evidence],
                )
            )
            # Nothing could be seen during the gap, so components start afresh after it.
            for life in self._life.values():
                life.last_seen = max(life.last_seen, when)
        if self.watermark is None or when > self.watermark:
            self.watermark = when
        if when <= self._next_due:
            return []
        return self._check_silence(event)

    def _restart_clock(self, when: float) -> None:
        """Set aside the records before a jump as the wrong clock, and restart at ``when``.

        They were used already, but they neither open a blind window up to ``when`` nor count
        as a component's last sign of life. The records after the jump that came before this
        decision are no longer counted as a wrong clock, although they were not used.
        """
        self.clock_jumps += self._accepted - (self._ahead - 1)
        self._accepted = 0
        self._ahead = 0
        self.watermark = None
        self._last_event = None
        for life in self._life.values():
            life.last_seen = max(life.last_seen, when)
        self.rejected = False

    def add_window(self, window: BlindWindow) -> None:
        """Keep a blind window, or merge it into one window past :data:`MAX_BLIND_WINDOWS`."""
        if len(self.blind_windows) < MAX_BLIND_WINDOWS:
            self.blind_windows.append(window)
        else:
            self.limits.dropped(WINDOWS_MERGED, window.start, window.end)

    def _check_silence(self, event: Event) -> list[Silence]:
        now = event.time
        found: list[Silence] = []
        next_due = math.inf
        for component_id, life in self._life.items():
            if component_id in self._open_silence:
                continue
            if now - life.last_seen <= life.threshold:
                next_due = min(next_due, life.last_seen + life.threshold - DUE_MARGIN_SECONDS)
            else:
                silence = Silence(
                    life.component,
                    since=life.last_seen,
                    detected_at=now,
                    last_evidence=life.last_evidence,
                    proof_of_host=event.evidence,
                    overdue_at=life.last_seen + life.threshold,
                )
                self._open_silence[component_id] = silence
                found.append(silence)
        self._next_due = next_due
        return found

    # signs of life -----------------------------------------------------------------------------

    def alive(
        self, component: Component, when: float, evidence: Evidence, default_threshold: float
    ) -> Silence | None:
        """Record a sign of life; return the silence it ends, if any."""
        life = self._life.get(component.id)
        threshold = (
            HEARTBEAT_INTERVALS_BEFORE_SILENT * component.heartbeat_seconds
            if component.heartbeat_seconds
            else default_threshold
        )
        if life is None:
            self._life[component.id] = _Life(component, when, evidence, threshold)
            self._next_due = min(self._next_due, when + threshold - DUE_MARGIN_SECONDS)
            return None
        if when >= life.last_seen:
            life.last_seen = when
            life.last_evidence = evidence
        silence = self._open_silence.pop(component.id, None)
        if silence is not None:
            due = life.last_seen + life.threshold - DUE_MARGIN_SECONDS
            self._next_due = min(self._next_due, due)
            silence.ended_at = when
            silence.end_evidence = evidence
            self.add_window(
                BlindWindow(
                    self.host,
                    silence.since,
                    when,
                    f"{component.product} reported nothing",
                    component=component.id,
                    evidence=[silence.last_evidence, evidence],
                )
            )
        return silence

    @property
    def components_seen(self) -> set[str]:
        """Ids of the components that showed life on this host."""
        return set(self._life)

    # sequence numbers --------------------------------------------------------------------------

    def sequence(self, event: Event) -> None:
        """Check the ES sequence numbers of an event for a gap.

        Records are checked in event time, where a record with an odd time can come late. A gap
        is therefore held until the input ends, and numbers that arrive later fill it.
        """
        # global_seq_num counts every message of the client; without it (some exports drop it),
        # seq_num counts the messages of one event type.
        if event.global_seq_num is not None:
            key = (event.evidence.file, "global")
            number = event.global_seq_num
        elif event.seq_num is not None:
            key = (event.evidence.file, event.kind)
            number = event.seq_num
        else:
            return
        previous = self._sequences.get(key)
        if previous is None or number < previous[0] - SEQUENCE_RESTART_DROP:
            self._sequences[key] = (number, event.time, event.evidence)
            return
        last, last_time, last_evidence = previous
        if number <= last:
            if event.time - last_time > CLOCK_STEP_BACK_SECONDS:
                self.clock_steps_back += 1
                if self.clock_step_evidence is None:
                    self.clock_step_evidence = (last_evidence, event.evidence)
            self._fill(key, number)
            return
        self._sequences[key] = (number, event.time, event.evidence)
        if number == last + 1:
            return
        gaps = self._gaps.setdefault(key, [])
        if len(gaps) >= MAX_OPEN_GAPS:
            self._report_gap(key, gaps.pop(0))
        gaps.append(
            _Gap(
                last,
                number,
                number - last - 1,
                last_time,
                event.time,
                [last_evidence, event.evidence],
            )
        )

    def _fill(self, key: tuple[str, str], number: int) -> None:
        for gap in self._gaps.get(key, ()):
            if gap.after < number < gap.before:
                gap.missing -= 1
                return

    def _report_gap(self, key: tuple[str, str], gap: _Gap) -> None:
        if gap.missing <= 0:
            return
        kind = "" if key[1] == "global" else f" of type {key[1]}"
        self.add_window(
            BlindWindow(
                self.host,
                gap.start,
                gap.end,
                f"the Endpoint Security client lost {gap.missing} events{kind}",
                events_lost=gap.missing,
                evidence=gap.evidence,
            )
        )

    def finish(self) -> None:
        """Report the sequence gaps never filled and close the silences still open."""
        for key, gaps in self._gaps.items():
            for gap in gaps:
                self._report_gap(key, gap)
        self._gaps.clear()
        # Input ending is not silence. A silence still open here was detected while the host
        # reported, so its blind window runs to the last event of the host.
        for component_id, silence in self._open_silence.items():
            if self.watermark is not None:
                self.add_window(
                    BlindWindow(
                        self.host,
                        silence.since,
                        self.watermark,
                        f"{silence.component.product} reported nothing until the input ended",
                        component=component_id,
                        evidence=[silence.last_evidence],
                    )
                )
