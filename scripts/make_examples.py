"""Write the example collection under ``examples/``: one folder per host, real formats.

Run ``python scripts/make_examples.py`` from the repository root to regenerate it. Host names,
pids, paths and times are made up for the examples; the shapes follow eslogger, ``log show
--style ndjson`` and ``.ips`` crash reports.
"""

from __future__ import annotations

import json
import shutil
import zlib
from pathlib import Path

from tamperwatch.synth import EsWriter, interactive_shell

ROOT = Path(__file__).resolve().parent.parent / "examples"

FALCON_TEAM = "X9E956P446"
SANTA_TEAM = "ZMCG7MLDV9"
LULU_TEAM = "VBG97UB4TA"

FALCON_SYSEXT = (
    "/Library/SystemExtensions/5D1C8E2A-7B40-4F6A-9C3D-2E8B1A6F0C47/"
    "com.crowdstrike.falcon.Agent.systemextension/Contents/MacOS/com.crowdstrike.falcon.Agent"
)
SANTA_SYSEXT = (
    "/Library/SystemExtensions/A3E1F0B2-6C4D-4E8F-9A1B-7C2D3E4F5A60/"
    "com.northpolesec.santa.daemon.systemextension/Contents/MacOS/com.northpolesec.santa.daemon"
)
LULU_SYSEXT = (
    "/Library/SystemExtensions/0F9E8D7C-6B5A-4938-8271-605F4E3D2C1B/"
    "com.objective-see.lulu.extension.systemextension/Contents/MacOS/com.objective-see.lulu.extension"
)


def unified_log(path: Path, records: list[dict[str, object]]) -> None:
    """Write ``log show --style ndjson`` output, closing line included."""
    lines = [json.dumps(record, separators=(",", ":")).replace("/", "\\/") for record in records]
    lines.append(json.dumps({"count": len(records), "finished": 1}, separators=(",", ":")))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def log_record(timestamp: str, process_path: str, pid: int, message: str, *, subsystem: str = "",
               category: str = "", message_type: str = "Default", trace: int = 0) -> dict[str, object]:  # fmt: skip
    return {
        "timezoneName": "",
        "messageType": message_type,
        "eventType": "logEvent",
        "source": None,
        "formatString": "%{public}s",
        "userID": 0,
        "activityIdentifier": 0,
        "subsystem": subsystem,
        "category": category,
        "threadID": 1200 + pid,
        "senderImageUUID": "8C1F2E3D-4B5A-3968-8776-5A4B3C2D1E0F",
        "backtrace": {
            "frames": [{"imageOffset": 40312, "imageUUID": "8C1F2E3D-4B5A-3968-8776-5A4B3C2D1E0F"}]
        },
        "bootUUID": "",
        "processImagePath": process_path,
        "senderImagePath": process_path,
        "timestamp": timestamp,
        "machTimestamp": 5120000000000 + trace,
        "eventMessage": message,
        "processImageUUID": "1E2D3C4B-5A69-3877-9685-A4B3C2D1E0F9",
        "traceID": 7340032 + trace,
        "processID": pid,
        "senderProgramCounter": 40312,
        "parentActivityIdentifier": 0,
    }


def crash_report(path: Path, *, name: str, proc_path: str, pid: int, when: str, bundle: str,
                 version: str, team: str, exception: dict[str, object],
                 termination: dict[str, object], launched: str) -> None:  # fmt: skip
    """Write an ``.ips`` crash report: a one-line JSON header, then the pretty-printed body."""
    incident = f"E2C4A6B8-{pid:04X}-4C3D-9E8F-{zlib.crc32(path.name.encode()):012X}"
    header = {
        "app_name": name,
        "timestamp": when[:22] + " +0000",
        "app_version": version,
        "slice_uuid": "5b7d9f1e-3c2a-3b4d-8e6f-7a8b9c0d1e2f",
        "build_version": version,
        "platform": 1,
        "bundleID": bundle,
        "share_with_app_devs": 0,
        "is_first_party": 0,
        "bug_type": "309",
        "os_version": "macOS 15.1 (24B83)",
        "roots_installed": 0,
        "incident_id": incident,
        "name": name,
    }
    body = {
        "uptime": 86000,
        "procLaunch": launched + " +0000",
        "procRole": "Unspecified",
        "version": 2,
        "userID": 0,
        "deployVersion": 210,
        "modelCode": "Mac15,3",
        "coalitionID": 612,
        "osVersion": {"train": "macOS 15.1", "build": "24B83", "releaseType": "User"},
        "captureTime": when + " +0000",
        "codeSigningID": bundle,
        "codeSigningTeamID": team,
        "incident": incident,
        "bug_type": "309",
        "pid": pid,
        "cpuType": "ARM-64",
        "procName": name,
        "procPath": proc_path,
        "bundleInfo": {
            "CFBundleShortVersionString": version,
            "CFBundleVersion": version,
            "CFBundleIdentifier": bundle,
        },
        "parentProc": "launchd",
        "parentPid": 1,
        "coalitionName": bundle,
        "crashReporterKey": "example-crash-reporter-key",
        "sip": "enabled",
        "exception": exception,
        "termination": termination,
        "faultingThread": 0,
    }
    text = json.dumps(body, indent=2, separators=(",", " : ")).replace("/", "\\/")
    path.write_text(
        json.dumps(header, separators=(",", ":")) + "\n" + text + "\n", encoding="utf-8"
    )


def edr_unloaded_and_killed(folder: Path) -> None:
    """Write a host where an operator at a terminal boots out Falcon, then kills its ES extension."""
    writer = EsWriter("2026-11-18T14:02:00Z", version=9, seed=7)
    daemon = writer.spawn("/Library/CS/falcond", ["/Library/CS/falcond"], team_id=FALCON_TEAM,
                          signing_id="com.crowdstrike.falcond", platform_binary=False)  # fmt: skip
    extension = writer.spawn(FALCON_SYSEXT, [FALCON_SYSEXT], team_id=FALCON_TEAM,
                             signing_id="com.crowdstrike.falcon.Agent", platform_binary=False)  # fmt: skip
    writer.advance(95)
    shell = interactive_shell(writer)
    writer.advance(12)
    writer.command("ps aux", shell=shell)
    writer.advance(20)
    writer.command("sudo launchctl bootout system/com.crowdstrike.falcon.Agent", shell=shell)
    writer.signal(writer.launchd, daemon, 15)
    writer.exit(daemon, 15)
    writer.advance(9)
    kill = writer.command(f"sudo kill -9 {extension.pid}", shell=shell, keep=True)[-1]
    writer.signal(kill, extension, 9)
    writer.exit(extension, 9)
    writer.exit(kill)
    writer.write_to(folder / "eslogger.ndjson")
    unified_log(
        folder / "unifiedlog.ndjson",
        [
            log_record("2026-11-18 14:04:31.614220+0000", "/sbin/launchd", 1,
                       f"[system/{FALCON_TEAM}.com.crowdstrike.falcon.Agent [{extension.pid}]:] exited due to "
                       f"SIGKILL | sent by kill[{kill.pid}], ran for 156310ms",
                       subsystem="com.apple.xpc.launchd", category="xpc", trace=1),
        ],
    )  # fmt: skip


def es_client_flooded(folder: Path) -> None:
    """Write a host where a user's tool floods Santa with file events until the kernel kills it."""
    writer = EsWriter("2026-11-19T09:30:00Z", version=10, seed=11)
    writer.spawn(SANTA_SYSEXT, [SANTA_SYSEXT], team_id=SANTA_TEAM,
                 signing_id="com.northpolesec.santa.daemon", platform_binary=False)  # fmt: skip
    writer.advance(40)
    shell = interactive_shell(writer, user_uid=502)
    storm = writer.command(
        "/Users/dana/bin/fsstorm --depth 9 /Users/dana/src", shell=shell, keep=True
    )[-1]
    for round_number in range(25):
        writer.noise(storm, 48, kind="open")
        if round_number == 20:
            # Under the flood the ES client falls behind and the kernel drops its messages.
            writer.drop("open", 212)
        writer.advance(0.6)
    writer.write_to(folder / "eslogger.ndjson")
    crash_report(
        folder / "com.northpolesec.santa.daemon-2026-11-19-093121.ips",
        name="com.northpolesec.santa.daemon",
        proc_path=SANTA_SYSEXT,
        pid=404,
        when="2026-11-19 09:31:21.4410",
        launched="2026-11-19 08:55:02.1200",
        bundle="com.northpolesec.santa.daemon",
        version="2026.9",
        team=SANTA_TEAM,
        exception={"codes": "0x0000000000000000, 0x0000000000000000", "rawCodes": [0, 0], "type": "EXC_CRASH", "signal": "SIGKILL"},
        termination={"flags": 6, "code": 2, "namespace": "ENDPOINTSECURITY",
                     "indicator": "EndpointSecurity client terminated because it failed to respond to a message before its deadline"},
    )  # fmt: skip


def network_extension_crash_burst(folder: Path) -> None:
    """Write a host where LuLu's network extension crashes four times in half a minute."""
    records = []
    for index in range(4):
        second = 5 + index * 10
        pid = 1710 + index * 7
        when = f"2026-11-20 16:41:{second:02d}.{2000 + index:04d}"
        crash_report(
            folder / f"com.objective-see.lulu.extension-2026-11-20-1641{second:02d}.ips",
            name="com.objective-see.lulu.extension",
            proc_path=LULU_SYSEXT,
            pid=pid,
            when=when,
            launched=f"2026-11-20 16:41:{max(second - 9, 0):02d}.0100",
            bundle="com.objective-see.lulu.extension",
            version="4.1.0",
            team=LULU_TEAM,
            exception={"codes": "0x0000000000000001, 0x0000000000000010", "rawCodes": [1, 16], "type": "EXC_BAD_ACCESS", "signal": "SIGSEGV", "subtype": "KERN_INVALID_ADDRESS at 0x0000000000000010"},
            termination={"flags": 0, "code": 11, "namespace": "SIGNAL", "indicator": "Segmentation fault: 11", "byProc": "exc handler", "byPid": pid},
        )  # fmt: skip
        records.append(
            log_record(f"2026-11-20 16:41:{second:02d}.{510000 + index:06d}+0000", "/sbin/launchd", 1,
                       f"[system/{LULU_TEAM}.com.objective-see.lulu.extension [{pid}]:] exited due to SIGSEGV, ran for 9012ms",
                       subsystem="com.apple.xpc.launchd", category="xpc", trace=10 + index)
        )  # fmt: skip
    unified_log(folder / "unifiedlog.ndjson", records)


def vendor_upgrade(folder: Path) -> None:
    """Write a host where the system installer upgrades Santa, replacing the old daemon."""
    writer = EsWriter("2026-11-21T03:10:00Z", version=9, seed=23)
    old = writer.spawn(SANTA_SYSEXT, [SANTA_SYSEXT], team_id=SANTA_TEAM,
                       signing_id="com.northpolesec.santa.daemon", platform_binary=False)  # fmt: skip
    writer.advance(30)
    installer = writer.spawn(
        "/usr/sbin/installer",
        ["installer", "-pkg", "/private/tmp/santa-2026.10.pkg", "-target", "/"],
    )
    service = writer.spawn(
        "/System/Library/PrivateFrameworks/PackageKit.framework/Versions/A/Resources/package_script_service",
        ["package_script_service"],
        parent=installer,
    )
    script = writer.spawn(
        "/bin/sh",
        ["/bin/sh", "/private/tmp/PKInstallSandbox.7QmL2c/Scripts/com.northpolesec.santa.9F3kXz/preinstall",
         "/private/tmp/santa-2026.10.pkg", "/"],
        parent=service,
    )  # fmt: skip
    writer.command("/bin/launchctl bootout system/com.northpolesec.santad", shell=script)
    writer.signal(writer.launchd, old, 15)
    writer.exit(old, 15)
    writer.advance(25)
    writer.spawn(SANTA_SYSEXT, [SANTA_SYSEXT], team_id=SANTA_TEAM,
                 signing_id="com.northpolesec.santa.daemon", platform_binary=False)  # fmt: skip
    writer.write_to(folder / "eslogger.ndjson")


def mixed_sources(folder: Path) -> None:
    """Write a host seen only through snapshots, osquery and console check-ins.

    Santa's extension is listed as enabled while its launchd job was killed, and someone boots
    out osquery from a shell, after which osquery stops checking in while the MDM agent goes on.
    """
    santa_row = "\t".join(
        [
            "*",
            "*",
            SANTA_TEAM,
            "com.northpolesec.santa.daemon (2026.9/2026.9.612)",
            "santad",
            "[activated enabled]",
        ]
    )
    header = "enabled\tactive\tteamID\tbundleID (version)\tname\t[state]"
    snapshots = []
    for when in ("2026-11-22T08:00:00Z", "2026-11-22T09:00:00Z"):
        snapshots += [
            f"# time: {when}",
            "1 extension(s)",
            "--- com.apple.system_extension.endpoint_security",
            header,
            santa_row,
        ]
    (folder / "sysext.txt").write_text("\n".join(snapshots) + "\n", encoding="utf-8")
    (folder / "launchctl-list.txt").write_text(
        "# time: 2026-11-22T09:01:00Z\n"
        "PID\tStatus\tLabel\n"
        f"-\t-9\t{SANTA_TEAM}.com.northpolesec.santa.daemon\n"
        "388\t0\tcom.northpolesec.santa.metricservice\n"
        "1021\t0\tcom.jamf.management.daemon\n",
        encoding="utf-8",
    )
    rows = []
    for global_seq, (pid, parent, path, cmdline, platform) in enumerate(
        [
            (2301, 2290, "/usr/bin/sudo", "sudo launchctl bootout system/io.osquery.agent", 1),
            (2302, 2301, "/bin/launchctl", "launchctl bootout system/io.osquery.agent", 1),
        ],
        start=811,
    ):
        columns = {
            "event_type": "exec", "pid": str(pid), "parent": str(parent), "original_parent": str(parent),
            "path": path, "cmdline": cmdline, "cmdline_count": str(len(cmdline.split())),
            "signing_id": "com.apple." + path.rsplit("/", 1)[-1], "team_id": "", "platform_binary": str(platform),
            "uid": "0", "euid": "0", "username": "root", "cwd": "/Users/ops", "exit_code": "",
            "child_pid": "", "seq_num": str(global_seq - 500), "global_seq_num": str(global_seq),
            "time": str(1795335900 + global_seq - 811),
        }  # fmt: skip
        rows.append(
            {
                "name": "pack_tamperwatch_es_process_events",
                "hostIdentifier": "ops-mac-05",
                "calendarTime": "Sun Nov 22 08:25:00 2026 UTC",
                "unixTime": 1795335900,
                "epoch": 0,
                "counter": global_seq - 811,
                "numerics": False,
                "decorations": {
                    "host_uuid": "6A1C2B3D-0000-4000-8000-000000000005",
                    "hostname": "ops-mac-05",
                },
                "columns": columns,
                "action": "added",
            }
        )
    (folder / "osquery_results.log").write_text(
        "\n".join(json.dumps(row, separators=(",", ":")) for row in rows) + "\n", encoding="utf-8"
    )
    checkins = ["host,agent,time,status"]
    for minute in range(0, 180, 10):
        stamp = f"2026-11-22T{7 + minute // 60:02d}:{minute % 60:02d}:00Z"
        checkins.append(f"ops-mac-05,Jamf Pro,{stamp},online")
        if minute < 90:
            checkins.append(f"ops-mac-05,osquery,{stamp},online")
    (folder / "console-checkins.csv").write_text("\n".join(checkins) + "\n", encoding="utf-8")


SCENARIOS = {
    "mbp-finance-07": edr_unloaded_and_killed,
    "build-mac-02": es_client_flooded,
    "design-mac-11": network_extension_crash_burst,
    "it-mac-03": vendor_upgrade,
    "ops-mac-05": mixed_sources,
}


def main() -> None:
    for host, scenario in SCENARIOS.items():
        folder = ROOT / host
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        scenario(folder)
    print(f"wrote {len(SCENARIOS)} hosts under {ROOT}")


if __name__ == "__main__":
    main()
