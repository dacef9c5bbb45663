"""Tests of the snapshot readers: systemextensionsctl list, launchctl list and launchctl print."""

from __future__ import annotations

import io
import json
import os
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tamperwatch.model import Event, StateInfo
from tamperwatch.readers.base import SNIFF_BYTES, FileStats, ReadContext, Reader
from tamperwatch.readers.snapshots import (
    LaunchctlListReader,
    LaunchctlPrintReader,
    SysextListReader,
    parse_header_time,
    time_from_file_name,
)

SYSEXT = SysextListReader()
LIST = LaunchctlListReader()
PRINT = LaunchctlPrintReader()
SNAPSHOT_READERS: tuple[Reader, ...] = (SYSEXT, LIST, PRINT)

TIME_A = "2027-02-14T08:30:00Z"
TIME_B = "2027-02-14T09:45:30Z"
# A file modification time used where the file carries no other time.
MTIME = datetime.fromisoformat("2027-03-01T12:00:00+00:00").timestamp()


def epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def write(tmp_path: Path, name: str, lines: list[str]) -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def run(reader: Reader, path: Path, mtime: float | None = MTIME) -> tuple[list[Event], FileStats]:
    stats = FileStats(str(path))
    with path.open("rb") as source:
        context = ReadContext(stats, host="wks-oslo-11", file_mtime=mtime)
        events = list(reader.read(source, context))
    return events, stats


def run_stdin(reader: Reader, lines: list[str]) -> tuple[list[Event], FileStats]:
    stats = FileStats("-")
    data = ("\n".join(lines) + "\n").encode()
    events = list(reader.read(io.BytesIO(data), ReadContext(stats)))
    return events, stats


def state(event: Event) -> StateInfo:
    assert event.state is not None
    return event.state


def warning_lines(stats: FileStats) -> list[int]:
    return [warning.line for warning in stats.warnings]


# --- systemextensionsctl list -------------------------------------------------------------------

SYSEXT_COLUMNS = "enabled\tactive\tteamID\tbundleID (version)\tname\t[state]"
ES_CATEGORY_NEW = (
    "--- com.apple.system_extension.endpoint_security (Go to 'System Settings > General > "
    "Login Items & Extensions > Endpoint Security Extensions' to modify these system "
    "extension(s))"
)
NE_CATEGORY_NEW = (
    "--- com.apple.system_extension.network_extension (Go to 'System Settings > General > "
    "Login Items & Extensions > Network Extensions' to modify these system extension(s))"
)
ES_CATEGORY_OLD = "--- com.apple.system_extension.endpoint_security"


def sysext_row(enabled: str, active: str, bundle: str, version: str, name: str, st: str) -> str:
    return f"{enabled}\t{active}\tNW4TEAM123\t{bundle} ({version})\t{name}\t[{st}]"


def test_sysext_tabs_new_category_headers(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "sysext.txt",
        [
            f"# time: {TIME_A}",
            "2 extension(s)",
            ES_CATEGORY_NEW,
            SYSEXT_COLUMNS,
            sysext_row(
                "*",
                "*",
                "com.northwind.edr.esext",
                "7.3/7301",
                "Northwind Sensor",
                "activated enabled",
            ),
            NE_CATEGORY_NEW,
            SYSEXT_COLUMNS,
            sysext_row(
                "*",
                "*",
                "com.northwind.edr.netext",
                "7.3/7301",
                "Northwind Filter",
                "activated enabled",
            ),
        ],
    )

    events, stats = run(SYSEXT, path)

    assert stats.read == 2
    assert stats.used == 2
    assert not stats.skipped
    assert not stats.warnings
    first, second = events
    assert first.kind == "state"
    assert first.time == epoch(TIME_A)
    assert first.host == "wks-oslo-11"
    assert first.evidence.source == "sysextctl"
    assert first.evidence.line == 5
    assert state(first) == StateInfo(
        subject="system_extension",
        name="com.northwind.edr.esext",
        state="activated_enabled",
        team_id="NW4TEAM123",
        version="7.3/7301",
        enabled=True,
        active=True,
        snapshot=f"{path}@2027-02-14T08:30:00.000000Z",
        detail="category: endpoint_security; name: Northwind Sensor",
    )
    assert state(second).name == "com.northwind.edr.netext"
    assert state(second).detail == "category: network_extension; name: Northwind Filter"
    assert second.evidence.line == 8


def test_sysext_mangled_spaces_two_versions(tmp_path: Path) -> None:
    # A copy that expanded the TABs to spaces, with an upgrade waiting for the user's approval.
    rows = [
        "% systemextensionsctl list",
        "2 extension(s)",
        ES_CATEGORY_OLD,
        SYSEXT_COLUMNS,
        sysext_row(
            "", "*", "com.northwind.edr.esext", "7.4/7402", "nwsensor", "activated waiting for user"
        ),
        sysext_row(
            "*", "*", "com.northwind.edr.esext", "7.3/7301", "nwsensor", "activated enabled"
        ),
    ]
    path = write(tmp_path, "sysext.txt", [row.expandtabs(8) for row in rows])

    events, stats = run(SYSEXT, path)

    assert stats.read == 2
    assert stats.used == 2
    assert not stats.skipped
    assert not stats.warnings
    assert stats.notes["shell prompt line"] == 1
    waiting, enabled = (state(event) for event in events)
    assert waiting.name == "com.northwind.edr.esext"
    assert waiting.version == "7.4/7402"
    assert waiting.state == "activated_waiting_for_user"
    assert waiting.enabled is False
    assert waiting.active is True
    assert waiting.team_id == "NW4TEAM123"
    assert waiting.detail == "category: endpoint_security; name: nwsensor"
    assert enabled.name == "com.northwind.edr.esext"
    assert enabled.version == "7.3/7301"
    assert enabled.state == "activated_enabled"
    assert enabled.enabled is True
    assert enabled.active is True


def test_sysext_mangled_display_name_with_spaces(tmp_path: Path) -> None:
    row = sysext_row(
        "*",
        "",
        "com.northwind.edr.esext",
        "7.3/7301",
        "Northwind Endpoint Sensor",
        "activated enabled",
    )
    path = write(tmp_path, "sysext.txt", ["1 extension(s)", SYSEXT_COLUMNS, row.expandtabs(8)])

    events, stats = run(SYSEXT, path)

    assert stats.read == 1
    assert stats.used == 1
    info = state(events[0])
    assert info.enabled is True
    assert info.active is False
    assert info.detail == "name: Northwind Endpoint Sensor"


def test_sysext_waiting_row_starts_with_two_tabs(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "sysext.txt",
        [
            f"# time: {TIME_A}",
            "1 extension(s)",
            ES_CATEGORY_OLD,
            SYSEXT_COLUMNS,
            sysext_row(
                "",
                "",
                "com.northwind.edr.esext",
                "7.3/7301",
                "nwsensor",
                "activated waiting for user",
            ),
        ],
    )

    events, stats = run(SYSEXT, path)

    assert stats.read == 1
    assert stats.used == 1
    info = state(events[0])
    assert info.enabled is False
    assert info.active is False
    assert info.state == "activated_waiting_for_user"


def test_sysext_uninstall_state_and_blank_after_count(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "sysext.txt",
        [
            f"# time: {TIME_A}",
            "1 extension(s)",
            "",
            ES_CATEGORY_OLD,
            SYSEXT_COLUMNS,
            sysext_row(
                "",
                "*",
                "com.northwind.edr.esext",
                "7.3/7301",
                "nwsensor",
                "terminated waiting to uninstall on reboot",
            ),
        ],
    )

    events, stats = run(SYSEXT, path)

    assert stats.used == 1
    assert state(events[0]).state == "terminated_waiting_to_uninstall_on_reboot"


def test_sysext_count_mismatch_warns_at_count_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "sysext.txt",
        [
            f"# time: {TIME_A}",
            "3 extension(s)",
            ES_CATEGORY_OLD,
            SYSEXT_COLUMNS,
            sysext_row(
                "*", "*", "com.northwind.edr.esext", "7.3/7301", "nwsensor", "activated enabled"
            ),
        ],
    )

    events, stats = run(SYSEXT, path)

    assert len(events) == 1
    assert stats.read == 1
    assert stats.used == 1
    assert warning_lines(stats) == [2]
    assert "announces 3 extension(s) but 1 rows" in stats.warnings[0].message


def test_sysext_sip_refusal_and_chatter_are_notes(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "sysext.txt",
        [
            f"# time: {TIME_A}",
            "$ systemextensionsctl list",
            "1 extension(s)",
            ES_CATEGORY_OLD,
            SYSEXT_COLUMNS,
            sysext_row(
                "*", "*", "com.northwind.edr.esext", "7.3/7301", "nwsensor", "activated enabled"
            ),
            "",
            "$ systemextensionsctl uninstall NW4TEAM123 com.northwind.edr.esext",
            "At this time, this tool cannot be used if System Integrity Protection is enabled.",
            "This limitation will be removed in the near future.",
        ],
    )

    events, stats = run(SYSEXT, path)

    assert len(events) == 1
    assert stats.read == 1
    assert stats.used == 1
    assert stats.notes["shell prompt line"] == 2
    assert stats.notes["System Integrity Protection refusal"] == 1
    assert stats.notes["other command output"] == 1
    assert not stats.warnings


def test_sysext_invalid_row_is_skipped(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "sysext.txt",
        [
            f"# time: {TIME_A}",
            "2 extension(s)",
            ES_CATEGORY_OLD,
            SYSEXT_COLUMNS,
            "*\t?\tNW4TEAM123\tcom.northwind.edr.esext (7.3/7301)\tnwsensor\t[activated enabled]",
            sysext_row(
                "*", "*", "com.northwind.edr.netext", "7.3/7301", "nwfilter", "activated enabled"
            ),
        ],
    )

    events, stats = run(SYSEXT, path)

    assert len(events) == 1
    assert stats.read == 2
    assert stats.used == 1
    assert stats.skipped["invalid row"] == 1
    assert warning_lines(stats) == [5]


def test_sysext_command_failure_is_warned(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "sysext.txt",
        [
            f"# time: {TIME_A}",
            "systemextensionsctl: list command failed: The operation couldn't be completed. "
            "Connection refused",
        ],
    )

    events, stats = run(SYSEXT, path)

    assert events == []
    assert stats.read == 0
    assert stats.notes["systemextensionsctl error message"] == 1
    assert warning_lines(stats) == [2]


# --- launchctl list -----------------------------------------------------------------------------


def test_list_tabs_negative_status_and_dashes(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "list.txt",
        [
            f"# time: {TIME_A}",
            "PID\tStatus\tLabel",
            "-\t0\tcom.northwind.edr.updater",
            "611\t0\tcom.northwind.edr.agent",
            "734\t-9\tcom.northwind.edr.esext",
            "-\t78\tcom.northwind.edr.watchdog",
            "-\t-\tcom.northwind.edr.uninstaller",
        ],
    )

    events, stats = run(LIST, path)

    assert stats.read == 5
    assert stats.used == 5
    assert not stats.skipped
    infos = [state(event) for event in events]
    assert infos[0] == StateInfo(
        subject="launchd_job",
        name="com.northwind.edr.updater",
        state="not running",
        last_exit_status=0,
        snapshot=f"{path}@2027-02-14T08:30:00.000000Z",
    )
    assert infos[1].pid == 611
    assert infos[1].state == "running"
    assert infos[2].pid == 734
    assert infos[2].last_exit_status == -9
    assert infos[3].pid is None
    assert infos[3].last_exit_status == 78
    assert infos[4].last_exit_status is None
    assert [event.evidence.line for event in events] == [3, 4, 5, 6, 7]
    assert all(event.evidence.source == "launchctl" for event in events)
    assert all(event.time == epoch(TIME_A) for event in events)


def test_list_whitespace_separated(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "list.txt",
        [
            f"# time: {TIME_A}",
            "PID     Status  Label",
            "611     0       com.northwind.edr.agent",
            "-       -15     com.northwind.edr.esext",
        ],
    )

    events, stats = run(LIST, path)

    assert stats.read == 2
    assert stats.used == 2
    assert state(events[0]).pid == 611
    assert state(events[0]).name == "com.northwind.edr.agent"
    assert state(events[1]).pid is None
    assert state(events[1]).last_exit_status == -15


def test_list_grep_output_with_prompts(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "list.txt",
        [
            "$ launchctl list | grep northwind",
            "-\t0\tcom.northwind.edr.helper",
            "",
            "$ sudo launchctl list | grep northwind",
            "611\t0\tcom.northwind.edr.agent",
            "-\t-9\tcom.northwind.edr.esext",
        ],
    )

    events, stats = run(LIST, path)

    assert stats.read == 3
    assert stats.used == 3
    assert stats.notes["shell prompt line"] == 2
    assert [state(event).name for event in events] == [
        "com.northwind.edr.helper",
        "com.northwind.edr.agent",
        "com.northwind.edr.esext",
    ]
    assert [event.evidence.line for event in events] == [2, 5, 6]


def test_list_invalid_row_is_skipped(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "list.txt",
        [
            f"# time: {TIME_A}",
            "PID\tStatus\tLabel",
            "611\t0\tcom.northwind.edr.agent",
            "six\t0\tcom.northwind.edr.esext",
        ],
    )

    events, stats = run(LIST, path)

    assert len(events) == 1
    assert stats.read == 2
    assert stats.used == 1
    assert stats.skipped["invalid row"] == 1
    assert warning_lines(stats) == [4]


# --- launchctl print ----------------------------------------------------------------------------

PRINT_MACOS15 = [
    "system/com.northwind.edr.agent = {",
    "\tactive count = 1",
    "\tpath = /Library/LaunchDaemons/com.northwind.edr.agent.plist",
    "\ttype = LaunchDaemon",
    "\tstate = running",
    "",
    "\tprogram = /Library/Application Support/Northwind/nwagent",
    "\targuments = {",
    "\t\t/Library/Application Support/Northwind/nwagent",
    "\t\t--daemon",
    "\t}",
    "",
    "\tdomain = system",
    "\truns = 4",
    "\tpid = 611",
    "\timmediate reason = inefficient",
    "\tlast terminating signal = Killed: 9",
    "",
    "\tresource coalition = {",
    "\t\tID = 2210",
    "\t\ttype = resource",
    "\t\tstate = active",
    "\t\tactive count = 1",
    "\t\tname = com.northwind.edr.agent",
    "\t}",
    "",
    "\tevent triggers = {",
    "\t\tcom.northwind.edr.agent.wake => {",
    "\t\t\tstate = active",
    "\t\t\tpid = 1",
    "\t\t}",
    "\t}",
    "",
    "\tspawn type = daemon (3)",
    "\tproperties = supports transactions | system service",
    "}",
]


def test_print_nested_blocks_keep_top_level_fields(tmp_path: Path) -> None:
    path = write(tmp_path, "print.txt", [f"# time: {TIME_A}", *PRINT_MACOS15])

    events, stats = run(PRINT, path)

    assert stats.read == 1
    assert stats.used == 1
    assert not stats.warnings
    (event,) = events
    assert event.evidence.line == 2
    assert event.evidence.source == "launchctl"
    assert event.path == "/Library/Application Support/Northwind/nwagent"
    assert state(event) == StateInfo(
        subject="launchd_job",
        name="com.northwind.edr.agent",
        state="running",
        pid=611,
        path="/Library/LaunchDaemons/com.northwind.edr.agent.plist",
        last_exit_status=-9,
        runs=4,
        snapshot=f"{path}@2027-02-14T08:30:00.000000Z",
        detail="type: LaunchDaemon; domain: system; last terminating signal: Killed: 9",
    )


def test_print_mojave_style(tmp_path: Path) -> None:
    lines = [
        "sh-3.2# launchctl print system/com.northwind.edr.agent",
        "com.northwind.edr.agent = {",
        "        active count = 1",
        "        path = /Library/LaunchDaemons/com.northwind.edr.agent.plist",
        "        state = running",
        "",
        "        program = /Library/Northwind/nwagent",
        "        arguments = {",
        "                /Library/Northwind/nwagent",
        "        }",
        "",
        "        domain = com.apple.xpc.launchd.domain.system",
        "        runs = 2",
        "        successive crashes = 1",
        "        pid = 902",
        "        last exit code = 2",
        "",
        "        endpoints = {",
        '                "com.northwind.edr.agent.xpc" = {',
        "                        port = 0x4f03",
        "                        active = 1",
        "                }",
        "        }",
        "}",
    ]
    path = write(tmp_path, "print.txt", [f"# time: {TIME_A}", *lines])

    events, stats = run(PRINT, path)

    assert stats.read == 1
    assert stats.used == 1
    assert stats.notes["shell prompt line"] == 1
    assert not stats.warnings
    info = state(events[0])
    assert info.name == "com.northwind.edr.agent"
    assert info.state == "running"
    assert info.pid == 902
    assert info.runs == 2
    assert info.last_exit_status == 2
    assert info.detail == "domain: com.apple.xpc.launchd.domain.system; successive crashes: 1"
    assert events[0].evidence.line == 3


def test_print_spawn_scheduled_system_extension(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "print.txt",
        [
            f"# time: {TIME_A}",
            "system/NW4TEAM123.com.northwind.edr.esext = {",
            "\tactive count = 0",
            "\tpath = (submitted by smd[488])",
            "\ttype = Submitted",
            "\tstate = spawn scheduled",
            "",
            "\tprogram = /Library/SystemExtensions/1A2B/com.northwind.edr.esext.systemextension/"
            "Contents/MacOS/com.northwind.edr.esext",
            "\tdomain = system",
            "\truns = 254310",
            "\tlast exit code = 1",
            "\tlast exit reason = OS_REASON_EXEC | Error -413 Northwind sensor refused to start",
            "}",
        ],
    )

    events, stats = run(PRINT, path)

    assert stats.read == 1
    assert stats.used == 1
    info = state(events[0])
    assert info.name == "NW4TEAM123.com.northwind.edr.esext"
    assert info.state == "spawn scheduled"
    assert info.runs == 254310
    assert info.pid is None
    assert info.last_exit_status == 1
    assert info.last_exit_reason == (
        "OS_REASON_EXEC | Error -413 Northwind sensor refused to start"
    )
    assert info.path is None
    assert info.detail == "type: Submitted; domain: system; path: (submitted by smd[488])"


def test_print_never_exited_and_annotated_code(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "print.txt",
        [
            f"# time: {TIME_A}",
            "system/com.northwind.edr.updater = {",
            "\tstate = not running",
            "\truns = 0",
            "\tlast exit code = (never exited)",
            "}",
            "gui/502/com.northwind.edr.menu = {",
            "\tstate = not running",
            "\truns = 3",
            "\tlast exit code = 78: EX_CONFIG",
            "}",
        ],
    )

    events, stats = run(PRINT, path)

    assert stats.read == 2
    assert stats.used == 2
    never, config = (state(event) for event in events)
    assert never.name == "com.northwind.edr.updater"
    assert never.last_exit_status is None
    assert never.runs == 0
    assert config.name == "com.northwind.edr.menu"
    assert config.last_exit_status == 78
    assert [event.evidence.line for event in events] == [2, 7]


def test_print_service_not_found(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "print.txt",
        [
            f"# time: {TIME_A}",
            'Could not find service "com.northwind.edr.agent" in domain for system',
        ],
    )

    events, stats = run(PRINT, path)

    assert stats.read == 1
    assert stats.used == 1
    assert state(events[0]) == StateInfo(
        subject="launchd_job",
        name="com.northwind.edr.agent",
        state="not loaded",
        snapshot=f"{path}@2027-02-14T08:30:00.000000Z",
        detail="domain: system",
    )
    assert events[0].evidence.line == 2


def test_print_several_blocks_and_not_found(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "print.txt",
        [
            f"# time: {TIME_A}",
            *PRINT_MACOS15,
            'Could not find service "com.northwind.edr.esext" in domain for system',
            "system/com.northwind.edr.updater = {",
            "\tstate = waiting",
            "}",
        ],
    )

    events, stats = run(PRINT, path)

    assert stats.read == 3
    assert stats.used == 3
    assert [state(event).state for event in events] == ["running", "not loaded", "waiting"]


def test_print_truncated_block_is_used_with_warning(tmp_path: Path) -> None:
    path = write(tmp_path, "print.txt", [f"# time: {TIME_A}", *PRINT_MACOS15[:20]])

    events, stats = run(PRINT, path)

    assert stats.read == 1
    assert stats.used == 1
    assert state(events[0]).state == "running"
    assert warning_lines(stats) == [21]
    assert "truncated output" in stats.warnings[0].message


def test_print_truncated_before_state_is_skipped(tmp_path: Path) -> None:
    path = write(tmp_path, "print.txt", [f"# time: {TIME_A}", *PRINT_MACOS15[:4]])

    events, stats = run(PRINT, path)

    assert events == []
    assert stats.read == 1
    assert stats.used == 0
    assert stats.skipped["truncated block"] == 1
    assert warning_lines(stats) == [5, 2]


def test_print_truncated_block_followed_by_next_block(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "print.txt",
        [
            f"# time: {TIME_A}",
            *PRINT_MACOS15[:20],
            "system/com.northwind.edr.updater = {",
            "\tstate = not running",
            "}",
        ],
    )

    events, stats = run(PRINT, path)

    assert stats.read == 2
    assert stats.used == 2
    assert [state(event).name for event in events] == [
        "com.northwind.edr.agent",
        "com.northwind.edr.updater",
    ]
    assert warning_lines(stats) == [21]


def test_print_domain_description_is_not_a_service(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "print.txt",
        [
            f"# time: {TIME_A}",
            "system = {",
            "\ttype = system",
            "\tservices = {",
            "\t\t611\t-\tcom.northwind.edr.agent",
            "\t}",
            "}",
            "system/com.northwind.edr.agent = {",
            "\tstate = running",
            "}",
        ],
    )

    events, stats = run(PRINT, path)

    assert stats.read == 1
    assert stats.used == 1
    assert stats.notes["domain description, not a service"] == 1
    assert state(events[0]).name == "com.northwind.edr.agent"


# --- snapshot time ------------------------------------------------------------------------------


def test_series_of_two_snapshots(tmp_path: Path) -> None:
    row = sysext_row(
        "*", "*", "com.northwind.edr.esext", "7.3/7301", "nwsensor", "activated enabled"
    )
    path = write(
        tmp_path,
        "series.txt",
        [
            f"# time: {TIME_A}",
            "1 extension(s)",
            ES_CATEGORY_OLD,
            SYSEXT_COLUMNS,
            row,
            f"# collected: {TIME_B}",
            "0 extension(s)",
            f"# time: {TIME_B.replace('09:45:30', '10:00:00')}",
            "1 extension(s)",
            ES_CATEGORY_OLD,
            SYSEXT_COLUMNS,
            row,
        ],
    )

    events, stats = run(SYSEXT, path)

    assert stats.read == 2
    assert stats.used == 2
    assert not stats.warnings
    assert events[0].time == epoch(TIME_A)
    assert events[1].time == epoch("2027-02-14T10:00:00Z")
    assert state(events[0]).snapshot == f"{path}@2027-02-14T08:30:00.000000Z"
    assert state(events[1]).snapshot == f"{path}@2027-02-14T10:00:00.000000Z"
    assert "time taken from the file modification time" not in stats.notes


def test_series_in_launchctl_list_and_print(tmp_path: Path) -> None:
    list_path = write(
        tmp_path,
        "list.txt",
        [
            f"# time: {TIME_A}",
            "PID\tStatus\tLabel",
            "611\t0\tcom.northwind.edr.agent",
            f"# time: {TIME_B}",
            "PID\tStatus\tLabel",
            "-\t-9\tcom.northwind.edr.agent",
        ],
    )
    print_path = write(
        tmp_path,
        "print.txt",
        [
            f"# time: {TIME_A}",
            "system/com.northwind.edr.agent = {",
            "\tstate = running",
            "}",
            f"# time: {TIME_B}",
            'Could not find service "com.northwind.edr.agent" in domain for system',
        ],
    )

    list_events, list_stats = run(LIST, list_path)
    print_events, print_stats = run(PRINT, print_path)

    assert list_stats.used == 2
    assert [event.time for event in list_events] == [epoch(TIME_A), epoch(TIME_B)]
    assert state(list_events[0]).snapshot != state(list_events[1]).snapshot
    assert print_stats.used == 2
    assert [event.time for event in print_events] == [epoch(TIME_A), epoch(TIME_B)]


@pytest.mark.parametrize(
    "name",
    [
        "sysext-2027-02-14T08:30:00Z.txt",
        "sysext-2027-02-14T08-30-00Z.txt",
        "wks-oslo-11_20270214T083000Z_sysext.txt",
    ],
)
def test_time_from_file_name(tmp_path: Path, name: str) -> None:
    path = write(
        tmp_path,
        name,
        [
            "1 extension(s)",
            SYSEXT_COLUMNS,
            sysext_row(
                "*", "*", "com.northwind.edr.esext", "7.3/7301", "nwsensor", "activated enabled"
            ),
        ],
    )

    events, stats = run(SYSEXT, path)

    assert stats.used == 1
    assert events[0].time == epoch(TIME_A)
    assert stats.notes["time taken from the file name"] == 1
    assert "time taken from the file modification time" not in stats.notes


def test_invalid_file_name_time_falls_back_to_mtime(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "list-2027-13-14T08-30-00Z.txt",
        ["PID\tStatus\tLabel", "611\t0\tcom.northwind.edr.agent"],
    )

    events, stats = run(LIST, path)

    assert stats.used == 1
    assert events[0].time == MTIME
    assert stats.notes["time taken from the file modification time"] == 1


def test_time_from_mtime(tmp_path: Path) -> None:
    path = write(tmp_path, "list.txt", ["PID\tStatus\tLabel", "611\t0\tcom.northwind.edr.agent"])
    os.utime(path, (MTIME, MTIME))

    events, stats = run(LIST, path, mtime=path.stat().st_mtime)

    assert stats.read == 1
    assert stats.used == 1
    assert events[0].time == MTIME
    assert state(events[0]).snapshot == f"{path}@2027-03-01T12:00:00.000000Z"
    assert stats.notes["time taken from the file modification time"] == 1


@pytest.mark.parametrize(
    ("reader", "lines", "rows"),
    [
        (
            SYSEXT,
            [
                "1 extension(s)",
                SYSEXT_COLUMNS,
                sysext_row(
                    "*", "*", "com.northwind.edr.esext", "7.3/7301", "nwsensor", "activated enabled"
                ),
            ],
            1,
        ),
        (LIST, ["PID\tStatus\tLabel", "611\t0\tcom.a.b", "-\t0\tcom.a.c"], 2),
        (
            PRINT,
            [
                "system/com.a.b = {",
                "\tstate = running",
                "}",
                'Could not find service "com.a.c" in domain for system',
            ],
            2,
        ),
    ],
)
def test_stdin_without_header_skips_rows(reader: Reader, lines: list[str], rows: int) -> None:
    events, stats = run_stdin(reader, lines)

    assert events == []
    assert stats.read == rows
    assert stats.used == 0
    assert stats.skipped["snapshot without a time"] == rows
    assert stats.warnings[0].line == 0
    assert "# time: " in stats.warnings[0].message


def test_stdin_with_header_is_dated() -> None:
    events, stats = run_stdin(LIST, [f"# time: {TIME_A}", "611\t0\tcom.northwind.edr.agent"])

    assert stats.used == 1
    assert events[0].time == epoch(TIME_A)
    assert state(events[0]).snapshot == "-@2027-02-14T08:30:00.000000Z"


def test_invalid_header_time_skips_its_rows(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "list.txt",
        [
            "# time: 2027-02-30T08:30:00Z",
            "611\t0\tcom.northwind.edr.agent",
            f"# time: {TIME_B}",
            "612\t0\tcom.northwind.edr.agent",
        ],
    )

    events, stats = run(LIST, path)

    assert stats.read == 2
    assert stats.used == 1
    assert stats.skipped["invalid snapshot time"] == 1
    assert events[0].time == epoch(TIME_B)
    assert warning_lines(stats) == [1, 2]


def test_header_time_parsing() -> None:
    assert parse_header_time("2027-02-14T08:30:00Z") == epoch(TIME_A)
    assert parse_header_time("2027-02-14T09:30:00.250+01:00") == epoch(TIME_A) + 0.25
    assert parse_header_time("2027-02-14T08:30:00") is None
    assert parse_header_time("2027-02-14T24:30:00Z") is None
    assert parse_header_time("yesterday") is None


def test_file_name_time_parsing() -> None:
    assert time_from_file_name("/data/h1/x_2027-02-14T08:30:00Z.txt") == epoch(TIME_A)
    assert time_from_file_name("x_2027-02-14T08-30-00Z.txt") == epoch(TIME_A)
    assert time_from_file_name("x_20270214T083000Z.txt") == epoch(TIME_A)
    assert time_from_file_name("2027-02-14T08:30:00Z/list.txt") is None
    assert time_from_file_name("x_2027-02-14T08-30:00Z.txt") is None
    assert time_from_file_name("x_20270214T083000.txt") is None


# --- sniffing -----------------------------------------------------------------------------------

ESLOGGER_LINE = json.dumps(
    {
        "schema_version": 1,
        "version": 9,
        "time": "2027-02-14T08:30:00.123456789Z",
        "event_type": 9,
        "process": {"audit_token": {"pid": 611, "pidversion": 2}},
        "event": {"exec": {"args": ["/bin/launchctl", "list"]}},
    }
)
UNIFIED_LOG_LINE = (
    "2027-02-14 08:30:00.123456+0100 0x1a2b     Default     0x0                  611    0    "
    "nwagent: (libxpc.dylib) [com.northwind.edr:agent] policy loaded"
)
CRASH_TEXT = (
    "Process:               nwagent [611]\nPath:                  /Library/Northwind/nwagent\n"
)
CSV_TEXT = "pid,status,label\n611,0,com.northwind.edr.agent\n"
IPS_HEADER = '{"app_name":"nwagent","timestamp":"2027-02-14 08:30:00.00 +0000","bug_type":"309"}\n'
OTHER_FORMATS = [ESLOGGER_LINE + "\n", UNIFIED_LOG_LINE + "\n", CRASH_TEXT, CSV_TEXT, IPS_HEADER]

SYSEXT_SAMPLE = "\n".join(
    [
        "1 extension(s)",
        ES_CATEGORY_OLD,
        SYSEXT_COLUMNS,
        sysext_row(
            "*", "*", "com.northwind.edr.esext", "7.3/7301", "nwsensor", "activated enabled"
        ),
    ]
)
LIST_SAMPLE = "PID\tStatus\tLabel\n611\t0\tcom.northwind.edr.agent\n"
GREP_SAMPLE = "$ launchctl list | grep northwind\n-\t0\tcom.northwind.edr.helper\n"
PRINT_SAMPLE = "\n".join(PRINT_MACOS15)
NOT_FOUND_SAMPLE = 'Could not find service "com.northwind.edr.agent" in domain for system\n'


@pytest.mark.parametrize(
    ("reader", "sample"),
    [
        (SYSEXT, SYSEXT_SAMPLE),
        (SYSEXT, "\n".join(row.expandtabs(8) for row in SYSEXT_SAMPLE.split("\n")[1:])),
        (SYSEXT, f"# time: {TIME_A}\n\n{ES_CATEGORY_NEW}\n"),
        (LIST, LIST_SAMPLE),
        (LIST, f"# time: {TIME_A}\nPID     Status  Label\n611     0       com.a.b\n"),
        (LIST, GREP_SAMPLE),
        (PRINT, PRINT_SAMPLE),
        (
            PRINT,
            f"# time: {TIME_A}\nsh-3.2# launchctl print system/x\nx.y = {{\n        state = running\n",
        ),
        (PRINT, NOT_FOUND_SAMPLE),
    ],
)
def test_sniff_accepts_own_format(reader: Reader, sample: str) -> None:
    head = sample.encode()[:SNIFF_BYTES]

    assert [r.name for r in SNAPSHOT_READERS if r.sniff(head)] == [reader.name]
    assert reader.sniff(head)


@pytest.mark.parametrize("reader", SNAPSHOT_READERS)
@pytest.mark.parametrize("sample", OTHER_FORMATS)
def test_sniff_rejects_other_formats(reader: Reader, sample: str) -> None:
    assert not reader.sniff(sample.encode())


def test_sniff_rejects_other_snapshot_formats() -> None:
    assert not SYSEXT.sniff(LIST_SAMPLE.encode())
    assert not SYSEXT.sniff(PRINT_SAMPLE.encode())
    assert not LIST.sniff(SYSEXT_SAMPLE.encode())
    assert not LIST.sniff(PRINT_SAMPLE.encode())
    assert not LIST.sniff(NOT_FOUND_SAMPLE.encode())
    assert not PRINT.sniff(SYSEXT_SAMPLE.encode())
    assert not PRINT.sniff(LIST_SAMPLE.encode())
    assert not PRINT.sniff(GREP_SAMPLE.encode())


def test_list_sniff_without_header_needs_labels() -> None:
    assert not LIST.sniff(b"611\t0\tnwagent\n")
    assert not LIST.sniff(b"611\t0\tcom.northwind.edr.agent\nsome other text\n")
    assert not LIST.sniff(b"$ launchctl list | grep northwind\n")
    assert not LIST.sniff(b"")


def test_print_sniff_needs_indented_field() -> None:
    assert not PRINT.sniff(b"com.northwind.edr.agent = {\n}\n")
    assert not PRINT.sniff(b"com.northwind.edr.agent = {\nstate = running\n}\n")


# --- damaged input ------------------------------------------------------------------------------

DAMAGE_SAMPLES = [
    (SYSEXT, f"# time: {TIME_A}\n{SYSEXT_SAMPLE}\n"),
    (LIST, f"# time: {TIME_A}\n{LIST_SAMPLE}{GREP_SAMPLE}"),
    (PRINT, f"# time: {TIME_A}\n{PRINT_SAMPLE}\n{NOT_FOUND_SAMPLE}"),
]


@settings(max_examples=200, deadline=None)
@given(
    sample=st.sampled_from(DAMAGE_SAMPLES),
    cut=st.floats(min_value=0.0, max_value=1.0),
    noise=st.binary(max_size=16),
)
def test_damaged_input_is_counted_not_raised(
    sample: tuple[Reader, str], cut: float, noise: bytes
) -> None:
    reader, text = sample
    data = text.encode()
    position = int(len(data) * cut)
    damaged = data[:position] + noise + data[position : position + 60]
    stats = FileStats("damaged")

    events = list(reader.read(io.BytesIO(damaged), ReadContext(stats)))

    assert stats.used == len(events)
    assert stats.read == stats.used + sum(stats.skipped.values())


def test_long_line_is_skipped(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "list.txt",
        [f"# time: {TIME_A}", "611\t0\tcom." + "a" * 5000, "612\t0\tcom.northwind.edr.agent"],
    )

    events, stats = run(LIST, path)

    assert len(events) == 1
    assert stats.read == 2
    assert stats.skipped["line too long"] == 1


# --- real samples -------------------------------------------------------------------------------

CORPUS_ENV = "TAMPERWATCH_REAL_CORPUS"


def corpus_files(folder: str) -> list[Path]:
    root = os.environ.get(CORPUS_ENV)
    if not root:
        pytest.skip(f"{CORPUS_ENV} is not set; point it at a folder of real samples")
    files = sorted(path for path in (Path(root) / folder).iterdir() if path.is_file())
    assert files, f"no files in {Path(root) / folder}"
    return files


@pytest.mark.parametrize("folder", ["sysextctl", "launchctl"])
def test_real_snapshot_samples(folder: str) -> None:
    for path in corpus_files(folder):
        head = path.read_bytes()[:SNIFF_BYTES]
        readers = [reader for reader in SNAPSHOT_READERS if reader.sniff(head)]
        assert len(readers) == 1, path.name

        events, stats = run(readers[0], path, mtime=path.stat().st_mtime)

        assert events, path.name
        assert stats.used == len(events), path.name
        assert stats.read == stats.used, (path.name, dict(stats.skipped))
        assert all(event.state is not None for event in events), path.name
        truncated = "truncated" in path.name.lower()
        if truncated and readers[0] is PRINT:
            assert any(warning.line > 0 for warning in stats.warnings), path.name
        if not truncated:
            assert not stats.warnings, (path.name, stats.warnings)
