"""Tests of the detection core: process table, command interpretation, lineage and correlation."""

from __future__ import annotations

from pathlib import Path

import pytest

from tamperwatch.commands import CommandInterpreter, parse_signal
from tamperwatch.config import Config, build_inventory, load_config
from tamperwatch.inventory import Inventory
from tamperwatch.model import Event, Evidence, Process
from tamperwatch.process_table import ProcessTable
from tamperwatch.scan import ScanResult, scan
from tamperwatch.signals import Actor, ProcessView, is_masquerade, trusted_lineage
from tamperwatch.synth import EsWriter, interactive_shell

FALCON_TEAM = "X9E956P446"
FALCON_SYSEXT = (
    "/Library/SystemExtensions/9A8B7C6D-5E4F-4A3B-8C2D-1E0F9A8B7C6D/"
    "com.crowdstrike.falcon.Agent.systemextension/Contents/MacOS/com.crowdstrike.falcon.Agent"
)


@pytest.fixture(scope="module")
def inventory() -> Inventory:
    return build_inventory(Config())


def scan_writer(tmp_path: Path, writer: EsWriter, config: Config | None = None) -> ScanResult:
    capture = tmp_path / "capture.ndjson"
    writer.write_to(capture)
    config = config or Config()
    return scan([str(capture)], host="unit-mac", config=config, inventory=build_inventory(config))


def start_falcon(writer: EsWriter):  # type: ignore[no-untyped-def]
    return writer.spawn(FALCON_SYSEXT, [FALCON_SYSEXT], team_id=FALCON_TEAM, platform_binary=False)


# process table --------------------------------------------------------------------------------


def event(
    kind: str, time: float, process: Process, target: Process | None = None, line: int = 1
) -> Event:
    return Event(
        time=time,
        kind=kind,
        evidence=Evidence("eslogger", "t.ndjson", line),
        process=process,
        target=target,
    )


def test_exec_keeps_the_parent_of_the_old_image() -> None:
    table = ProcessTable()
    shell = Process(pid=500, pidversion=10, ppid=1, path="/bin/zsh")
    child = Process(pid=501, pidversion=11, ppid=500, parent_pidversion=10, path="/bin/zsh")
    image = Process(
        pid=501,
        pidversion=12,
        ppid=500,
        parent_pidversion=10,
        path="/usr/bin/sudo",
        args=["sudo", "ls"],
    )
    table.apply(event("fork", 1.0, shell, child))
    table.apply(event("exec", 2.0, child, image))
    entry = table.latest(501)
    assert entry is not None
    assert entry.path == "/usr/bin/sudo"
    assert entry.args == ["sudo", "ls"]
    assert [a.path for a in table.ancestry(entry)] == ["/bin/zsh"]
    assert table.get((501, 11)).exited == 2.0  # type: ignore[union-attr]


def test_table_is_bounded_and_prunes_exited() -> None:
    table = ProcessTable(max_entries=100)
    for pid in range(2, 400):
        proc = Process(pid=pid, pidversion=pid, ppid=1, path="/bin/sleep")
        table.apply(event("exit", float(pid), proc))
    assert len(table) == 100
    assert table.evicted == 298
    assert table.prune(before=350.0) == 50
    assert len(table) == 50


def test_ancestry_stops_on_a_cycle() -> None:
    table = ProcessTable()
    table.observe(Process(pid=20, pidversion=1, ppid=21, parent_pidversion=1, path="/a"))
    table.observe(Process(pid=21, pidversion=1, ppid=20, parent_pidversion=1, path="/b"))
    entry = table.latest(20)
    assert entry is not None
    assert [a.path for a in table.ancestry(entry)] == ["/b"]


# command interpretation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "kind", "component"),
    [
        (
            ["launchctl", "unload", "-w", "/Library/LaunchDaemons/com.crowdstrike.falcond.plist"],
            "daemon_unloaded",
            "crowdstrike-falcon",
        ),
        (
            ["launchctl", "bootout", "system/com.crowdstrike.falcon.Agent"],
            "daemon_unloaded",
            "crowdstrike-falcon",
        ),
        (
            ["launchctl", "bootout", "gui/501/com.crowdstrike.falcon.UserAgent"],
            "daemon_unloaded",
            "crowdstrike-falcon",
        ),
        (
            [
                "launchctl",
                "bootout",
                "system",
                "/private/var/../../Library/LaunchDaemons/com.crowdstrike.falcond.plist",
            ],
            "daemon_unloaded",
            "crowdstrike-falcon",
        ),
        (
            ["launchctl", "disable", "system/com.crowdstrike.falcon.Agent"],
            "daemon_unloaded",
            "crowdstrike-falcon",
        ),
        (["launchctl", "remove", "com.northpolesec.santad"], "daemon_unloaded", "santa-nps"),
        (
            ["launchctl", "kill", "SIGKILL", "system/com.crowdstrike.falcon.Agent"],
            "daemon_unloaded",
            "crowdstrike-falcon",
        ),
        (["launchctl", "stop", "com.apple.tccd"], "daemon_unloaded", "tcc"),
        (["killall", "-9", "LuLu"], "process_killed", "lulu"),
        (["killall", "-STOP", "falcond"], "process_suspended", "crowdstrike-falcon"),
        (["pkill", "-9", "-f", "osqueryd"], "process_killed", "osquery"),
        (
            ["kextunload", "-b", "com.apple.iokit.EndpointSecurity"],
            "extension_state_changed",
            "endpoint-security-kext",
        ),
        (
            ["kextunload", "/System/Library/Extensions/EndpointSecurity.kext"],
            "extension_state_changed",
            "endpoint-security-kext",
        ),
        (
            ["kmutil", "unload", "-b", "com.apple.iokit.EndpointSecurity"],
            "extension_state_changed",
            "endpoint-security-kext",
        ),
        (
            ["systemextensionsctl", "uninstall", "X9E956P446", "com.crowdstrike.falcon.Agent"],
            "extension_state_changed",
            "crowdstrike-falcon",
        ),
        (["rm", "-f", "/Library/LaunchDaemons/com.wazuh.agent.plist"], "daemon_unloaded", "wazuh"),
        (
            ["mv", "/Applications/Microsoft Defender.app", "/tmp/x.app"],
            "protection_weakened",
            "microsoft-defender",
        ),
        (
            ["dd", "if=/dev/zero", "of=/var/log/system.log", "count=1"],
            "protection_weakened",
            "unified-log",
        ),
        (
            ["chmod", "-x", "/Applications/Microsoft Defender.app/Contents/MacOS/wdavdaemon"],
            "protection_weakened",
            "microsoft-defender",
        ),
        (
            [
                "osascript",
                "-e",
                'tell application "Finder" to delete POSIX file "/var/log/install.log"',
            ],
            "protection_weakened",
            "unified-log",
        ),
        (["pfctl", "-d"], "filter_disabled", "packet-filter"),
        (["log", "erase", "--all"], "protection_weakened", "unified-log"),
    ],
)
def test_commands_that_impair(
    argv: list[str], kind: str, component: str, inventory: Inventory
) -> None:
    findings = CommandInterpreter(inventory).interpret(argv, ProcessTable())
    assert (kind, component) in {(f.kind, f.component.id) for f in findings}


@pytest.mark.parametrize(
    "argv",
    [
        ["launchctl", "load", "-w", "/Library/LaunchDaemons/com.crowdstrike.falcond.plist"],
        [
            "launchctl",
            "bootstrap",
            "system",
            "/Library/LaunchDaemons/com.crowdstrike.falcond.plist",
        ],
        ["launchctl", "print", "system/com.crowdstrike.falcon.Agent"],
        ["launchctl", "bootout", "gui/501"],
        ["launchctl", "unload", "/Library/LaunchDaemons/com.example.backup.plist"],
        ["killall", "-HUP", "syslogd"],
        ["kill", "-0", "311"],
        ["killall", "Safari"],
        ["chmod", "644", "/Library/LaunchDaemons/com.crowdstrike.falcond.plist"],
        ["kextunload", "-b", "com.example.driver"],
        ["systemextensionsctl", "list"],
        ["csrutil", "status"],
        ["spctl", "--master-enable"],
        ["pfctl", "-e", "-f", "/etc/pf.conf"],
        ["rm", "-rf", "/Users/kim/Library/Logs/SomeApp"],
    ],
)
def test_commands_that_do_not_impair(argv: list[str], inventory: Inventory) -> None:
    assert CommandInterpreter(inventory).interpret(argv, ProcessTable()) == []


def test_kill_resolves_the_pid_through_the_table(inventory: Inventory) -> None:
    table = ProcessTable()
    table.observe(
        Process(pid=311, pidversion=4, ppid=1, path="/Library/CS/falcond", team_id=FALCON_TEAM)
    )
    findings = CommandInterpreter(inventory).interpret(["kill", "-s", "KILL", "311"], table)
    assert [(f.kind, f.component.id) for f in findings] == [
        ("process_killed", "crowdstrike-falcon")
    ]
    assert CommandInterpreter(inventory).interpret(["kill", "-9", "312"], table) == []


@pytest.mark.parametrize(
    ("text", "number"),
    [("9", 9), ("KILL", 9), ("SIGKILL", 9), ("term", 15), ("STOP", 17), ("BOGUS", None)],
)
def test_parse_signal(text: str, number: int | None) -> None:
    assert parse_signal(text) == number


# lineage ---------------------------------------------------------------------------------------


def view(
    path: str,
    *,
    team: str | None = None,
    platform: bool | None = None,
    tty: bool = False,
    pid: int = 100,
) -> ProcessView:
    return ProcessView(
        pid=pid,
        path=path,
        args=None,
        team_id=team,
        signing_id=None,
        platform_binary=platform,
        tty=tty,
    )


def test_masquerade_needs_an_apple_name_and_a_foreign_binary() -> None:
    assert is_masquerade(view("/tmp/launchctl", platform=False))
    assert is_masquerade(view("/Users/kim/bin/kextunload"))
    assert not is_masquerade(view("/bin/launchctl", platform=True))
    assert not is_masquerade(view("/tmp/payload", platform=False))


def test_vendor_chain_is_trusted_but_not_from_a_terminal(inventory: Inventory) -> None:
    falcon = inventory.get("crowdstrike-falcon")
    launchctl = view("/bin/launchctl", platform=True)
    vendor = view("/Library/CS/falcond", team=FALCON_TEAM, platform=False)
    launchd = view("/sbin/launchd", platform=True, pid=1)
    trusted = Actor(launchctl, (vendor, launchd), ("tree", 100))
    assert trusted_lineage(trusted, falcon, inventory) is not None
    typed = Actor(
        launchctl, (view("/bin/zsh", platform=True, tty=True), vendor, launchd), ("tree", 100)
    )
    assert trusted_lineage(typed, falcon, inventory) is None
    unsigned = Actor(
        launchctl, (view("/tmp/dropper", platform=False), vendor, launchd), ("tree", 100)
    )
    assert trusted_lineage(unsigned, falcon, inventory) is None
    other_vendor = inventory.get("microsoft-defender")
    assert trusted_lineage(trusted, other_vendor, inventory) is None


def test_vendor_cli_run_by_malware_is_not_trusted(inventory: Inventory) -> None:
    defender = inventory.get("microsoft-defender")
    mdatp = view("/usr/local/bin/mdatp", team="UBF8T346G9", platform=False)
    actor = Actor(
        mdatp,
        (
            view("/Users/kim/Library/Agent/agent", platform=False),
            view("/sbin/launchd", platform=True, pid=1),
        ),
        ("tree", 9),
    )
    assert trusted_lineage(actor, defender, inventory) is None


# correlation and configuration ---------------------------------------------------------------


def test_action_outside_the_window_is_not_the_cause(tmp_path: Path) -> None:
    writer = EsWriter("2026-11-22T08:00:00Z", seed=5)
    extension = start_falcon(writer)
    shell = interactive_shell(writer)
    writer.command("sudo launchctl bootout system/com.crowdstrike.falcon.Agent", shell=shell)
    writer.advance(301)
    writer.exit(extension, 9)
    result = scan_writer(tmp_path, writer)
    assert len(result.incidents) == 2
    killed = next(i for i in result.incidents if i.signals[0].kind == "process_killed")
    assert killed.actor is None
    short = scan_writer(tmp_path, writer, Config(crash_correlation_window=600.0))
    assert len(short.incidents) == 1
    assert short.incidents[0].actor is not None


def test_untrusted_finisher_is_the_actor(tmp_path: Path) -> None:
    writer = EsWriter("2026-11-22T08:00:00Z", seed=6)
    extension = start_falcon(writer)
    shell = interactive_shell(writer)
    writer.command("sudo launchctl bootout system/com.crowdstrike.falcon.Agent", shell=shell)
    writer.advance(2)
    stopper = writer.spawn(
        "/Users/tester/Downloads/stopper", ["./stopper"], parent=shell, platform_binary=False
    )
    writer.signal(stopper, extension, 9)
    writer.exit(extension, 9)
    result = scan_writer(tmp_path, writer)
    assert len(result.incidents) == 1
    incident = result.incidents[0]
    assert incident.signals[0].kind == "daemon_unloaded"
    assert incident.actor is not None
    assert incident.actor.path == "/Users/tester/Downloads/stopper"


def test_burst_threshold_comes_from_the_config(tmp_path: Path) -> None:
    writer = EsWriter("2026-11-22T08:00:00Z", seed=6)
    for _ in range(3):
        extension = start_falcon(writer)
        writer.advance(10)
        writer.exit(extension, 11)
        writer.advance(1)
    default = scan_writer(tmp_path, writer)
    assert len(default.incidents) == 1
    assert "crash burst (3 crashes)" in default.incidents[0].title
    assert default.incidents[0].severity == "high"
    config_file = tmp_path / "tw.yaml"
    config_file.write_text("crash_burst_threshold: 5\ncrash_correlation_window: 2m\n")
    relaxed = scan_writer(tmp_path, writer, load_config(config_file))
    assert "crash burst" not in relaxed.incidents[0].title
    assert relaxed.incidents[0].severity == "low"


def test_flood_needs_the_threshold(tmp_path: Path) -> None:
    def flooded(events: int) -> EsWriter:
        writer = EsWriter("2026-11-22T08:00:00Z", seed=7)
        path = "/Library/SystemExtensions/1B2C3D4E-5F60-4718-8293-A4B5C6D7E8F9/com.northpolesec.santa.daemon.systemextension/Contents/MacOS/com.northpolesec.santa.daemon"
        writer.spawn(path, [path], team_id="ZMCG7MLDV9", platform_binary=False)
        shell = interactive_shell(writer)
        storm = writer.command("/Users/kim/bin/stress", shell=shell, keep=True)[-1]
        writer.noise(storm, events)
        return writer

    def with_es_kill(tmp: Path, writer: EsWriter) -> ScanResult:
        capture = tmp / "capture.ndjson"
        writer.write_to(capture)
        report = tmp / "santa.ips"
        report.write_text(
            '{"app_name":"com.northpolesec.santa.daemon","timestamp":"2026-11-22 08:00:05.00 +0000","bug_type":"309","name":"com.northpolesec.santa.daemon"}\n'
            '{"captureTime":"2026-11-22 08:00:05.5000 +0000","pid":77,"procName":"com.northpolesec.santa.daemon","bundleInfo":{"CFBundleIdentifier":"com.northpolesec.santa.daemon"},'
            '"exception":{"type":"EXC_CRASH","signal":"SIGKILL"},"termination":{"namespace":"ENDPOINTSECURITY","code":2}}\n'
        )
        config = Config()
        return scan(
            [str(capture), str(report)],
            host="unit-mac",
            config=config,
            inventory=build_inventory(config),
        )

    busy = tmp_path / "busy"
    busy.mkdir()
    result = with_es_kill(busy, flooded(1500))
    assert result.incidents[0].actor is not None
    assert result.incidents[0].actor.path == "/Users/kim/bin/stress"
    calm = tmp_path / "calm"
    calm.mkdir()
    result = with_es_kill(calm, flooded(200))
    assert result.incidents[0].actor is None


def test_same_death_from_two_sources_is_one_signal(tmp_path: Path) -> None:
    writer = EsWriter("2026-11-22T08:00:00Z", seed=8)
    extension = start_falcon(writer)
    shell = interactive_shell(writer)
    kill = writer.command(f"sudo kill -9 {extension.pid}", shell=shell, keep=True)[-1]
    writer.signal(kill, extension, 9)
    writer.exit(extension, 9)
    result = scan_writer(tmp_path, writer)
    assert len(result.incidents) == 1
    kinds = [s.kind for s in result.incidents[0].signals]
    assert kinds == ["process_killed", "process_killed"]
    assert len(result.incidents[0].signals[1].evidence) == 2


def test_masquerading_tool_raises_severity(tmp_path: Path) -> None:
    writer = EsWriter("2026-11-22T08:00:00Z", seed=9)
    shell = interactive_shell(writer)
    writer.command(
        "/private/tmp/launchctl unload /Library/LaunchDaemons/com.crowdstrike.falcond.plist",
        shell=shell,
    )
    result = scan_writer(tmp_path, writer)
    incident = result.incidents[0]
    assert incident.actor is not None
    assert incident.actor.masquerade is True
    assert incident.severity == "critical"
    assert "masquerading" in incident.title


@pytest.mark.parametrize(
    ("argv", "component"),
    [
        (
            ["tccutil", "reset", "SystemPolicyAllFiles", "com.crowdstrike.falcon.Agent"],
            "crowdstrike-falcon",
        ),
        (
            ["profiles", "remove", "-identifier", "com.crowdstrike.falcon.sysext-policy"],
            "crowdstrike-falcon",
        ),
        (
            ["profiles", "remove", "-identifier", "com.microsoft.wdav.fulldisk"],
            "microsoft-defender",
        ),
    ],
)
def test_permission_and_profile_removal(
    argv: list[str], component: str, inventory: Inventory
) -> None:
    findings = CommandInterpreter(inventory).interpret(argv, ProcessTable())
    assert ("protection_weakened", component) in {(f.kind, f.component.id) for f in findings}


@pytest.mark.parametrize(
    "argv",
    [
        ["tccutil", "reset", "Camera", "com.example.videoapp"],
        ["profiles", "remove", "-identifier", "com.profile.identifier"],
        ["profiles", "remove", "-identifier", "com.microsoft.office.settings"],
        ["profiles", "list"],
    ],
)
def test_unrelated_permission_and_profile_changes(argv: list[str], inventory: Inventory) -> None:
    assert CommandInterpreter(inventory).interpret(argv, ProcessTable()) == []


def test_suspend_and_task_port_access(tmp_path: Path) -> None:
    writer = EsWriter("2026-11-22T08:00:00Z", seed=10)
    extension = start_falcon(writer)
    tool = writer.spawn("/private/tmp/freezer", ["/private/tmp/freezer"], platform_binary=False)
    writer.suspend(tool, extension)
    writer.get_task(tool, extension)
    reporter = writer.spawn("/System/Library/CoreServices/ReportCrash", ["ReportCrash"])
    writer.get_task(reporter, extension)
    result = scan_writer(tmp_path, writer)
    assert len(result.incidents) == 1
    incident = result.incidents[0]
    assert [s.kind for s in incident.signals] == ["process_suspended", "process_suspended"]
    assert incident.actor is not None
    assert incident.actor.path == "/private/tmp/freezer"


def test_plist_deleted_by_unlink_event(tmp_path: Path) -> None:
    writer = EsWriter("2026-11-22T08:00:00Z", seed=11)
    dropper = writer.spawn("/Users/kim/Library/Caches/helper", ["helper"], platform_binary=False)
    writer.unlink(dropper, "/Library/LaunchDaemons/com.crowdstrike.falcond.plist")
    writer.rename(dropper, "/Applications/Falcon.app", "/private/tmp/.f.app")
    result = scan_writer(tmp_path, writer)
    assert len(result.incidents) == 1
    kinds = [s.kind for s in result.incidents[0].signals]
    assert kinds == ["daemon_unloaded", "protection_weakened"]


def test_vendor_rewriting_its_own_files_is_silent(tmp_path: Path) -> None:
    writer = EsWriter("2026-11-22T08:00:00Z", seed=12)
    daemon = writer.spawn(
        "/Library/CS/falcond", ["/Library/CS/falcond"], team_id=FALCON_TEAM, platform_binary=False
    )
    writer.rename(daemon, "/Library/CS/falcond.new", "/Library/CS/falcond")
    writer.unlink(daemon, "/Library/LaunchDaemons/com.crowdstrike.falcond.plist")
    assert scan_writer(tmp_path, writer).incidents == []


def test_crash_after_vendor_upgrade_stays_suspicious(tmp_path: Path) -> None:
    writer = EsWriter("2026-11-22T08:00:00Z", seed=13)
    old = start_falcon(writer)
    updater = writer.spawn(
        "/Library/CS/falcond",
        ["/Library/CS/falcond", "--update"],
        team_id=FALCON_TEAM,
        platform_binary=False,
    )
    writer.command("/bin/launchctl bootout system/com.crowdstrike.falcon.Agent", shell=updater)
    writer.exit(old, 15)
    upgraded = scan_writer(tmp_path, writer)
    assert [i.status for i in upgraded.incidents] == ["explained"]
    writer.advance(20)
    new = start_falcon(writer)
    writer.advance(5)
    writer.exit(new, 11)
    crashed = scan_writer(tmp_path, writer)
    assert [i.status for i in crashed.incidents] == ["suspicious"]
