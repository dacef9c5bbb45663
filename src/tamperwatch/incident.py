"""The incident record: the JSON-lines contract that every output format builds on.

Field names and meanings are stable. Times are RFC 3339 strings in UTC. ``id`` is derived from the
first signal of the incident (host, kind, component, time and evidence location), so scanning the
same evidence again gives the same id, also when later evidence extends the incident.
"""

from __future__ import annotations

from typing import Literal

import msgspec

Status = Literal["suspicious", "explained"]
Severity = Literal["low", "medium", "high", "critical"]

SEVERITIES: tuple[Severity, ...] = ("low", "medium", "high", "critical")


class ComponentRef(msgspec.Struct, frozen=True):
    """A monitored component named in an incident."""

    id: str
    product: str
    vendor: str


class EvidenceRef(msgspec.Struct, frozen=True):
    """Location of one input record: reader name, file path and 1-based line."""

    source: str
    file: str
    line: int


class SignalRecord(msgspec.Struct):
    """One typed observation inside an incident."""

    kind: str
    time: str
    component: str | None
    summary: str
    evidence: list[EvidenceRef]


class AncestorRecord(msgspec.Struct):
    """One process above the actor, nearest first."""

    pid: int
    path: str | None
    args: list[str] | None


class ActorRecord(msgspec.Struct):
    """The process held responsible, with its signing facts and its ancestry up to launchd."""

    pid: int
    path: str | None
    args: list[str] | None
    team_id: str | None
    signing_id: str | None
    platform_binary: bool | None
    masquerade: bool
    ancestry: list[AncestorRecord]


class AttackRecord(msgspec.Struct):
    """ATT&CK v19 references: the analytic and the technique ids."""

    analytic: str
    techniques: list[str]


class Incident(msgspec.Struct):
    """One impairment of one or more components on one host, with its verdict."""

    id: str
    host: str
    first_seen: str
    last_seen: str
    status: Status
    explanation: str | None
    severity: Severity
    title: str
    components: list[ComponentRef]
    signals: list[SignalRecord]
    actor: ActorRecord | None
    attack: AttackRecord
