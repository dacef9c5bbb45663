"""Tests of the eslogger synthesizer: message shapes, process bookkeeping and command replay."""

from __future__ import annotations

import itertools
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from tamperwatch import synth
from tamperwatch.synth import (
    EVENT_TYPES,
    FREAD,
    FWRITE,
    O_APPEND,
    O_CREAT,
    O_TRUNC,
    EsWriter,
    SynthProcess,
    interactive_shell,
)

START = "2026-03-02T09:30:00Z"

TOP_KEYS = {
    "schema_version",
    "version",
    "time",
    "mach_time",
    "seq_num",
    "global_seq_num",
    "event_type",
    "action_type",
    "action",
    "thread",
    "process",
    "event",
}
VENDOR_TOP_KEYS = {
    "action",
    "action_type",
    "deadline",
    "event",
    "event_type",
    "glob_seq_num",
    "host",
    "mach_time",
    "metadata",
    "process",
    "seq_num",
    "thread",
    "time",
    "uuid",
    "version",
}
PROCESS_KEYS = {
    "audit_token",
    "parent_audit_token",
    "responsible_audit_token",
    "ppid",
    "original_ppid",
    "group_id",
    "session_id",
    "codesigning_flags",
    "cdhash",
    "signing_id",
    "team_id",
    "is_platform_binary",
    "is_es_client",
    "start_time",
    "tty",
    "executable",
}
TOKEN_KEYS = {"auid", "euid", "egid", "ruid", "rgid", "pid", "asid", "pidversion"}
STAT_KEYS = {
    "st_dev",
    "st_ino",
    "st_mode",
    "st_nlink",
    "st_uid",
    "st_gid",
    "st_rdev",
    "st_size",
    "st_blocks",
    "st_blksize",
    "st_flags",
    "st_gen",
    "st_atimespec",
    "st_mtimespec",
    "st_ctimespec",
    "st_birthtimespec",
}
EXEC_KEYS = {
    "target",
    "args",
    "env",
    "cwd",
    "script",
    "dyld_exec_path",
    "fds",
    "last_fd",
    "image_cputype",
    "image_cpusubtype",
}

# es_event_type_t values of the NOTIFY events, as the SDK header numbers them.
EXPECTED_EVENT_TYPES = {
    "exec": 9,
    "open": 10,
    "fork": 11,
    "close": 12,
    "create": 13,
    "exit": 15,
    "get_task": 16,
    "kextunload": 18,
    "rename": 25,
    "setextattr": 27,
    "setflags": 28,
    "setmode": 29,
    "signal": 31,
    "unlink": 32,
    "write": 33,
    "truncate": 41,
    "stat": 54,
    "proc_suspend_resume": 93,
    "btm_launch_item_remove": 125,
    "profile_remove": 127,
    "tcc_modify": 147,
}

FALCON_TEAM = "X9E956P446"


def messages(writer: EsWriter) -> list[dict[str, Any]]:
    return [json.loads(line) for line in writer.lines()]


def kind_of(message: dict[str, Any]) -> str:
    return str(next(iter(message["event"])))


def of_kind(writer: EsWriter, kind: str) -> list[dict[str, Any]]:
    return [message for message in messages(writer) if kind_of(message) == kind]


# Field order of audit_token_t.val[], which macOS 26 prints as an array.
TOKEN_ORDER = ["auid", "euid", "egid", "ruid", "rgid", "pid", "asid", "pidversion"]


def token_field(token: Any, name: str) -> int:
    """Read a field of an audit token in either the object or the array form."""
    if isinstance(token, list):
        return int(token[TOKEN_ORDER.index(name)])
    return int(token[name])


def pid_of(process: dict[str, Any]) -> int:
    return token_field(process["audit_token"], "pid")


def pidversion_of(process: dict[str, Any]) -> int:
    return token_field(process["audit_token"], "pidversion")


def exec_of(writer: EsWriter, proc: SynthProcess) -> dict[str, Any]:
    """Return the last exec payload whose target is ``proc``."""
    found: list[dict[str, Any]] = [
        message["event"]["exec"]
        for message in of_kind(writer, "exec")
        if pid_of(message["event"]["exec"]["target"]) == proc.pid
    ]
    assert found, f"no exec of pid {proc.pid}"
    return found[-1]


def daemon(writer: EsWriter) -> SynthProcess:
    return writer.spawn(
        "/Library/CS/falcond",
        ["/Library/CS/falcond"],
        team_id=FALCON_TEAM,
        signing_id="com.crowdstrike.falcond",
        es_client=True,
    )


@pytest.fixture
def writer() -> EsWriter:
    return EsWriter(START, seed=7)


@pytest.fixture
def shell(writer: EsWriter) -> SynthProcess:
    return interactive_shell(writer)


# Message shape --------------------------------------------------------------------------------


def test_lines_parse_as_json(writer: EsWriter, shell: SynthProcess) -> None:
    writer.command("sudo launchctl unload /Library/LaunchDaemons/com.example.plist", shell=shell)
    for line in writer.lines():
        assert isinstance(json.loads(line), dict)


def test_top_level_keys(writer: EsWriter, shell: SynthProcess) -> None:
    writer.command("csrutil status", shell=shell)
    for message in messages(writer):
        assert set(message) == TOP_KEYS


def test_constant_header_fields(writer: EsWriter, shell: SynthProcess) -> None:
    writer.command("csrutil status", shell=shell)
    message = messages(writer)[-1]
    assert message["schema_version"] == 1
    assert message["version"] == 9
    assert message["action_type"] == 1
    assert message["action"] == {"result": {"result_type": 0, "result": {"auth": 0}}}
    assert set(message["thread"]) == {"thread_id"}


def test_process_keys_version_9(writer: EsWriter, shell: SynthProcess) -> None:
    writer.command("csrutil status", shell=shell)
    for message in messages(writer):
        assert set(message["process"]) == PROCESS_KEYS


def test_process_keys_version_10() -> None:
    writer = EsWriter(START, version=10, seed=7)
    writer.spawn("/usr/sbin/spctl", ["spctl", "--status"])
    for message in messages(writer):
        assert set(message["process"]) == PROCESS_KEYS | {"cs_validation_category"}


def test_token_objects_version_9(writer: EsWriter, shell: SynthProcess) -> None:
    for message in messages(writer):
        for name in ("audit_token", "parent_audit_token", "responsible_audit_token"):
            assert set(message["process"][name]) == TOKEN_KEYS


def test_tokens_are_eight_int_arrays_version_10() -> None:
    writer = EsWriter(START, version=10, seed=7)
    child = writer.spawn("/usr/bin/log", ["log", "show"])
    for message in messages(writer):
        for name in ("audit_token", "parent_audit_token", "responsible_audit_token"):
            token = message["process"][name]
            assert isinstance(token, list)
            assert len(token) == 8
            assert all(isinstance(value, int) for value in token)
    target = exec_of(writer, child)["target"]["audit_token"]
    assert target[5] == child.pid
    assert target[7] == child.pidversion


def test_launchd_token_in_array_form() -> None:
    writer = EsWriter(START, version=10, seed=7)
    writer.spawn("/usr/sbin/sysctl", ["sysctl", "-a"])
    fork = of_kind(writer, "fork")[0]
    launchd = fork["process"]["audit_token"]
    assert launchd[0] == 4294967295
    assert launchd[5] == 1


def test_stat_and_file_keys(writer: EsWriter, shell: SynthProcess) -> None:
    proc = writer.spawn("/bin/rm", ["rm", "/tmp/x"], parent=shell)
    writer.unlink(proc, "/tmp/x")
    message = of_kind(writer, "unlink")[0]
    target = message["event"]["unlink"]["target"]
    assert set(target) == {"path", "path_truncated", "stat"}
    assert set(target["stat"]) == STAT_KEYS
    assert set(message["process"]["executable"]["stat"]) == STAT_KEYS


def test_exec_payload_keys(writer: EsWriter) -> None:
    writer.spawn("/usr/bin/defaults", ["defaults", "read"])
    payload = of_kind(writer, "exec")[0]["event"]["exec"]
    assert set(payload) == EXEC_KEYS
    assert payload["image_cputype"] == 16777228
    assert payload["script"] is None
    assert payload["dyld_exec_path"] == "/usr/bin/defaults"


def test_slashes_escaped_in_raw_lines(writer: EsWriter, shell: SynthProcess) -> None:
    writer.command("ls /Library/LaunchDaemons", shell=shell)
    for line in writer.lines():
        assert "\\/" in line
        assert "/" not in line.replace("\\/", "")


def test_time_has_nine_fraction_digits(writer: EsWriter, shell: SynthProcess) -> None:
    for message in messages(writer):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", message["time"])


def test_start_time_has_six_fraction_digits(writer: EsWriter, shell: SynthProcess) -> None:
    for message in messages(writer):
        start = message["process"]["start_time"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", start)


def test_cdhash_is_forty_upper_hex(writer: EsWriter, shell: SynthProcess) -> None:
    for message in messages(writer):
        assert re.fullmatch(r"[0-9A-F]{40}", message["process"]["cdhash"])


def test_cdhash_depends_on_path(writer: EsWriter) -> None:
    first = writer.spawn("/usr/bin/pkill", ["pkill", "a"])
    second = writer.spawn("/usr/bin/pgrep", ["pgrep", "a"])
    assert exec_of(writer, first)["target"]["cdhash"] != exec_of(writer, second)["target"]["cdhash"]


def test_event_types_match_es_header(writer: EsWriter) -> None:
    assert EVENT_TYPES == EXPECTED_EVENT_TYPES


def test_event_type_matches_short_name(writer: EsWriter, shell: SynthProcess) -> None:
    target = daemon(writer)
    writer.command("echo x > /tmp/out", shell=shell)
    writer.signal(shell, target, 15)
    for message in messages(writer):
        assert message["event_type"] == EXPECTED_EVENT_TYPES[kind_of(message)]


def test_key_order_varies_between_lines(writer: EsWriter, shell: SynthProcess) -> None:
    writer.command("ps aux | grep falcond", shell=shell)
    orders = {tuple(json.loads(line)) for line in writer.lines()}
    assert len(orders) > 1


def test_key_order_not_sorted(writer: EsWriter, shell: SynthProcess) -> None:
    orders = [list(json.loads(line)) for line in writer.lines()]
    assert any(order != sorted(order) for order in orders)


def test_same_seed_same_lines() -> None:
    outputs = []
    for _ in range(2):
        writer = EsWriter(START, seed=3)
        writer.command("sudo pfctl -d", shell=interactive_shell(writer))
        outputs.append(writer.lines())
    assert outputs[0] == outputs[1]


def test_other_seed_other_lines() -> None:
    outputs = []
    for seed in (3, 4):
        writer = EsWriter(START, seed=seed)
        writer.command("sudo pfctl -d", shell=interactive_shell(writer))
        outputs.append(writer.lines())
    assert outputs[0] != outputs[1]


def test_first_event_at_start_time(writer: EsWriter) -> None:
    writer.spawn("/usr/bin/true")
    assert messages(writer)[0]["time"] == "2026-03-02T09:30:00.000000000Z"


def test_aware_datetime_start() -> None:
    from datetime import UTC, datetime

    writer = EsWriter(datetime(2026, 3, 2, 9, 30, tzinfo=UTC))
    writer.spawn("/usr/bin/true")
    assert messages(writer)[0]["time"].startswith("2026-03-02T09:30:00.")


def test_naive_start_rejected() -> None:
    with pytest.raises(ValueError, match="time zone"):
        EsWriter("2026-03-02T09:30:00")


# Clock and sequence numbers ---------------------------------------------------------------------


def test_time_and_mach_time_grow(writer: EsWriter, shell: SynthProcess) -> None:
    writer.command("launchctl list", shell=shell)
    all_messages = messages(writer)
    times = [message["time"] for message in all_messages]
    mach_times = [message["mach_time"] for message in all_messages]
    assert times == sorted(times)
    assert len(set(times)) == len(times)
    assert mach_times == sorted(mach_times)


def test_advance_moves_clock(writer: EsWriter) -> None:
    writer.spawn("/usr/bin/true")
    writer.advance(60)
    writer.spawn("/usr/bin/true")
    first, _, third, _ = messages(writer)
    assert first["time"].startswith("2026-03-02T09:30:00.")
    assert third["time"].startswith("2026-03-02T09:31:00.")
    # 60 s at 24 MHz, plus the per-event step of a few milliseconds.
    assert 60 * 24_000_000 < third["mach_time"] - first["mach_time"] < 61 * 24_000_000


def test_advance_rejects_negative(writer: EsWriter) -> None:
    with pytest.raises(ValueError, match="backwards"):
        writer.advance(-1)


def test_sequence_numbers_gapless(writer: EsWriter, shell: SynthProcess) -> None:
    writer.command("sudo launchctl unload /Library/LaunchDaemons/a.plist > /tmp/log", shell=shell)
    all_messages = messages(writer)
    assert [m["global_seq_num"] for m in all_messages] == list(range(len(all_messages)))
    for event_type in {m["event_type"] for m in all_messages}:
        numbers = [m["seq_num"] for m in all_messages if m["event_type"] == event_type]
        assert numbers == list(range(len(numbers)))


def test_drop_leaves_gap(writer: EsWriter) -> None:
    writer.spawn("/usr/bin/true", keep=False)
    writer.drop("exec", 5)
    writer.spawn("/usr/bin/true", keep=False)
    execs = of_kind(writer, "exec")
    assert [m["seq_num"] for m in execs] == [0, 6]
    all_messages = messages(writer)
    gaps = [b["global_seq_num"] - a["global_seq_num"] for a, b in itertools.pairwise(all_messages)]
    assert gaps.count(6) == 1


def test_drop_rejects_unknown_kind(writer: EsWriter) -> None:
    with pytest.raises(ValueError, match="unknown event kind"):
        writer.drop("teleport")


# Processes ----------------------------------------------------------------------------------------


def test_spawn_writes_fork_then_exec(writer: EsWriter) -> None:
    writer.spawn("/usr/bin/true")
    assert [kind_of(m) for m in messages(writer)] == ["fork", "exec"]


def test_exec_keeps_pid_bumps_pidversion(writer: EsWriter) -> None:
    child = writer.spawn("/usr/sbin/spctl", ["spctl", "--status"])
    fork, exec_message = messages(writer)
    forked = fork["event"]["fork"]["child"]
    target = exec_message["event"]["exec"]["target"]
    assert pid_of(exec_message["process"]) == pid_of(forked)
    assert pidversion_of(exec_message["process"]) == pidversion_of(forked)
    assert pid_of(target) == pid_of(forked)
    assert pidversion_of(target) == pidversion_of(forked) + 1
    assert child.pidversion == pidversion_of(target)


def test_exec_method_replaces_image(writer: EsWriter) -> None:
    proc = writer.spawn("/usr/bin/env", ["env", "python3"])
    before = proc.pidversion
    writer.exec(proc, "/usr/bin/python3", ["python3"])
    payload = exec_of(writer, proc)
    assert payload["target"]["executable"]["path"] == "/usr/bin/python3"
    assert proc.pid == pid_of(payload["target"])
    assert proc.pidversion == before + 1


def test_fork_child_parent_token_is_parent(writer: EsWriter, shell: SynthProcess) -> None:
    child = writer.spawn("/bin/ls", ["ls"], parent=shell)
    fork = [m for m in of_kind(writer, "fork") if pid_of(m["event"]["fork"]["child"]) == child.pid]
    forked = fork[0]["event"]["fork"]["child"]
    assert forked["parent_audit_token"] == fork[0]["process"]["audit_token"]
    assert forked["ppid"] == shell.pid
    assert forked["original_ppid"] == shell.pid
    assert pid_of(fork[0]["process"]) == shell.pid


def test_launchd_children_lead_their_session(writer: EsWriter) -> None:
    child = daemon(writer)
    target = exec_of(writer, child)["target"]
    assert target["group_id"] == child.pid
    assert target["session_id"] == child.pid
    assert target["responsible_audit_token"] == target["audit_token"]
    assert token_field(target["audit_token"], "auid") == 4294967295


def test_platform_binary_defaults(writer: EsWriter) -> None:
    proc = writer.spawn("/usr/sbin/spctl", ["spctl"])
    target = exec_of(writer, proc)["target"]
    assert target["is_platform_binary"] is True
    assert target["team_id"] is None
    assert target["signing_id"] == "com.apple.spctl"


def test_bundle_signing_id_for_apple_apps(writer: EsWriter) -> None:
    proc = writer.spawn("/System/Library/CoreServices/Finder.app/Contents/MacOS/Finder")
    assert proc.signing_id == "com.apple.Finder"


def test_third_party_signing(writer: EsWriter) -> None:
    proc = daemon(writer)
    target = exec_of(writer, proc)["target"]
    assert target["is_platform_binary"] is False
    assert target["team_id"] == FALCON_TEAM
    assert target["signing_id"] == "com.crowdstrike.falcond"
    assert target["is_es_client"] is True


def test_unsigned_binary_gets_ad_hoc_identity(writer: EsWriter) -> None:
    proc = writer.spawn("/private/tmp/net-tool")
    assert proc.platform_binary is False
    assert proc.team_id is None
    assert re.fullmatch(r"net_tool-[0-9a-f]{16}", proc.signing_id or "")


def test_platform_binary_with_team_rejected(writer: EsWriter) -> None:
    with pytest.raises(ValueError, match="no team ID"):
        writer.spawn("/usr/bin/true", team_id=FALCON_TEAM)


def test_tty_inherited_from_parent(writer: EsWriter, shell: SynthProcess) -> None:
    child = writer.spawn("/usr/bin/top", ["top"], parent=shell)
    target = exec_of(writer, child)["target"]
    assert child.tty == shell.tty
    assert target["tty"]["path"] == shell.tty
    assert set(target["tty"]["stat"]) == STAT_KEYS
    assert target["tty"]["stat"]["st_mode"] == 0o20620


def test_uid_inherited_from_parent(writer: EsWriter, shell: SynthProcess) -> None:
    child = writer.spawn("/usr/bin/top", ["top"], parent=shell)
    assert child.uid == 501


def test_setuid_image_runs_as_root(writer: EsWriter, shell: SynthProcess) -> None:
    sudo = writer.spawn("/usr/bin/sudo", ["sudo", "-v"], parent=shell)
    token = exec_of(writer, sudo)["target"]["audit_token"]
    assert token["euid"] == 0
    assert token["ruid"] == 501
    assert token["auid"] == 501


def test_keep_false_exits_right_away(writer: EsWriter) -> None:
    proc = writer.spawn("/usr/bin/true", keep=False)
    assert proc.exited
    assert [kind_of(m) for m in messages(writer)] == ["fork", "exec", "exit"]


def test_via_xpcproxy_adds_exec(writer: EsWriter) -> None:
    proc = writer.spawn("/Library/CS/falcond", team_id=FALCON_TEAM, via_xpcproxy=True)
    execs = of_kind(writer, "exec")
    assert [m["event"]["exec"]["target"]["executable"]["path"] for m in execs] == [
        "/usr/libexec/xpcproxy",
        "/Library/CS/falcond",
    ]
    assert all(pid_of(m["event"]["exec"]["target"]) == proc.pid for m in execs)


def test_exit_status_is_raw_wait_status(writer: EsWriter) -> None:
    target = daemon(writer)
    writer.exit(target, 9)
    assert of_kind(writer, "exit")[0]["event"] == {"exit": {"stat": 9}}


def test_exit_reparents_children_to_launchd(writer: EsWriter, shell: SynthProcess) -> None:
    parent = writer.spawn("/bin/sh", ["sh", "run.sh"], parent=shell)
    child = writer.spawn("/bin/sleep", ["sleep", "100"], parent=parent)
    writer.exit(parent)
    writer.signal(shell, child, 15)
    target = of_kind(writer, "signal")[0]["event"]["signal"]["target"]
    assert target["ppid"] == 1
    assert target["original_ppid"] == parent.pid
    assert pid_of({"audit_token": target["parent_audit_token"]}) == 1


def test_events_of_exited_process_rejected(writer: EsWriter) -> None:
    proc = writer.spawn("/usr/bin/true", keep=False)
    with pytest.raises(ValueError, match="has exited"):
        writer.open(proc, "/tmp/x", FREAD)


def test_launchd_cannot_exit(writer: EsWriter) -> None:
    with pytest.raises(ValueError, match="launchd"):
        writer.exit(writer.launchd)


def test_already_running_writes_nothing(writer: EsWriter) -> None:
    proc = writer.already_running("/Library/CS/falcond", team_id=FALCON_TEAM)
    assert writer.lines() == []
    assert proc.pid < 1000
    writer.signal(writer.launchd, proc, 15)
    target = of_kind(writer, "signal")[0]["event"]["signal"]["target"]
    assert target["start_time"] < "2026-03-02T09:30:00"


def test_pid_reuse_skips_live_pids(writer: EsWriter) -> None:
    pids = {writer.spawn("/usr/bin/true").pid for _ in range(50)}
    assert len(pids) == 50


def test_interactive_shell_lineage(writer: EsWriter, shell: SynthProcess) -> None:
    login = shell.parent
    assert login is not None
    terminal = login.parent
    assert terminal is not None
    assert terminal.path.endswith("Terminal.app/Contents/MacOS/Terminal")
    assert terminal.parent is writer.launchd
    assert login.path == "/usr/bin/login"
    assert shell.path == "/bin/zsh"
    assert shell.args == ["-zsh"]
    assert shell.uid == 501
    assert shell.tty is not None
    assert shell.tty.startswith("/dev/ttys")
    assert shell.session_id == login.pid
    assert shell.group_id == shell.pid


def test_interactive_shell_exit_ends_login(writer: EsWriter, shell: SynthProcess) -> None:
    login = shell.parent
    assert login is not None
    writer.exit(shell)
    assert login.exited
    exits = [pid_of(m["process"]) for m in of_kind(writer, "exit")]
    assert exits == [shell.pid, login.pid]


def test_terminal_is_responsible(writer: EsWriter, shell: SynthProcess) -> None:
    login = shell.parent
    assert login is not None
    terminal = login.parent
    assert terminal is not None
    child = writer.spawn("/bin/ls", ["ls"], parent=shell)
    target = exec_of(writer, child)["target"]
    assert pid_of({"audit_token": target["responsible_audit_token"]}) == terminal.pid


# Process and file events ----------------------------------------------------------------------


def test_signal_payload_version_9(writer: EsWriter, shell: SynthProcess) -> None:
    target = daemon(writer)
    writer.signal(shell, target, 9)
    payload = of_kind(writer, "signal")[0]["event"]["signal"]
    assert set(payload) == {"sig", "target", "instigator"}
    assert payload["sig"] == 9
    assert pid_of(payload["target"]) == target.pid
    assert payload["instigator"] is None


def test_signal_delegated_instigator(writer: EsWriter, shell: SynthProcess) -> None:
    target = daemon(writer)
    launchctl = writer.spawn("/bin/launchctl", ["launchctl", "kickstart", "-k", "x"], parent=shell)
    writer.signal(writer.launchd, target, 9, instigator=launchctl)
    message = of_kind(writer, "signal")[0]
    assert pid_of(message["process"]) == 1
    assert pid_of(message["event"]["signal"]["instigator"]) == launchctl.pid


def test_signal_version_8_no_instigator() -> None:
    writer = EsWriter(START, version=8, seed=7)
    target = daemon(writer)
    writer.signal(writer.launchd, target, 15)
    assert set(of_kind(writer, "signal")[0]["event"]["signal"]) == {"sig", "target"}


def test_suspend_and_resume(writer: EsWriter, shell: SynthProcess) -> None:
    target = daemon(writer)
    writer.suspend(shell, target)
    writer.resume(shell, target)
    payloads = [m["event"]["proc_suspend_resume"] for m in of_kind(writer, "proc_suspend_resume")]
    assert [p["type"] for p in payloads] == [0, 1]
    assert pid_of(payloads[0]["target"]) == target.pid


def test_get_task(writer: EsWriter, shell: SynthProcess) -> None:
    target = daemon(writer)
    writer.get_task(shell, target)
    payload = of_kind(writer, "get_task")[0]["event"]["get_task"]
    assert payload["type"] == 0
    assert pid_of(payload["target"]) == target.pid


def test_unlink_payload(writer: EsWriter, shell: SynthProcess) -> None:
    writer.unlink(shell, "/Library/LaunchDaemons/com.crowdstrike.falcond.plist")
    payload = of_kind(writer, "unlink")[0]["event"]["unlink"]
    assert payload["target"]["path"] == "/Library/LaunchDaemons/com.crowdstrike.falcond.plist"
    assert payload["parent_dir"]["path"] == "/Library/LaunchDaemons"
    assert payload["parent_dir"]["stat"]["st_mode"] & 0o170000 == 0o040000


def test_rename_to_new_path(writer: EsWriter, shell: SynthProcess) -> None:
    writer.rename(shell, "/Applications/Falcon.app", "/Users/tester/.Trash/Falcon.app")
    payload = of_kind(writer, "rename")[0]["event"]["rename"]
    assert payload["destination_type"] == 1
    assert payload["source"]["path"] == "/Applications/Falcon.app"
    assert payload["destination"]["new_path"]["dir"]["path"] == "/Users/tester/.Trash"
    assert payload["destination"]["new_path"]["filename"] == "Falcon.app"


def test_rename_over_existing_file(writer: EsWriter, shell: SynthProcess) -> None:
    writer.rename(shell, "/tmp/hosts.new", "/private/etc/hosts", overwrite=True)
    payload = of_kind(writer, "rename")[0]["event"]["rename"]
    assert payload["destination_type"] == 0
    assert payload["destination"]["existing_file"]["path"] == "/private/etc/hosts"


def test_open_write_close_truncate(writer: EsWriter, shell: SynthProcess) -> None:
    writer.open(shell, "/private/etc/pf.conf", FWRITE | O_TRUNC)
    writer.write(shell, "/private/etc/pf.conf")
    writer.truncate(shell, "/private/etc/pf.conf")
    writer.close(shell, "/private/etc/pf.conf", modified=True)
    open_payload = of_kind(writer, "open")[0]["event"]["open"]
    assert open_payload["fflag"] == 0x402
    assert open_payload["file"]["path"] == "/private/etc/pf.conf"
    assert of_kind(writer, "write")[0]["event"]["write"]["target"]["path"] == "/private/etc/pf.conf"
    assert of_kind(writer, "truncate")[0]["event"]["truncate"]["target"]["path"] == (
        "/private/etc/pf.conf"
    )
    assert of_kind(writer, "close")[0]["event"]["close"]["modified"] is True


def test_create_reports_existing_file(writer: EsWriter, shell: SynthProcess) -> None:
    writer.create(shell, "/Library/LaunchDaemons/evil.plist")
    payload = of_kind(writer, "create")[0]["event"]["create"]
    assert payload["destination_type"] == 0
    assert payload["destination"]["existing_file"]["path"] == "/Library/LaunchDaemons/evil.plist"


def test_setmode_setflags_setextattr(writer: EsWriter, shell: SynthProcess) -> None:
    path = "/Applications/Falcon.app"
    writer.setmode(shell, path, 0o644)
    writer.setflags(shell, path, 0x2)
    writer.setextattr(shell, path, "com.apple.quarantine")
    assert of_kind(writer, "setmode")[0]["event"]["setmode"]["mode"] == 0o644
    assert of_kind(writer, "setflags")[0]["event"]["setflags"]["flags"] == 0x2
    extattr = of_kind(writer, "setextattr")[0]["event"]["setextattr"]
    assert extattr["extattr"] == "com.apple.quarantine"
    assert extattr["target"]["path"] == path


def test_kextunload_payload(writer: EsWriter, shell: SynthProcess) -> None:
    writer.kextunload(shell, "com.apple.iokit.EndpointSecurity")
    message = of_kind(writer, "kextunload")[0]
    assert message["event"] == {"kextunload": {"identifier": "com.apple.iokit.EndpointSecurity"}}
    assert pid_of(message["process"]) == shell.pid


def test_btm_remove_payload(writer: EsWriter, shell: SynthProcess) -> None:
    plist = "/Library/LaunchDaemons/com.crowdstrike.falcond.plist"
    writer.btm_remove(shell, plist, item_type=4)
    message = of_kind(writer, "btm_launch_item_remove")[0]
    payload = message["event"]["btm_launch_item_remove"]
    assert message["process"]["executable"]["path"].endswith("backgroundtaskmanagementd")
    assert pid_of(payload["instigator"]) == shell.pid
    assert payload["instigator_token"] == payload["instigator"]["audit_token"]
    assert payload["app"] is None
    assert payload["item"]["item_url"] == "file://" + plist
    assert payload["item"]["item_type"] == 4
    assert payload["item"]["legacy"] is True
    assert payload["item"]["uid"] == 0


def test_btm_item_url_is_percent_encoded(writer: EsWriter, shell: SynthProcess) -> None:
    writer.btm_remove(shell, "/Library/LaunchAgents/My Agent.plist", item_type=3)
    item = of_kind(writer, "btm_launch_item_remove")[0]["event"]["btm_launch_item_remove"]["item"]
    assert item["item_url"] == "file:///Library/LaunchAgents/My%20Agent.plist"


def test_profile_remove_payload(writer: EsWriter, shell: SynthProcess) -> None:
    writer.profile_remove(shell, "com.example.falcon.sysext", "Falcon system extension")
    payload = of_kind(writer, "profile_remove")[0]["event"]["profile_remove"]
    profile = payload["profile"]
    assert pid_of(payload["instigator"]) == shell.pid
    assert profile["identifier"] == "com.example.falcon.sysext"
    assert profile["display_name"] == "Falcon system extension"
    assert re.fullmatch(r"[0-9A-F-]{36}", profile["uuid"])
    assert set(profile) == {
        "identifier",
        "uuid",
        "install_source",
        "organization",
        "display_name",
        "scope",
    }


def test_tcc_modify_payload(writer: EsWriter, shell: SynthProcess) -> None:
    writer.tcc_modify(shell, "kTCCServiceSystemPolicyAllFiles", "com.crowdstrike.falcon.Agent")
    message = of_kind(writer, "tcc_modify")[0]
    payload = message["event"]["tcc_modify"]
    assert message["process"]["executable"]["path"].endswith("/tccd")
    assert set(payload) == {
        "service",
        "identity",
        "identity_type",
        "update_type",
        "instigator_token",
        "instigator",
        "responsible_token",
        "responsible",
        "right",
        "reason",
    }
    assert payload["service"] == "kTCCServiceSystemPolicyAllFiles"
    assert payload["identity"] == "com.crowdstrike.falcon.Agent"
    assert payload["identity_type"] == 0
    assert payload["right"] == 0
    assert pid_of(payload["instigator"]) == shell.pid


def test_tcc_modify_needs_version_9() -> None:
    writer = EsWriter(START, version=8, seed=7)
    with pytest.raises(ValueError, match="version 9"):
        writer.tcc_modify(writer.launchd, "kTCCServiceSystemPolicyAllFiles", "com.example")


def test_noise_spreads_over_one_second(writer: EsWriter, shell: SynthProcess) -> None:
    writer.noise(shell, 500, kind="open")
    opens = of_kind(writer, "open")
    assert len(opens) == 500
    assert opens[0]["time"][:19] == "2026-03-02T09:30:00"
    assert opens[-1]["time"] < "2026-03-02T09:30:02"
    assert all(pid_of(m["process"]) == shell.pid for m in opens)


def test_noise_kinds(writer: EsWriter, shell: SynthProcess) -> None:
    for kind in ("close", "write", "stat", "create", "unlink"):
        writer.noise(shell, 3, kind=kind)
        assert len(of_kind(writer, kind)) == 3


def test_noise_rejects_unknown_kind(writer: EsWriter, shell: SynthProcess) -> None:
    with pytest.raises(ValueError, match="unsupported noise kind"):
        writer.noise(shell, 3, kind="fork")


# Command replay -----------------------------------------------------------------------------------


def test_command_plain(writer: EsWriter, shell: SynthProcess) -> None:
    (proc,) = writer.command("launchctl unload /Library/LaunchDaemons/x.plist", shell=shell)
    payload = exec_of(writer, proc)
    assert proc.path == "/bin/launchctl"
    assert proc.parent is shell
    assert payload["args"] == ["launchctl", "unload", "/Library/LaunchDaemons/x.plist"]
    assert proc.exited


def test_command_sudo_chain(writer: EsWriter, shell: SynthProcess) -> None:
    sudo, launchctl = writer.command("sudo launchctl bootout system/com.example", shell=shell)
    assert sudo.path == "/usr/bin/sudo"
    assert sudo.parent is shell
    assert launchctl.parent is sudo
    assert launchctl.path == "/bin/launchctl"
    assert exec_of(writer, launchctl)["args"] == ["launchctl", "bootout", "system/com.example"]
    sudo_token = exec_of(writer, sudo)["target"]["audit_token"]
    assert sudo_token["euid"] == 0
    assert sudo_token["ruid"] == 501
    child_token = exec_of(writer, launchctl)["target"]["audit_token"]
    assert child_token["euid"] == 0
    assert child_token["ruid"] == 0
    assert child_token["auid"] == 501


def test_command_sudo_user_option(writer: EsWriter, shell: SynthProcess) -> None:
    writer.add_user("svc", 620)
    _, child = writer.command("sudo -u svc id", shell=shell)
    assert child.uid == 620


def test_command_exits_inner_before_outer(writer: EsWriter, shell: SynthProcess) -> None:
    sudo, child = writer.command("sudo pfctl -d", shell=shell)
    exits = [pid_of(m["process"]) for m in of_kind(writer, "exit")]
    assert exits == [child.pid, sudo.pid]


def test_command_pipeline_siblings(writer: EsWriter, shell: SynthProcess) -> None:
    ps, grep = writer.command("ps aux | grep falcond", shell=shell)
    assert ps.parent is shell
    assert grep.parent is shell
    assert ps.group_id == ps.pid
    assert grep.group_id == ps.pid
    assert exec_of(writer, grep)["args"] == ["grep", "falcond"]


def test_command_sequence_and_conditional(writer: EsWriter, shell: SynthProcess) -> None:
    procs = writer.command("launchctl list; csrutil status && spctl --status", shell=shell)
    assert [p.name for p in procs] == ["launchctl", "csrutil", "spctl"]


def test_command_or_skips_right_side(writer: EsWriter, shell: SynthProcess) -> None:
    procs = writer.command("launchctl stop com.x || killall falcond", shell=shell)
    assert [p.name for p in procs] == ["launchctl"]


def test_command_redirect_truncate(writer: EsWriter, shell: SynthProcess) -> None:
    (cat,) = writer.command("cat /dev/null > /var/log/system.log", shell=shell)
    message = of_kind(writer, "open")[0]
    assert message["event"]["open"]["fflag"] == FWRITE | O_CREAT | O_TRUNC
    assert message["event"]["open"]["file"]["path"] == "/var/log/system.log"
    # The forked child opens the file before its exec, so it still runs the shell's image.
    assert pid_of(message["process"]) == cat.pid
    assert message["process"]["executable"]["path"] == "/bin/zsh"
    close = of_kind(writer, "close")[0]
    assert close["event"]["close"]["modified"] is True
    assert pid_of(close["process"]) == cat.pid


def test_command_redirect_append(writer: EsWriter, shell: SynthProcess) -> None:
    writer.command("echo 'set +o history' >> ~/.bashrc", shell=shell)
    payload = of_kind(writer, "open")[0]["event"]["open"]
    assert payload["fflag"] == FWRITE | O_CREAT | O_APPEND
    assert payload["file"]["path"] == "/Users/tester/.bashrc"


def test_command_redirect_stderr_and_dup(writer: EsWriter, shell: SynthProcess) -> None:
    writer.command("launchctl unload x.plist 2>/dev/null >&2 2>&1", shell=shell)
    opens = of_kind(writer, "open")
    assert [m["event"]["open"]["file"]["path"] for m in opens] == ["/dev/null"]


def test_sudo_redirect_opened_by_user(writer: EsWriter, shell: SynthProcess) -> None:
    sudo, _ = writer.command("sudo echo '' > /var/log/system.log", shell=shell)
    message = of_kind(writer, "open")[0]
    assert pid_of(message["process"]) == sudo.pid
    assert message["process"]["audit_token"]["euid"] == 501


def test_command_builtin_in_pipeline_redirect(writer: EsWriter, shell: SynthProcess) -> None:
    procs = writer.command("sudo log -f /var/log/system.log | : > /var/log/system.log", shell=shell)
    message = of_kind(writer, "open")[0]
    assert [p.name for p in procs] == ["sudo", "log"]
    assert pid_of(message["process"]) not in {shell.pid, *(p.pid for p in procs)}
    assert message["event"]["open"]["file"]["path"] == "/var/log/system.log"


def test_command_sh_c(writer: EsWriter, shell: SynthProcess) -> None:
    sh, kill = writer.command("sh -c 'kill -9 311'", shell=shell)
    assert sh.path == "/bin/sh"
    assert exec_of(writer, sh)["args"] == ["sh", "-c", "kill -9 311"]
    assert kill.parent is sh
    assert kill.path == "/bin/kill"
    assert exec_of(writer, kill)["args"] == ["kill", "-9", "311"]


def test_kill_writes_only_exec(writer: EsWriter, shell: SynthProcess) -> None:
    target = daemon(writer)
    writer.command(f"kill -9 {target.pid}", shell=shell)
    assert of_kind(writer, "signal") == []
    assert not target.exited


def test_sh_c_redirect_by_child(writer: EsWriter, shell: SynthProcess) -> None:
    sh, echo = writer.command('bash -c "echo 1 > /tmp/flag"', shell=shell)
    message = of_kind(writer, "open")[0]
    assert pid_of(message["process"]) == echo.pid
    assert message["process"]["executable"]["path"] == "/bin/bash"
    assert echo.parent is sh


def test_command_su_c(writer: EsWriter, shell: SynthProcess) -> None:
    sudo, su, plutil = writer.command(
        'sudo su root -c "plutil -replace passiveMode -bool true wdav.plist"', shell=shell
    )
    assert su.parent is sudo
    assert plutil.parent is su
    assert plutil.uid == 0
    assert exec_of(writer, plutil)["args"] == [
        "plutil",
        "-replace",
        "passiveMode",
        "-bool",
        "true",
        "wdav.plist",
    ]


def test_command_id_substitution(writer: EsWriter, shell: SynthProcess) -> None:
    (launchctl,) = writer.command(
        "launchctl bootout gui/$(id -u)/com.crowdstrike.falcon.UserAgent", shell=shell
    )
    args = exec_of(writer, launchctl)["args"]
    assert args == ["launchctl", "bootout", "gui/501/com.crowdstrike.falcon.UserAgent"]
    id_execs = [m for m in of_kind(writer, "exec") if m["event"]["exec"]["args"] == ["id", "-u"]]
    assert len(id_execs) == 1


def test_id_substitution_under_sudo(writer: EsWriter, shell: SynthProcess) -> None:
    procs = writer.command("sudo sh -c 'launchctl print gui/$(id -u)'", shell=shell)
    assert exec_of(writer, procs[-1])["args"] == ["launchctl", "print", "gui/0"]


def test_double_quotes_expand_outside(writer: EsWriter, shell: SynthProcess) -> None:
    procs = writer.command('sudo sh -c "launchctl print gui/$(id -u)"', shell=shell)
    assert exec_of(writer, procs[-1])["args"] == ["launchctl", "print", "gui/501"]


def test_command_variables(writer: EsWriter, shell: SynthProcess) -> None:
    (proc,) = writer.command(
        'launchctl bootout "gui/$UID/$LABEL" ${HOME}/x', shell=shell, env={"LABEL": "com.x"}
    )
    assert exec_of(writer, proc)["args"] == [
        "launchctl",
        "bootout",
        "gui/501/com.x",
        "/Users/tester/x",
    ]


def test_command_single_quotes_keep_dollar(writer: EsWriter, shell: SynthProcess) -> None:
    (proc,) = writer.command("echo '$HOME'", shell=shell)
    assert exec_of(writer, proc)["args"] == ["echo", "$HOME"]


def test_prefix_assignment_in_env(writer: EsWriter, shell: SynthProcess) -> None:
    (proc,) = writer.command("DYLD_INSERT_LIBRARIES=/tmp/x.dylib ls", shell=shell)
    payload = exec_of(writer, proc)
    assert payload["env"] == ["DYLD_INSERT_LIBRARIES=/tmp/x.dylib"]
    assert payload["args"] == ["ls"]


def test_empty_unquoted_words_dropped(writer: EsWriter, shell: SynthProcess) -> None:
    (proc,) = writer.command('$SUDO launchctl list ""', shell=shell)
    assert exec_of(writer, proc)["args"] == ["launchctl", "list", ""]


def test_command_export_persists_in_shell(writer: EsWriter, shell: SynthProcess) -> None:
    assert writer.command("export TARGET=falcond", shell=shell) == []
    (proc,) = writer.command("pkill $TARGET", shell=shell)
    assert exec_of(writer, proc)["args"] == ["pkill", "falcond"]


def test_command_cd_changes_cwd(writer: EsWriter, shell: SynthProcess) -> None:
    (proc,) = writer.command("cd /Library/LaunchDaemons && rm ./com.x.plist", shell=shell)
    payload = exec_of(writer, proc)
    assert payload["cwd"]["path"] == "/Library/LaunchDaemons"
    assert shell.cwd == "/Library/LaunchDaemons"


def test_command_source_opens_file(writer: EsWriter, shell: SynthProcess) -> None:
    assert writer.command(". ~/.bashrc", shell=shell) == []
    message = of_kind(writer, "open")[0]
    assert pid_of(message["process"]) == shell.pid
    assert message["event"]["open"]["fflag"] == FREAD


def test_command_env_execs_in_place(writer: EsWriter, shell: SynthProcess) -> None:
    (proc,) = writer.command("env FOO=1 launchctl list", shell=shell)
    assert proc.path == "/bin/launchctl"
    payload = exec_of(writer, proc)
    assert payload["env"] == ["FOO=1"]


def test_command_absolute_path_not_platform(writer: EsWriter, shell: SynthProcess) -> None:
    (proc,) = writer.command("/tmp/spctl spctl --master-disable", shell=shell)
    assert proc.path == "/tmp/spctl"
    assert proc.platform_binary is False
    assert exec_of(writer, proc)["args"] == ["/tmp/spctl", "spctl", "--master-disable"]


def test_relative_path_from_cwd(writer: EsWriter, shell: SynthProcess) -> None:
    (proc,) = writer.command("./Downloads/run", shell=shell)
    assert proc.path == "/Users/tester/Downloads/run"


def test_command_tool_locations(writer: EsWriter, shell: SynthProcess) -> None:
    expected = {
        "kill": "/bin/kill",
        "killall": "/usr/bin/killall",
        "pkill": "/usr/bin/pkill",
        "kextunload": "/sbin/kextunload",
        "kmutil": "/usr/bin/kmutil",
        "systemextensionsctl": "/usr/bin/systemextensionsctl",
        "spctl": "/usr/sbin/spctl",
        "pfctl": "/sbin/pfctl",
        "csrutil": "/usr/bin/csrutil",
        "socketfilterfw": "/usr/libexec/ApplicationFirewall/socketfilterfw",
        "tccutil": "/usr/bin/tccutil",
        "rm": "/bin/rm",
        "xattr": "/usr/bin/xattr",
        "profiles": "/usr/bin/profiles",
    }
    for name, path in expected.items():
        (proc,) = writer.command(f"{name} x", shell=shell)
        assert proc.path == path


def test_command_vendor_tool_team(writer: EsWriter, shell: SynthProcess) -> None:
    _, mdatp = writer.command(
        "sudo mdatp config real-time-protection --value disabled", shell=shell
    )
    assert mdatp.path == "/usr/local/bin/mdatp"
    assert mdatp.team_id == "UBF8T346G9"


def test_command_vendor_folder_team(writer: EsWriter, shell: SynthProcess) -> None:
    (santa,) = writer.command(
        "/Applications/Santa.app/Contents/MacOS/Santa --unload-system-extension", shell=shell
    )
    assert santa.team_id == "ZMCG7MLDV9"
    assert santa.platform_binary is False
    (impostor,) = writer.command("/Applications/Santa2.app/Contents/MacOS/Santa", shell=shell)
    assert impostor.team_id is None


def test_command_unknown_tool_in_usr_local_bin(writer: EsWriter, shell: SynthProcess) -> None:
    (proc,) = writer.command("sentinelctl unload -a", shell=shell)
    assert proc.path == "/usr/local/bin/sentinelctl"
    assert proc.platform_binary is False


def test_command_keep_leaves_running(writer: EsWriter, shell: SynthProcess) -> None:
    procs = writer.command("sudo caffeinate", shell=shell, keep=True)
    assert all(not p.exited for p in procs)
    assert of_kind(writer, "exit") == []


def test_command_sudo_s_stays_open(writer: EsWriter, shell: SynthProcess) -> None:
    sudo, root_shell = writer.command("sudo -s", shell=shell)
    assert not sudo.exited
    assert not root_shell.exited
    assert root_shell.uid == 0
    assert root_shell.parent is sudo
    (rm,) = writer.command("rm /Library/LaunchDaemons/com.x.plist", shell=root_shell)
    assert rm.parent is root_shell
    assert rm.uid == 0


def test_command_exit_closes_sudo_shell(writer: EsWriter, shell: SynthProcess) -> None:
    sudo, root_shell = writer.command("sudo -s", shell=shell)
    writer.command("exit", shell=root_shell)
    assert root_shell.exited
    assert sudo.exited
    exits = [pid_of(m["process"]) for m in of_kind(writer, "exit")]
    assert exits == [root_shell.pid, sudo.pid]


def test_command_su_without_c_opens_shell(writer: EsWriter, shell: SynthProcess) -> None:
    su, user_shell = writer.command("su -", shell=shell)
    assert not user_shell.exited
    assert user_shell.parent is su
    assert user_shell.cwd == "/var/root"


def test_command_comment_and_escapes(writer: EsWriter, shell: SynthProcess) -> None:
    (proc,) = writer.command(
        r"rm -rf /Applications/Microsoft\ Defender.app  # remove it", shell=shell
    )
    assert exec_of(writer, proc)["args"] == ["rm", "-rf", "/Applications/Microsoft Defender.app"]


def test_command_find_exec_terminator(writer: EsWriter, shell: SynthProcess) -> None:
    (find,) = writer.command(r"find /Library -name '*x*' -exec launchctl load {} \;", shell=shell)
    assert exec_of(writer, find)["args"][-1] == ";"


def test_command_unsupported_substitution(writer: EsWriter, shell: SynthProcess) -> None:
    with pytest.raises(ValueError, match="unsupported command substitution"):
        writer.command("kill $(pgrep falcond)", shell=shell)


def test_command_unterminated_quote(writer: EsWriter, shell: SynthProcess) -> None:
    with pytest.raises(ValueError, match="unterminated"):
        writer.command("echo 'oops", shell=shell)


def test_command_trailing_pipe(writer: EsWriter, shell: SynthProcess) -> None:
    with pytest.raises(ValueError, match="missing command"):
        writer.command("ps aux |", shell=shell)


def test_command_on_exited_shell(writer: EsWriter, shell: SynthProcess) -> None:
    writer.exit(shell)
    with pytest.raises(ValueError, match="has exited"):
        writer.command("ls", shell=shell)


# Vendor shape -------------------------------------------------------------------------------------


@pytest.fixture
def vendor() -> EsWriter:
    return EsWriter(START, version=7, vendor_shape=True, host="lab-mac-07", seed=7)


def test_vendor_needs_host() -> None:
    with pytest.raises(ValueError, match="host"):
        EsWriter(START, vendor_shape=True)


def test_vendor_top_level_keys(vendor: EsWriter) -> None:
    vendor.command("sudo launchctl list", shell=interactive_shell(vendor))
    for message in messages(vendor):
        assert set(message) == VENDOR_TOP_KEYS


def test_vendor_host_and_metadata(vendor: EsWriter) -> None:
    vendor.spawn("/usr/bin/true")
    message = messages(vendor)[0]
    assert message["host"]["hostname"] == "lab-mac-07"
    assert set(message["host"]) == {
        "hostname",
        "ips",
        "os",
        "protectVersion",
        "provisioningUDID",
        "serial",
    }
    assert message["metadata"]["vendor"] == "Jamf"
    assert message["deadline"] == 0


def test_vendor_sequence_field_name(vendor: EsWriter) -> None:
    vendor.spawn("/usr/bin/true")
    assert [m["glob_seq_num"] for m in messages(vendor)] == [0, 1]


def test_vendor_time_and_escaping(vendor: EsWriter) -> None:
    vendor.spawn("/usr/bin/true")
    line = vendor.lines()[0]
    message = json.loads(line)
    assert "\\/" not in line
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", message["time"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", message["process"]["start_time"])


def test_vendor_keys_sorted(vendor: EsWriter) -> None:
    vendor.spawn("/usr/bin/true")
    message = messages(vendor)[0]
    assert list(message) == sorted(message)


def test_vendor_process_details(vendor: EsWriter) -> None:
    proc = vendor.spawn("/usr/bin/true")
    target = exec_of(vendor, proc)["target"]
    assert re.fullmatch(r"[0-9a-f]{40}", target["cdhash"])
    assert set(target["audit_token"]) == TOKEN_KEYS | {"uuid"}
    assert "team_id" not in target
    assert "tty" not in target
    assert set(target) | {"team_id", "tty"} == PROCESS_KEYS


def test_vendor_thread_has_uuid(vendor: EsWriter) -> None:
    vendor.spawn("/usr/bin/true")
    assert set(messages(vendor)[0]["thread"]) == {"thread_id", "uuid"}


# Files --------------------------------------------------------------------------------------------


def test_write_to_round_trip(tmp_path: Path, writer: EsWriter, shell: SynthProcess) -> None:
    writer.command("sudo kextunload -b com.example.driver", shell=shell)
    capture = tmp_path / "eslogger.ndjson"
    writer.write_to(capture)
    text = capture.read_text(encoding="utf-8")
    assert text.endswith("\n")
    assert text.splitlines() == writer.lines()


# Real samples -------------------------------------------------------------------------------------

REAL_CORPUS = os.environ.get("TAMPERWATCH_REAL_CORPUS")
needs_corpus = pytest.mark.skipif(
    REAL_CORPUS is None,
    reason="TAMPERWATCH_REAL_CORPUS is not set; it points at the folder of real samples",
)


def _real_lines(folder: str) -> list[dict[str, Any]]:
    assert REAL_CORPUS is not None
    files = sorted(Path(REAL_CORPUS, folder).glob("*.ndjson"))
    assert files, f"no *.ndjson under {REAL_CORPUS}/{folder}"
    return [
        json.loads(line)
        for file in files
        for line in file.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]


def _synthetic_messages(version: int, vendor_shape: bool = False) -> list[dict[str, Any]]:
    writer = EsWriter(START, version=version, vendor_shape=vendor_shape, host="lab-mac-07", seed=11)
    shell = interactive_shell(writer)
    writer.command("sudo launchctl unload /Library/LaunchDaemons/com.example.plist", shell=shell)
    return messages(writer)


@needs_corpus
def test_real_eslogger_keys_match() -> None:
    for real in _real_lines("eslogger"):
        kind = kind_of(real)
        synthetic = next(m for m in _synthetic_messages(real["version"]) if kind_of(m) == kind)
        assert set(synthetic) == set(real)
        assert set(synthetic["process"]) == set(real["process"])
        assert set(synthetic["process"]["executable"]) == set(real["process"]["executable"])
        real_stat = real["process"]["executable"]["stat"]
        assert set(synthetic["process"]["executable"]["stat"]) == set(real_stat)
        assert set(synthetic["event"][kind]) == set(real["event"][kind])


@needs_corpus
def test_real_eslogger_token_shapes_match() -> None:
    for real in _real_lines("eslogger"):
        synthetic = _synthetic_messages(real["version"])[0]
        real_token = real["process"]["audit_token"]
        synthetic_token = synthetic["process"]["audit_token"]
        assert type(synthetic_token) is type(real_token)
        if isinstance(real_token, dict):
            assert set(synthetic_token) == set(real_token)
        else:
            assert len(synthetic_token) == len(real_token)


@needs_corpus
def test_real_jamf_protect_keys_match() -> None:
    optional = {"tty", "team_id", "sha1", "sha256"}
    for real in _real_lines("jamf_protect"):
        synthetic = _synthetic_messages(real["version"], vendor_shape=True)[0]
        assert set(synthetic) == set(real)
        assert set(synthetic["process"]) - optional == set(real["process"]) - optional
        assert set(synthetic["process"]["audit_token"]) == set(real["process"]["audit_token"])
        assert set(synthetic["host"]) == set(real["host"])
        assert set(synthetic["thread"]) == set(real["thread"])
        assert set(synthetic["process"]["executable"]) - optional == (
            set(real["process"]["executable"]) - optional
        )


def test_pid_space_exhaustion_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(synth, "PID_MAX", 1_000)
    writer = EsWriter("2026-11-22T08:00:00Z", seed=8)
    shell = writer.spawn("/bin/zsh", ["-zsh"])
    with pytest.raises(ValueError, match="no free pid"):
        for _ in range(1_000):
            writer.spawn("/tmp/storm", ["storm"], parent=shell)
    assert len({process.pid for process in writer._live.values()}) == len(writer._live)
