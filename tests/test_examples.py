"""The shipped example collection: every input format, every kind of finding the README shows."""

from __future__ import annotations

from pathlib import Path

import pytest

from tamperwatch.config import Config, build_inventory
from tamperwatch.scan import ScanResult, scan

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(scope="module")
def result() -> ScanResult:
    config = Config()
    return scan([str(EXAMPLES)], config=config, inventory=build_inventory(config))


def test_every_format_is_read_cleanly(result: ScanResult) -> None:
    formats = {stats.format for stats in result.files}
    assert formats == {
        "eslogger",
        "unifiedlog",
        "crash",
        "osquery",
        "sysextctl",
        "launchctl",
        "checkins",
    }
    assert all(stats.read == stats.used for stats in result.files)
    assert result.warnings == []


def test_findings_of_every_kind(result: ScanResult) -> None:
    kinds = {signal.kind for incident in result.incidents for signal in incident.signals}
    assert {
        "daemon_unloaded",
        "process_killed",
        "es_client_terminated",
        "event_flood",
        "crashed",
    } <= kinds
    assert {"telemetry_silent", "extension_state_changed"} <= kinds
    summaries = [s.summary for i in result.incidents for s in i.signals]
    assert any("listed as activated enabled but its launchd job" in text for text in summaries)


def test_blind_windows_include_dropped_events(result: ScanResult) -> None:
    lost = [window for window in result.blind_windows if window.events_lost]
    assert [(w.host, w.events_lost) for w in lost] == [("build-mac-02", 212)]
    assert any(window.component == "osquery" for window in result.blind_windows)


def test_look_alike_is_explained(result: ScanResult) -> None:
    explained = [incident for incident in result.incidents if incident.status == "explained"]
    assert [incident.host for incident in explained] == ["it-mac-03"]
    assert "system installer" in (explained[0].explanation or "")
