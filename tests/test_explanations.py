"""Benign look-alikes: approved maintenance, shutdowns and OS updates, each with its limit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tamperwatch.config import Config, ConfigError, build_inventory, load_config
from tamperwatch.scan import ScanResult, scan
from tamperwatch.synth import EsWriter, interactive_shell

FALCON_TEAM = "X9E956P446"

WINDOW = """
maintenance_windows:
  - hosts: "lab-*"
    components: [crowdstrike-falcon]
    start: 2026-11-25T09:00:00Z
    end: 2026-11-25T10:00:00Z
    reason: Falcon sensor reinstall, change 4711
    author: kim
    grace: 10m
"""


def run(
    tmp_path: Path, writer: EsWriter, config: Config | None = None, host: str = "lab-mac-1"
) -> ScanResult:
    capture = tmp_path / "capture.ndjson"
    writer.write_to(capture)
    config = config or Config()
    return scan([str(capture)], host=host, config=config, inventory=build_inventory(config))


def unload_falcon(writer: EsWriter) -> None:
    writer.spawn(
        "/Library/CS/falcond", ["/Library/CS/falcond"], team_id=FALCON_TEAM, platform_binary=False
    )
    shell = interactive_shell(writer)
    writer.command("sudo launchctl bootout system/com.crowdstrike.falcon.Agent", shell=shell)


def config_file(tmp_path: Path, text: str) -> Config:
    path = tmp_path / "tw.yaml"
    path.write_text(text)
    return load_config(path)


def test_approved_window_explains_an_admin_unload(tmp_path: Path) -> None:
    writer = EsWriter("2026-11-25T09:15:00Z", seed=30)
    unload_falcon(writer)
    result = run(tmp_path, writer, config_file(tmp_path, WINDOW))
    assert [i.status for i in result.incidents] == ["explained"]
    explanation = result.incidents[0].explanation or ""
    assert "change 4711" in explanation
    assert "approved by kim" in explanation


def test_window_is_scoped_to_hosts_and_time(tmp_path: Path) -> None:
    writer = EsWriter("2026-11-25T09:15:00Z", seed=31)
    unload_falcon(writer)
    other_host = run(tmp_path, writer, config_file(tmp_path, WINDOW), host="prod-mac-9")
    assert [i.status for i in other_host.incidents] == ["suspicious"]
    late = EsWriter("2026-11-25T11:15:00Z", seed=32)
    unload_falcon(late)
    assert [i.status for i in run(tmp_path, late, config_file(tmp_path, WINDOW)).incidents] == [
        "suspicious"
    ]


def test_absence_after_the_window_is_not_explained(tmp_path: Path) -> None:
    writer = EsWriter("2026-11-25T09:15:00Z", seed=33)
    daemon = writer.spawn(
        "/Library/CS/falcond", ["/Library/CS/falcond"], team_id=FALCON_TEAM, platform_binary=False
    )
    worker = writer.spawn("/usr/libexec/backupd", ["backupd"])
    writer.noise(daemon, 2)
    writer.exit(daemon, 0)
    for _ in range(16):
        writer.noise(worker, 2)
        writer.advance(300)
    config = config_file(tmp_path, WINDOW + "telemetry_gap_threshold: 30m\n")
    result = run(tmp_path, writer, config)
    silent = [i for i in result.incidents if i.signals[0].kind == "telemetry_silent"]
    assert [i.status for i in silent] == ["suspicious"]


def test_reboot_explains_components_stopping(tmp_path: Path) -> None:
    writer = EsWriter("2026-11-25T09:15:00Z", seed=34)
    daemon = writer.spawn(
        "/Library/CS/falcond", ["/Library/CS/falcond"], team_id=FALCON_TEAM, platform_binary=False
    )
    shell = interactive_shell(writer)
    writer.command("sudo shutdown -r now", shell=shell)
    writer.signal(writer.launchd, daemon, 15)
    writer.exit(daemon, 15)
    result = run(tmp_path, writer)
    assert [i.status for i in result.incidents] == ["explained"]
    assert "shutdown -r now" in (result.incidents[0].explanation or "")


def test_reboot_does_not_excuse_a_kill(tmp_path: Path) -> None:
    writer = EsWriter("2026-11-25T09:15:00Z", seed=35)
    daemon = writer.spawn(
        "/Library/CS/falcond", ["/Library/CS/falcond"], team_id=FALCON_TEAM, platform_binary=False
    )
    shell = interactive_shell(writer)
    writer.command("sudo shutdown -r +5", shell=shell)
    kill = writer.command(f"sudo kill -9 {daemon.pid}", shell=shell, keep=True)[-1]
    writer.signal(kill, daemon, 9)
    writer.exit(daemon, 9)
    result = run(tmp_path, writer)
    assert [i.status for i in result.incidents] == ["suspicious"]


def test_os_update_explains_a_restart(tmp_path: Path) -> None:
    writer = EsWriter("2026-11-25T09:15:00Z", seed=36)
    daemon = writer.spawn(
        "/Library/CS/falcond", ["/Library/CS/falcond"], team_id=FALCON_TEAM, platform_binary=False
    )
    writer.spawn("/usr/sbin/softwareupdate", ["softwareupdate", "--install", "--all", "--restart"])
    writer.advance(600)
    writer.exit(daemon, 15)
    result = run(tmp_path, writer)
    assert [i.status for i in result.incidents] == ["explained"]
    assert "macOS update" in (result.incidents[0].explanation or "")


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            "  - {start: 2026-11-25T09:00:00Z, end: 2026-11-25T10:00:00Z, author: kim}\n",
            "missing 'reason'",
        ),
        (
            "  - {start: 2026-11-25T10:00:00Z, end: 2026-11-25T09:00:00Z, reason: x, author: kim}\n",
            "'end' must be after",
        ),
        (
            "  - {start: tomorrow, end: 2026-11-25T09:00:00Z, reason: x, author: kim}\n",
            "invalid time",
        ),
        (
            "  - {start: 2026-02-30T22:00:00Z, end: 2026-03-01T09:00:00Z, reason: x, author: kim}\n",
            "invalid time",
        ),
        (
            "  - {start: '2026-02-30T22:00:00Z', end: 2026-03-01T09:00:00Z, reason: x, author: kim}\n",
            "invalid time",
        ),
        (
            "  - {start: 2026-11-25T09:00:00Z, end: 2026-11-25T10:00:00Z, reason: x, author: kim, components: [nope]}\n",
            "unknown component id",
        ),
        (
            "  - {start: 2026-11-25T09:00:00Z, end: 2026-11-25T10:00:00Z, reason: x, author: kim, owner: y}\n",
            "unknown key",
        ),
    ],
)
def test_window_errors_name_file_and_line(tmp_path: Path, entry: str, message: str) -> None:
    path = tmp_path / "tw.yaml"
    path.write_text("maintenance_windows:\n" + entry)
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert message in str(raised.value)
    assert raised.value.file is not None
    assert raised.value.file.endswith("tw.yaml")
    assert raised.value.line == 2


def test_silence_inside_the_window_is_explained(tmp_path: Path) -> None:
    writer = EsWriter("2026-11-25T09:05:00Z", seed=37)
    daemon = writer.spawn(
        "/Library/CS/falcond", ["/Library/CS/falcond"], team_id=FALCON_TEAM, platform_binary=False
    )
    worker = writer.spawn("/usr/libexec/backupd", ["backupd"])
    writer.noise(daemon, 2)
    writer.exit(daemon, 0)
    for _ in range(9):
        writer.noise(worker, 2)
        writer.advance(300)
    back = writer.spawn(
        "/Library/CS/falcond", ["/Library/CS/falcond"], team_id=FALCON_TEAM, platform_binary=False
    )
    writer.noise(back, 2)
    config = config_file(tmp_path, WINDOW + "telemetry_gap_threshold: 30m\n")
    result = run(tmp_path, writer, config)
    silent = [i for i in result.incidents if i.signals[0].kind == "telemetry_silent"]
    assert [i.status for i in silent] == ["explained"]


def _log_line(stamp: str, process: str, pid: int, message: str) -> str:
    record = {
        "timestamp": stamp,
        "messageType": "Default",
        "eventType": "logEvent",
        "processImagePath": process,
        "processID": pid,
        "subsystem": "",
        "category": "",
        "eventMessage": message,
        "formatString": "%{public}s",
    }
    return json.dumps(record)


def test_sleep_explains_a_silent_agent(tmp_path: Path) -> None:
    powerd = "/System/Library/CoreServices/powerd.bundle/powerd"
    checkins = ["host,agent,time,status"]
    for minute in range(0, 240, 10):
        stamp = f"2026-11-25T{8 + minute // 60:02d}:{minute % 60:02d}:00Z"
        checkins.append(f"lab-mac-1,Jamf Pro,{stamp},online")
        if not 60 <= minute < 150:
            checkins.append(f"lab-mac-1,osquery,{stamp},online")
    export = tmp_path / "checkins.csv"
    export.write_text("\n".join(checkins) + "\n")
    power = tmp_path / "power.ndjson"
    power.write_text(
        _log_line(
            "2026-11-25 08:55:00.000000+0000",
            powerd,
            88,
            "Entering Sleep state due to 'Idle Sleep'",
        )
        + "\n"
        + _log_line(
            "2026-11-25 10:25:00.000000+0000",
            powerd,
            88,
            "Wake from Deep Idle [CDNVA] : due to UserActivity",
        )
        + "\n"
    )
    config = Config()
    result = scan(
        [str(export), str(power)],
        host="lab-mac-1",
        config=config,
        inventory=build_inventory(config),
    )
    silent = [i for i in result.incidents if i.signals[0].kind == "telemetry_silent"]
    assert [i.status for i in silent] == ["explained"]
    assert "host asleep" in (silent[0].explanation or "")
    without_power = scan(
        [str(export)], host="lab-mac-1", config=config, inventory=build_inventory(config)
    )
    assert [i.status for i in without_power.incidents] == ["suspicious"]


def test_mass_termination_reads_as_shutdown(tmp_path: Path) -> None:
    writer = EsWriter("2026-11-25T09:15:00Z", seed=38)
    daemon = writer.spawn(
        "/Library/CS/falcond", ["/Library/CS/falcond"], team_id=FALCON_TEAM, platform_binary=False
    )
    helpers = [
        writer.spawn(f"/usr/libexec/helper{index}", [f"helper{index}"]) for index in range(30)
    ]
    writer.advance(60)
    for helper in helpers:
        writer.exit(helper, 15)
    writer.exit(daemon, 15)
    result = run(tmp_path, writer)
    assert [i.status for i in result.incidents] == ["explained"]
    assert "shutting down" in (result.incidents[0].explanation or "")


def test_os_version_change_explains_a_stop(tmp_path: Path) -> None:
    writer = EsWriter("2026-11-25T09:15:00Z", seed=39, vendor_shape=True, host="lab-mac-1")
    daemon = writer.spawn(
        "/Library/CS/falcond", ["/Library/CS/falcond"], team_id=FALCON_TEAM, platform_binary=False
    )
    writer.advance(120)
    writer.exit(daemon, 15)
    writer.advance(600)
    writer.spawn("/usr/libexec/backupd", ["backupd"])
    capture = tmp_path / "telemetry.ndjson"
    writer.write_to(capture)
    lines = capture.read_text().splitlines()
    updated = []
    for index, line in enumerate(lines):
        record = json.loads(line)
        if index >= len(lines) - 2:
            record["host"]["os"] = "Version 26.1 (Build 25B78)"
        updated.append(json.dumps(record))
    capture.write_text("\n".join(updated) + "\n")
    config = Config()
    result = scan([str(capture)], config=config, inventory=build_inventory(config))
    assert [i.status for i in result.incidents] == ["explained"]
    assert "macOS updated from" in (result.incidents[0].explanation or "")


def test_new_launchd_start_time_reads_as_reboot(tmp_path: Path) -> None:
    writer = EsWriter("2026-11-25T09:15:00Z", seed=41)
    daemon = writer.spawn(
        "/Library/CS/falcond", ["/Library/CS/falcond"], team_id=FALCON_TEAM, platform_binary=False
    )
    writer.advance(30)
    writer.exit(daemon, 9)
    writer.advance(90)
    writer.spawn(
        "/Library/CS/falcond", ["/Library/CS/falcond"], team_id=FALCON_TEAM, platform_binary=False
    )
    capture = tmp_path / "capture.ndjson"
    writer.write_to(capture)
    lines = [json.loads(line) for line in capture.read_text().splitlines()]
    rebooted = []
    for record in lines:
        # Records after the daemon died come from a fresh boot: launchd started again.
        if record["event_type"] in (9, 11) and record["time"] > "2026-11-25T09:16":
            parent = record["process"]
            if parent["audit_token"]["pid"] == 1:
                parent["start_time"] = "2026-11-25T09:16:30.000000Z"
        rebooted.append(json.dumps(record))
    capture.write_text("\n".join(rebooted) + "\n")
    config = Config()
    result = scan(
        [str(capture)], host="lab-mac-1", config=config, inventory=build_inventory(config)
    )
    assert [i.status for i in result.incidents] == ["explained"]
    assert "host rebooted" in (result.incidents[0].explanation or "")


def test_launchd_start_written_with_other_precision_is_no_reboot(tmp_path: Path) -> None:
    writer = EsWriter("2026-11-25T09:15:00Z", seed=42)
    daemon = writer.spawn(
        "/Library/CS/falcond", ["/Library/CS/falcond"], team_id=FALCON_TEAM, platform_binary=False
    )
    writer.advance(30)
    writer.exit(daemon, 9)
    writer.advance(30)
    writer.spawn(
        "/Library/CS/falcond", ["/Library/CS/falcond"], team_id=FALCON_TEAM, platform_binary=False
    )
    capture = tmp_path / "capture.ndjson"
    writer.write_to(capture)
    records = [json.loads(line) for line in capture.read_text().splitlines()]
    starts = {
        r["process"]["start_time"] for r in records if r["process"]["audit_token"]["pid"] == 1
    }
    assert len(starts) == 1
    start = starts.pop()
    for index, record in enumerate(records):
        if record["process"]["audit_token"]["pid"] == 1 and index % 2:
            record["process"]["start_time"] = start[:23] + "Z"
    capture.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    config = Config()
    result = scan(
        [str(capture)], host="lab-mac-1", config=config, inventory=build_inventory(config)
    )
    assert [i.status for i in result.incidents] == ["suspicious"]


def test_macos_installer_package_is_an_update(tmp_path: Path) -> None:
    writer = EsWriter("2026-11-25T09:15:00Z", seed=43)
    daemon = writer.spawn(
        "/Library/CS/falcond", ["/Library/CS/falcond"], team_id=FALCON_TEAM, platform_binary=False
    )
    writer.spawn(
        "/usr/sbin/installer",
        ["installer", "-pkg", "/Users/Shared/InstallAssistant.pkg", "-target", "/"],
    )
    writer.advance(300)
    writer.exit(daemon, 15)
    result = run(tmp_path, writer)
    assert [i.status for i in result.incidents] == ["explained"]
    assert "macOS update by installer" in (result.incidents[0].explanation or "")
