"""Fleet-wide outages: many hosts' copies of one component going silent together.

When a vendor's cloud or the collection pipeline fails, every host that runs the component goes
quiet at once. That is one incident about the fleet, not one impairment per host: the per-host
silences are folded into a single explained incident that lists every host.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Mapping

from tamperwatch.incident import AttackRecord, Incident, SignalRecord
from tamperwatch.timeutil import parse_rfc3339

FLEET_HOST = "(fleet)"


def fold_fleet_outages(
    incidents: list[Incident],
    reporting_hosts: Mapping[str, set[str]],
    *,
    share: float,
    min_hosts: int,
    window: float,
) -> list[Incident]:
    """Replace simultaneous per-host silences of one component by one fleet incident.

    ``reporting_hosts`` maps a component id to the hosts where it showed life. Silences of one
    component whose start times lie within ``window`` seconds of the first are one group. A group
    that covers at least ``min_hosts`` hosts and ``share`` of the reporting hosts is an outage.
    """
    silent: dict[str, list[Incident]] = defaultdict(list)
    for incident in incidents:
        if _is_silence(incident):
            silent[incident.components[0].id].append(incident)

    folded: set[str] = set()
    fleet: list[Incident] = []
    for component_id, group in silent.items():
        group.sort(key=lambda i: i.first_seen)
        reporting = len(reporting_hosts.get(component_id, ())) or len(group)
        needed = max(min_hosts, math.ceil(share * reporting))
        start = 0
        while start < len(group):
            anchor = parse_rfc3339(group[start].first_seen) or 0.0
            end = start
            while (
                end < len(group)
                and (parse_rfc3339(group[end].first_seen) or 0.0) - anchor <= window
            ):
                end += 1
            members = group[start:end]
            hosts = {i.host for i in members}
            if len(hosts) >= needed:
                fleet.append(_fleet_incident(members, len(hosts), reporting))
                folded.update(i.id for i in members)
            start = end
    kept = [i for i in incidents if i.id not in folded]
    return sorted(kept + fleet, key=lambda i: (i.first_seen, i.host, i.id))


def _is_silence(incident: Incident) -> bool:
    return (
        incident.status == "suspicious"
        and len(incident.components) == 1
        and all(signal.kind == "telemetry_silent" for signal in incident.signals)
    )


def _fleet_incident(members: list[Incident], hosts: int, reporting: int) -> Incident:
    component = members[0].components[0]
    signals = [
        SignalRecord(
            kind=signal.kind,
            time=signal.time,
            component=signal.component,
            summary=f"{member.host}: {signal.summary}",
            evidence=signal.evidence,
        )
        for member in members
        for signal in member.signals
    ]
    anchor = "|".join(sorted(member.id for member in members))
    return Incident(
        id="tw-" + hashlib.sha256(anchor.encode("utf-8")).hexdigest()[:20],
        host=FLEET_HOST,
        first_seen=min(m.first_seen for m in members),
        last_seen=max(m.last_seen for m in members),
        status="explained",
        explanation=(
            f"fleet-wide outage: {hosts} of {reporting} hosts that run {component.product} went "
            "silent together, which points at the vendor's service or the collection pipeline"
        ),
        severity="medium",
        title=f"{component.product}: silent on {hosts} of {reporting} hosts at once",
        components=[component],
        signals=signals,
        actor=None,
        attack=AttackRecord("AN2040", sorted({t for m in members for t in m.attack.techniques})),
    )
