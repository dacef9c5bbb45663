"""Tests of the unified-log readers on hand-written exports in every style they accept."""

from __future__ import annotations

import io
import json
import os
import re
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tamperwatch.model import Event
from tamperwatch.readers.base import SNIFF_BYTES, FileStats, ReadContext, Reader
from tamperwatch.readers.unifiedlog import (
    END_MARKER_NOTE,
    MAX_TEXT_MESSAGE_BYTES,
    UnifiedLogNdjsonReader,
    UnifiedLogTextReader,
)

NDJSON = UnifiedLogNdjsonReader()
TEXT = UnifiedLogTextReader()


def epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def run(reader: Reader, path: Path, host: str | None = None) -> tuple[list[Event], FileStats]:
    stats = FileStats(str(path))
    with path.open("rb") as source:
        events = list(reader.read(source, ReadContext(stats, host=host)))
    return events, stats


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def log_object(
    message: str,
    *,
    timestamp: str = "2026-11-20 09:15:30.123456+0100",
    pid: int = 4242,
    image: str = "/Library/Application Support/Northwind/edragent",
    subsystem: str = "com.northwind.edr",
    category: str = "agent",
    user_id: int | None = 0,
) -> dict[str, object]:
    record: dict[str, object] = {
        "timezoneName": "",
        "messageType": "Default",
        "eventType": "logEvent",
        "source": None,
        "formatString": "%{public}s",
        "activityIdentifier": 0,
        "subsystem": subsystem,
        "category": category,
        "threadID": 918273,
        "senderImageUUID": "1B2C3D4E-0000-4000-8000-00000000A1B2",
        "backtrace": {"frames": [{"imageOffset": 4096, "imageUUID": "1B2C3D4E"}]},
        "bootUUID": "",
        "processImagePath": image,
        "senderImagePath": image,
        "timestamp": timestamp,
        "machTimestamp": 771122334455,
        "eventMessage": message,
        "processImageUUID": "1B2C3D4E-0000-4000-8000-00000000A1B2",
        "traceID": 9876543210123,
        "processID": pid,
        "senderProgramCounter": 4096,
        "parentActivityIdentifier": 0,
    }
    if user_id is not None:
        record["userID"] = user_id
    return record


def ndjson_line(record: dict[str, object]) -> str:
    # log writes "/" as "\/", like NSJSONSerialization.
    return json.dumps(record, separators=(",", ":")).replace("/", "\\/")


# --- ndjson ------------------------------------------------------------------------------------


def test_ndjson_banner_events_and_end_marker(tmp_path: Path) -> None:
    lines = [
        'Filtering the log data using "subsystem == \\"com.northwind.edr\\""',
        ndjson_line(log_object("agent started, policy 17")),
        ndjson_line(
            log_object(
                "heartbeat",
                timestamp="2026-11-20 09:15:31.000001+0100",
                subsystem="",
                category="",
                user_id=None,
            )
        ),
        '{"count":2,"finished":1}',
    ]
    path = write(tmp_path, "edr.ndjson", "\n".join(lines) + "\n")

    events, stats = run(NDJSON, path, host="wks-berlin-07")

    assert stats.read == 2
    assert stats.used == 2
    assert not stats.skipped
    assert stats.notes[END_MARKER_NOTE] == 1
    assert stats.warnings == []
    first, second = events
    assert first.kind == "log"
    assert first.time == pytest.approx(epoch("2026-11-20T09:15:30.123456+01:00"))
    assert first.host == "wks-berlin-07"
    assert first.evidence.source == "unifiedlog"
    assert first.evidence.line == 2
    assert first.message == "agent started, policy 17"
    assert first.subsystem == "com.northwind.edr"
    assert first.category == "agent"
    assert first.process is not None
    assert first.process.pid == 4242
    assert first.process.path == "/Library/Application Support/Northwind/edragent"
    assert first.process.name == "edragent"
    assert first.process.euid == 0
    assert second.evidence.line == 3
    assert second.subsystem is None
    assert second.category is None
    assert second.process is not None
    assert second.process.euid is None


def test_ndjson_end_marker_count_mismatch_warns(tmp_path: Path) -> None:
    lines = [
        ndjson_line(log_object("one")),
        ndjson_line(log_object("two")),
        '{"count":5,"finished":1}',
    ]
    path = write(tmp_path, "short.ndjson", "\n".join(lines) + "\n")

    events, stats = run(NDJSON, path)

    assert len(events) == 2
    assert stats.notes[END_MARKER_NOTE] == 1
    assert len(stats.warnings) == 1
    assert stats.warnings[0].line == 3
    assert "counts 5 events" in stats.warnings[0].message


def test_ndjson_truncated_last_line_is_skipped(tmp_path: Path) -> None:
    complete = ndjson_line(log_object("first"))
    cut = ndjson_line(log_object("second"))[:120]
    path = write(tmp_path, "cut.ndjson", complete + "\n" + cut)

    events, stats = run(NDJSON, path)

    assert [event.message for event in events] == ["first"]
    assert stats.read == 2
    assert stats.skipped["invalid JSON"] == 1
    assert stats.warnings[0].line == 2


def test_ndjson_invalid_utf8_is_replaced(tmp_path: Path) -> None:
    line = ndjson_line(log_object("name=PLACEHOLDER")).encode().replace(b"PLACEHOLDER", b"caf\xe9")
    path = write(tmp_path, "latin1.ndjson", line + b"\n")

    events, stats = run(NDJSON, path)

    assert len(events) == 1
    assert events[0].message == "name=caf\ufffd"
    assert stats.used == 1
    assert stats.warnings[0].line == 1
    assert "invalid UTF-8" in stats.warnings[0].message


def test_ndjson_wrong_field_type_is_invalid_record(tmp_path: Path) -> None:
    bad = log_object("typed wrong")
    bad["processID"] = "4242"
    path = write(tmp_path, "typed.ndjson", ndjson_line(bad) + "\n" + ndjson_line(log_object("ok")))

    events, stats = run(NDJSON, path)

    assert [event.message for event in events] == ["ok"]
    assert stats.skipped["invalid record"] == 1
    assert "$.processID" in stats.warnings[0].message


def test_ndjson_missing_and_invalid_timestamps(tmp_path: Path) -> None:
    missing = log_object("no time")
    del missing["timestamp"]
    invalid = log_object("bad time", timestamp="2026-11-20T09:15:30")
    path = write(
        tmp_path, "times.ndjson", ndjson_line(missing) + "\n" + ndjson_line(invalid) + "\n"
    )

    events, stats = run(NDJSON, path)

    assert events == []
    assert stats.read == 2
    assert stats.skipped["missing timestamp"] == 1
    assert stats.skipped["invalid timestamp"] == 1


def test_ndjson_large_trace_id_and_missing_pid(tmp_path: Path) -> None:
    record = log_object("kernel says hi", image="")
    record["traceID"] = 18446744073709551615
    del record["processID"]
    path = write(tmp_path, "trace.ndjson", ndjson_line(record) + "\n")

    events, stats = run(NDJSON, path)

    assert stats.used == 1
    assert events[0].process is None


def test_ndjson_non_json_line_is_invalid_json(tmp_path: Path) -> None:
    path = write(tmp_path, "noise.ndjson", ndjson_line(log_object("a")) + "\nnot json at all\n")

    events, stats = run(NDJSON, path)

    assert len(events) == 1
    assert stats.skipped["invalid JSON"] == 1


def pretty_array(records: list[dict[str, object]]) -> str:
    # --style json prints "key" : value with two-space indents.
    return json.dumps(records, indent=2).replace('": ', '" : ')


def test_json_array_style(tmp_path: Path) -> None:
    text = pretty_array([log_object("first"), log_object("second", pid=515)])
    path = write(tmp_path, "edr.json", text + "\n")

    events, stats = run(NDJSON, path)

    assert stats.read == 2
    assert stats.used == 2
    assert [event.message for event in events] == ["first", "second"]
    assert events[0].evidence.line == 2
    second_start = text.splitlines().index("  {", 2) + 1
    assert events[1].evidence.line == second_start
    assert events[1].process is not None
    assert events[1].process.pid == 515


def test_json_array_cut_off_keeps_complete_objects(tmp_path: Path) -> None:
    text = pretty_array([log_object("kept"), log_object("lost")])
    cut = text[: text.index('"lost"') + 3]
    path = write(tmp_path, "cut.json", cut)

    events, stats = run(NDJSON, path)

    assert [event.message for event in events] == ["kept"]
    assert stats.read == 2
    assert stats.skipped["invalid JSON"] == 1


def test_ndjson_sniff(tmp_path: Path) -> None:
    line = ndjson_line(log_object("x")).encode()
    eslogger_like = b'{"schema_version":1,"event_type":9,"time":"2026-11-20T09:15:30Z"}\n'

    assert NDJSON.sniff(line + b"\n")
    assert NDJSON.sniff(b'Filtering the log data using "x"\n' + line)
    assert NDJSON.sniff(b'{"count":0,"finished":1}\n')
    assert NDJSON.sniff(pretty_array([log_object("x")]).encode())
    assert not NDJSON.sniff(eslogger_like)
    assert not NDJSON.sniff(b"")
    assert not TEXT.sniff(line)


# --- text styles -------------------------------------------------------------------------------

DEFAULT_HEADER = (
    "Timestamp                       Thread     Type        Activity             PID    TTL  "
)


def default_row(time: str, kind: str, pid: int, rest: str) -> str:
    return f"{time} 0x2f1a     {kind:<11} 0x0                  {pid:<6} 0    {rest}"


def test_default_style_with_continuation_lines(tmp_path: Path) -> None:
    lines = [
        'Filtering the log data using "process == \\"edragent\\""',
        DEFAULT_HEADER,
        default_row(
            "2026-11-20 09:15:30.000100+0100",
            "Default",
            4242,
            "edragent: (libxpc.dylib) [com.northwind.edr:agent] policy reload: 3 rules",
        ),
        "rule 1: block /tmp/x",
        "",
        "rule 2: allow /usr/bin/true",
        default_row(
            "2026-11-20 09:15:31.500000+0100", "Error", 4242, "edragent: no subsystem here"
        ),
        default_row(
            "2026-11-20 09:15:32.000000+0100",
            "Info",
            808,
            "Northwind ES: [com.northwind.es:] client ready",
        ),
        "",
    ]
    path = write(tmp_path, "default.txt", "\n".join(lines))

    events, stats = run(TEXT, path)

    assert stats.read == 3
    assert stats.used == 3
    assert stats.warnings == []
    first, second, third = events
    assert first.time == pytest.approx(epoch("2026-11-20T09:15:30.000100+01:00"))
    assert first.evidence.line == 3
    assert first.process is not None
    assert first.process.pid == 4242
    assert first.process.name == "edragent"
    assert first.subsystem == "com.northwind.edr"
    assert first.category == "agent"
    assert (
        first.message
        == "policy reload: 3 rules\nrule 1: block /tmp/x\n\nrule 2: allow /usr/bin/true"
    )
    assert second.message == "no subsystem here"
    assert second.subsystem is None
    assert second.evidence.line == 7
    assert third.process is not None
    assert third.process.name == "Northwind ES"
    assert third.subsystem == "com.northwind.es"
    assert third.category is None
    assert third.message == "client ready"


def test_default_style_summary_footer_is_not_a_message(tmp_path: Path) -> None:
    lines = [
        DEFAULT_HEADER,
        default_row("2026-11-20 09:15:30.000100+0100", "Default", 1, "launchd: last entry"),
        "-" * 116,
        "Log      - Default:          1, Info:                0, Debug:             0, Error:   0",
        "Activity - Create:           0, Transition:          0, Actions:           0",
    ]
    path = write(tmp_path, "footer.txt", "\n".join(lines) + "\n")

    events, stats = run(TEXT, path)

    assert [event.message for event in events] == ["last entry"]
    assert stats.read == 1
    assert stats.notes["end-of-output summary"] == 1


def test_dashed_line_inside_message_is_kept(tmp_path: Path) -> None:
    lines = [
        default_row("2026-11-20 09:15:30.000100+0100", "Default", 4242, "edragent: table"),
        "-" * 30,
        "row one",
    ]
    path = write(tmp_path, "dashes.txt", "\n".join(lines) + "\n")

    events, _ = run(TEXT, path)

    assert events[0].message == "table\n" + "-" * 30 + "\nrow one"


def test_compact_style_with_and_without_offset(tmp_path: Path) -> None:
    lines = [
        "Timestamp               Ty Process[PID:TID]",
        "2026-11-20 09:15:30.250-0500 Df launchd[1:1a2b3c] [system/com.northwind.edr.agent [4242]:]"
        " exited due to SIGKILL | sent by launchctl[5150], ran for 93211ms",
        "2026-11-20 09:15:31.000 E  edragent[4242:9f8e] [com.northwind.edr:agent] lost connection",
        "  to the console",
    ]
    path = write(tmp_path, "compact.txt", "\n".join(lines) + "\n")

    events, stats = run(TEXT, path)

    assert stats.read == 2
    assert stats.used == 1
    assert stats.skipped["timestamp without offset"] == 1
    assert stats.warnings[0].line == 3
    (event,) = events
    assert event.time == pytest.approx(epoch("2026-11-20T09:15:30.250-05:00"))
    assert event.process is not None
    assert event.process.name == "launchd"
    assert event.process.pid == 1
    assert event.subsystem is None
    assert event.message is not None
    assert event.message.startswith("[system/com.northwind.edr.agent [4242]:] exited due to")


def test_console_copy_rows_are_counted_skips(tmp_path: Path) -> None:
    lines = [
        "default\t10:02:03.400500-0800\tsysextd\tattempting to realize extension with identifier "
        "com.northwind.edr.esext",
        "error\t10:02:04.000001-0800\tedragent\tfirst line",
        "second line of the same entry",
        "10:02:05.123456-0800\tedragent\tE edragent: no level column",
    ]
    path = write(tmp_path, "console.tsv", "\n".join(lines) + "\n")

    events, stats = run(TEXT, path)

    assert TEXT.sniff(path.read_bytes())
    assert events == []
    assert stats.read == 3
    assert stats.skipped["no date in Console copy"] == 3


def test_text_invalid_rows_and_orphan_text(tmp_path: Path) -> None:
    lines = [
        DEFAULT_HEADER,
        "text that belongs to no row",
        "more of it",
        "2026-11-20 09:15:29 starts with a date but is no row",
        default_row(
            "2026-13-40 09:15:30.000100+0100", "Default", 4242, "edragent: impossible date"
        ),
        default_row("2026-11-20 09:15:30.000100+0100", "Default", 4242, "edragent: dump follows"),
        "2026-11-20 09:15:31 a logged line inside the message",
    ]
    path = write(tmp_path, "odd.txt", "\n".join(lines) + "\n")

    events, stats = run(TEXT, path)

    assert [event.message for event in events] == [
        "dump follows\n2026-11-20 09:15:31 a logged line inside the message"
    ]
    assert stats.read == 4
    assert stats.skipped["text outside a log entry"] == 1
    assert stats.skipped["invalid row"] == 1
    assert stats.skipped["invalid timestamp"] == 1
    assert stats.warnings[1].line == 4


def test_text_message_is_bounded(tmp_path: Path) -> None:
    filler = "x" * 1000
    lines = [default_row("2026-11-20 09:15:30.000100+0100", "Default", 4242, "edragent: dump")]
    lines += [filler] * 100
    lines.append(default_row("2026-11-20 09:15:31.000100+0100", "Default", 4242, "edragent: next"))
    path = write(tmp_path, "long.txt", "\n".join(lines) + "\n")

    events, stats = run(TEXT, path)

    assert len(events) == 2
    assert events[0].message is not None
    assert MAX_TEXT_MESSAGE_BYTES - 1000 < len(events[0].message) <= MAX_TEXT_MESSAGE_BYTES + 10
    assert events[1].message == "next"
    assert any("longer than" in warning.message for warning in stats.warnings)


def test_text_sniff() -> None:
    row = default_row("2026-11-20 09:15:30.000100+0100", "Default", 4242, "edragent: hi")

    assert TEXT.sniff((DEFAULT_HEADER + "\n").encode())
    assert TEXT.sniff(row.encode())
    assert TEXT.sniff(b"2026-11-20 09:15:31.000 Df edragent[4242:9f8e] hello\n")
    assert TEXT.sniff(b'Filtering the log data using "x"\n' + row.encode())
    assert not TEXT.sniff(b"Process:   edragent [4242]\n")
    assert not TEXT.sniff(b"Nov 20 09:15:30 wks-berlin-07 com.apple.xpc.launchd[1]: hi\n")
    assert not NDJSON.sniff(row.encode())


# --- damaged input -----------------------------------------------------------------------------

DAMAGE_SAMPLES = [
    (
        NDJSON,
        "\n".join(
            [ndjson_line(log_object("a")), ndjson_line(log_object("b")), '{"count":2,"finished":1}']
        ),
    ),
    (NDJSON, pretty_array([log_object("a"), log_object("b")])),
    (
        TEXT,
        "\n".join(
            [
                DEFAULT_HEADER,
                default_row("2026-11-20 09:15:30.000100+0100", "Default", 4242, "edragent: a"),
                "continued",
                "-" * 40,
                "Log      - Default:          1, Info:                0",
            ]
        ),
    ),
]


@settings(max_examples=150, deadline=None)
@given(
    sample=st.sampled_from(DAMAGE_SAMPLES),
    cut=st.floats(min_value=0.0, max_value=1.0),
    noise=st.binary(max_size=12),
)
def test_damaged_input_is_counted_not_raised(
    sample: tuple[Reader, str], cut: float, noise: bytes
) -> None:
    reader, text = sample
    data = text.encode()
    position = int(len(data) * cut)
    damaged = data[:position] + noise + data[position : position + 40]
    stats = FileStats("damaged")

    events = list(reader.read(io.BytesIO(damaged), ReadContext(stats)))

    assert stats.used == len(events)
    assert stats.read == stats.used + sum(stats.skipped.values())


# --- real samples ------------------------------------------------------------------------------

CORPUS_ENV = "TAMPERWATCH_REAL_CORPUS"
# "Aug  1 00:00:03 host process[pid] ...", the system.log layout of macOS 10.15 and earlier.
SYSLOG_LINE = re.compile(rb"[A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2} ")


def corpus_files(folder: str) -> list[Path]:
    root = os.environ.get(CORPUS_ENV)
    if not root:
        pytest.skip(f"{CORPUS_ENV} is not set; point it at a folder of real samples")
    files = sorted(path for path in (Path(root) / folder).iterdir() if path.is_file())
    assert files, f"no files in {Path(root) / folder}"
    return files


def test_real_unified_log_samples() -> None:
    for path in corpus_files("unifiedlog"):
        head = path.read_bytes()[:SNIFF_BYTES]
        readers = [reader for reader in (NDJSON, TEXT) if reader.sniff(head)]
        if SYSLOG_LINE.match(head) or head.startswith(b"(com."):
            # Legacy syslog lines (and fragments of them) carry no year; no reader takes them.
            assert readers == [], path.name
            continue
        assert len(readers) == 1, path.name
        events, stats = run(readers[0], path)
        if "TRUNCATED" in path.name:
            assert stats.warnings, path.name
        elif stats.skipped["no date in Console copy"]:
            assert stats.skipped["no date in Console copy"] == stats.read, path.name
        else:
            assert events, path.name
            assert stats.used == stats.read, path.name
