"""Check-in exports: a silent agent on one host, and the same silence across the fleet."""

from __future__ import annotations

import calendar
from pathlib import Path

from tamperwatch.config import Config, build_inventory
from tamperwatch.scan import ScanResult, scan


def export(path: Path, hosts: int, silent_hosts: int) -> Path:
    """Write a console export: osquery and Jamf check in every 10 min; osquery stops at 10:00."""
    rows = ["host,agent,time,status"]
    start = calendar.timegm((2026, 11, 26, 9, 0, 0, 0, 0, 0))
    for step in range(13):
        moment = start + step * 600
        stamp = f"2026-11-26T{9 + step // 6:02d}:{(step % 6) * 10:02d}:00Z"
        for index in range(hosts):
            host = f"mac-{index:02d}"
            rows.append(f"{host},Jamf Pro,{stamp},online")
            if index >= silent_hosts or moment < start + 3600:
                rows.append(f"{host},osquery,{stamp},online")
    path.write_text("\n".join(rows) + "\n")
    return path


def run(path: Path) -> ScanResult:
    config = Config()
    return scan([str(path)], config=config, inventory=build_inventory(config))


def test_agent_silent_on_one_host(tmp_path: Path) -> None:
    result = run(export(tmp_path / "checkins.csv", hosts=10, silent_hosts=1))
    assert len(result.incidents) == 1
    incident = result.incidents[0]
    assert incident.host == "mac-00"
    assert incident.status == "suspicious"
    assert incident.components[0].id == "osquery"
    assert incident.signals[0].kind == "telemetry_silent"


def test_same_silence_on_many_hosts_is_one_fleet_incident(tmp_path: Path) -> None:
    result = run(export(tmp_path / "checkins.csv", hosts=10, silent_hosts=6))
    assert len(result.incidents) == 1
    incident = result.incidents[0]
    assert incident.host == "(fleet)"
    assert incident.status == "explained"
    assert "6 of 10 hosts" in incident.title
    assert len(incident.signals) == 6


def test_ambiguous_console_name_is_warned_and_can_be_mapped(tmp_path: Path) -> None:
    export_file = tmp_path / "checkins.csv"
    export_file.write_text(
        "host,agent,time,status\n"
        "mac-01,Santa,2026-11-26T09:00:00Z,online\n"
        "mac-01,Santa,2026-11-26T09:10:00Z,sensor disabled\n"
    )
    result = run(export_file)
    assert any("'Santa', which fits no single component" in w for w in result.warnings)
    config_path = tmp_path / "tw.yaml"
    config_path.write_text(
        "checkins:\n  unhealthy_status: [sensor disabled]\n  component_names: {Santa: santa-nps}\n"
    )
    from tamperwatch.config import load_config

    config = load_config(config_path)
    mapped = scan([str(export_file)], config=config, inventory=build_inventory(config))
    assert [i.components[0].id for i in mapped.incidents] == ["santa-nps"]
    assert not [w for w in mapped.warnings if "fits no single component" in w]


def test_agent_stop_and_start_seconds_apart_is_no_outage(tmp_path: Path) -> None:
    """A Wazuh-style upgrade: the console records the agent stopped, then started 6 s later."""
    config_path = tmp_path / "tw.yaml"
    config_path.write_text(
        "checkins:\n  healthy_status: [started, online]\n  unhealthy_status: [stopped]\n"
    )
    from tamperwatch.config import load_config

    config = load_config(config_path)
    upgrade = tmp_path / "upgrade.csv"
    upgrade.write_text(
        "host,agent,time,status\n"
        "mac-07,Wazuh agent,2026-11-26T09:07:46Z,stopped\n"
        "mac-07,Wazuh agent,2026-11-26T09:07:52Z,started\n"
    )
    assert scan([str(upgrade)], config=config, inventory=build_inventory(config)).incidents == []
    stopped = tmp_path / "stopped.csv"
    stopped.write_text(
        "host,agent,time,status\n"
        "mac-07,Wazuh agent,2026-11-26T09:07:46Z,stopped\n"
        "mac-07,Jamf Pro,2026-11-26T09:20:00Z,online\n"
    )
    result = scan([str(stopped)], config=config, inventory=build_inventory(config))
    assert [(i.components[0].id, i.status) for i in result.incidents] == [("wazuh", "suspicious")]
