"""OCSF Detection Finding events: the mapping, and validation against the published OCSF schema.

The validation tests use the JSON Schema that ``ocsf-json-schema`` generates from the OCSF export
it ships. That schema sets ``additionalProperties: false`` on every object with defined
attributes, so an attribute the mapping invents fails validation.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest

from tamperwatch.config import Config, build_inventory
from tamperwatch.fleet import FLEET_HOST
from tamperwatch.incident import (
    ActorRecord,
    AncestorRecord,
    AttackRecord,
    ComponentRef,
    EvidenceRef,
    Incident,
    SignalRecord,
)
from tamperwatch.ocsf import (
    OCSF_PROFILES,
    OCSF_VERSION,
    PARENT_CHAIN_DEPTH,
    to_ocsf,
    write_ocsf,
)
from tamperwatch.process_table import MAX_ANCESTRY_DEPTH
from tamperwatch.scan import UNKNOWN_HOST, scan
from tamperwatch.synth import EsWriter, interactive_shell

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

Validate = Callable[[dict[str, Any]], list[str]]


@pytest.fixture(scope="module")
def ocsf_schema() -> dict[str, Any]:
    package = pytest.importorskip(
        "ocsf_json_schema",
        reason="ocsf-json-schema is not installed; pip install -e '.[test]' adds it",
    )
    generator = package.OcsfJsonSchemaEmbedded(package.get_ocsf_schema(OCSF_VERSION))
    schema: dict[str, Any] = generator.get_class_schema("detection_finding", list(OCSF_PROFILES))
    return schema


@pytest.fixture(scope="module")
def validate(ocsf_schema: dict[str, Any]) -> Validate:
    """Return a function that lists the schema violations of one event, with their paths."""
    jsonschema = pytest.importorskip(
        "jsonschema", reason="jsonschema is not installed; pip install -e '.[test]' adds it"
    )
    jsonschema.Draft202012Validator.check_schema(ocsf_schema)
    validator = jsonschema.Draft202012Validator(ocsf_schema)

    def errors(event: dict[str, Any]) -> list[str]:
        return [
            f"{'/'.join(str(part) for part in error.absolute_path)}: {error.message}"
            for error in validator.iter_errors(event)
        ]

    return errors


@pytest.fixture(scope="module")
def examples() -> list[Incident]:
    config = Config()
    return scan([str(EXAMPLES)], config=config, inventory=build_inventory(config)).incidents


def by_host(events: list[dict[str, Any]], host: str) -> dict[str, Any]:
    return next(e for e in events if e.get("device", {}).get("hostname") == host)


def make_incident(**changes: Any) -> Incident:
    """Build a sample incident. Keyword arguments replace its fields."""
    actor = ActorRecord(
        pid=4711,
        path="/usr/local/bin/tool",
        args=["tool", "--stop", "agent"],
        team_id="QX7TEAM123",
        signing_id="com.example.tool",
        platform_binary=False,
        masquerade=False,
        ancestry=[
            AncestorRecord(4700, "/bin/zsh", ["-zsh"]),
            AncestorRecord(1, "/sbin/launchd", None),
        ],
    )
    signal = SignalRecord(
        kind="process_killed",
        time="2026-12-01T09:30:00.250000Z",
        component="example-edr",
        summary="SIGKILL sent to edrd[812]",
        evidence=[EvidenceRef("eslogger", "capture/es.ndjson", 42)],
    )
    incident = Incident(
        id="tw-0123456789abcdef0123",
        host="lab-mac-14",
        first_seen="2026-12-01T09:30:00.250000Z",
        last_seen="2026-12-01T09:31:15.000000Z",
        status="suspicious",
        explanation=None,
        severity="high",
        title="Example EDR: process killed by tool",
        components=[ComponentRef("example-edr", "Example EDR", "Example Corp")],
        signals=[signal],
        actor=actor,
        attack=AttackRecord("AN2040", ["T1685", "T1489"]),
    )
    return msgspec.structs.replace(incident, **changes)


def epoch_ms(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def parent_chain_depth(process: dict[str, Any]) -> int:
    depth = 0
    while "parent_process" in process:
        process = process["parent_process"]
        depth += 1
    return depth


# Schema ------------------------------------------------------------------------------------------


def test_generated_schema_rejects_unknown_keys(ocsf_schema: dict[str, Any]) -> None:
    # The strict tests below rely on this: only the free-form 'object' type admits any key.
    assert ocsf_schema["additionalProperties"] is False
    lenient = {name for name, d in ocsf_schema["$defs"].items() if d["additionalProperties"]}
    assert lenient == {"object"}


def test_example_incidents_validate(examples: list[Incident], validate: Validate) -> None:
    assert len(examples) == 6
    for incident in examples:
        assert validate(to_ocsf(incident)) == [], incident.id


def test_undefined_key_fails_validation(examples: list[Incident], validate: Validate) -> None:
    event = to_ocsf(examples[0])
    places: list[Callable[[dict[str, Any]], dict[str, Any]]] = [
        lambda e: e,
        lambda e: e["metadata"]["product"],
        lambda e: e["finding_info"],
        lambda e: e["finding_info"]["analytic"],
        lambda e: e["finding_info"]["attacks"][0]["tactic"],
        lambda e: e["finding_info"]["related_events"][0],
        lambda e: e["device"]["os"],
        lambda e: e["evidences"][0],
        lambda e: e["evidences"][0]["actor"]["process"]["file"],
        lambda e: e["evidences"][0]["actor"]["process"]["parent_process"]["parent_process"],
        lambda e: e["evidences"][0]["actor"]["process"]["ancestry"][0],
        lambda e: e["resources"][0],
    ]
    for number, place in enumerate(places):
        changed = copy.deepcopy(event)
        place(changed)["tamperwatch_extra"] = "x"
        errors = validate(changed)
        assert any("'tamperwatch_extra' was unexpected" in error for error in errors), number


def test_wrong_enum_value_fails_validation(examples: list[Incident], validate: Validate) -> None:
    event = to_ocsf(examples[0])
    event["status_id"] = 42
    assert validate(event) != []


# Mapping -----------------------------------------------------------------------------------------


def test_required_fields_present(examples: list[Incident]) -> None:
    for incident in examples:
        event = to_ocsf(incident)
        assert event["class_uid"] == 2004
        assert event["category_uid"] == 2
        assert event["activity_id"] == 1
        assert event["type_uid"] == 200401
        assert event["severity_id"] in {2, 3, 4, 5}
        assert isinstance(event["time"], int)
        assert event["metadata"]["version"] == OCSF_VERSION
        assert event["metadata"]["uid"] == incident.id
        assert event["metadata"]["product"]["name"] == "tamperwatch"
        assert event["metadata"]["product"]["version"]
        assert event["metadata"]["profiles"] == list(OCSF_PROFILES)
        assert event["finding_info"]["uid"] == incident.id
        assert event["finding_info"]["title"] == incident.title
        assert event["finding_info"]["analytic"]["uid"] == "AN2040"


def test_milliseconds_are_not_rounded_up() -> None:
    event = to_ocsf(
        make_incident(
            first_seen="2026-12-01T09:30:00.999900Z",
            last_seen="2026-12-01T09:30:00.999900Z",
        )
    )
    assert event["start_time"] == epoch_ms(datetime(2026, 12, 1, 9, 30, 0, 999000, tzinfo=UTC))


def test_times_are_milliseconds() -> None:
    event = to_ocsf(make_incident())
    first = epoch_ms(datetime(2026, 12, 1, 9, 30, 0, 250000, tzinfo=UTC))
    last = epoch_ms(datetime(2026, 12, 1, 9, 31, 15, tzinfo=UTC))
    assert event["time"] == first
    assert event["start_time"] == first
    assert event["end_time"] == last
    assert event["finding_info"]["first_seen_time"] == first
    assert event["finding_info"]["last_seen_time"] == last
    assert event["time_dt"] == "2026-12-01T09:30:00.250000Z"
    assert event["finding_info"]["last_seen_time_dt"] == "2026-12-01T09:31:15.000000Z"
    assert event["timezone_offset"] == 0


def test_invalid_time_raises() -> None:
    with pytest.raises(ValueError, match="invalid incident time"):
        to_ocsf(make_incident(first_seen="yesterday"))


def test_severity_levels() -> None:
    expected = {"low": (2, "Low"), "medium": (3, "Medium"), "high": (4, "High")}
    expected["critical"] = (5, "Critical")
    for level, (severity_id, caption) in expected.items():
        event = to_ocsf(make_incident(severity=level))
        assert event["severity_id"] == severity_id, level
        assert event["severity"] == caption, level


def test_suspicious_is_new_alert(examples: list[Incident]) -> None:
    event = by_host([to_ocsf(i) for i in examples], "mbp-finance-07")
    assert event["status_id"] == 1
    assert event["status"] == "New"
    assert event["is_alert"] is True
    assert "status_detail" not in event


def test_explained_is_suppressed_with_reason(examples: list[Incident]) -> None:
    event = by_host([to_ocsf(i) for i in examples], "it-mac-03")
    assert event["status_id"] == 3
    assert event["status"] == "Suppressed"
    assert event["is_alert"] is False
    assert "system installer" in event["status_detail"]


def test_actor_process_and_chain(examples: list[Incident]) -> None:
    event = by_host([to_ocsf(i) for i in examples], "mbp-finance-07")
    process = event["evidences"][0]["actor"]["process"]
    assert process["path"] == "/bin/launchctl"
    assert process["name"] == "launchctl"
    assert process["cmd_line"] == "launchctl bootout system/com.crowdstrike.falcon.Agent"
    assert process["file"]["type_id"] == 8
    assert process["parent_process"]["path"] == "/usr/bin/sudo"
    assert parent_chain_depth(process) == 5
    assert [a["pid"] for a in process["ancestry"]][-1] == 1
    assert event["unmapped"]["actor"]["platform_binary"] is True


def test_team_id_is_signature_developer() -> None:
    event = to_ocsf(make_incident())
    process = event["evidences"][0]["actor"]["process"]
    assert process["file"]["signature"]["developer_uid"] == "QX7TEAM123"
    assert process["file"]["signature"]["algorithm_id"] == 0
    assert "team_id" not in event["unmapped"]["actor"]
    assert event["unmapped"]["actor"]["signing_id"] == "com.example.tool"


def test_attacks_carry_v19_tactics(examples: list[Incident]) -> None:
    event = by_host([to_ocsf(i) for i in examples], "mbp-finance-07")
    tactics = {
        attack["technique"]["uid"]: attack["tactic"]["uid"]
        for attack in event["finding_info"]["attacks"]
    }
    assert tactics["T1685"] == "TA0112"
    assert tactics["T1489"] == "TA0040"


def test_sub_technique_names_parent() -> None:
    event = to_ocsf(make_incident(attack=AttackRecord("AN2040", ["T1685.006", "T9999"])))
    logs, unknown = event["finding_info"]["attacks"]
    assert logs["technique"]["uid"] == "T1685"
    assert logs["sub_technique"]["uid"] == "T1685.006"
    assert logs["sub_technique"]["src_url"] == "https://attack.mitre.org/techniques/T1685/006/"
    assert logs["tactic"]["name"] == "Defense Impairment"
    assert unknown["technique"] == {
        "uid": "T9999",
        "src_url": "https://attack.mitre.org/techniques/T9999/",
    }
    assert "tactic" not in unknown


def test_signals_are_related_events_and_evidence() -> None:
    event = to_ocsf(make_incident())
    related = event["finding_info"]["related_events"]
    artifacts = event["evidences"][1:]
    assert [r["uid"] for r in related] == ["tw-0123456789abcdef0123/1"]
    assert [a["uid"] for a in artifacts] == ["tw-0123456789abcdef0123/1"]
    assert related[0]["type"] == "process_killed"
    assert artifacts[0]["data"]["evidence"] == [
        {"source": "eslogger", "file": "capture/es.ndjson", "line": 42}
    ]
    assert event["finding_info"]["data_sources"] == ["eslogger"]
    assert event["finding_info"]["types"] == ["process_killed"]


def test_components_are_affected_resources() -> None:
    event = to_ocsf(make_incident())
    assert event["resources"] == [
        {
            "uid": "example-edr",
            "name": "Example EDR",
            "role_id": 3,
            "role": "Affected",
            "data": {"vendor": "Example Corp"},
        }
    ]


def test_device_is_the_mac() -> None:
    device = to_ocsf(make_incident())["device"]
    assert device["hostname"] == "lab-mac-14"
    assert device["os"] == {"name": "macOS", "type_id": 300, "type": "macOS"}


def test_placeholder_hosts_are_no_device(validate: Validate) -> None:
    for host in (FLEET_HOST, UNKNOWN_HOST):
        event = to_ocsf(make_incident(host=host))
        assert "device" not in event, host
        assert event["unmapped"]["host"] == host
        assert validate(event) == [], host


def test_description_is_bounded() -> None:
    signal = make_incident().signals[0]
    event = to_ocsf(make_incident(signals=[signal] * 25))
    assert event["finding_info"]["desc"].endswith("; and 15 more signal(s)")
    assert event["finding_info"]["related_events_count"] == 25
    assert len(event["finding_info"]["related_events"]) == 25


def test_deep_ancestry_is_bounded(validate: Validate) -> None:
    ancestry = [AncestorRecord(5000 + n, f"/opt/level{n}/bin/run", ["run"]) for n in range(100)]
    actor = msgspec.structs.replace(make_incident().actor, ancestry=ancestry)
    event = to_ocsf(make_incident(actor=actor))
    process = event["evidences"][0]["actor"]["process"]
    assert parent_chain_depth(process) == PARENT_CHAIN_DEPTH
    assert len(process["ancestry"]) == MAX_ANCESTRY_DEPTH
    assert event["metadata"]["is_truncated"] is True
    assert validate(event) == []


# Hostile input -----------------------------------------------------------------------------------

HOSTILE_TEXT = "end\x00\x07\x1b[2J\r\n\x7f\x9b<script>alert(1)</script> \u202eexe.txt"
LONG_ARGUMENT = "A" * 200_000
NON_ASCII = "Sécurité 安全 Überwachung 🛡️"


def hostile_actor() -> ActorRecord:
    return ActorRecord(
        pid=-1,
        path=f"/tmp/{HOSTILE_TEXT}/{NON_ASCII}",
        args=["python3", "-c", LONG_ARGUMENT, HOSTILE_TEXT, ""],
        team_id=HOSTILE_TEXT,
        signing_id=None,
        platform_binary=None,
        masquerade=True,
        ancestry=[AncestorRecord(0, None, None), AncestorRecord(1, "/", [])],
    )


HOSTILE_CASES: dict[str, dict[str, Any]] = {
    "control characters and markup": {
        "host": f"mac{HOSTILE_TEXT}",
        "title": HOSTILE_TEXT,
        "components": [ComponentRef(HOSTILE_TEXT, "<img src=x onerror=alert(1)>", HOSTILE_TEXT)],
        "actor": hostile_actor(),
    },
    "non-ASCII": {
        "host": "büro-mac-ç",
        "title": NON_ASCII,
        "status": "explained",
        "explanation": NON_ASCII,
    },
    "no actor": {"actor": None},
    "no evidence": {
        "actor": None,
        "signals": [],
        "components": [],
        "attack": AttackRecord("", []),
    },
    "signal without evidence locations": {
        "signals": [SignalRecord("telemetry_silent", "2026-12-01T09:30:00.250000Z", None, "", [])],
    },
    "actor without path": {
        "actor": ActorRecord(7, None, None, "QX7TEAM123", None, None, False, []),
    },
    "odd technique ids": {"attack": AttackRecord("AN2040", ["", "T1685.", "x.y.z", HOSTILE_TEXT])},
}


@pytest.mark.parametrize("changes", HOSTILE_CASES.values(), ids=HOSTILE_CASES.keys())
def test_hostile_incident_validates(changes: dict[str, Any], validate: Validate) -> None:
    event = to_ocsf(make_incident(**changes))
    assert validate(event) == []


@pytest.mark.parametrize("changes", HOSTILE_CASES.values(), ids=HOSTILE_CASES.keys())
def test_hostile_incident_survives_json(changes: dict[str, Any]) -> None:
    incident = make_incident(**changes)
    event = to_ocsf(incident)
    line = msgspec.json.encode(event)
    assert b"\n" not in line
    assert json.loads(line) == event
    assert event["message"] == incident.title


def test_hostile_actor_text_is_kept() -> None:
    event = to_ocsf(make_incident(actor=hostile_actor()))
    process = event["evidences"][0]["actor"]["process"]
    assert process["cmd_line"] == f"python3 -c {LONG_ARGUMENT} {HOSTILE_TEXT} "
    assert process["name"] == NON_ASCII
    assert process["ancestry"][1] == {"pid": 1, "path": "/"}


def test_actor_without_path_keeps_team_id() -> None:
    event = to_ocsf(make_incident(**HOSTILE_CASES["actor without path"]))
    process = event["evidences"][0]["actor"]["process"]
    assert process == {"pid": 7}
    assert event["unmapped"]["actor"]["team_id"] == "QX7TEAM123"


# Command line ------------------------------------------------------------------------------------


def run_scan(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "tamperwatch", "scan", *args],
        input=stdin,
        capture_output=True,
        timeout=120,
        check=False,
    )


def test_cli_writes_valid_json_lines(examples: list[Incident], validate: Validate) -> None:
    result = run_scan(str(EXAMPLES), "--format", "ocsf")
    assert result.returncode == 1, result.stderr.decode()
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["metadata"]["uid"] for e in events] == [i.id for i in examples]
    for event in events:
        assert validate(event) == [], event["metadata"]["uid"]


def test_cli_output_file_matches_writer(tmp_path: Path, examples: list[Incident]) -> None:
    target = tmp_path / "findings.ocsf.jsonl"
    result = run_scan(str(EXAMPLES), "--format", "ocsf", "--output", str(target))
    assert result.returncode == 1, result.stderr.decode()
    with (tmp_path / "expected.jsonl").open("wb") as expected:
        write_ocsf(examples, expected)
    assert result.stdout == b""
    assert target.read_bytes() == (tmp_path / "expected.jsonl").read_bytes()


def test_cli_exit_codes_match_jsonl(tmp_path: Path) -> None:
    writer = EsWriter("2026-12-02T07:45:00Z", seed=11)
    shell = interactive_shell(writer)
    writer.command("launchctl list", shell=shell)
    quiet = tmp_path / "quiet.ndjson"
    writer.write_to(quiet)
    cases = {
        "suspicious incidents": ([str(EXAMPLES)], None, 1),
        "no incident": ([str(quiet), "--host", "lab-mac-14"], None, 0),
        "no usable record": (["-"], b"", 2),
    }
    for name, (args, stdin, expected) in cases.items():
        jsonl = run_scan(*args, "--format", "jsonl", stdin=stdin)
        ocsf = run_scan(*args, "--format", "ocsf", stdin=stdin)
        assert ocsf.returncode == expected, name
        assert jsonl.returncode == expected, name
        assert len(ocsf.stdout.splitlines()) == len(jsonl.stdout.splitlines()), name
