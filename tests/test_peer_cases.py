"""Peer test cases from public detection content, replayed as eslogger telemetry.

Each case names commands (or one event) and the verdict a detector of security-tool impairment
should reach: ``alert`` needs a suspicious incident, ``benign`` and ``out-of-scope`` need none.
The commands run under the lineage the case states (an interactive shell unless it names a
parent), as a Mac would record them with eslogger, and the scan judges the recording.

The case file is not part of this project; ``TAMPERWATCH_PEER_CASES`` points at it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tamperwatch.config import Config, build_inventory
from tamperwatch.scan import ScanResult, scan
from tamperwatch.synth import EsWriter, SynthProcess, interactive_shell

CASES_FILE = os.environ.get("TAMPERWATCH_PEER_CASES")

pytestmark = pytest.mark.skipif(
    CASES_FILE is None,
    reason="TAMPERWATCH_PEER_CASES is not set; it points at the peer test-case YAML file",
)

# Cases whose evidence is not in the formats the scan reads (osquery tables, heartbeats) or
# that describe malware behaviour without a command line to replay.
NOT_REPLAYABLE = {
    "CTI-Proton-kill": "threat-report prose without a command line",
    "CTI-Proton-logs": "threat-report prose without a command line",
    "CTI-Bundlore": "threat-report prose without a command line",
    "CTI-CookieMiner": "threat-report prose without a command line",
    "CTI-InvisibleFerret": "threat-report prose without a command line",
    "JP-hosts-vendor": "needs the written bytes of /etc/hosts, which ES write events do not carry",
}

# Placeholders in the case commands and the values this replay gives them.
PLACEHOLDERS = {
    "$PathToAtomicsFolder": "/Users/kim/atomic-red-team/atomics",
    "<label>": "com.crowdstrike.falcon.Agent",
    "<term>": "falcond",
    "<name>": "client",
    "<netskope kext id>": "com.netskope.kext",
    "<password>": "hunter2",
    "<date>": "2026-11-20-101500",
    "<ver>": "8.17.0",
    "<dmg>": "Setup",
}

FALCON_TEAM = "X9E956P446"
ELASTIC_TEAM = "2BT3HPN62Z"


def load_cases() -> list[dict[str, Any]]:
    if CASES_FILE is None:
        return []
    with open(CASES_FILE, encoding="utf-8") as stream:
        return list(yaml.safe_load(stream)["cases"])


CASES = load_cases()


def _substitute(text: str, pid: int) -> str:
    for placeholder, value in PLACEHOLDERS.items():
        text = text.replace(placeholder, value)
    return text.replace("<pid>", str(pid))


def _start_components(writer: EsWriter) -> SynthProcess:
    """Start a Falcon daemon so that commands naming a pid have a target."""
    return writer.spawn(
        "/Library/CS/falcond",
        ["/Library/CS/falcond"],
        team_id=FALCON_TEAM,
        signing_id="com.crowdstrike.falcond",
        platform_binary=False,
    )


def _lineage(writer: EsWriter, context: str | None) -> SynthProcess:
    """Start the process chain a case's parent_context describes and return the shell to use."""
    text = (context or "interactive shell").lower()
    if "jamf" in text or "mdm agent" in text:
        parent = writer.spawn("/usr/local/jamf/bin/jamf", ["jamf", "policy"], platform_binary=False)
    elif "intune" in text:
        path = "/Library/Intune/Microsoft Intune Agent.app/Contents/MacOS/IntuneMdmDaemon"
        parent = writer.spawn(path, [path], team_id="UBF8T346G9", platform_binary=False)
    elif "kandji" in text:
        path = "/Library/Kandji/Kandji Agent.app/Contents/MacOS/kandji-daemon"
        parent = writer.spawn(path, [path], team_id="P3FGV63VK7", platform_binary=False)
    elif "elastic-agent" in text:
        path = "/Library/Elastic/Agent/data/elastic-agent-8.17.0/elastic-agent.app/Contents/MacOS/elastic-agent"
        parent = writer.spawn(path, [path, "run"], team_id=ELASTIC_TEAM, platform_binary=False)
    elif "installer" in text and "package" in text:
        installer = writer.spawn(
            "/usr/sbin/installer", ["installer", "-pkg", "/tmp/wazuh-agent.pkg", "-target", "/"]
        )
        service = writer.spawn(
            "/System/Library/PrivateFrameworks/PackageKit.framework/Versions/A/Resources/package_script_service",
            ["package_script_service"],
            parent=installer,
        )
        script = "/tmp/PKInstallSandbox.a1b2c3/Scripts/com.wazuh.pkg.wazuh-agent.x9y8z7/postinstall"
        return writer.spawn(
            "/bin/sh", ["/bin/sh", script, "/tmp/wazuh-agent.pkg", "/"], parent=service
        )
    elif "downloads" in text:
        path = "/Users/kim/Downloads/Updater.app/Contents/MacOS/Updater"
        parent = writer.spawn(path, [path], platform_binary=False)
    elif "unsigned binary" in text:
        parent = writer.spawn(
            "/private/tmp/payload", ["/private/tmp/payload"], platform_binary=False
        )
    elif text == "osascript":
        parent = writer.spawn("/usr/bin/osascript", ["osascript", "/private/tmp/run.scpt"])
    elif text == "python3":
        shell = interactive_shell(writer)
        return writer.spawn("/usr/bin/python3", ["python3", "/Users/kim/cleanup.py"], parent=shell)
    elif "non-interactive" in text:
        return writer.spawn("/bin/sh", ["sh", "-c", "maintenance"])
    elif text == "codesign":
        parent = writer.spawn("/usr/bin/codesign", ["codesign"])
    elif "/volumes/" in text:
        parent = writer.spawn(
            "/Volumes/Setup/installer", ["/Volumes/Setup/installer"], platform_binary=False
        )
    else:
        return interactive_shell(writer)
    return writer.spawn("/bin/sh", ["/bin/sh", "-c", "scripted steps"], parent=parent)


def _scan(tmp_path: Path, writer: EsWriter) -> ScanResult:
    capture = tmp_path / "eslogger.ndjson"
    writer.write_to(capture)
    config = Config()
    return scan([str(capture)], host="case-host", config=config, inventory=build_inventory(config))


def _replay_commands(case: dict[str, Any], tmp_path: Path) -> ScanResult:
    writer = EsWriter("2026-11-20T10:00:00Z", host=None, seed=len(case["id"]))
    daemon = _start_components(writer)
    writer.advance(30)
    shell = _lineage(writer, case.get("parent_context"))
    for command in case["commands"]:
        writer.command(_substitute(command, daemon.pid), shell=shell)
        writer.advance(1)
    return _scan(tmp_path, writer)


# Replays of cases given as one event ---------------------------------------------------------


def _event_beats(writer: EsWriter) -> None:
    shell = interactive_shell(writer)
    writer.command(
        "sudo /bin/launchctl unload /Library/LaunchDaemons/co.elastic.auditbeat.plist", shell=shell
    )


def _event_installer_child(writer: EsWriter) -> None:
    installer = writer.spawn(
        "/usr/sbin/installer", ["installer", "-pkg", "/tmp/osquery.pkg", "-target", "/"]
    )
    script = "/tmp/PKInstallSandbox.q1w2e3/Scripts/io.osquery.agent.r4t5y6/postinstall"
    writer.spawn("/bin/sh", ["/bin/sh", script, "/tmp/osquery.pkg", "/"], parent=installer)


def _event_vendor_grep(writer: EsWriter) -> None:
    script = writer.spawn(
        "/bin/bash",
        ["/bin/bash", "/Library/Application Support/ExampleVendor/check.sh"],
        parent=writer.spawn(
            "/Library/Application Support/ExampleVendor/agentd",
            ["agentd"],
            team_id="EXMPL12345",
            platform_binary=False,
        ),
    )
    writer.command('grep "SentinelOne" /tmp/inventory.txt', shell=script)


def _event_parallels_hosts(writer: EsWriter) -> None:
    naptd = writer.spawn(
        "/Applications/Parallels Desktop.app/Contents/MacOS/prl_naptd",
        ["prl_naptd"],
        team_id="4C6364ACXT",
        platform_binary=False,
    )
    writer.open(naptd, "/private/etc/hosts", 0x2 | 0x8)
    writer.write(naptd, "/private/etc/hosts")
    writer.close(naptd, "/private/etc/hosts", modified=True)


def _event_plist_deleted(path: str) -> Callable[[EsWriter], None]:
    def replay(writer: EsWriter) -> None:
        shell = interactive_shell(writer)
        sudo_shell = writer.command("sudo -s", shell=shell)[-1]
        rm = writer.spawn("/bin/rm", ["rm", path], parent=sudo_shell)
        writer.unlink(rm, path)
        writer.exit(rm)

    return replay


def _event_pf_conf(writer: EsWriter) -> None:
    tool = writer.spawn("/private/tmp/netcfg", ["/private/tmp/netcfg"], platform_binary=False)
    writer.open(tool, "/private/etc/pf.conf", 0x2 | 0x400)
    writer.write(tool, "/private/etc/pf.conf")
    writer.close(tool, "/private/etc/pf.conf", modified=True)


def _event_defender_trash(writer: EsWriter) -> None:
    finder = writer.spawn(
        "/System/Library/CoreServices/Finder.app/Contents/MacOS/Finder", ["Finder"]
    )
    writer.rename(
        finder, "/Applications/Microsoft Defender.app", "/Users/kim/.Trash/Microsoft Defender.app"
    )


def _event_defender_prefs(writer: EsWriter) -> None:
    shell = interactive_shell(writer)
    editor = writer.spawn("/usr/bin/python3", ["python3", "edit.py"], parent=shell)
    path = "/Library/Managed Preferences/mdatp_managed.json"
    writer.open(editor, path, 0x2 | 0x400)
    writer.write(editor, path)
    writer.close(editor, path, modified=True)


def _event_defender_mdm_restart(writer: EsWriter) -> None:
    jamf = writer.spawn("/usr/local/jamf/bin/jamf", ["jamf", "policy"], platform_binary=False)
    script = writer.spawn("/bin/sh", ["/bin/sh", "-c", "restart defender"], parent=jamf)
    writer.command("launchctl bootout system/com.microsoft.fresno", shell=script)
    writer.advance(5)
    writer.command(
        "launchctl bootstrap system /Library/LaunchDaemons/com.microsoft.fresno.plist", shell=script
    )


def _santa_daemon(writer: EsWriter) -> SynthProcess:
    path = "/Applications/Santa.app/Contents/Library/SystemExtensions/com.northpolesec.santa.daemon.systemextension/Contents/MacOS/com.northpolesec.santa.daemon"
    return writer.spawn(path, [path], team_id="ZMCG7MLDV9", platform_binary=False)


def _event_santa_signal(signal_number: int) -> Callable[[EsWriter], None]:
    def replay(writer: EsWriter) -> None:
        daemon = _santa_daemon(writer)
        shell = interactive_shell(writer)
        root_shell = writer.command("sudo -s", shell=shell)[-1]
        kill = writer.spawn(
            "/bin/kill", ["kill", f"-{signal_number}", str(daemon.pid)], parent=root_shell
        )
        if signal_number:
            writer.signal(kill, daemon, signal_number)
            writer.exit(daemon, signal_number)
        writer.exit(kill)

    return replay


EVENT_REPLAYS: dict[str, Callable[[EsWriter], None]] = {
    "SIGMA-DST-beats": _event_beats,
    "SIGMA-INSTALLER-child": _event_installer_child,
    "EDR-870aecc0-installer": _event_vendor_grep,
    "EDR-9c260313-parallels": _event_parallels_hosts,
    "JP-ld-deleted-sec": _event_plist_deleted("/Library/LaunchDaemons/com.wazuh.agent.plist"),
    "JP-ld-deleted-other": _event_plist_deleted("/Library/LaunchDaemons/com.atomicredteam.plist"),
    "JP-pf-conf": _event_pf_conf,
    "MDE-DIY-trash": _event_defender_trash,
    "MDE-DIY-managedprefs": _event_defender_prefs,
    "MDE-MDM-restart": _event_defender_mdm_restart,
    "SANTA-signal": _event_santa_signal(9),
    "SANTA-signal0": _event_santa_signal(0),
}


def _replay_crash_case(tmp_path: Path) -> ScanResult:
    """JP-crash-sec: a crash report of a security agent appears and the agent stays gone."""
    report = tmp_path / "falcond-2026-11-20-101500.ips"
    header = (
        '{"app_name":"falcond","timestamp":"2026-11-20 10:15:00.00 +0000","app_version":"7.20",'
        '"bug_type":"309","os_version":"macOS 15.1 (24B83)","incident_id":"6F1A2B3C-0000-4000-8000-00000000C0DE",'
        '"name":"falcond"}\n'
    )
    body = (
        '{\n  "captureTime" : "2026-11-20 10:15:00.4100 +0000",\n  "pid" : 311,\n'
        '  "procName" : "falcond",\n  "procPath" : "\\/Library\\/CS\\/falcond",\n'
        '  "parentProc" : "launchd",\n  "parentPid" : 1,\n  "bug_type" : "309",\n'
        '  "exception" : {"type":"EXC_BAD_ACCESS","signal":"SIGSEGV","codes":"0x1, 0x0"},\n'
        '  "termination" : {"flags":0,"code":11,"namespace":"SIGNAL","indicator":"Segmentation fault: 11","byProc":"exc handler","byPid":311}\n}\n'
    )
    report.write_text(header + body, encoding="utf-8")
    config = Config()
    return scan([str(report)], host="case-host", config=config, inventory=build_inventory(config))


def _replay_heartbeat_case(tmp_path: Path) -> ScanResult:
    """OSQUERY-heartbeat-loss: osquery stops checking in while the MDM agent still does."""
    rows = ["host,agent,time,status"]
    for minute in range(0, 120, 10):
        stamp = f"2026-11-20T{10 + minute // 60:02d}:{minute % 60:02d}:00Z"
        rows.append(f"case-host,Jamf Pro,{stamp},online")
        if minute < 40:
            rows.append(f"case-host,osquery,{stamp},online")
    export = tmp_path / "checkins.csv"
    export.write_text("\n".join(rows) + "\n", encoding="utf-8")
    config = Config()
    return scan([str(export)], config=config, inventory=build_inventory(config))


# Cases given as one osquery row: the columns of that row.
OSQUERY_ROWS: dict[str, dict[str, str]] = {
    "PANTHER-alf-disabled": {"global_state": "0", "stealth_enabled": "0", "logging_enabled": "0", "firewall_unload": "0"},
    "PANTHER-alf-enabled": {"global_state": "1", "stealth_enabled": "1", "logging_enabled": "1", "firewall_unload": "0"},
    "PANTHER-autoupdate-off": {"domain": "com.apple.SoftwareUpdate", "key": "AutomaticCheckEnabled", "value": "false", "forced": "0", "username": ""},
    "PANTHER-autoupdate-on": {"domain": "com.apple.SoftwareUpdate", "key": "AutomaticCheckEnabled", "value": "true", "forced": "0", "username": ""},
    "FLEET-gatekeeper-off": {"assessments_enabled": "0", "dev_id_enabled": "1", "version": "5.0", "opaque_version": "5.0"},
}  # fmt: skip


def _replay_osquery_case(case_id: str, tmp_path: Path) -> ScanResult:
    line = {
        "name": "pack_security_settings",
        "hostIdentifier": "case-host",
        "calendarTime": "Fri Nov 20 10:00:00 2026 UTC",
        "unixTime": "1795168800",
        "epoch": "0",
        "counter": "0",
        "decorations": {"hostname": "case-host"},
        "columns": OSQUERY_ROWS[case_id],
        "action": "added",
    }
    results = tmp_path / "osqueryd.results.log"
    results.write_text(json.dumps(line) + "\n", encoding="utf-8")
    config = Config()
    return scan([str(results)], config=config, inventory=build_inventory(config))


def _case_ids() -> list[str]:
    return [case["id"] for case in CASES]


@pytest.mark.parametrize("case", CASES, ids=_case_ids())
def test_peer_case(case: dict[str, Any], tmp_path: Path) -> None:
    case_id = case["id"]
    if case_id in NOT_REPLAYABLE:
        pytest.skip(NOT_REPLAYABLE[case_id])
    if case_id == "JP-crash-sec":
        result = _replay_crash_case(tmp_path)
    elif case_id == "OSQUERY-heartbeat-loss":
        result = _replay_heartbeat_case(tmp_path)
    elif case_id in OSQUERY_ROWS:
        result = _replay_osquery_case(case_id, tmp_path)
    elif case.get("commands"):
        result = _replay_commands(case, tmp_path)
    elif case_id in EVENT_REPLAYS:
        writer = EsWriter("2026-11-20T10:00:00Z", seed=len(case_id))
        EVENT_REPLAYS[case_id](writer)
        result = _scan(tmp_path, writer)
    else:
        pytest.fail(f"{case_id}: no replay for this case; add one or list it as not replayable")
    suspicious = [f"{i.title} ({i.severity})" for i in result.suspicious]
    assert not [f for f in result.files if f.skipped], "replayed telemetry must read cleanly"
    if case["expected"] == "alert":
        assert suspicious, f"{case_id}: expected a suspicious incident ({case['reason']})"
    else:
        assert not suspicious, f"{case_id}: expected no suspicious incident, got {suspicious}"


def test_every_case_is_covered() -> None:
    replayable = [c for c in CASES if c["id"] not in NOT_REPLAYABLE]
    uncovered = [
        c["id"]
        for c in replayable
        if not c.get("commands")
        and c["id"] not in EVENT_REPLAYS
        and c["id"] not in ("JP-crash-sec", "OSQUERY-heartbeat-loss")
        and c["id"] not in OSQUERY_ROWS
    ]
    assert not uncovered
    assert len(replayable) >= 100
    assert all(re.fullmatch(r"[A-Za-z0-9_.-]+", c["id"]) for c in CASES)
