"""ECS alert documents built from the incidents of the example collection."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from tamperwatch.config import Config, build_inventory
from tamperwatch.ecs import incident_to_ecs
from tamperwatch.scan import scan

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(scope="module")
def documents() -> list[dict[str, object]]:
    config = Config()
    result = scan([str(EXAMPLES)], config=config, inventory=build_inventory(config))
    return [incident_to_ecs(incident) for incident in result.incidents]


def test_core_fields(documents: list[dict[str, object]]) -> None:
    for document in documents:
        assert document["event"]["kind"] == "alert"  # type: ignore[index]
        assert document["event"]["category"] == ["intrusion_detection"]  # type: ignore[index]
        assert document["@timestamp"].endswith("Z")  # type: ignore[attr-defined]
        assert document["host"]["name"]  # type: ignore[index]
        assert document["ecs"]["version"].startswith("8.")  # type: ignore[index]


def test_actor_and_techniques(documents: list[dict[str, object]]) -> None:
    falcon = next(d for d in documents if d["host"]["name"] == "mbp-finance-07")  # type: ignore[index]
    assert falcon["process"]["executable"] == "/bin/launchctl"  # type: ignore[index]
    assert falcon["process"]["parent"]["executable"] == "/usr/bin/sudo"  # type: ignore[index]
    assert falcon["process"]["code_signature"]["trusted"] is True  # type: ignore[index]
    techniques = {t["id"]: t.get("name") for t in falcon["threat"]["technique"]}  # type: ignore[index]
    assert techniques["T1685"] == "Disable or Modify Tools"
    tactics = [t["id"] for t in falcon["threat"]["tactic"]]  # type: ignore[index]
    assert tactics == ["TA0040", "TA0112"]
    assert falcon["event"]["severity"] == 99  # type: ignore[index]


def test_no_nulls_and_serialisable(documents: list[dict[str, object]]) -> None:
    for document in documents:
        text = msgspec.json.encode(document)
        assert b"null" not in text


def test_explained_incident_keeps_reason(documents: list[dict[str, object]]) -> None:
    upgrade = next(d for d in documents if d["host"]["name"] == "it-mac-03")  # type: ignore[index]
    assert "system installer" in upgrade["event"]["reason"]  # type: ignore[index]
    assert upgrade["tags"] == ["tamperwatch", "explained"]
