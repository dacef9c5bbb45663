"""Incidents as OCSF Detection Finding events, for SIEMs and data lakes that read OCSF.

Each incident becomes one event of class Detection Finding (``class_uid`` 2004, category Findings,
``category_uid`` 2, activity Create) that uses only attributes the OCSF 1.8.0 schema defines, with
the ``datetime`` profile for the ``*_dt`` strings. OCSF 1.8.0 is the newest release whose schema
export the ``ocsf-json-schema`` package (1.2.0) ships, so the tests can validate every event
against the JSON Schema that package generates from the published schema. Nothing in the
mapping called for an older release.

The mapping:

* ``time``, ``start_time`` and ``end_time`` are milliseconds since the epoch (the OCSF timestamp).
  ``time`` is the first signal, so a later scan that extends the incident keeps its time. Each has
  its RFC 3339 ``*_dt`` twin. ``finding_info`` repeats the span as first and last seen.
* ``metadata.uid`` and ``finding_info.uid`` are the incident id. ``metadata.product`` is
  tamperwatch with its version, and ``metadata.version`` is :data:`OCSF_VERSION`.
* ``severity_id`` maps low, medium, high and critical to OCSF's Low (2) to Critical (5).
  A ``suspicious`` incident has status New (1) and ``is_alert`` true. An ``explained`` one has
  status Suppressed (3), ``is_alert`` false, and its explanation in ``status_detail``.
* ``finding_info.analytic`` is the ATT&CK analytic (AN2040) as a rule. ``finding_info.attacks``
  has one entry per technique id, with its ATT&CK v19 tactic where :data:`TECHNIQUES` lists it.
  ``types`` are the signal kinds and ``data_sources`` the readers that supplied evidence.
* Each signal is a related event and an evidence artifact, both with the uid
  ``<incident id>/<signal number from 1>``. The evidence artifact carries the signal record as
  the incident JSON has it (kind, time, component, summary, and the evidence locations
  ``{source, file, line}``) in ``data``.
* The actor is an evidence artifact of its own: ``actor.process`` with pid, path, name, command
  line, the executable with its team id as ``signature.developer_uid``, the ancestors nested as
  ``parent_process`` up to :data:`PARENT_CHAIN_DEPTH` levels and listed flat in ``ancestry``.
  An ancestry longer than the engine's limit is cut there, and ``metadata.is_truncated`` is true.
* ``device`` is the host with OS macOS. The fleet and unknown-host placeholders are no device,
  so such an event has no ``device`` and keeps the placeholder in ``unmapped.host``.
* ``resources`` are the impaired components (uid, name, vendor in ``data``) in the role Affected.
* ``unmapped.actor`` keeps the signing facts OCSF has no attribute for: signing id, platform
  binary, masquerade.
"""

from __future__ import annotations

import math
import posixpath
from collections.abc import Iterable, Sequence
from typing import IO, Any

import msgspec

from tamperwatch import __version__
from tamperwatch.attack import ATTACK_VERSION, TACTIC_REFERENCE, TACTICS, TECHNIQUES
from tamperwatch.ecs import ATTACK_REFERENCE, drop_nulls
from tamperwatch.fleet import FLEET_HOST
from tamperwatch.incident import ActorRecord, Incident, SignalRecord
from tamperwatch.process_table import MAX_ANCESTRY_DEPTH
from tamperwatch.render import write_json_lines
from tamperwatch.scan import UNKNOWN_HOST
from tamperwatch.timeutil import format_rfc3339, parse_rfc3339

OCSF_VERSION = "1.8.0"

# Profiles whose attributes the events use. metadata.profiles lists them.
OCSF_PROFILES = ("datetime",)

CLASS_UID = 2004
CATEGORY_UID = 2
ACTIVITY_CREATE = 1
# OCSF defines type_uid as class_uid * 100 + activity_id.
TYPE_UID = CLASS_UID * 100 + ACTIVITY_CREATE

# Enumeration values and captions from the OCSF 1.8.0 dictionary.
SEVERITIES = {
    "low": (2, "Low"),
    "medium": (3, "Medium"),
    "high": (4, "High"),
    "critical": (5, "Critical"),
}
STATUSES = {"suspicious": (1, "New"), "explained": (3, "Suppressed")}
ANALYTIC_TYPE_RULE = 1
FILE_TYPE_EXECUTABLE = 8
DEVICE_TYPE_UNKNOWN = 0
OS_TYPE_MACOS = 300
RESOURCE_ROLE_AFFECTED = 3
SIGNATURE_ALGORITHM_UNKNOWN = 0

# Nesting depth of actor.process.parent_process. OCSF advises against deep nesting, so every
# ancestor, up to the engine's own limit, is also in the flat ``ancestry`` list.
PARENT_CHAIN_DEPTH = 8

# Signal summaries joined into finding_info.desc. The rest are only counted there, and
# related_events lists them all.
MAX_DESCRIBED_SIGNALS = 10


def to_ocsf(incident: Incident) -> dict[str, Any]:
    """Map an incident to one OCSF Detection Finding event, leaving out unknown values.

    Raises ValueError when a time of the incident is not RFC 3339, which the incident record
    guarantees for every incident a scan produces.
    """
    severity_id, severity = SEVERITIES[incident.severity]
    status_id, status = STATUSES[incident.status]
    event: dict[str, Any] = {
        "activity_id": ACTIVITY_CREATE,
        "activity_name": "Create",
        "category_uid": CATEGORY_UID,
        "category_name": "Findings",
        "class_uid": CLASS_UID,
        "class_name": "Detection Finding",
        "type_uid": TYPE_UID,
        "type_name": "Detection Finding: Create",
        **_timestamp("time", incident.first_seen),
        **_timestamp("start_time", incident.first_seen),
        **_timestamp("end_time", incident.last_seen),
        "timezone_offset": 0,
        "severity_id": severity_id,
        "severity": severity,
        "status_id": status_id,
        "status": status,
        "status_detail": incident.explanation,
        "is_alert": incident.status == "suspicious",
        "message": incident.title,
        "metadata": _metadata(incident),
        "finding_info": _finding_info(incident),
        "device": _device(incident.host),
        "evidences": _evidences(incident) or None,
        "resources": [
            {
                "uid": component.id,
                "name": component.product,
                "role_id": RESOURCE_ROLE_AFFECTED,
                "role": "Affected",
                "data": {"vendor": component.vendor},
            }
            for component in incident.components
        ]
        or None,
        "unmapped": _unmapped(incident) or None,
    }
    compacted: dict[str, Any] = drop_nulls(event)
    return compacted


def write_ocsf(incidents: Iterable[Incident], stream: IO[bytes]) -> None:
    """Write one OCSF Detection Finding event per incident as JSON lines (UTF-8)."""
    write_json_lines(map(to_ocsf, incidents), stream)


def _timestamp(name: str, text: str) -> dict[str, Any]:
    """Return ``{name: epoch milliseconds, name_dt: RFC 3339}`` for an incident time."""
    seconds = parse_rfc3339(text)
    if seconds is None:
        raise ValueError(
            f"invalid incident time {text!r}: expected RFC 3339, such as 2026-11-18T14:04:07Z"
        )
    # Floor, not round: a time in the last half millisecond of a second stays in that second.
    return {name: math.floor(seconds * 1000), f"{name}_dt": format_rfc3339(seconds)}


def _metadata(incident: Incident) -> dict[str, Any]:
    ancestry = incident.actor.ancestry if incident.actor is not None else []
    return {
        "version": OCSF_VERSION,
        "uid": incident.id,
        "product": {"name": "tamperwatch", "vendor_name": "tamperwatch", "version": __version__},
        "profiles": list(OCSF_PROFILES),
        "is_truncated": True if len(ancestry) > MAX_ANCESTRY_DEPTH else None,
    }


def _finding_info(incident: Incident) -> dict[str, Any]:
    signals = incident.signals
    return {
        "uid": incident.id,
        "title": incident.title,
        "desc": _description(signals),
        **_timestamp("first_seen_time", incident.first_seen),
        **_timestamp("last_seen_time", incident.last_seen),
        "analytic": {
            "uid": incident.attack.analytic,
            "type_id": ANALYTIC_TYPE_RULE,
            "type": "Rule",
        },
        "attacks": [_attack(technique) for technique in incident.attack.techniques] or None,
        "types": sorted({signal.kind for signal in signals}) or None,
        "data_sources": sorted({e.source for signal in signals for e in signal.evidence}) or None,
        "related_events": [
            {
                "uid": _signal_uid(incident, number),
                "type": signal.kind,
                "desc": signal.summary,
                **_timestamp("created_time", signal.time),
            }
            for number, signal in enumerate(signals, 1)
        ]
        or None,
        "related_events_count": len(signals),
    }


def _description(signals: Sequence[SignalRecord]) -> str | None:
    if not signals:
        return None
    parts = [signal.summary for signal in signals[:MAX_DESCRIBED_SIGNALS]]
    hidden = len(signals) - MAX_DESCRIBED_SIGNALS
    if hidden > 0:
        parts.append(f"and {hidden} more signal(s)")
    return "; ".join(parts)


def _attack(technique: str) -> dict[str, Any]:
    """Return an OCSF attack entry. A sub-technique id also names its parent technique."""
    parent = technique.split(".")[0]
    entry: dict[str, Any] = {"version": ATTACK_VERSION, "technique": _attack_reference(parent)}
    if technique != parent:
        entry["sub_technique"] = _attack_reference(technique)
    known = TECHNIQUES.get(technique) or TECHNIQUES.get(parent)
    if known is not None:
        tactic = known[1]
        entry["tactic"] = {
            "uid": tactic,
            "name": TACTICS[tactic],
            "src_url": TACTIC_REFERENCE.format(tactic),
        }
    return entry


def _attack_reference(technique: str) -> dict[str, Any]:
    """Return a technique or sub-technique object. ATT&CK's URL has a slash before the sub id."""
    known = TECHNIQUES.get(technique)
    return {
        "uid": technique,
        "name": known[0] if known is not None else None,
        "src_url": ATTACK_REFERENCE.format(technique.replace(".", "/")),
    }


def _signal_uid(incident: Incident, number: int) -> str:
    return f"{incident.id}/{number}"


def _evidences(incident: Incident) -> list[dict[str, Any]]:
    evidences: list[dict[str, Any]] = []
    if incident.actor is not None:
        evidences.append({"name": "actor", "actor": {"process": _process(incident.actor)}})
    for number, signal in enumerate(incident.signals, 1):
        evidences.append(
            {
                "uid": _signal_uid(incident, number),
                "name": signal.kind,
                # The signal as the incident record has it: kind, time, component, summary and
                # the evidence locations {source, file, line}.
                "data": msgspec.to_builtins(signal),
            }
        )
    return evidences


def _process_entity(pid: int, path: str | None, args: list[str] | None) -> dict[str, Any]:
    """Return the fields that OCSF's process and process_entity objects share."""
    return {
        "pid": pid,
        "path": path,
        "name": _executable_name(path),
        "cmd_line": " ".join(args) if args else None,
    }


def _executable_name(path: str | None) -> str | None:
    if path is None:
        return None
    return posixpath.basename(path) or None


def _process(actor: ActorRecord) -> dict[str, Any]:
    process = _process_entity(actor.pid, actor.path, actor.args)
    if process["name"] is not None:
        process["file"] = {
            "name": process["name"],
            "path": actor.path,
            "type_id": FILE_TYPE_EXECUTABLE,
            "type": "Executable File",
        }
        if actor.team_id is not None:
            # The Apple team id is the developer id of the signing certificate. The telemetry
            # does not name the signature algorithm.
            process["file"]["signature"] = {
                "algorithm_id": SIGNATURE_ALGORITHM_UNKNOWN,
                "algorithm": "Unknown",
                "developer_uid": actor.team_id,
            }
    parent: dict[str, Any] | None = None
    for ancestor in reversed(actor.ancestry[:PARENT_CHAIN_DEPTH]):
        entry = _process_entity(ancestor.pid, ancestor.path, ancestor.args)
        entry["parent_process"] = parent
        parent = entry
    process["parent_process"] = parent
    process["ancestry"] = [
        _process_entity(a.pid, a.path, a.args) for a in actor.ancestry[:MAX_ANCESTRY_DEPTH]
    ] or None
    return process


def _device(host: str) -> dict[str, Any] | None:
    if not host or host in (FLEET_HOST, UNKNOWN_HOST):
        return None
    return {
        "hostname": host,
        "type_id": DEVICE_TYPE_UNKNOWN,
        "type": "Unknown",
        "os": {"name": "macOS", "type_id": OS_TYPE_MACOS, "type": "macOS"},
    }


def _unmapped(incident: Incident) -> dict[str, Any]:
    unmapped: dict[str, Any] = {}
    if _device(incident.host) is None:
        unmapped["host"] = incident.host
    actor = incident.actor
    if actor is not None:
        has_file = _executable_name(actor.path) is not None
        unmapped["actor"] = {
            # Without an executable there is no signature object to hold the team id.
            "team_id": None if has_file else actor.team_id,
            "signing_id": actor.signing_id,
            "platform_binary": actor.platform_binary,
            "masquerade": actor.masquerade,
        }
    return unmapped
