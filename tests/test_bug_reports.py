"""Practitioners' bug reports turned into scans: each scenario and its control get their verdict.

The telemetry is written here with this project's own values in the real formats: eslogger
lines, unified-log ndjson and crash reports. Only the shape of each report is reproduced.
"""

from __future__ import annotations

import json
from pathlib import Path

from tamperwatch.config import Config, build_inventory
from tamperwatch.scan import ScanResult, scan
from tamperwatch.synth import EsWriter, interactive_shell

SANTA_TEAM = "ZMCG7MLDV9"
SANTA_DAEMON = (
    "/Library/SystemExtensions/0A1B2C3D-4E5F-6071-8293-A4B5C6D7E8F9/"
    "com.northpolesec.santa.daemon.systemextension/Contents/MacOS/com.northpolesec.santa.daemon"
)
OSQUERY_TEAM = "3522FA9PXF"


def run_scan(*paths: Path, config: Config | None = None) -> ScanResult:
    config = config or Config()
    return scan(
        [str(p) for p in paths], host="br-host", config=config, inventory=build_inventory(config)
    )


def log_line(when: str, process_path: str, pid: int, message: str, subsystem: str = "") -> str:
    record = {
        "timezoneName": "",
        "messageType": "Error",
        "eventType": "logEvent",
        "source": None,
        "formatString": "%{public}s",
        "subsystem": subsystem,
        "category": "",
        "threadID": 7001,
        "processImagePath": process_path,
        "senderImagePath": process_path,
        "timestamp": when,
        "machTimestamp": 4455667788,
        "eventMessage": message,
        "processID": pid,
        "traceID": 9123456789012345678,
        "parentActivityIdentifier": 0,
    }
    return json.dumps(record).replace("/", "\\/")


def ips_report(
    path: Path,
    name: str,
    proc_path: str,
    pid: int,
    when: str,
    *,
    bundle: str | None = None,
    namespace: str = "SIGNAL",
    code: int = 11,
    exception: str = "EXC_BAD_ACCESS",
    signal: str = "SIGSEGV",
) -> None:
    header = {
        "app_name": name,
        "timestamp": when[:19] + ".00 +0000",
        "app_version": "2026.9",
        "bug_type": "309",
        "os_version": "macOS 15.1 (24B83)",
        "incident_id": f"00000000-0000-4000-8000-{pid:012d}",
        "name": name,
    }
    body: dict[str, object] = {
        "captureTime": when + " +0000",
        "incident": header["incident_id"],
        "bug_type": "309",
        "pid": pid,
        "procName": name,
        "procPath": proc_path,
        "parentProc": "launchd",
        "parentPid": 1,
        "exception": {"type": exception, "signal": signal, "codes": "0x0, 0x0"},
        "termination": {
            "flags": 0,
            "code": code,
            "namespace": namespace,
            "indicator": "",
            "byProc": "exc handler",
            "byPid": pid,
        },
    }
    if bundle:
        body["bundleInfo"] = {"CFBundleIdentifier": bundle, "CFBundleShortVersionString": "2026.9"}
    path.write_text(
        json.dumps(header) + "\n" + json.dumps(body, indent=2).replace("/", "\\/") + "\n"
    )


def test_santa_deadline_burst_is_low_severity(tmp_path: Path) -> None:
    lines = [
        log_line(
            f"2026-11-20 09:00:01.{100 + i:06d}+0000",
            SANTA_DAEMON,
            420,
            f"SNTEndpointSecurityClient: deadline reached: deny pid={3100 + i % 2}, event type: 1 ret=0",
            subsystem="com.northpolesec.santa.daemon",
        )
        for i in range(9)
    ]
    capture = tmp_path / "santa.ndjson"
    capture.write_text("\n".join(lines) + "\n")
    result = run_scan(capture)
    assert len(result.incidents) == 1
    incident = result.incidents[0]
    assert incident.severity == "low"
    assert {s.kind for s in incident.signals} == {"es_client_degraded"}


def test_santa_single_deadline_line_is_noise(tmp_path: Path) -> None:
    capture = tmp_path / "santa.ndjson"
    capture.write_text(
        log_line(
            "2026-11-20 09:00:01.000100+0000",
            SANTA_DAEMON,
            420,
            "SNTEndpointSecurityClient: deadline reached: deny pid=3100, event type: 1 ret=0",
            subsystem="com.northpolesec.santa.daemon",
        )
        + "\n"
    )
    assert run_scan(capture).incidents == []


def test_crash_loop_is_one_high_incident(tmp_path: Path) -> None:
    reports = []
    for index in range(12):
        second = 10 * index
        when = f"2026-11-20 23:{57 + second // 60:02d}:{second % 60:02d}.2500"
        report = (
            tmp_path
            / f"com.northpolesec.santa.daemon-2026-11-20-23{57 + second // 60:02d}{second % 60:02d}.ips"
        )
        ips_report(
            report,
            "com.northpolesec.santa.daemon",
            SANTA_DAEMON,
            500 + index,
            when,
            bundle="com.northpolesec.santa.daemon",
        )
        reports.append(report)
    result = run_scan(*reports)
    assert len(result.incidents) == 1
    incident = result.incidents[0]
    assert incident.status == "suspicious"
    assert incident.severity in ("high", "critical")
    assert len(incident.signals) == 12
    assert "crash burst" in incident.title


def test_single_crash_is_low(tmp_path: Path) -> None:
    report = tmp_path / "com.northpolesec.santa.daemon-2026-11-20-235700.ips"
    ips_report(
        report,
        "com.northpolesec.santa.daemon",
        SANTA_DAEMON,
        500,
        "2026-11-20 23:57:00.2500",
        bundle="com.northpolesec.santa.daemon",
    )
    result = run_scan(report)
    assert len(result.incidents) == 1
    assert result.incidents[0].severity == "low"


def test_sysextd_crash_naming_security_bundle(tmp_path: Path) -> None:
    report = tmp_path / "sysextd_2026-11-20-101010.crash"
    report.write_text(
        "Process:               sysextd [612]\n"
        "Path:                  /System/Library/Frameworks/SystemExtensions.framework/Versions/A/Helpers/sysextd\n"
        "Identifier:            sysextd\n"
        "Version:               1.0\n"
        "Parent Process:        launchd [1]\n"
        "\n"
        "Date/Time:             2026-11-20 10:10:10.125 -0800\n"
        "OS Version:            macOS 15.1 (24B83)\n"
        "Report Version:        12\n"
        "\n"
        "Exception Type:        EXC_BAD_INSTRUCTION (SIGILL)\n"
        "Termination Reason:    Namespace SIGNAL, Code 0x4\n"
        "Terminating Process:   exc handler [612]\n"
        "\n"
        "Application Specific Information:\n"
        'Fatal error: Activate found 2 extensions in active state, ID: com.northpolesec.santa.daemon,  teamID("ZMCG7MLDV9")\n'
    )
    result = run_scan(report)
    assert len(result.incidents) == 1
    incident = result.incidents[0]
    assert incident.status == "suspicious"
    assert incident.components[0].id.startswith("santa")
    assert incident.signals[0].kind == "extension_state_changed"


def test_lulu_uninstall_from_its_own_ui(tmp_path: Path) -> None:
    app = "/Applications/LuLu.app/Contents/MacOS/LuLu"
    extension = "/Library/SystemExtensions/11111111-2222-3333-4444-555555555555/com.objective-see.lulu.extension.systemextension/Contents/MacOS/com.objective-see.lulu.extension"
    lines = [
        log_line(
            "2026-11-20 14:00:00.100000+0100",
            app,
            880,
            "user confirmed uninstall",
            "com.objective-see.lulu",
        ),
        log_line(
            "2026-11-20 14:00:00.200000+0100",
            app,
            880,
            "invoking daemon XPC method, '-[XPCDaemonClient uninstall]'",
            "com.objective-see.lulu",
        ),
        log_line(
            "2026-11-20 14:00:00.300000+0100",
            extension,
            881,
            "XPC request: '-[XPCDaemon uninstall:]'",
            "com.objective-see.lulu",
        ),
        log_line(
            "2026-11-20 14:00:00.400000+0100",
            extension,
            881,
            "removed /Library/Objective-See/LuLu",
            "com.objective-see.lulu",
        ),
        log_line(
            "2026-11-20 14:00:00.500000+0100",
            app,
            880,
            "toggling extension (action: 0)",
            "com.objective-see.lulu",
        ),
    ]
    capture = tmp_path / "lulu.ndjson"
    capture.write_text("\n".join(lines) + "\n")
    result = run_scan(capture)
    assert result.suspicious
    assert result.suspicious[0].components[0].id == "lulu"


def test_kextunload_endpointsecurity_via_sudo(tmp_path: Path) -> None:
    writer = EsWriter("2026-11-20T10:00:00Z")
    shell = interactive_shell(writer)
    writer.command("sudo kextunload -b com.apple.iokit.EndpointSecurity", shell=shell)
    capture = tmp_path / "es.ndjson"
    writer.write_to(capture)
    result = run_scan(capture)
    assert len(result.suspicious) == 1
    assert result.suspicious[0].components[0].id == "endpoint-security-kext"
    assert result.suspicious[0].actor is not None
    assert result.suspicious[0].actor.ancestry[0].path == "/usr/bin/sudo"


def _elastic_upgrade(writer: EsWriter, *, interactive: bool) -> None:
    team = "2BT3HPN62Z"
    endpoint = writer.spawn(
        "/Library/Elastic/Endpoint/elastic-endpoint",
        ["elastic-endpoint", "run"],
        team_id=team,
        platform_binary=False,
    )
    writer.advance(60)
    if interactive:
        parent = interactive_shell(writer)
        writer.command("sudo launchctl bootout system/co.elastic.endpoint", shell=parent)
    else:
        agent = writer.spawn(
            "/Library/Elastic/Agent/data/elastic-agent-9.3.1-abc123/elastic-agent",
            ["elastic-agent", "run"],
            team_id=team,
            platform_binary=False,
        )
        previous = writer.spawn(
            "/Library/Elastic/Agent/data/elastic-agent-9.3.1-abc123/components/previous/elastic-endpoint",
            ["elastic-endpoint", "uninstall", "--keepstate", "--log", "stdout"],
            parent=agent,
            team_id=team,
            platform_binary=False,
        )
        writer.command("launchctl bootout system/co.elastic.endpoint", shell=previous)
    writer.exit(endpoint, 15)
    writer.advance(40)
    writer.spawn(
        "/Library/Elastic/Endpoint/elastic-endpoint",
        ["elastic-endpoint", "run"],
        team_id=team,
        platform_binary=False,
    )


def test_elastic_self_upgrade_is_explained(tmp_path: Path) -> None:
    writer = EsWriter("2026-11-20T10:00:00Z")
    _elastic_upgrade(writer, interactive=False)
    capture = tmp_path / "es.ndjson"
    writer.write_to(capture)
    result = run_scan(capture)
    assert result.incidents
    assert not result.suspicious
    assert "2BT3HPN62Z" in (result.incidents[0].explanation or "")


def test_elastic_stop_from_terminal_is_suspicious(tmp_path: Path) -> None:
    writer = EsWriter("2026-11-20T10:00:00Z")
    _elastic_upgrade(writer, interactive=True)
    capture = tmp_path / "es.ndjson"
    writer.write_to(capture)
    result = run_scan(capture)
    assert len(result.suspicious) == 1
    kinds = {s.kind for s in result.suspicious[0].signals}
    assert kinds == {"daemon_unloaded", "process_killed"}


def test_osquery_self_update_exit_is_not_an_incident(tmp_path: Path) -> None:
    writer = EsWriter("2026-11-20T10:00:00Z")
    daemon = writer.spawn(
        "/opt/osquery/lib/osquery.app/Contents/MacOS/osqueryd",
        ["osqueryd"],
        team_id=OSQUERY_TEAM,
        platform_binary=False,
    )
    writer.advance(20)
    writer.exit(daemon, 0)
    writer.advance(2)
    writer.spawn(
        "/opt/osquery/lib/osquery.app/Contents/MacOS/osqueryd",
        ["osqueryd"],
        team_id=OSQUERY_TEAM,
        platform_binary=False,
    )
    capture = tmp_path / "es.ndjson"
    writer.write_to(capture)
    assert run_scan(capture).incidents == []


def test_osquery_killed_from_shell_is_suspicious(tmp_path: Path) -> None:
    writer = EsWriter("2026-11-20T10:00:00Z")
    daemon = writer.spawn(
        "/opt/osquery/lib/osquery.app/Contents/MacOS/osqueryd",
        ["osqueryd"],
        team_id=OSQUERY_TEAM,
        platform_binary=False,
    )
    writer.advance(20)
    shell = interactive_shell(writer)
    kill = writer.command(f"sudo kill -9 {daemon.pid}", shell=shell, keep=True)[-1]
    writer.signal(kill, daemon, 9)
    writer.exit(daemon, 9)
    capture = tmp_path / "es.ndjson"
    writer.write_to(capture)
    result = run_scan(capture)
    assert len(result.suspicious) == 1
    incident = result.suspicious[0]
    assert incident.actor is not None
    assert incident.actor.path == "/bin/kill"
    assert incident.severity in ("high", "critical")
