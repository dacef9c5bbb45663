"""Incidents as Elastic Common Schema (ECS) alert documents, for SIEMs that index ECS.

Each incident becomes one document. Standard ECS fields carry what a SIEM filters on: time, host,
the actor process, ATT&CK techniques and severity. The whole incident record stays under the
custom ``tamperwatch`` field set, so nothing is lost in the mapping. Field names follow ECS 8.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from typing import IO, Any

from tamperwatch import __version__
from tamperwatch.attack import TACTIC_REFERENCE, TACTICS, TECHNIQUES, technique_name
from tamperwatch.incident import ActorRecord, Incident
from tamperwatch.render import write_json_lines

ECS_VERSION = "8.11.0"

# ECS event.severity and event.risk_score use 0-100; these follow the bands Elastic detection
# rules use for low, medium, high and critical.
SEVERITY_SCORES = {"low": 21, "medium": 47, "high": 73, "critical": 99}

ATTACK_REFERENCE = "https://attack.mitre.org/techniques/{}/"


def incident_to_ecs(incident: Incident) -> dict[str, Any]:
    """Return one ECS alert document for an incident."""
    score = SEVERITY_SCORES[incident.severity]
    document: dict[str, Any] = {
        "@timestamp": incident.first_seen,
        "ecs": {"version": ECS_VERSION},
        "message": incident.title,
        "event": {
            "kind": "alert",
            "category": ["intrusion_detection"],
            "type": ["info"],
            "id": incident.id,
            "start": incident.first_seen,
            "end": incident.last_seen,
            "severity": score,
            "risk_score": float(score),
            "dataset": "tamperwatch.incident",
            "module": "tamperwatch",
            "provider": "tamperwatch",
            "reason": incident.explanation,
        },
        "host": {"name": incident.host, "hostname": incident.host, "os": {"type": "macos"}},
        "rule": {
            "id": incident.attack.analytic,
            "name": incident.title,
            "ruleset": "tamperwatch",
            "category": ", ".join(sorted({signal.kind for signal in incident.signals})),
            "reference": "https://attack.mitre.org/detectionstrategies/DET0900",
        },
        "threat": {
            "framework": "MITRE ATT&CK",
            "technique": [_technique(technique) for technique in incident.attack.techniques],
            "tactic": _tactics(incident.attack.techniques),
        },
        "labels": {"status": incident.status, "severity": incident.severity},
        "tags": ["tamperwatch", incident.status],
        "observer": {"product": "tamperwatch", "vendor": "tamperwatch", "version": __version__},
        "tamperwatch": {
            "status": incident.status,
            "explanation": incident.explanation,
            "severity": incident.severity,
            "components": [
                {"id": c.id, "product": c.product, "vendor": c.vendor} for c in incident.components
            ],
            "signals": [
                {
                    "kind": signal.kind,
                    "time": signal.time,
                    "component": signal.component,
                    "summary": signal.summary,
                    "evidence": [
                        {"source": e.source, "file": e.file, "line": e.line}
                        for e in signal.evidence
                    ],
                }
                for signal in incident.signals
            ],
        },
    }
    if incident.actor is not None:
        document["process"] = _process(incident.actor)
        document["tamperwatch"]["actor"] = {
            "masquerade": incident.actor.masquerade,
            "ancestry": [
                {"pid": a.pid, "path": a.path, "args": a.args} for a in incident.actor.ancestry
            ],
        }
    compacted: dict[str, Any] = drop_nulls(document)
    return compacted


def drop_nulls(value: Any) -> Any:
    """Return a copy without null fields at any depth, because ECS and OCSF omit unknown values."""
    if isinstance(value, dict):
        return {key: drop_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [drop_nulls(item) for item in value]
    return value


def write_ecs(incidents: Iterable[Incident], stream: IO[bytes]) -> None:
    """Write one ECS document per incident as JSON lines (UTF-8)."""
    write_json_lines(map(incident_to_ecs, incidents), stream)


def _technique(technique: str) -> dict[str, str]:
    """Return an ECS threat.technique entry; a sub-technique id keeps its parent's reference."""
    path = technique.replace(".", "/")
    entry = {"id": technique, "reference": ATTACK_REFERENCE.format(path)}
    name = technique_name(technique)
    if name is not None:
        entry["name"] = name
    return entry


def _tactics(techniques: list[str]) -> list[dict[str, str]]:
    """Return the ECS threat.tactic entries of the techniques' tactics, each once."""
    tactics = sorted({TECHNIQUES[t][1] for t in techniques if t in TECHNIQUES})
    return [
        {"id": tactic, "name": TACTICS[tactic], "reference": TACTIC_REFERENCE.format(tactic)}
        for tactic in tactics
    ]


def _process(actor: ActorRecord) -> dict[str, Any]:
    process: dict[str, Any] = {
        "pid": actor.pid,
        "executable": actor.path,
        "name": posixpath.basename(actor.path) if actor.path else None,
        "args": actor.args,
        "command_line": " ".join(actor.args) if actor.args else None,
        "code_signature": {
            "team_id": actor.team_id,
            "signing_id": actor.signing_id,
            # Only Apple's platform binaries are known to be trusted; otherwise it stays unknown.
            "trusted": True if actor.platform_binary else None,
        },
    }
    if actor.ancestry:
        parent = actor.ancestry[0]
        process["parent"] = {
            "pid": parent.pid,
            "executable": parent.path,
            "name": posixpath.basename(parent.path) if parent.path else None,
            "args": parent.args,
        }
    return process
