"""Tests of the osquery reader on hand-written result and status lines of every shape it reads."""

from __future__ import annotations

import calendar
import json
import os
from collections.abc import Mapping
from pathlib import Path

import pytest

from tamperwatch.logpatterns import load_log_patterns
from tamperwatch.model import Event
from tamperwatch.readers.base import SNIFF_BYTES, FileStats, ReadContext
from tamperwatch.readers.osquery import (
    EMPTY_RESULT_NOTE,
    REMOVED_EVENT_ROW_NOTE,
    REPEATED_CRASH_NOTE,
    STATUS_LINE_PID,
    UNRECOGNISED_QUERY_NOTE,
    OsqueryReader,
    parse_calendar_time,
    split_cmdline,
    table_of,
)

READER = OsqueryReader()
HOST = "qa-mini-14.lab.example"
# 2026-11-20 09:15:30 UTC
UNIX_TIME = 1_795_166_130
CALENDAR_TIME = "Fri Nov 20 09:15:30 2026 UTC"


def run(path: Path, host: str | None = None) -> tuple[list[Event], FileStats]:
    stats = FileStats(str(path))
    with path.open("rb") as source:
        events = list(READER.read(source, ReadContext(stats, host=host)))
    return events, stats


def write_lines(tmp_path: Path, *lines: object, name: str = "osqueryd.results.log") -> Path:
    path = tmp_path / name
    text = "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines)
    path.write_text(text, encoding="utf-8")
    return path


def result(
    columns: Mapping[str, object],
    *,
    name: str = "pack_tw_query",
    action: str = "added",
    unix_time: object = str(UNIX_TIME),
    host: str | None = HOST,
    decorations: dict[str, object] | None = None,
) -> dict[str, object]:
    line: dict[str, object] = {
        "name": name,
        "calendarTime": CALENDAR_TIME,
        "unixTime": unix_time,
        "epoch": "0",
        "counter": "3",
        "numerics": False,
        "decorations": decorations or {"host_uuid": "5B0E9A1C-7D22-4F0B-9E61-0A4C2D1E8F33"},
        "columns": dict(columns),
        "action": action,
    }
    if host is not None:
        line["hostIdentifier"] = host
    return line


def sysext(
    state: str = "activated_enabled", identifier: str = "com.northwind.edr.extension"
) -> dict[str, object]:
    return {
        "path": f"/Library/SystemExtensions/7C1D2E3F/{identifier}.systemextension",
        "UUID": "7C1D2E3F-4A5B-4C6D-8E9F-0A1B2C3D4E5F",
        "state": state,
        "identifier": identifier,
        "version": "7.12.1/7.12.1",
        "category": "com.apple.system_extension.endpoint_security",
        "bundle_path": "/Applications/Northwind.app",
        "team": "N0RTHW1ND5",
        "mdm_managed": "1",
    }


def es_row(event_type: str, **extra: object) -> dict[str, object]:
    row: dict[str, object] = {
        "version": "7",
        "seq_num": "311",
        "global_seq_num": "90210",
        "pid": "6123",
        "path": "/bin/launchctl",
        "parent": "6001",
        "original_parent": "6001",
        "cmdline": "",
        "cmdline_count": "0",
        "cwd": "/",
        "uid": "0",
        "euid": "0",
        "username": "root",
        "signing_id": "com.apple.xpc.launchctl",
        "team_id": "",
        "cdhash": "aa11bb22cc33dd44ee55ff6677889900aabbccdd",
        "platform_binary": "1",
        "exit_code": "",
        "child_pid": "",
        "time": str(UNIX_TIME + 2),
        "event_type": event_type,
    }
    row.update({key: str(value) for key, value in extra.items()})
    return row


# --- format detection ------------------------------------------------------------------------


def test_sniff_result_line() -> None:
    assert READER.sniff(json.dumps(result(sysext())).encode() + b"\n")


def test_sniff_status_line() -> None:
    line = {
        "hostIdentifier": HOST,
        "calendarTime": CALENDAR_TIME,
        "unixTime": str(UNIX_TIME),
        "severity": "1",
        "filename": "events.cpp",
        "line": "812",
        "message": "Event publisher not enabled: endpointsecurity: lacks entitlement",
        "version": "5.12.1",
    }
    assert READER.sniff(json.dumps(line).encode())


def test_sniff_batched_line_without_host() -> None:
    line = {"name": "q", "unixTime": UNIX_TIME, "diffResults": {"added": [], "removed": []}}
    assert READER.sniff(json.dumps(line).encode())


@pytest.mark.parametrize(
    "head",
    [
        b'{"event_type":9,"time":"2026-11-20T09:15:30Z","process":{}}\n',
        b'{"timestamp":"2026-11-20 09:15:30.000000+0100","eventMessage":"x"}\n',
        b'{"hostname":"a","last_seen":"2026-11-20T09:15:30Z","status":"online"}\n',
        b'{"hostIdentifier":"a","message":"no time key"}\n',
        b"hostIdentifier,unixTime\n",
        b"",
    ],
)
def test_sniff_rejects_other_formats(head: bytes) -> None:
    assert not READER.sniff(head)


# --- times and hosts -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Thu Dec 28 14:40:08 2017 UTC", calendar.timegm((2017, 12, 28, 14, 40, 8, 0, 0, 0))),
        ("Mon Jan  8 14:51:55 2018 UTC", calendar.timegm((2018, 1, 8, 14, 51, 55, 0, 0, 0))),
        (CALENDAR_TIME, UNIX_TIME),
    ],
)
def test_parse_calendar_time(text: str, expected: int) -> None:
    assert parse_calendar_time(text) == float(expected)


@pytest.mark.parametrize(
    "text",
    ["Thu Dec 28 14:40:08 2017", "Thu Dez 28 14:40:08 2017 UTC", "Thu Dec 32 14:40:08 2017 UTC"],
)
def test_parse_calendar_time_rejects(text: str) -> None:
    assert parse_calendar_time(text) is None


@pytest.mark.parametrize("unix_time", [str(UNIX_TIME), UNIX_TIME])
def test_unix_time_string_or_integer(tmp_path: Path, unix_time: object) -> None:
    events, _ = run(write_lines(tmp_path, result(sysext(), unix_time=unix_time)))
    assert len(events) == 1
    assert events[0].time == float(UNIX_TIME)


def test_calendar_time_when_unix_time_absent(tmp_path: Path) -> None:
    line = result(sysext())
    del line["unixTime"]
    line["calendarTime"] = "Mon Jan  8 14:51:55 2018 UTC"
    events, _ = run(write_lines(tmp_path, line))
    assert events[0].time == float(calendar.timegm((2018, 1, 8, 14, 51, 55, 0, 0, 0)))


def test_host_from_decorations(tmp_path: Path) -> None:
    line = result(sysext(), host=None, decorations={"hostname": "lab-imac-02"})
    events, _ = run(write_lines(tmp_path, line), host="from-context")
    assert events[0].host == "lab-imac-02"


def test_host_identifier_wins_over_decorations(tmp_path: Path) -> None:
    line = result(sysext(), decorations={"hostname": "lab-imac-02"})
    events, _ = run(write_lines(tmp_path, line))
    assert events[0].host == HOST


def test_host_from_context_when_line_has_none(tmp_path: Path) -> None:
    events, _ = run(write_lines(tmp_path, result(sysext(), host=None)), host="from-context")
    assert events[0].host == "from-context"


# --- state tables ----------------------------------------------------------------------------


def test_system_extension_row(tmp_path: Path) -> None:
    events, stats = run(write_lines(tmp_path, result(sysext())))
    assert len(events) == 1
    event = events[0]
    assert event.kind == "state"
    assert event.evidence.source == "osquery"
    assert event.evidence.line == 1
    assert event.state is not None
    assert event.state.subject == "system_extension"
    assert event.state.name == "com.northwind.edr.extension"
    assert event.state.state == "activated_enabled"
    assert event.state.team_id == "N0RTHW1ND5"
    assert event.state.version == "7.12.1/7.12.1"
    assert event.state.detail == "com.apple.system_extension.endpoint_security"
    assert event.state.snapshot is None
    assert stats.read == 1
    assert stats.used == 1


def test_snapshot_line_gives_one_event_per_row(tmp_path: Path) -> None:
    line = result(sysext(), action="snapshot", name="pack_tw_sysext")
    del line["columns"]
    line["snapshot"] = [sysext(), sysext("activated_waiting_for_user", "com.acme.netfilter")]
    events, stats = run(write_lines(tmp_path, line))
    assert [e.state.name for e in events if e.state] == [
        "com.northwind.edr.extension",
        "com.acme.netfilter",
    ]
    assert [e.state.state for e in events if e.state] == [
        "activated_enabled",
        "activated_waiting_for_user",
    ]
    assert all(e.state and e.state.snapshot == f"pack_tw_sysext@{UNIX_TIME}" for e in events)
    assert all(e.evidence.line == 1 for e in events)
    assert stats.read == 2
    assert stats.used == 2


def test_empty_snapshot_is_noted(tmp_path: Path) -> None:
    line = result(sysext(), action="snapshot")
    del line["columns"]
    line["snapshot"] = []
    events, stats = run(write_lines(tmp_path, line))
    assert events == []
    assert stats.notes[EMPTY_RESULT_NOTE] == 1
    assert stats.read == 0


def test_batched_diff_results(tmp_path: Path) -> None:
    line = result(sysext())
    del line["columns"]
    del line["action"]
    line["diffResults"] = {
        "added": [sysext("terminated_waiting_to_uninstall_on_reboot")],
        "removed": [sysext("activated_enabled")],
    }
    events, stats = run(write_lines(tmp_path, line))
    assert len(events) == 2
    added, removed = (e.state for e in events)
    assert added is not None
    assert removed is not None
    assert added.state == "terminated_waiting_to_uninstall_on_reboot"
    assert removed.state == "removed"
    assert removed.detail is not None
    assert removed.detail.startswith("com.apple.system_extension.endpoint_security; ")
    assert "state before removal: activated_enabled" in removed.detail
    assert stats.read == 2


def test_removed_row(tmp_path: Path) -> None:
    events, _ = run(write_lines(tmp_path, result(sysext(), action="removed")))
    assert events[0].state is not None
    assert events[0].state.state == "removed"
    assert events[0].state.detail is not None
    assert "state before removal: activated_enabled" in events[0].state.detail


def launchd_row(disabled: str, program: str = "") -> dict[str, object]:
    return {
        "path": "/Library/LaunchDaemons/com.northwind.edr.agent.plist",
        "name": "com.northwind.edr.agent.plist",
        "label": "com.northwind.edr.agent",
        "program": program,
        "run_at_load": "1",
        "keep_alive": "1",
        "on_demand": "",
        "disabled": disabled,
        "username": "root",
        "program_arguments": "/Library/Northwind/edragent --daemon",
        "process_type": "Interactive",
    }


@pytest.mark.parametrize(("disabled", "enabled"), [("1", False), ("0", True), ("", True)])
def test_launchd_plist_row(tmp_path: Path, disabled: str, enabled: bool) -> None:
    events, _ = run(write_lines(tmp_path, result(launchd_row(disabled))))
    state = events[0].state
    assert state is not None
    assert state.subject == "launchd_plist"
    assert state.name == "com.northwind.edr.agent"
    assert state.enabled is enabled
    assert state.path == "/Library/LaunchDaemons/com.northwind.edr.agent.plist"
    assert state.detail == "/Library/Northwind/edragent --daemon"


def test_launchd_program_is_detail(tmp_path: Path) -> None:
    events, _ = run(write_lines(tmp_path, result(launchd_row("0", "/Library/Northwind/edrd"))))
    assert events[0].state is not None
    assert events[0].state.detail == "/Library/Northwind/edrd"


def test_removed_launchd_plist(tmp_path: Path) -> None:
    events, _ = run(write_lines(tmp_path, result(launchd_row("0"), action="removed")))
    assert events[0].state is not None
    assert events[0].state.state == "removed"
    assert events[0].state.detail == "/Library/Northwind/edragent --daemon"


def test_processes_row(tmp_path: Path) -> None:
    row = {
        "pid": "733",
        "name": "edragent",
        "path": "/Library/Northwind/edragent",
        "cmdline": "/Library/Northwind/edragent --daemon",
        "state": "T",
        "parent": "1",
        "uid": "0",
    }
    events, _ = run(write_lines(tmp_path, result(row)))
    state = events[0].state
    assert state is not None
    assert state.subject == "process"
    assert state.name == "edragent"
    assert state.pid == 733
    assert state.path == "/Library/Northwind/edragent"
    assert state.state == "T"


def osquery_info_row(config_valid: object = "1") -> dict[str, object]:
    return {
        "pid": "512",
        "uuid": "5B0E9A1C-7D22-4F0B-9E61-0A4C2D1E8F33",
        "instance_id": "e1f2a3b4-0000-4000-8000-123456789abc",
        "version": "5.12.1",
        "config_hash": "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c",
        "config_valid": config_valid,
        "extensions": "active",
        "build_platform": "darwin",
        "start_time": str(UNIX_TIME - 3600),
        "watcher": "498",
        "resident_size": "41943040",
    }


def test_osquery_info_row(tmp_path: Path) -> None:
    events, _ = run(write_lines(tmp_path, result(osquery_info_row())))
    state = events[0].state
    assert state is not None
    assert state.subject == "agent_health"
    assert state.name == "osquery"
    assert state.pid == 512
    assert state.version == "5.12.1"
    assert state.healthy is True
    assert state.detail is not None
    assert "watcher pid 498" in state.detail


def test_osquery_info_invalid_config_unhealthy(tmp_path: Path) -> None:
    events, _ = run(write_lines(tmp_path, result(osquery_info_row(config_valid="0"))))
    assert events[0].state is not None
    assert events[0].state.healthy is False


def test_osquery_schedule_row(tmp_path: Path) -> None:
    row = {
        "name": "pack_tw_sysext",
        "query": "SELECT * FROM system_extensions;",
        "interval": "300",
        "executions": "12",
        "last_executed": str(UNIX_TIME - 60),
        "denylisted": "0",
        "output_size": "2048",
        "wall_time": "1",
    }
    events, _ = run(write_lines(tmp_path, result(row)))
    state = events[0].state
    assert state is not None
    assert state.subject == "agent_health"
    assert state.name == "osquery"
    assert state.detail == ("query pack_tw_sysext: 12 executions, last 2026-11-20T09:14:30.000000Z")
    assert state.healthy is None


def test_osquery_schedule_denylisted(tmp_path: Path) -> None:
    row = {"name": "pack_tw_heavy", "executions": "3", "last_executed": "0", "denylisted": "1"}
    events, _ = run(write_lines(tmp_path, result(row)))
    state = events[0].state
    assert state is not None
    assert state.healthy is False
    assert state.detail == "query pack_tw_heavy: 3 executions, last never, denylisted"


# --- event tables ----------------------------------------------------------------------------


def crash_row(datetime_text: str = "2026-11-20 10:15:31.250 +0100") -> dict[str, object]:
    return {
        "type": "application",
        "pid": "733",
        "path": "/Library/Northwind/edragent",
        "crash_path": "/Library/Logs/DiagnosticReports/edragent_2026-11-20-101531_qa-mini.crash",
        "identifier": "com.northwind.edragent",
        "version": "7.12.1 (7121)",
        "parent": "1",
        "responsible": "edragent [733]",
        "uid": "0",
        "datetime": datetime_text,
        "crashed_thread": "0",
        "stack_trace": "",
        "exception_type": "EXC_CRASH (SIGKILL)",
        "exception_codes": "0x0000000000000000, 0x0000000000000000",
        "exception_notes": "EXC_CORPSE_NOTIFY",
        "registers": "",
    }


def test_crash_row(tmp_path: Path) -> None:
    events, _ = run(write_lines(tmp_path, result(crash_row())))
    assert len(events) == 1
    event = events[0]
    assert event.kind == "crash"
    assert event.time == float(UNIX_TIME + 1) + 0.25
    assert event.process is not None
    assert event.process.pid == 733
    assert event.process.ppid == 1
    assert event.process.path == "/Library/Northwind/edragent"
    assert event.process.name == "edragent"
    assert event.crash is not None
    assert event.crash.process_name == "edragent"
    assert event.crash.bundle_id == "com.northwind.edragent"
    assert event.crash.version == "7.12.1 (7121)"
    assert event.crash.exception_type == "EXC_CRASH"
    assert event.crash.signal == "SIGKILL"


def test_crash_time_falls_back_to_line(tmp_path: Path) -> None:
    events, _ = run(write_lines(tmp_path, result(crash_row("last Tuesday"))))
    assert events[0].time == float(UNIX_TIME)


def test_crash_in_repeated_snapshots_read_once(tmp_path: Path) -> None:
    first = result(crash_row(), action="snapshot")
    del first["columns"]
    first["snapshot"] = [crash_row()]
    later = dict(first, unixTime=str(UNIX_TIME + 300))
    events, stats = run(write_lines(tmp_path, first, later))
    assert len(events) == 1
    assert stats.notes[REPEATED_CRASH_NOTE] == 1
    assert stats.read == stats.used


def test_removed_crash_row_noted(tmp_path: Path) -> None:
    events, stats = run(write_lines(tmp_path, result(crash_row(), action="removed")))
    assert events == []
    assert stats.notes[REMOVED_EVENT_ROW_NOTE] == 1
    assert stats.read == 0


def test_es_exec_row(tmp_path: Path) -> None:
    row = es_row(
        "exec",
        cmdline='launchctl bootout system "/Library/LaunchDaemons/Northwind Agent.plist" ',
        cmdline_count=4,
    )
    events, _ = run(write_lines(tmp_path, result(row)))
    event = events[0]
    assert event.kind == "exec"
    assert event.time == float(UNIX_TIME + 2)
    assert event.event_type == 9
    assert event.seq_num == 311
    assert event.global_seq_num == 90210
    assert event.target is not None
    assert event.target.pid == 6123
    assert event.target.ppid == 6001
    assert event.target.path == "/bin/launchctl"
    assert event.target.args == [
        "launchctl",
        "bootout",
        "system",
        "/Library/LaunchDaemons/Northwind Agent.plist",
    ]
    assert event.target.signing_id == "com.apple.xpc.launchctl"
    assert event.target.team_id is None
    assert event.target.platform_binary is True
    # osquery fills its euid column with the effective group id, so it is not used.
    assert event.target.euid is None
    assert event.process is not None
    assert event.process.pid == 6123
    assert event.process.ppid == 6001


def test_es_exec_unquoted_quote_characters_kept(tmp_path: Path) -> None:
    row = es_row("exec", cmdline=r"grep -e it's C:\temp\x ", cmdline_count=4)
    events, _ = run(write_lines(tmp_path, result(row)))
    assert events[0].target is not None
    assert events[0].target.args == ["grep", "-e", "it's", r"C:\temp\x"]


@pytest.mark.parametrize(
    ("cmdline", "count", "args"),
    [
        # std::quoted arguments: a space, an escaped double quote and an escaped backslash.
        (
            r'/bin/sh -c "echo \"a b\" > C:\\out" ',
            3,
            ["/bin/sh", "-c", r'echo "a b" > C:\out'],
        ),
        ("/usr/bin/true ", 1, ["/usr/bin/true"]),
        ("", 0, []),
        # A quote that is not closed: whitespace split.
        ('echo "open ended', None, ["echo", '"open', "ended"]),
        # Older releases quote nothing; the count shows that the plain split is right.
        ('echo "x" "y', 3, ["echo", '"x"', '"y']),
    ],
)
def test_split_cmdline(cmdline: str, count: int | None, args: list[str]) -> None:
    assert split_cmdline(cmdline, count) == args


def test_es_fork_row(tmp_path: Path) -> None:
    events, _ = run(write_lines(tmp_path, result(es_row("fork", child_pid=6124))))
    event = events[0]
    assert event.kind == "fork"
    assert event.event_type == 11
    assert event.process is not None
    assert event.process.pid == 6123
    assert event.target is not None
    assert event.target.pid == 6124
    assert event.target.ppid == 6123


def test_es_exit_row(tmp_path: Path) -> None:
    events, _ = run(write_lines(tmp_path, result(es_row("exit", exit_code=9))))
    event = events[0]
    assert event.kind == "exit"
    assert event.event_type == 15
    assert event.status == 9
    assert event.process is not None
    assert event.process.pid == 6123


def test_numeric_columns(tmp_path: Path) -> None:
    row: dict[str, object] = dict(es_row("exit"))
    row.update(pid=6123, parent=6001, seq_num=311, global_seq_num=90210, exit_code=0)
    row.update(time=UNIX_TIME + 2, platform_binary=1)
    events, stats = run(write_lines(tmp_path, result(row, unix_time=UNIX_TIME)))
    assert stats.read == stats.used == 1
    assert events[0].status == 0
    assert events[0].global_seq_num == 90210
    assert events[0].time == float(UNIX_TIME + 2)


def test_es_fork_without_child_skipped(tmp_path: Path) -> None:
    events, stats = run(write_lines(tmp_path, result(es_row("fork"))))
    assert events == []
    assert stats.skipped["missing column"] == 1
    assert stats.warnings[0].line == 1


# --- status lines ----------------------------------------------------------------------------


def status_line(message: str, severity: object = "1") -> dict[str, object]:
    return {
        "hostIdentifier": HOST,
        "calendarTime": CALENDAR_TIME,
        "unixTime": str(UNIX_TIME),
        "severity": severity,
        "filename": "eventfactory.cpp",
        "line": "167",
        "message": message,
        "version": "5.12.1",
        "decorations": {"host_uuid": "5B0E9A1C-7D22-4F0B-9E61-0A4C2D1E8F33"},
    }


def test_status_line_event(tmp_path: Path) -> None:
    message = (
        "Event publisher not enabled: endpointsecurity: EndpointSecurity client lacks entitlement"
    )
    events, stats = run(write_lines(tmp_path, status_line(message)))
    assert stats.read == stats.used == 1
    event = events[0]
    assert event.kind == "log"
    assert event.host == HOST
    assert event.message == message
    assert event.subsystem == "osquery"
    assert event.category == "warning"
    assert event.process is not None
    assert event.process.name == "osqueryd"
    assert event.process.pid == STATUS_LINE_PID
    matches = load_log_patterns().match(event)
    assert [match.pattern_id for match in matches] == ["osquery-es-publisher-disabled"]


def test_status_line_integer_severity(tmp_path: Path) -> None:
    events, _ = run(write_lines(tmp_path, status_line("osqueryd started", severity=0)))
    assert events[0].category == "info"


# --- rows of other queries and bad lines -----------------------------------------------------


def test_unrecognised_query_is_noted(tmp_path: Path) -> None:
    mounts = {
        "device": "/dev/disk3s5",
        "path": "/System/Volumes/Data",
        "type": "apfs",
        "blocks_size": "4096",
        "flags": "276828288",
    }
    path = write_lines(tmp_path, result(mounts, name="pack_tw_mounts"), result(sysext()))
    events, stats = run(path)
    assert len(events) == 1
    assert stats.notes[UNRECOGNISED_QUERY_NOTE] == 1
    assert stats.read == 1
    assert stats.used == 1
    assert not stats.skipped


@pytest.mark.parametrize(
    ("columns", "table"),
    [
        ({"event_type", "pid", "path"}, "es_process_events"),
        ({"event_type", "pid", "filename"}, None),
        ({"crash_path", "pid"}, "crashes"),
        ({"identifier", "state", "team"}, "system_extensions"),
        ({"label", "program"}, "launchd"),
        ({"label"}, None),
        ({"pid", "instance_id"}, "osquery_info"),
        ({"name", "executions", "last_executed"}, "osquery_schedule"),
        ({"pid", "name", "path"}, "processes"),
        ({"device", "path", "type"}, None),
    ],
)
def test_table_of_columns(columns: set[str], table: str | None) -> None:
    assert table_of(columns) == table


def test_bad_lines_are_skipped_with_line(tmp_path: Path) -> None:
    no_time = result(sysext())
    del no_time["unixTime"]
    del no_time["calendarTime"]
    nested = result({"identifier": {"nested": 1}, "state": "x"})
    path = write_lines(
        tmp_path,
        result(sysext()),
        "{not json",
        result(sysext(), unix_time={"seconds": 1}),
        no_time,
        result(sysext(), unix_time="yesterday"),
        nested,
        result({"pid": "seven", "name": "edragent"}),
        {"hostIdentifier": HOST, "unixTime": UNIX_TIME},
        result(sysext(), action="changed"),
        result({"identifier": "", "state": "activated_enabled"}),
        "",
        result(sysext()),
    )
    events, stats = run(path)
    assert len(events) == 2
    assert stats.used == 2
    assert stats.read == stats.used + sum(stats.skipped.values())
    assert stats.skipped["invalid JSON"] == 1
    assert stats.skipped["missing timestamp"] == 1
    assert stats.skipped["invalid timestamp"] == 1
    assert stats.skipped["missing column"] == 1
    assert stats.skipped["invalid record"] == 5
    assert [warning.line for warning in stats.warnings] == [2, 3, 4, 5, 6, 7, 8, 9, 10]


def test_invalid_utf8_replaced(tmp_path: Path) -> None:
    path = tmp_path / "osqueryd.results.log"
    good = json.dumps(result(sysext())).encode()
    path.write_bytes(good.replace(b"N0RTHW1ND5", b"N0RTH\xffW1ND5") + b"\n" + good + b"\n")
    events, stats = run(path)
    assert len(events) == 2
    assert not stats.skipped
    assert events[0].state is not None
    assert events[0].state.team_id == "N0RTH\ufffdW1ND5"
    assert [(w.line, w.message) for w in stats.warnings] == [
        (1, "invalid UTF-8 replaced with U+FFFD")
    ]


# --- real samples ----------------------------------------------------------------------------

CORPUS_ENV = "TAMPERWATCH_REAL_CORPUS"


def test_real_osquery_results() -> None:
    root = os.environ.get(CORPUS_ENV)
    if not root:
        pytest.skip(f"{CORPUS_ENV} is not set; point it at a folder of real samples")
    files = sorted(path for path in (Path(root) / "osquery").iterdir() if path.is_file())
    assert files, f"no files in {Path(root) / 'osquery'}"
    for path in files:
        assert READER.sniff(path.read_bytes()[:SNIFF_BYTES]), path.name
        _, stats = run(path)
        assert not stats.skipped, (path.name, dict(stats.skipped))
        assert stats.read == stats.used, path.name
        if "mounts" in path.name:
            assert stats.notes[UNRECOGNISED_QUERY_NOTE] >= 1, path.name


@pytest.mark.parametrize(
    ("columns", "table"),
    [
        ({"global_state", "stealth_enabled", "logging_enabled"}, "alf"),
        ({"assessments_enabled", "dev_id_enabled"}, "gatekeeper"),
        ({"config_flag", "enabled", "enabled_nvram"}, "sip_config"),
        ({"domain", "key", "value", "forced"}, "preferences"),
    ],
)
def test_settings_tables_are_recognised(columns: set[str], table: str) -> None:
    assert table_of(columns) == table
