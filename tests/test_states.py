"""Broken states from snapshots: each scenario and its control, as a user would collect them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tamperwatch.config import Config, build_inventory
from tamperwatch.scan import ScanResult, scan

SANTA = "com.northpolesec.santa.daemon"
SANTA_TEAM = "ZMCG7MLDV9"
HEADER = "enabled\tactive\tteamID\tbundleID (version)\tname\t[state]"
CATEGORY = "--- com.apple.system_extension.endpoint_security"


def sysext_snapshot(when: str, *rows: str) -> str:
    lines = [f"# time: {when}", f"{len(rows)} extension(s)", CATEGORY, HEADER, *rows]
    return "\n".join(lines) + "\n"


def row(enabled: bool, active: bool, version: str, state: str, bundle: str = SANTA) -> str:
    enabled_star = "*" if enabled else ""
    active_star = "*" if active else ""
    stars = f"{enabled_star}\t{active_star}"
    return f"{stars}\t{SANTA_TEAM}\t{bundle} ({version}/{version})\tsantad\t[{state}]"


def run(*files: Path) -> ScanResult:
    config = Config()
    return scan(
        [str(f) for f in files], host="state-mac", config=config, inventory=build_inventory(config)
    )


def test_enabled_extension_whose_job_died(tmp_path: Path) -> None:
    sysext = tmp_path / "sysext.txt"
    sysext.write_text(
        sysext_snapshot(
            "2026-11-24T10:00:00Z",
            row(False, False, "2026.8", "terminated waiting to uninstall on reboot"),
            row(True, True, "2026.8", "activated enabled"),
        )
    )
    jobs = tmp_path / "launchctl-list.txt"
    jobs.write_text(
        "# time: 2026-11-24T10:01:00Z\n"
        "PID\tStatus\tLabel\n"
        f"-\t-6\t{SANTA_TEAM}.{SANTA}\n"
        "412\t0\tcom.northpolesec.santa.metricservice\n"
    )
    result = run(sysext, jobs)
    assert len(result.suspicious) == 1
    summaries = [s.summary for s in result.suspicious[0].signals]
    assert any("SIGABRT" in text for text in summaries)
    assert any("is not running" in text for text in summaries)


def test_enabled_extension_with_running_job_is_fine(tmp_path: Path) -> None:
    sysext = tmp_path / "sysext.txt"
    sysext.write_text(
        sysext_snapshot("2026-11-24T10:00:00Z", row(True, True, "2026.8", "activated enabled"))
    )
    jobs = tmp_path / "launchctl-list.txt"
    jobs.write_text(
        f"# time: 2026-11-24T10:01:00Z\nPID\tStatus\tLabel\n531\t0\t{SANTA_TEAM}.{SANTA}\n"
    )
    assert run(sysext, jobs).incidents == []


def test_waiting_for_user_past_the_grace(tmp_path: Path) -> None:
    sysext = tmp_path / "sysext.txt"
    both = (
        row(True, False, "2026.9", "activated waiting for user"),
        row(True, True, "2026.8", "activated enabled"),
    )
    sysext.write_text(
        sysext_snapshot("2026-11-24T10:00:00Z", *both)
        + sysext_snapshot("2026-11-24T10:30:00Z", *both)
    )
    result = run(sysext)
    assert len(result.suspicious) == 1
    assert "still waits for user approval after 30 min" in result.suspicious[0].signals[0].summary


def test_waiting_for_user_approved_in_time(tmp_path: Path) -> None:
    sysext = tmp_path / "sysext.txt"
    sysext.write_text(
        sysext_snapshot(
            "2026-11-24T10:00:00Z",
            row(True, False, "2026.9", "activated waiting for user"),
            row(True, True, "2026.8", "activated enabled"),
        )
        + sysext_snapshot(
            "2026-11-24T10:05:00Z",
            row(False, False, "2026.8", "terminated waiting to uninstall on reboot"),
            row(True, True, "2026.9", "activated enabled"),
        )
        + sysext_snapshot("2026-11-24T10:40:00Z", row(True, True, "2026.9", "activated enabled"))
    )
    assert run(sysext).incidents == []


def test_extension_missing_from_later_snapshot(tmp_path: Path) -> None:
    sysext = tmp_path / "sysext.txt"
    lulu = "\t".join(
        [
            "*",
            "*",
            "VBG97UB4TA",
            "com.objective-see.lulu.extension (4.1.0/4.1.0)",
            "LuLu",
            "[activated enabled]",
        ]
    )
    sysext.write_text(
        sysext_snapshot(
            "2026-11-24T10:00:00Z", row(True, True, "2026.8", "activated enabled"), lulu
        )
        + sysext_snapshot("2026-11-24T11:00:00Z", row(True, True, "2026.8", "activated enabled"))
    )
    result = run(sysext)
    assert len(result.suspicious) == 1
    assert result.suspicious[0].components[0].id == "lulu"
    assert "missing from a later snapshot" in result.suspicious[0].signals[0].summary


def test_extension_that_cannot_start(tmp_path: Path) -> None:
    label = "WCKWMMKJ35.com.crowdstrike.falcon.Agent"
    printed = tmp_path / "launchctl-print.txt"
    printed.write_text(
        "# time: 2026-11-24T10:00:00Z\n"
        f"system/{label} = {{\n"
        "\tactive count = 0\n"
        "\tpath = (submitted by smd[532])\n"
        "\ttype = Submitted\n"
        "\tstate = spawn scheduled\n"
        "\truns = 324\n"
        "\tlast exit code = 1\n"
        "\tlast exit reason = OS_REASON_EXEC\n"
        "}\n"
    )
    result = run(printed)
    assert len(result.suspicious) == 1
    assert "cannot start" in result.suspicious[0].signals[0].summary
    running = tmp_path / "launchctl-print-ok.txt"
    running.write_text(
        "# time: 2026-11-24T10:00:00Z\n"
        f"system/{label} = {{\n\tstate = running\n\truns = 1\n\tpid = 702\n\tlast exit code = (never exited)\n}}\n"
    )
    assert run(running).incidents == []


def test_upgrade_residue_alone_is_an_uninstall(tmp_path: Path) -> None:
    sysext = tmp_path / "sysext.txt"
    sysext.write_text(
        sysext_snapshot("2026-11-24T10:00:00Z", row(True, True, "2026.8", "activated enabled"))
        + sysext_snapshot(
            "2026-11-24T10:10:00Z",
            row(False, False, "2026.8", "terminated waiting to uninstall on reboot"),
        )
    )
    result = run(sysext)
    assert len(result.suspicious) == 1
    assert "uninstalled at reboot" in result.suspicious[0].signals[0].summary


def test_upgrade_residue_beside_successor_is_fine(tmp_path: Path) -> None:
    sysext = tmp_path / "sysext.txt"
    sysext.write_text(
        sysext_snapshot(
            "2026-11-24T10:00:00Z",
            row(False, False, "2026.8", "terminated waiting to uninstall on reboot"),
            row(True, True, "2026.9", "activated enabled"),
        )
    )
    assert run(sysext).incidents == []


def test_stuck_approval_after_os_update_stays_suspicious(tmp_path: Path) -> None:
    from tamperwatch.synth import EsWriter

    writer = EsWriter("2026-11-24T09:50:00Z", seed=40)
    writer.spawn("/usr/sbin/softwareupdate", ["softwareupdate", "--install", "--all", "--restart"])
    updates = tmp_path / "es.ndjson"
    writer.write_to(updates)
    waiting = row(True, False, "2026.9", "activated waiting for user")
    sysext = tmp_path / "sysext.txt"
    sysext.write_text(
        sysext_snapshot("2026-11-24T10:00:00Z", waiting)
        + sysext_snapshot("2026-11-24T11:00:00Z", waiting)
        + sysext_snapshot("2026-11-25T10:00:00Z", waiting)
    )
    result = run(updates, sysext)
    assert [i.status for i in result.incidents] == ["suspicious"]


def test_removal_is_dated_at_the_first_snapshot_without_it(tmp_path: Path) -> None:
    lulu = "\t".join(
        [
            "*",
            "*",
            "VBG97UB4TA",
            "com.objective-see.lulu.extension (4.1.0/4.1.0)",
            "LuLu",
            "[activated enabled]",
        ]
    )
    santa = row(True, True, "2026.8", "activated enabled")
    sysext = tmp_path / "sysext.txt"
    sysext.write_text(
        sysext_snapshot("2026-11-24T10:00:00Z", santa, lulu)
        + sysext_snapshot("2026-11-24T11:00:00Z", santa)
        + sysext_snapshot("2026-11-24T12:00:00Z", santa)
    )
    result = run(sysext)
    assert result.incidents[0].first_seen == "2026-11-24T11:00:00.000000Z"


def test_uncatalogued_extension_that_cannot_start(tmp_path: Path) -> None:
    printed = tmp_path / "launchctl-print.txt"
    printed.write_text(
        "# time: 2026-11-24T10:00:00Z\n"
        "system/ABCDE12345.com.example.guard.extension = {\n"
        "\tactive count = 0\n"
        "\tpath = (submitted by smd[532])\n"
        "\ttype = Submitted\n"
        "\tstate = spawn scheduled\n"
        "\truns = 57\n"
        "\tlast exit code = 1\n"
        "\tlast exit reason = OS_REASON_EXEC\n"
        "}\n"
    )
    result = run(printed)
    assert [i.components[0].id for i in result.suspicious] == [
        "system-extension:com.example.guard.extension"
    ]


def test_climbing_run_count_is_a_spawn_loop(tmp_path: Path) -> None:
    label = "ZMCG7MLDV9.com.northpolesec.santa.daemon"

    def block(when: str, runs: int) -> str:
        return (
            f"# time: {when}\nsystem/{label} = {{\n\tpath = (submitted by smd[532])\n"
            f"\tstate = spawn scheduled\n\truns = {runs}\n\tlast exit code = 1\n}}\n"
        )

    printed = tmp_path / "launchctl-print.txt"
    printed.write_text(block("2026-11-24T10:00:00Z", 3) + block("2026-11-24T10:01:00Z", 8))
    result = run(printed)
    assert len(result.suspicious) == 1
    assert "after 8 runs" in result.suspicious[0].signals[0].summary


@pytest.mark.parametrize(
    "jobs_time", ["2026-11-24T09:59:00Z", "2026-11-24T10:00:00Z", "2026-11-24T10:01:00Z"]
)
def test_enabled_but_not_running_in_either_order(tmp_path: Path, jobs_time: str) -> None:
    sysext = tmp_path / "sysext.txt"
    sysext.write_text(
        sysext_snapshot("2026-11-24T10:00:00Z", row(True, True, "2026.8", "activated enabled"))
    )
    jobs = tmp_path / "a-launchctl-list.txt"
    jobs.write_text(f"# time: {jobs_time}\nPID\tStatus\tLabel\n-\t0\t{SANTA_TEAM}.{SANTA}\n")
    result = run(sysext, jobs)
    assert len(result.suspicious) == 1
    assert "is not running" in result.suspicious[0].signals[0].summary


def test_other_job_of_the_product_is_not_the_extension(tmp_path: Path) -> None:
    sysext = tmp_path / "sysext.txt"
    sysext.write_text(
        sysext_snapshot("2026-11-24T10:00:00Z", row(True, True, "2026.8", "activated enabled"))
    )
    jobs = tmp_path / "launchctl-list.txt"
    jobs.write_text(
        "# time: 2026-11-24T10:01:00Z\nPID\tStatus\tLabel\n"
        f"-\t0\tcom.northpolesec.santa.metricservice\n512\t0\t{SANTA_TEAM}.{SANTA}\n"
    )
    assert run(sysext, jobs).incidents == []
