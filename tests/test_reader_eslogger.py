"""Tests of the eslogger reader on hand-written lines in both audit-token shapes."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from tamperwatch.readers import detect
from tamperwatch.readers.base import FileStats, ReadContext
from tamperwatch.readers.eslogger import EVENT_NAMES, EsloggerReader


def token(pid: int, pidversion: int, *, array: bool, euid: int = 0) -> object:
    if array:
        return [4294967295, euid, 0, euid, 0, pid, 100011, pidversion]
    return {
        "auid": 4294967295,
        "euid": euid,
        "egid": 0,
        "ruid": euid,
        "rgid": 0,
        "pid": pid,
        "asid": 100011,
        "pidversion": pidversion,
    }


def process(
    pid: int,
    pidversion: int,
    path: str,
    *,
    array: bool = False,
    team: str | None = None,
    ppid: int = 1,
    parent_version: int = 1000,
    tty: bool = False,
) -> dict[str, object]:
    return {
        "audit_token": token(pid, pidversion, array=array),
        "parent_audit_token": token(ppid, parent_version, array=array),
        "responsible_audit_token": token(pid, pidversion, array=array),
        "ppid": ppid,
        "original_ppid": ppid,
        "group_id": pid,
        "session_id": 321,
        "codesigning_flags": 570522385,
        "cdhash": "0123456789ABCDEF0123456789ABCDEF01234567",
        "signing_id": "com.example.tool" if team else "com.apple." + path.rsplit("/", 1)[-1],
        "team_id": team,
        "is_platform_binary": team is None,
        "is_es_client": False,
        "start_time": "2026-11-20T09:00:00.000000Z",
        "tty": {"path": "/dev/ttys004", "path_truncated": False} if tty else None,
        "executable": {"path": path, "path_truncated": False},
    }


def message(
    event_type: int,
    name: str,
    payload: dict[str, object],
    proc: dict[str, object],
    *,
    seq: int = 1,
    gseq: int = 1,
    time: str = "2026-11-20T09:15:30.123456789Z",
    version: int = 9,
) -> dict[str, object]:
    return {
        "schema_version": 1,
        "version": version,
        "time": time,
        "mach_time": 99887766554433,
        "seq_num": seq,
        "global_seq_num": gseq,
        "event_type": event_type,
        "action_type": 1,
        "action": {"result": {"result_type": 0, "result": {"auth": 0}}},
        "thread": {"thread_id": 4242},
        "process": proc,
        "event": {name: payload},
    }


def eslogger_line(obj: dict[str, object]) -> bytes:
    # eslogger escapes "/" as "\/" in every string, like NSJSONSerialization.
    return json.dumps(obj).replace("/", "\\/").encode() + b"\n"


def read_lines(lines: list[bytes]) -> tuple[list, FileStats]:  # type: ignore[type-arg]
    stats = FileStats(file="capture.ndjson")
    events = list(EsloggerReader().read(io.BytesIO(b"".join(lines)), ReadContext(stats)))
    return events, stats


def test_event_table_covers_all_values() -> None:
    assert EVENT_NAMES[9] == "exec"
    assert EVENT_NAMES[31] == "signal"
    assert EVENT_NAMES[147] == "tcc_modify"
    assert EVENT_NAMES[148] == "reserved_0"
    assert len(EVENT_NAMES) == 162


def test_exec_with_object_tokens() -> None:
    shell = process(812, 5001, "/bin/zsh", tty=True)
    target = process(812, 5002, "/bin/launchctl", tty=True)
    payload = {"target": target, "args": ["launchctl", "bootout", "system/com.example.agent"]}
    events, stats = read_lines([eslogger_line(message(9, "exec", payload, shell))])
    assert stats.read == 1
    assert stats.used == 1
    event = events[0]
    assert event.kind == "exec"
    assert event.process.path == "/bin/zsh"
    assert event.process.tty is True
    assert event.target.pidversion == 5002
    assert event.target.path == "/bin/launchctl"
    assert event.target.args == ["launchctl", "bootout", "system/com.example.agent"]
    assert event.time == pytest.approx(1795166130.123457, abs=1e-5)


def test_fork_with_array_tokens() -> None:
    parent = process(
        440, 77, "/Applications/Example.app/Contents/MacOS/Example", array=True, team="ABCDE12345"
    )
    child = process(
        441,
        78,
        "/Applications/Example.app/Contents/MacOS/Example",
        array=True,
        team="ABCDE12345",
        ppid=440,
        parent_version=77,
    )
    line = eslogger_line(message(11, "fork", {"child": child}, parent, version=10))
    events, stats = read_lines([line])
    assert stats.used == 1
    assert events[0].target.pid == 441
    assert events[0].target.ppid == 440
    assert events[0].target.parent_pidversion == 77
    assert events[0].process.team_id == "ABCDE12345"


def test_signal_exit_and_file_events() -> None:
    killer = process(900, 9, "/bin/kill", tty=True)
    victim = process(300, 3, "/usr/local/bin/exampled", team="ABCDE12345")
    lines = [
        eslogger_line(
            message(31, "signal", {"sig": 9, "target": victim, "instigator": killer}, killer)
        ),
        eslogger_line(message(15, "exit", {"stat": 9}, victim, seq=1, gseq=2)),
        eslogger_line(
            message(
                32,
                "unlink",
                {
                    "target": {"path": "/Library/LaunchDaemons/com.example.plist"},
                    "parent_dir": {"path": "/Library/LaunchDaemons"},
                },
                killer,
                seq=1,
                gseq=3,
            )
        ),
        eslogger_line(
            message(
                25,
                "rename",
                {
                    "source": {"path": "/Applications/Example.app"},
                    "destination_type": 1,
                    "destination": {
                        "new_path": {
                            "dir": {"path": "/Users/someone/.Trash"},
                            "filename": "Example.app",
                        }
                    },
                },
                killer,
                seq=1,
                gseq=4,
            )
        ),
        eslogger_line(
            message(
                10,
                "open",
                {"fflag": 0x602, "file": {"path": "/var/log/system.log"}},
                killer,
                seq=1,
                gseq=5,
            )
        ),
    ]
    events, stats = read_lines(lines)
    assert stats.used == 5
    signal, exit_, unlink, rename, opened = events
    assert signal.signal == 9
    assert signal.target.path == "/usr/local/bin/exampled"
    assert exit_.status == 9
    assert unlink.path == "/Library/LaunchDaemons/com.example.plist"
    assert rename.path == "/Applications/Example.app"
    assert rename.dest_path == "/Users/someone/.Trash/Example.app"
    assert opened.flags == 0x602


def test_unknown_event_type_is_counted_not_fatal() -> None:
    proc = process(10, 1, "/usr/libexec/exampled")
    lines = [
        eslogger_line(message(190, "future_event", {}, proc)),
        eslogger_line(message(15, "exit", {"stat": 0}, proc, gseq=2)),
    ]
    events, stats = read_lines(lines)
    assert [e.kind for e in events] == ["unknown", "exit"]
    assert stats.notes["unknown event type 190"] == 1


def test_bad_lines_are_located_and_good_lines_kept() -> None:
    proc = process(10, 1, "/usr/libexec/exampled")
    good = eslogger_line(message(15, "exit", {"stat": 0}, proc))
    no_time = message(15, "exit", {"stat": 0}, proc)
    del no_time["time"]
    wrong_type = message(15, "exit", {"stat": 0}, proc)
    wrong_type["event_type"] = "fifteen"
    lines = [
        good,
        b"{not json\n",
        eslogger_line(no_time),
        eslogger_line(wrong_type),
        good,
        good[: len(good) // 2],
    ]
    events, stats = read_lines(lines)
    assert len(events) == 2
    assert stats.read == 6
    assert stats.skipped["invalid JSON"] == 2
    assert stats.skipped["missing timestamp"] == 1
    assert stats.skipped["invalid record"] == 1
    assert [w.line for w in stats.warnings] == [2, 3, 4, 6]


def test_vendor_variant_reads_host_and_glob_seq() -> None:
    proc = process(
        388, 869, "/System/Library/CoreServices/loginwindow.app/Contents/MacOS/loginwindow"
    )
    vendor = message(116, "lw_session_lock", {"graphical_session_id": 257, "username": "kim"}, proc)
    vendor["time"] = "2026-11-20T09:15:30.555Z"
    vendor["glob_seq_num"] = vendor.pop("global_seq_num")
    vendor["host"] = {"hostname": "studio-mac-04", "os": "Version 15.1 (Build 24B83)"}
    vendor["metadata"] = {"product": "Device Telemetry Stream", "vendor": "Jamf"}
    line = json.dumps(vendor).encode() + b"\n"
    assert detect(line) is not None
    assert detect(line).name == "eslogger"  # type: ignore[union-attr]
    events, _ = read_lines([line])
    assert events[0].host == "studio-mac-04"
    assert events[0].global_seq_num == 1
    assert events[0].kind == "lw_session_lock"


def test_sniff_rejects_other_json() -> None:
    assert not EsloggerReader().sniff(
        b'{"timestamp":"2026-01-01 10:00:00.000000+0000","eventMessage":"x"}\n'
    )
    assert not EsloggerReader().sniff(b"Process: exampled [12]\n")


@pytest.mark.skipif(
    "TAMPERWATCH_REAL_CORPUS" not in os.environ,
    reason="TAMPERWATCH_REAL_CORPUS is not set; it points at the folder of real public samples",
)
@pytest.mark.parametrize("folder", ["eslogger", "jamf_protect"])
def test_real_samples(folder: str) -> None:
    root = Path(os.environ["TAMPERWATCH_REAL_CORPUS"]) / folder
    samples = sorted(root.glob("*.ndjson"))
    assert samples, f"no samples in {root}"
    for sample in samples:
        stats = FileStats(file=str(sample))
        with sample.open("rb") as source:
            events = list(EsloggerReader().read(source, ReadContext(stats)))
        assert events, sample
        assert stats.used == stats.read, (sample, stats.skipped)
        assert all(event.process is not None for event in events)


def test_btm_remove_takes_the_instigator_as_actor() -> None:
    daemon = process(
        150,
        2,
        "/System/Library/PrivateFrameworks/BackgroundTaskManagement.framework/Resources/backgroundtaskmanagementd",
    )
    remover = process(990, 12, "/private/tmp/remover", team=None)
    remover["is_platform_binary"] = False
    payload = {
        "instigator": remover,
        "app": None,
        "item": {
            "item_type": 2,
            "legacy": True,
            "managed": False,
            "uid": 0,
            "item_url": "file:///Library/LaunchDaemons/com.example.agent%20helper.plist",
            "app_url": None,
        },
    }
    events, _ = read_lines([eslogger_line(message(125, "btm_launch_item_remove", payload, daemon))])
    assert events[0].process.path == "/private/tmp/remover"
    assert events[0].path == "/Library/LaunchDaemons/com.example.agent helper.plist"


def test_record_without_body_or_process_is_warned(tmp_path: Path) -> None:
    record = {
        "time": "2026-11-22T08:00:00.000000000Z",
        "event_type": 31,
        "global_seq_num": 4,
        "seq_num": 2,
    }
    path = tmp_path / "es.ndjson"
    path.write_text(json.dumps(record) + "\n")
    stats = FileStats(file=str(path))
    with path.open("rb") as source:
        events = list(EsloggerReader().read(source, ReadContext(stats)))
    assert len(events) == 1
    messages = [warning.message for warning in stats.warnings]
    assert "signal record without its event body: used for timing only" in messages
    assert "signal record without its process" in messages
    assert all(warning.line == 1 for warning in stats.warnings)
