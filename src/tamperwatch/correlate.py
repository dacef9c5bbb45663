"""Correlation of one host's signals into incidents, with attribution and explanations.

Signals arrive in event-time order. A signal joins an open incident of the same host when it
falls inside ``crash_correlation_window`` of that incident's last signal and concerns the same
component or comes from the same actor group (login session or process tree). An impairment
without a known actor inherits the actor of the actions before it. When an Endpoint Security
client is killed or crashes right after a flood of events from one process group, the leader of
that group becomes the actor.
"""

from __future__ import annotations

import hashlib
import posixpath
from collections import Counter, deque
from dataclasses import dataclass, field

from tamperwatch import signals as sig
from tamperwatch.explain import Span
from tamperwatch.incident import (
    SEVERITIES,
    ActorRecord,
    AncestorRecord,
    AttackRecord,
    ComponentRef,
    EvidenceRef,
    Incident,
    SignalRecord,
    Status,
)
from tamperwatch.inventory import Component, Inventory
from tamperwatch.liveness import LimitRecorder
from tamperwatch.model import Event, Evidence
from tamperwatch.process_table import ProcessTable
from tamperwatch.signals import Actor, Signal
from tamperwatch.timeutil import format_rfc3339

ANALYTIC = "AN2040"

# Failures that an action by the component's own vendor does not explain.
FAILURE_KINDS = frozenset({sig.CRASHED, sig.ES_CLIENT_TERMINATED, sig.ES_CLIENT_DEGRADED})

# Distinct process groups counted per second of event time, and over the whole correlation
# window (about 250 bytes each). The events of further groups are pooled and counted in the
# total only, so that a storm of unique groups cannot grow memory without bound.
MAX_GROUPS_PER_SECOND = 4096
MAX_FLOOD_GROUPS = 65_536
FLOOD_POOLED = (
    "flood tracking limit: {count} events of process groups beyond the first "
    f"{MAX_FLOOD_GROUPS:,} in the correlation window were not attributed to their group"
)

# Limits of one host's correlation. Hostile input can make a signal of nearly every event (a
# loop of kill -9 on an agent), and every signal keeps its actor chain of up to 64 processes.
# Signals kept in one incident, and in all incidents of a host. Past either limit, a signal is
# kept only when it can change the verdict or the severity (a new kind of signal, or the first
# untrusted action).
MAX_SIGNALS_PER_INCIDENT = 500
MAX_SIGNALS_PER_HOST = 50_000
SIGNALS_DROPPED = (
    "incident signal limit: {count} signals beyond the first "
    f"{MAX_SIGNALS_PER_INCIDENT:,} of an incident, or {MAX_SIGNALS_PER_HOST:,} of the host, "
    "were counted but not listed"
)
# Incidents reported per host; the signals of further incidents are dropped.
MAX_INCIDENTS_PER_HOST = 1_000
INCIDENTS_DROPPED = (
    f"incident limit: {{count}} signals were not reported because the host already has "
    f"{MAX_INCIDENTS_PER_HOST:,} incidents"
)
# Incidents open at once. Each signal is compared with every open incident, so past this the
# incident updated longest ago is closed early, and later signals cannot join it.
MAX_OPEN_INCIDENTS = 256
CLOSED_EARLY = (
    f"correlation limit: {{count}} incidents were closed early because {MAX_OPEN_INCIDENTS} "
    "were open at once; related signals after that form separate incidents"
)
# Evidence records listed per signal (one observation reported by several sources or records).
MAX_EVIDENCE_PER_SIGNAL = 64
EVIDENCE_DROPPED = (
    "evidence limit: {count} records reporting an observation already listed "
    f"{MAX_EVIDENCE_PER_SIGNAL} times were not listed"
)
# Kinds and components with crash or deadline signals held for a burst.
MAX_BURST_KEYS = 1_024
BURST_DROPPED = (
    f"burst tracking limit: {{count}} signals were not held for a burst because "
    f"{MAX_BURST_KEYS:,} components already had signals held"
)
# Explanation spans (shutdowns, updates, sleeps) kept per host. Fewer spans can only leave an
# incident suspicious that a span would have explained.
MAX_SPANS = 10_000
SPANS_DROPPED = (
    "explanation span limit: {count} shutdowns, updates or sleeps were not kept; incidents "
    "during them may be reported as suspicious"
)


@dataclass
class _Bucket:
    second: int
    counts: Counter[int] = field(default_factory=Counter)
    first_evidence: dict[int, tuple[float, Evidence]] = field(default_factory=dict)
    total: int = 0


class FloodTracker:
    """Events per process group per second of event time, over the correlation window."""

    def __init__(self, window: float, limits: LimitRecorder | None = None) -> None:
        self.window = window
        self.limits = limits
        self._buckets: deque[_Bucket] = deque()
        # Groups counted over all buckets.
        self._groups = 0

    def add(self, event: Event) -> None:
        process = event.process
        if process is None:
            return
        group = process.group_id if process.group_id is not None else process.pid
        second = int(event.time)
        buckets = self._buckets
        if not buckets or buckets[-1].second != second:
            if buckets and second < buckets[-1].second:
                return
            buckets.append(_Bucket(second))
            horizon = second - self.window
            while buckets and buckets[0].second < horizon:
                self._groups -= len(buckets.popleft().counts)
        bucket = buckets[-1]
        bucket.total += 1
        counts = bucket.counts
        if group in counts:
            counts[group] += 1
        elif len(counts) < MAX_GROUPS_PER_SECOND and self._groups < MAX_FLOOD_GROUPS:
            counts[group] = 1
            bucket.first_evidence[group] = (event.time, event.evidence)
            self._groups += 1
        elif self.limits is not None:
            self.limits.dropped(FLOOD_POOLED, event.time)

    def top(self, until: float) -> tuple[int, int, int, float, Evidence] | None:
        """Return ``(group, events, all_events, first_time, first_evidence)`` of the busiest group."""
        totals: Counter[int] = Counter()
        first: dict[int, tuple[float, Evidence]] = {}
        everything = 0
        for bucket in self._buckets:
            if bucket.second > until or bucket.second < until - self.window:
                continue
            totals.update(bucket.counts)
            everything += bucket.total
            for group, evidence in bucket.first_evidence.items():
                first.setdefault(group, evidence)
        if not totals:
            return None
        group, count = totals.most_common(1)[0]
        first_time, first_evidence = first[group]
        return group, count, everything, first_time, first_evidence


@dataclass
class _Open:
    """An incident being built."""

    signals: list[Signal]
    components: dict[str, Component]
    groups: set[tuple[str, int]]
    last: float
    # Kind, action, persistence and severity of the signals kept: what judging depends on.
    shapes: set[tuple[str, bool, bool, int | None]] = field(default_factory=set)
    # Whether a kept action is not the component's own maintenance; None until the incident
    # first reaches its signal limit.
    untrusted: bool | None = None
    # Latest time of a signal counted but not kept.
    dropped_until: float | None = None
    # Component families of ``components``, and the kept signals about one pid by
    # (pid, kind, component id), so that a signal is compared with its likely matches only.
    families: set[str] = field(default_factory=set)
    observations: dict[tuple[int, str, str], list[Signal]] = field(default_factory=dict)

    @property
    def first(self) -> Signal:
        return self.signals[0]


class HostCorrelator:
    """Group one host's signals into incidents and judge each incident."""

    def __init__(
        self,
        host: str,
        inventory: Inventory,
        table: ProcessTable,
        window: float,
        burst_threshold: int,
        flood_threshold: int,
        limits: LimitRecorder | None = None,
    ) -> None:
        self.host = host
        self.inventory = inventory
        self.table = table
        self.window = window
        self.burst_threshold = burst_threshold
        self.flood_threshold = flood_threshold
        # Where the correlation limits report what they drop.
        self.limits = limits if limits is not None else LimitRecorder(host)
        self.flood = FloodTracker(window, self.limits)
        self._open: list[_Open] = []
        self._done: list[_Open] = []
        self._signals_kept = 0
        self._pending_bursts: dict[tuple[str, str], deque[Signal]] = {}
        # Explanation spans seen in the telemetry (shutdowns, updates) and configured windows.
        self.spans: list[Span] = []
        self.maintenance_windows: list[Span] = []

    def add(self, signal: Signal) -> None:
        self._close_stale(signal.time)
        if signal.burst_only:
            released = self._release_burst(signal)
            if not released:
                return
            for held in released:
                self._place(held)
            return
        self._place(signal)

    def add_span(self, span: Span) -> None:
        """Keep an explanation span seen in the telemetry, up to :data:`MAX_SPANS`."""
        if len(self.spans) < MAX_SPANS:
            self.spans.append(span)
        else:
            self.limits.dropped(SPANS_DROPPED, span.start, span.end)

    def finish(self) -> list[Incident]:
        self._done.extend(self._open)
        self._open = []
        return [self._build(incident) for incident in self._done]

    # grouping ----------------------------------------------------------------------------------

    def _place(self, signal: Signal) -> None:
        incident = self._find(signal)
        if incident is None:
            if len(self._open) + len(self._done) >= MAX_INCIDENTS_PER_HOST:
                self._drop(INCIDENTS_DROPPED, signal)
                return
            if signal.actor is None and signal.kind in (sig.ES_CLIENT_TERMINATED, sig.CRASHED):
                flood = self._flood_signal(signal)
                if flood is not None:
                    incident = self._new(flood)
            if incident is None:
                self._new(signal)
                return
        incident.last = max(incident.last, signal.time)
        duplicate = _same_observation(incident, signal)
        if duplicate is not None:
            self._merge_evidence(duplicate, signal)
            if duplicate.actor is None and signal.actor is not None:
                duplicate.actor = signal.actor
                duplicate.action = signal.action
            if signal.actor is not None:
                incident.groups.add(signal.actor.group)
            return
        if not self._keep(incident, signal):
            self._drop(SIGNALS_DROPPED, signal)
            incident.dropped_until = max(incident.dropped_until or signal.time, signal.time)
            return
        _append(incident, signal)
        self._signals_kept += 1

    def _keep(self, incident: _Open, signal: Signal) -> bool:
        """Tell whether a signal joining an incident is kept within the signal limits."""
        if (
            len(incident.signals) < MAX_SIGNALS_PER_INCIDENT
            and self._signals_kept < MAX_SIGNALS_PER_HOST
        ):
            return True
        if _shape(signal) not in incident.shapes:
            return True
        if not signal.action or signal.actor is None:
            return False
        if incident.untrusted is None:
            incident.untrusted = any(self._untrusted(s) for s in incident.signals)
        if incident.untrusted or not self._untrusted(signal):
            return False
        incident.untrusted = True
        return True

    def _untrusted(self, signal: Signal) -> bool:
        return (
            signal.action
            and signal.actor is not None
            and sig.trusted_lineage(signal.actor, signal.component, self.inventory) is None
        )

    def _merge_evidence(self, listed: Signal, signal: Signal) -> None:
        for evidence in signal.evidence:
            if evidence in listed.evidence:
                continue
            if len(listed.evidence) >= MAX_EVIDENCE_PER_SIGNAL:
                self._drop(EVIDENCE_DROPPED, signal)
                continue
            listed.evidence.append(evidence)

    def _drop(self, reason: str, signal: Signal) -> None:
        component = signal.component.id if signal.component is not None else None
        self.limits.dropped(reason, signal.time, component=component)

    def _find(self, signal: Signal) -> _Open | None:
        best: _Open | None = None
        for incident in self._open:
            if signal.time - incident.last > self.window:
                continue
            same_component = (
                signal.component is not None and _family(signal.component.id) in incident.families
            )
            same_group = signal.actor is not None and signal.actor.group in incident.groups
            if (same_component or same_group) and (best is None or incident.last >= best.last):
                best = incident
        return best

    def _new(self, signal: Signal) -> _Open:
        if len(self._open) >= MAX_OPEN_INCIDENTS:
            oldest = min(self._open, key=lambda incident: incident.last)
            self._open.remove(oldest)
            self._done.append(oldest)
            self.limits.dropped(CLOSED_EARLY, oldest.last, signal.time)
        incident = _Open(signals=[], components={}, groups=set(), last=signal.time)
        _append(incident, signal)
        self._signals_kept += 1
        self._open.append(incident)
        return incident

    def _close_stale(self, now: float) -> None:
        still_open = []
        for incident in self._open:
            if now - incident.last > self.window:
                self._done.append(incident)
            else:
                still_open.append(incident)
        self._open = still_open

    def _release_burst(self, signal: Signal) -> list[Signal]:
        key = (signal.kind, signal.component.id if signal.component else "")
        held = self._pending_bursts.get(key)
        if held is None:
            if len(self._pending_bursts) >= MAX_BURST_KEYS:
                self._forget_stale_bursts(signal.time)
            if len(self._pending_bursts) >= MAX_BURST_KEYS:
                self._drop(BURST_DROPPED, signal)
                return []
            held = self._pending_bursts[key] = deque(maxlen=max(self.burst_threshold, 1) * 64)
        while held and signal.time - held[0].time > self.window:
            held.popleft()
        held.append(signal)
        if len(held) < self.burst_threshold:
            return []
        released = list(held)
        held.clear()
        return released

    def _forget_stale_bursts(self, now: float) -> None:
        stale = [
            key
            for key, held in self._pending_bursts.items()
            if not held or now - held[-1].time > self.window
        ]
        for key in stale:
            del self._pending_bursts[key]

    def _flood_signal(self, signal: Signal) -> Signal | None:
        top = self.flood.top(signal.time)
        if top is None:
            return None
        group, count, everything, started, evidence = top
        if count < self.flood_threshold or count * 2 < everything:
            return None
        leader = self.table.latest(group)
        actor = Actor.from_entry(self.table, leader) if leader is not None else None
        name = posixpath.basename(leader.path or "") if leader is not None else f"group {group}"
        summary = (
            f"{count} events from process group {group} ({name}) in the "
            f"{int(signal.time - started)} s before the failure, "
            f"{count * 100 // max(everything, 1)}% of the host's events"
        )
        return Signal(
            kind=sig.EVENT_FLOOD,
            time=started,
            component=signal.component,
            summary=summary,
            evidence=[evidence],
            actor=actor,
        )

    # judging -----------------------------------------------------------------------------------

    def _build(self, incident: _Open) -> Incident:
        signals = sorted(incident.signals, key=lambda s: s.time)
        actor = self._lead_actor(signals)
        components = list(incident.components.values())
        status, explanation = self._judge(signals, incident.dropped_until)
        severity = self._severity(signals, components, actor)
        if status == "explained":
            severity = 0
        techniques = sorted({t for s in signals for t in s.techniques})
        first = signals[0]
        last = max(max(s.time for s in signals), incident.dropped_until or first.time)
        return Incident(
            id=_incident_id(self.host, first),
            host=self.host,
            first_seen=format_rfc3339(first.time),
            last_seen=format_rfc3339(last),
            status=status,
            explanation=explanation,
            severity=SEVERITIES[severity],
            title=self._title(signals, components, actor),
            components=[ComponentRef(c.id, c.product, c.vendor) for c in components],
            signals=[_signal_record(s) for s in signals],
            actor=_actor_record(actor) if actor is not None else None,
            attack=AttackRecord(ANALYTIC, techniques),
        )

    def _lead_actor(self, signals: list[Signal]) -> Actor | None:
        """Return the actor of the first action by the least trusted process of an incident.

        When a platform tool starts an impairment and a third-party binary finishes it (a
        ``launchctl bootout`` followed by a SIGKILL from an unsigned program), the program is
        the one an analyst has to look at. Untrusted lineage ranks first, then a masquerade,
        then a binary that is not Apple's.
        """
        best: Actor | None = None
        best_rank = -1
        for signal in signals:
            actor = signal.actor
            if actor is None or not signal.action:
                continue
            rank = 0
            if sig.trusted_lineage(actor, signal.component, self.inventory) is None:
                rank += 4
            if actor.masquerade:
                rank += 2
            if actor.process.platform_binary is False:
                rank += 1
            if rank > best_rank:
                best, best_rank = actor, rank
        return best

    def _judge(
        self, signals: list[Signal], dropped_until: float | None = None
    ) -> tuple[Status, str | None]:
        status, reason = self._judge_actors(signals)
        if status == "explained":
            return status, reason
        span = self._covering_span(signals, dropped_until)
        if span is not None:
            return "explained", span.describe()
        return status, reason

    def _covering_span(
        self, signals: list[Signal], dropped_until: float | None = None
    ) -> Span | None:
        """Return an approved window, or a shutdown or update, that covers the whole incident.

        An approved maintenance window covers actions by anyone. A shutdown or an OS update
        seen in the telemetry only covers incidents without an untrusted action in them.
        ``dropped_until`` is the latest signal counted but not kept, which the span must cover
        too.
        """
        if any(s.persistent for s in signals):
            return None
        first = min(s.overdue_at if s.overdue_at is not None else s.time for s in signals)
        last = max(s.until if s.kind == sig.TELEMETRY_SILENT else s.time for s in signals)
        if dropped_until is not None:
            last = max(last, dropped_until)
        component_ids = sorted({s.component.id for s in signals if s.component is not None})
        for window in self.maintenance_windows:
            if window.covers(self.host, component_ids, first, last):
                return window
        untrusted = any(
            s.actor is not None
            and s.action
            and sig.trusted_lineage(s.actor, s.component, self.inventory) is None
            for s in signals
        )
        if untrusted:
            return None
        for span in self.spans:
            if span.covers(self.host, component_ids, first, last):
                return span
        return None

    def _judge_actors(self, signals: list[Signal]) -> tuple[Status, str | None]:
        actions = [s for s in signals if s.actor is not None and s.action]
        if not actions:
            return "suspicious", None
        # Maintenance stops a component; it does not make it crash. A crash inside a maintenance
        # incident (a new version that keeps failing) keeps the incident suspicious.
        if any(s.kind in FAILURE_KINDS and not s.action for s in signals):
            return "suspicious", None
        reasons = []
        for signal in actions:
            assert signal.actor is not None
            reason = sig.trusted_lineage(signal.actor, signal.component, self.inventory)
            if reason is None:
                return "suspicious", None
            reasons.append(reason)
        return "explained", reasons[0]

    def _severity(
        self, signals: list[Signal], components: list[Component], actor: Actor | None
    ) -> int:
        score = max(s.severity or 0 for s in signals)
        crashes: Counter[str] = Counter(
            s.component.id for s in signals if s.kind == sig.CRASHED and s.component is not None
        )
        if crashes and max(crashes.values()) >= self.burst_threshold:
            score = max(score, 2)
        kinds = {s.kind for s in signals}
        if (
            len(kinds) >= 2
            and any(not s.action for s in signals)
            and any(s.action for s in signals)
        ):
            score += 1
        if len({_family(c.id) for c in components}) >= 2:
            score += 1
        if actor is not None and actor.masquerade:
            score += 1
        return min(score, len(SEVERITIES) - 1)

    def _title(
        self, signals: list[Signal], components: list[Component], actor: Actor | None
    ) -> str:
        names = ", ".join(c.product for c in components[:3]) or "unknown component"
        if len(components) > 3:
            names += f" and {len(components) - 3} more"
        crashes: Counter[str] = Counter(
            s.component.id for s in signals if s.kind == sig.CRASHED and s.component is not None
        )
        kinds: list[str] = []
        for signal in signals:
            label = _KIND_LABELS.get(signal.kind, signal.kind)
            if label not in kinds:
                kinds.append(label)
        if crashes and max(crashes.values()) >= self.burst_threshold:
            count = max(crashes.values())
            kinds = [f"crash burst ({count} crashes)" if k == "crashed" else k for k in kinds]
        title = f"{names}: {', '.join(kinds)}"
        if actor is not None:
            title += f" by {actor.process.name or actor.process.pid}"
            if actor.masquerade:
                title += " (masquerading as an Apple tool)"
        return title


_KIND_LABELS = {
    sig.PROCESS_KILLED: "process killed",
    sig.PROCESS_SUSPENDED: "process suspended",
    sig.DAEMON_UNLOADED: "daemon unloaded",
    sig.EXTENSION_STATE_CHANGED: "extension state changed",
    sig.FILTER_DISABLED: "filter disabled",
    sig.ES_CLIENT_TERMINATED: "ES client terminated",
    sig.ES_CLIENT_DEGRADED: "ES client missing deadlines",
    sig.CRASHED: "crashed",
    sig.PROTECTION_WEAKENED: "protection weakened",
    sig.EVENT_FLOOD: "event flood",
    sig.TELEMETRY_SILENT: "telemetry silent",
}


# Two sources report one death of one process within this many seconds of each other (the
# crash report, launchd's log line and the ES exit event of the same pid).
SAME_OBSERVATION_SECONDS = 60.0


def _observation_key(signal: Signal) -> tuple[int, str, str] | None:
    if signal.target_pid is None or signal.component is None:
        return None
    return (signal.target_pid, signal.kind, signal.component.id)


def _same_observation(incident: _Open, signal: Signal) -> Signal | None:
    """Return the signal of the incident that reports the same thing about the same pid."""
    key = _observation_key(signal)
    if key is None:
        return None
    for earlier in reversed(incident.observations.get(key, ())):
        if abs(signal.time - earlier.time) <= SAME_OBSERVATION_SECONDS:
            return earlier
    return None


def _append(incident: _Open, signal: Signal) -> None:
    """Add a signal to an incident with its component, actor group and indexes."""
    incident.signals.append(signal)
    incident.shapes.add(_shape(signal))
    if signal.component is not None:
        incident.components.setdefault(signal.component.id, signal.component)
        incident.families.add(_family(signal.component.id))
    if signal.actor is not None:
        incident.groups.add(signal.actor.group)
    key = _observation_key(signal)
    if key is not None:
        incident.observations.setdefault(key, []).append(signal)


def _shape(signal: Signal) -> tuple[str, bool, bool, int | None]:
    """Return what judging an incident reads from a signal besides its actor."""
    return (signal.kind, signal.action, signal.persistent, signal.severity)


def _family(component_id: str) -> str:
    """Return the component a part belongs to: ``osquery/es_process_events`` is ``osquery``."""
    return component_id.partition("/")[0]


def _incident_id(host: str, first: Signal) -> str:
    evidence = first.evidence[0] if first.evidence else Evidence("", "", 0)
    anchor = "|".join(
        (
            host,
            first.kind,
            first.component.id if first.component else "",
            f"{first.time:.6f}",
            evidence.source,
            posixpath.basename(evidence.file),
            str(evidence.line),
        )
    )
    return "tw-" + hashlib.sha256(anchor.encode("utf-8")).hexdigest()[:20]


def _signal_record(signal: Signal) -> SignalRecord:
    return SignalRecord(
        kind=signal.kind,
        time=format_rfc3339(signal.time),
        component=signal.component.id if signal.component else None,
        summary=signal.summary,
        evidence=[EvidenceRef(e.source, e.file, e.line) for e in signal.evidence],
    )


def _actor_record(actor: Actor) -> ActorRecord:
    process = actor.process
    return ActorRecord(
        pid=process.pid,
        path=process.path,
        args=list(process.args) if process.args is not None else None,
        team_id=process.team_id,
        signing_id=process.signing_id,
        platform_binary=process.platform_binary,
        masquerade=actor.masquerade,
        ancestry=[
            AncestorRecord(a.pid, a.path, list(a.args) if a.args is not None else None)
            for a in actor.ancestry
        ],
    )
