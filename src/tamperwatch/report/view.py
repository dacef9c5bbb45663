"""The report's view model: fleet, hosts, lanes and incidents, built from a scan or the ledger.

Every string that comes from telemetry passes through :func:`~tamperwatch.render.neutralize`
here, so control and invisible characters arrive in the page as visible escapes. HTML escaping is
left to the template engine, which escapes every value it writes.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from tamperwatch.attack import technique_name
from tamperwatch.incident import Incident, SignalRecord
from tamperwatch.inventory import Inventory
from tamperwatch.ledger import HistoryEntry, IncidentEntry, OutageEntry
from tamperwatch.liveness import BlindWindow
from tamperwatch.render import neutralize
from tamperwatch.scan import ScanResult
from tamperwatch.timeutil import format_rfc3339, parse_rfc3339

# Health of one component on one host, worst first. The fleet overview colours cells by it. A
# host with none of these is "quiet", because a ledger records findings only.
HEALTH_ORDER = ("impaired", "blind", "explained", "resolved", "healthy")

# Lane of the host itself, for blind windows that cover every component.
HOST_LANE = "(whole host)"

# Signals drawn per incident on a timeline, and listed per incident page; the JSON-lines output
# carries all of them.
MAX_SIGNALS_SHOWN = 200

# Maximum length of a telemetry string shown in the report, in characters.
MAX_TEXT = 2000

_SAFE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


class ReportError(ValueError):
    """The data given to the report is inconsistent, such as an incident with an invalid time."""


def _epoch(value: str, subject: str) -> float:
    moment = parse_rfc3339(value)
    if moment is None:
        raise ReportError(f"{subject}: invalid time {text(value)!r}")
    return moment


def text(value: str | None) -> str:
    """Return a telemetry string made safe for display (HTML escaping comes later)."""
    return neutralize(value, MAX_TEXT)


@dataclass
class HistoryView:
    at: str
    status: str
    by: str
    reason: str


@dataclass
class EvidenceView:
    """One evidence location, with the record's text when the report could read it back."""

    source: str
    file: str
    line: int
    # The path as the scan recorded it, for reading the record back; never displayed.
    path: str
    record: str | None = None


@dataclass
class WindowView:
    """A blind window (telemetry outage) as the report shows it."""

    start: float
    end: float
    reason: str
    component: str | None
    events_lost: int | None
    evidence: list[EvidenceView]
    status: str | None = None
    explanation: str | None = None

    @property
    def lane(self) -> str:
        return self.component or HOST_LANE


@dataclass
class SignalView:
    time: float
    kind: str
    component: str | None
    summary: str
    evidence: list[EvidenceView]


@dataclass
class ProcessView:
    pid: int
    path: str
    args: str
    detail: str = ""


@dataclass
class IncidentView:
    """One incident page."""

    anchor: str
    id: str
    host: str
    host_anchor: str
    first_seen: float
    last_seen: float
    status: str
    explanation: str | None
    severity: str
    title: str
    components: list[tuple[str, str, str]]
    signals: list[SignalView]
    signals_hidden: int
    # The actor chain from the oldest ancestor down to the actor.
    chain: list[ProcessView]
    analytic: str
    techniques: list[str]
    ledger_status: str | None = None
    history: list[HistoryView] = field(default_factory=list)

    @property
    def health(self) -> str:
        if self.ledger_status in ("resolved", "explained"):
            return self.ledger_status
        return "impaired" if self.status == "suspicious" else "explained"


@dataclass
class HostView:
    """One host page: its span, components, incidents and blind windows."""

    anchor: str
    name: str
    first: float
    last: float
    events: int | None
    components: dict[str, str]
    incidents: list[IncidentView] = field(default_factory=list)
    windows: list[WindowView] = field(default_factory=list)
    # Product name of every lane, including components seen only in incidents.
    labels: dict[str, str] = field(default_factory=dict)

    def health_of(self, component: str) -> str | None:
        """Return the worst health of a component on this host, or None when it was not seen."""
        states: set[str] = set()
        for incident in self.incidents:
            if any(ref[0] == component for ref in incident.components):
                states.add(incident.health)
        for window in self.windows:
            if window.lane == component:
                states.add(window.status if window.status in ("resolved", "explained") else "blind")
        if component in self.components or (component == HOST_LANE and self.events):
            states.add("healthy")
        for state in HEALTH_ORDER:
            if state in states:
                return state
        return None

    @property
    def health(self) -> str:
        """Return the worst health of the host's lanes; ``quiet`` when nothing is known of it."""
        states = {self.health_of(lane) for lane in self.lanes}
        if self.events:
            states.add("healthy")
        for state in HEALTH_ORDER:
            if state in states:
                return state
        return "quiet"

    @property
    def lanes(self) -> list[str]:
        """Component ids with a lane on the timeline: seen, impaired or blind; host lane first."""
        ids = set(self.components)
        for incident in self.incidents:
            ids.update(ref[0] for ref in incident.components)
        for window in self.windows:
            ids.add(window.lane)
        ordered = sorted(ids - {HOST_LANE})
        return [HOST_LANE, *ordered] if HOST_LANE in ids else ordered


@dataclass
class ReportView:
    """Everything one report file shows."""

    title: str
    source: str
    generated: str
    hosts: list[HostView]
    # Component id and product name of every column of the fleet overview.
    columns: list[tuple[str, str]]
    warnings: list[str] = field(default_factory=list)
    # True when the report shows the ledger, which records findings but not healthy components.
    from_ledger: bool = False

    @property
    def incidents(self) -> list[IncidentView]:
        return [incident for host in self.hosts for incident in host.incidents]


# building ----------------------------------------------------------------------------------------


def from_scan(
    result: ScanResult,
    *,
    source: str,
    generated: datetime,
    inventory: Inventory | None = None,
) -> ReportView:
    """Build the report of one scan; ``inventory`` names the components that had no incident."""
    builder = _Builder()
    if inventory is not None:
        for component in inventory.components:
            builder.products[component.id] = text(component.product)
    for name, summary in result.hosts.items():
        host = builder.host(name)
        host.events = summary.events
        host.first = min(host.first, summary.first)
        host.last = max(host.last, summary.last)
        for component_id in summary.components:
            host.components.setdefault(component_id, component_id)
    for incident in result.incidents:
        builder.add_incident(incident)
    for window in result.blind_windows:
        builder.add_window(window.host, _window_view(window))
    warnings = [text(warning) for warning in result.warnings]
    return builder.finish(source, generated, warnings)


def from_ledger(
    incidents: Iterable[IncidentEntry],
    outages: Iterable[OutageEntry],
    *,
    source: str,
    generated: datetime,
) -> ReportView:
    """Build the report of the ledger's entries, with their ledger status and history."""
    builder = _Builder()
    for entry in incidents:
        view = builder.add_incident(entry.incident)
        view.ledger_status = entry.status
        view.history = _history(entry.history)
    for outage in outages:
        builder.add_window(
            outage.host,
            WindowView(
                start=outage.start.timestamp(),
                end=outage.end.timestamp(),
                reason=text(outage.reason),
                component=outage.component,
                events_lost=outage.events_lost,
                evidence=[_evidence(e.source, e.file, e.line) for e in outage.evidence],
                status=outage.status,
                explanation=text(outage.explanation) if outage.explanation else None,
            ),
        )
    report = builder.finish(source, generated, [])
    report.from_ledger = True
    return report


class _Builder:
    def __init__(self) -> None:
        self.hosts: dict[str, HostView] = {}
        self.products: dict[str, str] = {}
        self.incident_anchors: set[str] = set()

    def host(self, name: str) -> HostView:
        view = self.hosts.get(name)
        if view is None:
            view = HostView(
                anchor=f"host-{len(self.hosts) + 1}",
                name=text(name),
                first=float("inf"),
                last=float("-inf"),
                events=None,
                components={},
            )
            self.hosts[name] = view
        return view

    def add_incident(self, incident: Incident) -> IncidentView:
        host = self.host(incident.host)
        first = _epoch(incident.first_seen, f"incident {incident.id} first_seen")
        last = _epoch(incident.last_seen, f"incident {incident.id} last_seen")
        host.first = min(host.first, first)
        host.last = max(host.last, last)
        for ref in incident.components:
            self.products[ref.id] = text(ref.product)
        signals = [
            _signal_view(record, incident.id) for record in incident.signals[:MAX_SIGNALS_SHOWN]
        ]
        for signal in signals:
            host.first = min(host.first, signal.time)
            host.last = max(host.last, signal.time)
        view = IncidentView(
            anchor=self._incident_anchor(incident.id),
            id=text(incident.id),
            host=host.name,
            host_anchor=host.anchor,
            first_seen=first,
            last_seen=last,
            status=incident.status,
            explanation=text(incident.explanation) if incident.explanation else None,
            severity=incident.severity,
            title=text(incident.title),
            components=[
                (ref.id, text(ref.product), text(ref.vendor)) for ref in incident.components
            ],
            signals=signals,
            signals_hidden=max(0, len(incident.signals) - MAX_SIGNALS_SHOWN),
            chain=_actor_chain(incident),
            analytic=text(incident.attack.analytic),
            techniques=[_technique(t) for t in incident.attack.techniques],
        )
        host.incidents.append(view)
        return view

    def add_window(self, host_name: str, window: WindowView) -> None:
        host = self.host(host_name)
        host.windows.append(window)
        host.first = min(host.first, window.start)
        host.last = max(host.last, window.end)

    def _incident_anchor(self, incident_id: str) -> str:
        anchor = f"incident-{incident_id}"
        if not _SAFE_ID.fullmatch(incident_id) or anchor in self.incident_anchors:
            anchor = f"incident-n{len(self.incident_anchors) + 1}"
        self.incident_anchors.add(anchor)
        return anchor

    def finish(self, source: str, generated: datetime, warnings: list[str]) -> ReportView:
        columns: set[str] = set()
        for host in self.hosts.values():
            for component in host.components:
                host.components[component] = self.products.get(component, text(component))
            host.labels = {lane: self.products.get(lane, text(lane)) for lane in host.lanes}
            columns.update(host.lanes)
            if host.first == float("inf"):
                host.first = host.last = generated.timestamp()
            host.incidents.sort(key=lambda incident: (incident.first_seen, incident.id))
            host.windows.sort(key=lambda window: (window.start, window.lane))
        ordered = sorted(columns - {HOST_LANE})
        if HOST_LANE in columns:
            ordered.insert(0, HOST_LANE)
        hosts = sorted(self.hosts.values(), key=lambda host: host.name)
        return ReportView(
            title="tamperwatch report",
            source=text(source),
            generated=format_rfc3339(generated.timestamp()),
            hosts=hosts,
            columns=[(column, self.products.get(column, text(column))) for column in ordered],
            warnings=warnings,
        )


def _window_view(window: BlindWindow) -> WindowView:
    return WindowView(
        start=window.start,
        end=window.end,
        reason=text(window.reason),
        component=window.component,
        events_lost=window.events_lost,
        evidence=[_evidence(e.source, e.file, e.line) for e in window.evidence],
    )


def _evidence(source: str, path: str, line: int) -> EvidenceView:
    return EvidenceView(source=text(source), file=text(path), line=line, path=path)


def _signal_view(record: SignalRecord, incident_id: str) -> SignalView:
    return SignalView(
        time=_epoch(record.time, f"signal of incident {incident_id}"),
        kind=text(record.kind),
        component=record.component,
        summary=text(record.summary),
        evidence=[_evidence(e.source, e.file, e.line) for e in record.evidence],
    )


def _actor_chain(incident: Incident) -> list[ProcessView]:
    actor = incident.actor
    if actor is None:
        return []
    chain = [
        ProcessView(pid=a.pid, path=text(a.path or "?"), args=_args(a.args))
        for a in reversed(actor.ancestry)
    ]
    details = [
        f"team id {actor.team_id}" if actor.team_id else "no team id",
        f"signing id {actor.signing_id}" if actor.signing_id else "no signing id",
        "platform binary" if actor.platform_binary else "not a platform binary",
    ]
    if actor.masquerade:
        details.append("MASQUERADE: name or path imitates a security component")
    chain.append(
        ProcessView(
            pid=actor.pid,
            path=text(actor.path or "?"),
            args=_args(actor.args),
            detail=text(", ".join(details)),
        )
    )
    return chain


def _args(args: Sequence[str] | None) -> str:
    # Quoted as a shell would need them, so that the argument boundaries stay visible.
    return text(shlex.join(args)) if args else ""


def _technique(technique: str) -> str:
    name = technique_name(technique)
    return text(f"{technique} {name}" if name else technique)


def _history(entries: Sequence[HistoryEntry]) -> list[HistoryView]:
    return [
        HistoryView(
            at=format_rfc3339(entry.at.timestamp()),
            status=entry.status,
            by=text(entry.by),
            reason=text(entry.reason),
        )
        for entry in entries
    ]
