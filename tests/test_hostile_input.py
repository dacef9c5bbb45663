"""Named cases of hostile and broken input for every reader.

Each case puts one bad record (or line) between good records of a small valid file and checks
what the reader made of it: used, skipped with a located warning, or kept as a note. Every case
also checks the counting contract and that the good records around the bad one are used.
docs/robustness.md lists the outcomes.
"""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest

from reader_samples import (
    CHECKINS_CSV,
    CHECKINS_JSON,
    CRASH_TEXT,
    ESLOGGER,
    IPS,
    LAUNCHCTL_LIST,
    LAUNCHCTL_PRINT,
    LINE_SAMPLES,
    OSQUERY,
    RECORDS,
    SAMPLES,
    SYSEXT,
    UNIFIED_NDJSON,
    UNIFIED_TEXT,
    Sample,
    checkin_csv_row,
    checkin_object,
    crash_text_report,
    es_exec,
    eslogger_line,
    ips_parts,
    ips_report,
    launchctl_list_row,
    launchctl_print_block,
    located_problems,
    log_record,
    osquery_process_row,
    read_bytes,
    render_ips,
    sysext_row,
    unified_text_row,
    used_indexes,
)
from tamperwatch.config import build_inventory, load_config
from tamperwatch.model import Event
from tamperwatch.readers import READERS, detect
from tamperwatch.readers.base import (
    MAX_COUNTED_KINDS,
    MAX_LINE_BYTES,
    OTHER_KINDS,
    FileStats,
    ReadContext,
    Reader,
)
from tamperwatch.scan import scan

# Terminal escape sequences and HTML in one string, as a hostile process could name itself.
HOSTILE = "\x1b[31m\x1b]0;owned\x07<script>alert('tw')</script>"
# Number of the extra record that each case adds; the samples' own records are 0 to 4.
EXTRA = 9
TEN_MB = 10 * 1024 * 1024
SEVENTEEN_MB = 17 * 1024 * 1024
# 100 000 nested arrays: far past msgspec's recursion limit and Python's stack.
DEEP = "[" * 100_000 + "]" * 100_000

JSON_SAMPLES = (ESLOGGER, OSQUERY, UNIFIED_NDJSON, CHECKINS_JSON)
TEXT_SAMPLES = tuple(sample for sample in LINE_SAMPLES if sample not in JSON_SAMPLES)


def sample_id(sample: Sample) -> str:
    return sample.name


def reader_id(reader: Reader) -> str:
    return reader.description


@dataclass
class Outcome:
    """What a reader made of a file with one bad record at ``line``."""

    data: bytes
    events: list[Event]
    stats: FileStats
    line: int

    def at_line(self) -> list[Event]:
        return [event for event in self.events if event.evidence.line == self.line]

    def message_before(self) -> str:
        """Return the message of the event on the line before the bad record."""
        (event,) = [event for event in self.events if event.evidence.line == self.line - 1]
        assert event.message is not None
        return event.message

    def warnings_at_line(self) -> list[str]:
        return [warning.message for warning in self.stats.warnings if warning.line == self.line]


def assert_accounted(outcome: Outcome) -> None:
    stats = outcome.stats
    assert stats.used == len(outcome.events)
    assert stats.read == stats.used + sum(stats.skipped.values())
    assert located_problems(stats, outcome.data) == []


def insert(sample: Sample, bad: bytes, position: int = 2) -> tuple[bytes, int]:
    """Return the sample with ``bad`` placed before record ``position``, and its first line."""
    records = (*sample.records[:position], bad, *sample.records[position:])
    line = sample.header.count(b"\n") + sum(r.count(b"\n") for r in records[:position]) + 1
    return sample.data(records), line


def read_checked(sample: Sample, data: bytes, line: int) -> Outcome:
    """Read a file made by :func:`insert`; check the contract and that every good record was
    used."""
    events, stats = read_bytes(sample.reader, data, sample.file_name)
    outcome = Outcome(data, events, stats, line)
    assert_accounted(outcome)
    assert set(range(RECORDS)) <= used_indexes(sample, events)
    return outcome


def read_between(sample: Sample, bad: bytes, position: int = 2) -> Outcome:
    return read_checked(sample, *insert(sample, bad, position))


def read_traced(sample: Sample, bad: bytes) -> tuple[Outcome, int]:
    """Read like :func:`read_between`; also return the peak of Python heap memory in bytes
    while reading, not counting the file's own bytes."""
    data, line = insert(sample, bad)
    tracemalloc.start()
    try:
        outcome = read_checked(sample, data, line)
        return outcome, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def assert_skipped(outcome: Outcome, reason: str) -> None:
    """Check that the bad record was counted as skipped for ``reason`` with a warning."""
    assert outcome.at_line() == []
    assert outcome.stats.read == RECORDS + 1
    assert outcome.stats.skipped == {reason: 1}
    assert any(message.startswith(reason) for message in outcome.warnings_at_line())


def json_record(sample: Sample, edit: Callable[[dict[str, object]], object]) -> bytes:
    """Build the extra record of a JSON sample, changed by ``edit``."""
    value = _json_value(sample)
    edited = edit(value)
    return json.dumps(value if edited is None else edited).encode() + b"\n"


def _json_value(sample: Sample) -> dict[str, object]:
    builders: dict[str, Callable[[], object]] = {
        "eslogger": lambda: es_exec(EXTRA),
        "osquery": lambda: osquery_process_row(EXTRA),
        "unifiedlog-ndjson": lambda: log_record(EXTRA),
        "checkins-json": lambda: checkin_object(EXTRA),
    }
    value = builders[sample.name]()
    assert isinstance(value, dict)
    return value


def text_record(sample: Sample, text: str) -> bytes:
    """Build the extra record of a text sample with ``text`` as its name, label or message."""
    builders: dict[str, Callable[[], bytes]] = {
        "unifiedlog-text": lambda: unified_text_row(EXTRA, message=text),
        "sysextctl": lambda: sysext_row(EXTRA, name=text),
        "launchctl-list": lambda: launchctl_list_row(EXTRA, label=f"com.example.{text}"),
        "launchctl-print": lambda: launchctl_print_block(EXTRA, label=f"com.example.{text}"),
        "checkins-csv": lambda: checkin_csv_row(EXTRA, host=text),
    }
    return builders[sample.name]()


def text_value(sample: Sample, event: Event) -> str | None:
    """Return the field of an event that :func:`text_record` filled."""
    if sample is UNIFIED_TEXT:
        return event.message
    if sample is SYSEXT:
        assert event.state is not None
        return (event.state.detail or "").partition("name: ")[2]
    if sample in (LAUNCHCTL_LIST, LAUNCHCTL_PRINT):
        assert event.state is not None
        return event.state.name.removeprefix("com.example.")
    return event.host


# The field of each JSON sample that a test fills with text and reads back from the event.
JSON_TEXT_FIELDS: dict[str, Callable[[dict[str, Any], str], None]] = {
    "eslogger": lambda v, text: v["event"]["exec"]["target"]["executable"].update(path=text),
    "osquery": lambda v, text: v["columns"].update(name=text),
    "unifiedlog-ndjson": lambda v, text: v.update(eventMessage=text),
    "checkins-json": lambda v, text: v.update(hostname=text),
}
JSON_TEXT_VALUES: dict[str, Callable[[Any], str | None]] = {
    "eslogger": lambda event: event.target.path,
    "osquery": lambda event: event.state.name,
    "unifiedlog-ndjson": lambda event: event.message,
    "checkins-json": lambda event: event.host,
}


def json_text_record(sample: Sample, text: str) -> bytes:
    """Build the extra record of a JSON sample with ``text`` in its used text field."""
    return json_record(sample, lambda value: JSON_TEXT_FIELDS[sample.name](value, text))


def with_member(**members: object) -> Callable[[dict[str, object]], None]:
    """Return an edit that sets members at the top level of a JSON record."""

    def edit(value: dict[str, object]) -> None:
        value.update(members)

    return edit


# --- truncated last line -----------------------------------------------------------------------

# What a reader makes of its last record cut in half, without a newline: a skip reason, or
# None when the cut record is still a valid record and is used.
TRUNCATED_LAST: dict[str, str | None] = {
    "eslogger": "invalid JSON",
    "osquery": "invalid JSON",
    "unifiedlog-ndjson": "invalid JSON",
    "unifiedlog-text": "invalid row",
    "sysextctl": "invalid row",
    "launchctl-list": None,
    "launchctl-print": "truncated block",
    "checkins-csv": "invalid time",
    "checkins-json": "invalid JSON",
}


@pytest.mark.parametrize("sample", LINE_SAMPLES, ids=sample_id)
def test_truncated_last_line(sample: Sample) -> None:
    last = sample.records[-1]
    data, first_line = insert(sample, last[: len(last) // 2], RECORDS - 1)
    data = data.removesuffix(last)

    events, stats = read_bytes(sample.reader, data, sample.file_name)

    outcome = Outcome(data, events, stats, first_line)
    assert_accounted(outcome)
    assert used_indexes(sample, events) >= set(range(RECORDS - 1))
    reason = TRUNCATED_LAST[sample.name]
    assert stats.read == RECORDS
    if reason is None:
        assert not stats.skipped
        assert stats.used == RECORDS
    else:
        assert stats.skipped == {reason: 1}
        assert any(message.startswith(reason) for message in outcome.warnings_at_line())


def test_truncated_print_block_with_state_used() -> None:
    last = LAUNCHCTL_PRINT.records[-1]
    data = LAUNCHCTL_PRINT.data((*LAUNCHCTL_PRINT.records[:-1], last[: last.index(b"\truns")]))

    events, stats = read_bytes(LAUNCHCTL_PRINT.reader, data, LAUNCHCTL_PRINT.file_name)

    assert stats.used == RECORDS
    messages = [warning.message for warning in stats.warnings]
    assert len(messages) == 1
    assert "has no closing brace" in messages[0]
    assert events[-1].state is not None
    assert events[-1].state.pid is None


def test_truncated_ips_report_is_used_with_warning() -> None:
    report = ips_report()
    cut = report[: report.index(b'"threads"')]

    events, stats = read_bytes(IPS.reader, cut, IPS.file_name)

    assert stats.used == 1
    assert events[0].crash is not None
    assert events[0].crash.namespace == "ENDPOINTSECURITY"
    assert [w.message for w in stats.warnings] == [
        "truncated report: the body is not complete JSON"
    ]


# --- invalid UTF-8 and NUL bytes ---------------------------------------------------------------


@pytest.mark.parametrize("sample", JSON_SAMPLES, ids=sample_id)
def test_invalid_utf8_in_ignored_member(sample: Sample) -> None:
    bad = json_record(sample, with_member(tw_note="TWBAD")).replace(b"TWBAD", b"x\xff\xfey")

    outcome = read_between(sample, bad)

    assert len(outcome.at_line()) == 1
    assert outcome.stats.read == RECORDS + 1
    assert not outcome.stats.skipped
    # The check-in reader decodes every member; the others skip members they do not use.
    expected = ["invalid UTF-8 replaced with U+FFFD"] if sample is CHECKINS_JSON else []
    assert outcome.warnings_at_line() == expected


@pytest.mark.parametrize("sample", JSON_SAMPLES, ids=sample_id)
def test_invalid_utf8_in_used_field(sample: Sample) -> None:
    bad = json_text_record(sample, "TWBAD").replace(b"TWBAD", b"tw\xc3(bad")

    outcome = read_between(sample, bad)

    (event,) = outcome.at_line()
    assert JSON_TEXT_VALUES[sample.name](event) == "tw\ufffd(bad"
    assert outcome.warnings_at_line() == ["invalid UTF-8 replaced with U+FFFD"]


@pytest.mark.parametrize("sample", TEXT_SAMPLES, ids=sample_id)
def test_invalid_utf8_in_text_field(sample: Sample) -> None:
    bad = text_record(sample, "twBADname").replace(b"BAD", b"\xff\xfe")

    outcome = read_between(sample, bad)

    (event,) = outcome.at_line()
    assert text_value(sample, event) == "tw\ufffd\ufffdname"
    assert not outcome.stats.skipped


@pytest.mark.parametrize("sample", JSON_SAMPLES, ids=sample_id)
def test_raw_nul_in_json_string_skipped(sample: Sample) -> None:
    bad = json_record(sample, with_member(tw_note="TWBAD")).replace(b"TWBAD", b"a\x00b")

    outcome = read_between(sample, bad)

    assert_skipped(outcome, "invalid JSON")


@pytest.mark.parametrize("sample", JSON_SAMPLES, ids=sample_id)
def test_escaped_nul_in_json_string_kept(sample: Sample) -> None:
    bad = json_text_record(sample, "tw\x00name")
    assert b"\\u0000" in bad

    outcome = read_between(sample, bad)

    (event,) = outcome.at_line()
    assert JSON_TEXT_VALUES[sample.name](event) == "tw\x00name"


@pytest.mark.parametrize("sample", TEXT_SAMPLES, ids=sample_id)
def test_nul_in_text_field_kept(sample: Sample) -> None:
    bad = text_record(sample, "tw\x00name")

    outcome = read_between(sample, bad)

    (event,) = outcome.at_line()
    assert text_value(sample, event) == "tw\x00name"


@pytest.mark.parametrize("sample", [IPS, CRASH_TEXT], ids=sample_id)
def test_crash_report_invalid_utf8(sample: Sample) -> None:
    report = ips_report() if sample is IPS else crash_text_report()
    bad = report.replace(b"/0A1B/", b"/0A\xffB/")

    events, stats = read_bytes(sample.reader, bad, sample.file_name)

    assert stats.used == 1
    assert events[0].process is not None
    assert events[0].process.path is not None
    assert "/0A\ufffdB/" in events[0].process.path


def test_ips_invalid_utf8_warned() -> None:
    bad = ips_report().replace(b"/0A1B/", b"/0A\xffB/")

    _, stats = read_bytes(IPS.reader, bad, IPS.file_name)

    assert [(w.line, w.message) for w in stats.warnings] == [
        (2, "invalid UTF-8 replaced with U+FFFD")
    ]


def test_crash_text_nul_kept() -> None:
    bad = crash_text_report().replace(b"/0A1B/", b"/0A\x00B/")

    events, _ = read_bytes(CRASH_TEXT.reader, bad, CRASH_TEXT.file_name)

    assert events[0].process is not None
    assert events[0].process.path is not None
    assert "/0A\x00B/" in events[0].process.path


def test_ips_escaped_nul_kept() -> None:
    header, body = ips_parts()
    body["procPath"] = "/Library/tw\x00esext"

    events, _ = read_bytes(IPS.reader, render_ips(header, body), IPS.file_name)

    assert events[0].process is not None
    assert events[0].process.path == "/Library/tw\x00esext"


# --- very long lines ---------------------------------------------------------------------------

# What a reader makes of a valid record with a 10 MB name, path or message.
TEN_MB_RECORD: dict[str, str | None] = {
    "eslogger": None,
    "osquery": None,
    "unifiedlog-ndjson": None,
    "unifiedlog-text": None,
    "sysextctl": "line too long",
    "launchctl-list": "line too long",
    "launchctl-print": None,
    "checkins-csv": "invalid CSV row",
    "checkins-json": None,
}


def ten_mb_record(sample: Sample) -> bytes:
    long_text = "p" * TEN_MB
    if sample in JSON_SAMPLES:
        return json_record(sample, with_member(tw_note=long_text))
    if sample is LAUNCHCTL_PRINT:
        return launchctl_print_block(EXTRA, program="/opt/" + long_text)
    return text_record(sample, long_text)


@pytest.mark.parametrize("sample", LINE_SAMPLES, ids=sample_id)
def test_ten_megabyte_record(sample: Sample) -> None:
    outcome, peak = read_traced(sample, ten_mb_record(sample))

    reason = TEN_MB_RECORD[sample.name]
    if reason is None:
        assert len(outcome.at_line()) == 1
    else:
        assert_skipped(outcome, reason)
    if sample is LAUNCHCTL_PRINT:
        # The program line and the argument line that repeats it.
        assert outcome.stats.notes == {"line too long": 2}
    # Reading keeps a few copies of the line at most: its bytes, its text, parts of the text.
    assert peak < 5 * TEN_MB


# What a reader makes of a 10 MB line of bytes that are not a record: a skip reason, or None
# when the reader keeps it as text of its own (message text, ignored output).
TEN_MB_GARBAGE: dict[str, str | None] = {
    "eslogger": "invalid JSON",
    "osquery": "invalid JSON",
    "unifiedlog-ndjson": "invalid JSON",
    "unifiedlog-text": None,
    "sysextctl": "line too long",
    "launchctl-list": "line too long",
    "launchctl-print": None,
    "checkins-csv": "invalid CSV row",
    "checkins-json": "invalid JSON",
}

GARBAGE_BYTES = bytes(value for value in range(256) if value != 10)


@pytest.mark.parametrize("sample", LINE_SAMPLES, ids=sample_id)
def test_ten_megabytes_of_garbage(sample: Sample) -> None:
    garbage = GARBAGE_BYTES * (TEN_MB // len(GARBAGE_BYTES)) + b"\n"

    outcome, peak = read_traced(sample, garbage)

    reason = TEN_MB_GARBAGE[sample.name]
    if reason is not None:
        assert_skipped(outcome, reason)
    assert peak < 5 * TEN_MB


def test_garbage_line_cuts_unified_message() -> None:
    garbage = GARBAGE_BYTES * (TEN_MB // len(GARBAGE_BYTES)) + b"\n"

    outcome = read_between(UNIFIED_TEXT, garbage)

    assert outcome.stats.read == RECORDS
    assert outcome.warnings_at_line() == ["message longer than 65536 bytes; the rest is dropped"]


def test_garbage_line_in_print_is_ignored() -> None:
    garbage = GARBAGE_BYTES * (TEN_MB // len(GARBAGE_BYTES)) + b"\n"

    outcome = read_between(LAUNCHCTL_PRINT, garbage)

    assert outcome.stats.read == RECORDS
    assert outcome.stats.notes == {"line too long": 1}
    assert outcome.warnings_at_line() == ["line longer than 4096 characters ignored"]


@pytest.mark.parametrize("sample", LINE_SAMPLES, ids=sample_id)
def test_line_above_limit_skipped(sample: Sample) -> None:
    line = b"{" + b"x" * (SEVENTEEN_MB - 2) + b"\n"
    assert len(line) > MAX_LINE_BYTES

    outcome, peak = read_traced(sample, line)

    assert_skipped(outcome, "line too long")
    assert outcome.warnings_at_line() == [f"line too long: longer than {MAX_LINE_BYTES} bytes"]
    # The reader keeps one chunk of MAX_LINE_BYTES at a time, never the whole line.
    assert peak < 2 * MAX_LINE_BYTES


# --- deep nesting ------------------------------------------------------------------------------


@pytest.mark.parametrize("sample", JSON_SAMPLES, ids=sample_id)
def test_deeply_nested_member_skipped(sample: Sample) -> None:
    bad = json_record(sample, with_member(tw_note="TWDEEP")).replace(b'"TWDEEP"', DEEP.encode())

    outcome = read_between(sample, bad)

    assert_skipped(outcome, "invalid JSON")
    assert outcome.warnings_at_line() == ["invalid JSON: nested too deeply"]


@pytest.mark.parametrize("sample", JSON_SAMPLES, ids=sample_id)
def test_deeply_nested_line_skipped(sample: Sample) -> None:
    outcome = read_between(sample, DEEP.encode() + b"\n")

    assert_skipped(outcome, "invalid record")


@pytest.mark.parametrize("sample", TEXT_SAMPLES, ids=sample_id)
def test_deeply_nested_text_line_counted(sample: Sample) -> None:
    outcome = read_between(sample, DEEP.encode() + b"\n")

    assert outcome.at_line() == []


def test_deeply_nested_ips_body() -> None:
    header, body = ips_parts()
    report = render_ips(header, body).replace(b'"EXC_CRASH"', DEEP.encode())

    events, stats = read_bytes(IPS.reader, report, IPS.file_name)

    assert stats.used == 1
    assert events[0].crash is not None
    assert events[0].crash.namespace == "ENDPOINTSECURITY"
    assert events[0].crash.exception_type is None


def test_deeply_nested_json_sniffed() -> None:
    head = b'{"hostname": "tw-fleet-1", "last_seen": ' + DEEP.encode() + b"}\n"

    assert detect(head) is None


def test_deeply_nested_log_array() -> None:
    records = [log_record(0), {**log_record(1), "tw_note": "TWDEEP"}]
    text = json.dumps(records).replace('"TWDEEP"', DEEP)

    events, stats = read_bytes(UNIFIED_NDJSON.reader, text.encode(), "unified.json")

    assert [event.process.pid for event in events if event.process] == [7100]
    assert stats.skipped == {"invalid JSON": 1}


# --- wrong types and missing fields ------------------------------------------------------------


def status_line(severity: object) -> Callable[[dict[str, object]], None]:
    """Return an edit that turns an osquery result line into a status line."""

    def edit(value: dict[str, object]) -> None:
        del value["columns"]
        value.update(severity=severity, message="Executing scheduled query pack_tw")

    return edit


WRONG_TYPES: list[tuple[Sample, str, Callable[[dict[str, object]], None], str | None]] = [
    (
        ESLOGGER,
        "pid as string",
        lambda v: v["process"]["audit_token"].update(pid="5109"),
        "invalid record",
    ),
    (ESLOGGER, "time as number", with_member(time=1_796_283_674), "invalid record"),
    (
        ESLOGGER,
        "args as object",
        lambda v: v["event"]["exec"].update(args={"0": "launchctl"}),
        "invalid record",
    ),
    (ESLOGGER, "huge event_type", with_member(event_type=10**30), None),
    (ESLOGGER, "negative seq_num", with_member(seq_num=-1), None),
    (
        OSQUERY,
        "pid as object",
        lambda v: v["columns"].update(pid={"value": 1}),
        "invalid record",
    ),
    (
        OSQUERY,
        "pid as text that is no number",
        lambda v: v["columns"].update(pid="six"),
        "invalid record",
    ),
    (OSQUERY, "unixTime as object", with_member(unixTime={"s": 1}), "invalid record"),
    (OSQUERY, "unixTime huge", with_member(unixTime=10**400), "invalid timestamp"),
    (OSQUERY, "unixTime NaN text", with_member(unixTime="NaN"), "invalid timestamp"),
    (OSQUERY, "status severity as superscript digit", status_line("\u00b2"), None),
    (UNIFIED_NDJSON, "pid as string", with_member(processID="7109"), "invalid record"),
    (UNIFIED_NDJSON, "time as number", with_member(timestamp=1_796_283_674), "invalid record"),
    (UNIFIED_NDJSON, "message as object", with_member(eventMessage={"a": 1}), "invalid record"),
    (CHECKINS_JSON, "time as number", with_member(last_seen=1_796_283_674), None),
    (CHECKINS_JSON, "time huge", with_member(last_seen=10**400), "invalid time"),
    (
        CHECKINS_JSON,
        "time in year 9999",
        with_member(last_seen="9999-12-31T23:59:59Z"),
        "invalid time",
    ),
    (CHECKINS_JSON, "host as object", with_member(hostname={"name": "x"}), "invalid record"),
    (CHECKINS_JSON, "status as array", with_member(status=["online"]), "invalid record"),
]


@pytest.mark.parametrize(
    ("sample", "case", "edit", "reason"),
    WRONG_TYPES,
    ids=[f"{sample.name}-{case}" for sample, case, _, _ in WRONG_TYPES],
)
def test_wrong_field_type(
    sample: Sample, case: str, edit: Callable[[dict[str, object]], None], reason: str | None
) -> None:
    outcome = read_between(sample, json_record(sample, edit))

    if reason is None:
        assert len(outcome.at_line()) == 1
        assert not outcome.stats.skipped
    else:
        assert_skipped(outcome, reason)


def test_osquery_calendar_time_year_zero() -> None:
    row = osquery_process_row(EXTRA)
    del row["unixTime"]
    row["calendarTime"] = "Sat Jan  1 00:00:00 0000 UTC"

    outcome = read_between(OSQUERY, json.dumps(row).encode() + b"\n")

    assert_skipped(outcome, "invalid timestamp")


def test_osquery_schedule_huge_last_executed() -> None:
    row = osquery_process_row(EXTRA)
    row["columns"] = {"name": "pack_tw", "executions": "3", "last_executed": str(10**15)}

    outcome = read_between(OSQUERY, json.dumps(row).encode() + b"\n")

    (event,) = outcome.at_line()
    assert event.state is not None
    assert event.state.detail == f"query pack_tw: 3 executions, last at invalid time {10**15}"


def delete(*path: str) -> Callable[[dict[str, object]], None]:
    def edit(value: dict[str, object]) -> None:
        parent: object = value
        for part in path[:-1]:
            parent = parent[part]  # type: ignore[index]
        del parent[path[-1]]  # type: ignore[attr-defined]

    return edit


def without(*keys: str) -> Callable[[dict[str, object]], None]:
    def edit(value: dict[str, object]) -> None:
        for key in keys:
            del value[key]

    return edit


MISSING_FIELDS: list[tuple[Sample, str, Callable[[dict[str, object]], None], str]] = [
    (ESLOGGER, "time", delete("time"), "missing timestamp"),
    (ESLOGGER, "event_type", delete("event_type"), "missing event_type"),
    (
        OSQUERY,
        "unixTime and calendarTime",
        without("unixTime", "calendarTime"),
        "missing timestamp",
    ),
    (OSQUERY, "columns", delete("columns"), "invalid record"),
    (OSQUERY, "pid value", lambda v: v["columns"].update(pid=""), "missing column"),
    (UNIFIED_NDJSON, "timestamp", delete("timestamp"), "missing timestamp"),
    (CHECKINS_JSON, "hostname", delete("hostname"), "missing host"),
    (CHECKINS_JSON, "last_seen", delete("last_seen"), "missing time"),
]


@pytest.mark.parametrize(
    ("sample", "field", "edit", "reason"),
    MISSING_FIELDS,
    ids=[f"{sample.name}-{field}" for sample, field, _, _ in MISSING_FIELDS],
)
def test_missing_json_field(
    sample: Sample, field: str, edit: Callable[[dict[str, object]], None], reason: str
) -> None:
    outcome = read_between(sample, json_record(sample, edit))

    assert_skipped(outcome, reason)


MISSING_TEXT_FIELDS: list[tuple[Sample, bytes, str]] = [
    (
        SYSEXT,
        b"*\t*\tTWLAB12345\tcom.example.tamperlab.ext9 (2.1/210)\tTamper Lab 9\n",
        "invalid row",
    ),
    (LAUNCHCTL_LIST, b"8109\t0\n", "invalid row"),
    (LAUNCHCTL_LIST, b"-\t\tcom.example.tamperlab.job9\n", "invalid row"),
    (CHECKINS_CSV, b"tw-fleet-9,Santa,,online\n", "missing time"),
    (CHECKINS_CSV, b",Santa,2026-12-03T07:41:14Z,online\n", "missing host"),
]


@pytest.mark.parametrize(
    ("sample", "bad", "reason"),
    MISSING_TEXT_FIELDS,
    ids=[f"{sample.name}-{index}" for index, (sample, _, _) in enumerate(MISSING_TEXT_FIELDS)],
)
def test_missing_text_field(sample: Sample, bad: bytes, reason: str) -> None:
    outcome = read_between(sample, bad)

    assert_skipped(outcome, reason)


def test_print_block_without_state_used() -> None:
    block = launchctl_print_block(EXTRA).replace(b"\tstate = running\n", b"")

    outcome = read_between(LAUNCHCTL_PRINT, block)

    (event,) = outcome.at_line()
    assert event.state is not None
    assert event.state.state is None
    assert event.state.pid == 8209


def test_unified_row_without_pid_joins_message() -> None:
    row = unified_text_row(EXTRA).replace(b"7209  ", b"")

    outcome = read_between(UNIFIED_TEXT, row)

    assert outcome.stats.read == RECORDS
    assert "policy check 9 passed" in outcome.message_before()


def test_ips_wrong_types() -> None:
    header, body = ips_parts()
    body["pid"] = "5901"
    body["termination"] = {"namespace": 7, "code": "0x2"}

    events, stats = read_bytes(IPS.reader, render_ips(header, body), IPS.file_name)

    assert stats.used == 1
    assert events[0].process is None
    messages = [warning.message for warning in stats.warnings]
    assert any(m.startswith("invalid field pid ignored") for m in messages)
    assert any(m.startswith("invalid field termination ignored") for m in messages)


def test_ips_header_time_as_number() -> None:
    header, body = ips_parts()
    header["timestamp"] = 1_796_283_666

    _, stats = read_bytes(IPS.reader, render_ips(header, body), IPS.file_name)

    assert stats.skipped == {"invalid record": 1}
    assert stats.warnings[0].line == 1


# --- mixed formats -----------------------------------------------------------------------------

FOREIGN_LINES: dict[str, bytes] = {
    "eslogger": eslogger_line(EXTRA),
    "osquery": json.dumps(osquery_process_row(EXTRA)).encode() + b"\n",
    "unifiedlog-ndjson": json.dumps(log_record(EXTRA)).encode() + b"\n",
    "unifiedlog-text": unified_text_row(EXTRA),
    "crash-text": b"Process:               tamperlab-esext [5902]\n",
    "crash-exception": b"Exception Type:        EXC_CRASH (SIGKILL)\n",
    "launchctl-list": launchctl_list_row(EXTRA),
    "checkins-csv": checkin_csv_row(EXTRA),
    "checkins-json": json.dumps(checkin_object(EXTRA)).encode() + b"\n",
}


def foreign_lines(sample: Sample) -> bytes:
    return b"".join(line for name, line in FOREIGN_LINES.items() if name != sample.name)


@pytest.mark.parametrize("sample", JSON_SAMPLES, ids=sample_id)
def test_mixed_formats_in_json_lines(sample: Sample) -> None:
    foreign = foreign_lines(sample)
    count = foreign.count(b"\n")

    outcome = read_between(sample, foreign)

    assert outcome.stats.used == RECORDS
    assert outcome.stats.read == RECORDS + count
    warned = sorted({warning.line for warning in outcome.stats.warnings})
    assert warned == list(range(outcome.line, outcome.line + count))


def test_mixed_formats_in_eslogger() -> None:
    foreign = foreign_lines(ESLOGGER)

    outcome = read_between(ESLOGGER, foreign)

    assert outcome.stats.skipped == {
        "missing timestamp": 3,
        "invalid JSON": 3,
        "invalid record": 2,
    }


@pytest.mark.parametrize("sample", [LAUNCHCTL_LIST, LAUNCHCTL_PRINT], ids=sample_id)
def test_mixed_formats_in_launchctl_are_counted(sample: Sample) -> None:
    foreign = foreign_lines(sample)
    json_lines = sum(1 for line in foreign.splitlines() if line.startswith(b"{"))

    outcome = read_between(sample, foreign)

    # Records of the JSON formats are skipped with a warning; other lines are stray output.
    assert json_lines == 4
    assert outcome.stats.read == RECORDS + json_lines
    assert outcome.stats.skipped == {"JSON record in a snapshot": json_lines}
    assert outcome.stats.notes == {"other command output": foreign.count(b"\n") - json_lines}


def test_mixed_formats_in_sysext_listing_are_invalid_rows() -> None:
    foreign = foreign_lines(SYSEXT)

    outcome = read_between(SYSEXT, foreign)

    # Inside a listing, a line that ends in "]" or contains a TAB is a broken row. So is any
    # line before the announced number of rows. A JSON object after them is a record of
    # another format, and the other lines are notes.
    assert outcome.stats.skipped == {"invalid row": 5, "JSON record in a snapshot": 1}
    assert outcome.stats.notes == {"other command output": 3}
    count_warning = outcome.stats.warnings[-1]
    assert count_warning.line == 2
    assert "announces 5 extension(s) but 10 rows" in count_warning.message


def test_mixed_formats_in_unified_text_join_message() -> None:
    foreign = foreign_lines(UNIFIED_TEXT)

    outcome = read_between(UNIFIED_TEXT, foreign)

    assert outcome.stats.read == RECORDS
    assert "Exception Type:" in outcome.message_before()


def test_mixed_formats_in_checkins_csv() -> None:
    foreign = foreign_lines(CHECKINS_CSV)
    count = foreign.count(b"\n")

    outcome = read_between(CHECKINS_CSV, foreign)

    assert outcome.stats.read == RECORDS + count
    assert sum(outcome.stats.skipped.values()) == count


def test_stray_quote_in_csv_spares_later_rows() -> None:
    bad = b'tw-fleet-9,Santa,2026-12-03T07:41:14Z,"online\n'

    outcome = read_between(CHECKINS_CSV, bad)

    assert_skipped(outcome, "invalid CSV row")
    assert outcome.warnings_at_line() == [
        "invalid CSV row: a quoted field opened on this line is never closed"
    ]


def test_quoted_field_spanning_lines_kept() -> None:
    good = b'tw-fleet-9,"Santa\nsecond line",2026-12-03T07:41:14Z,online\n'

    outcome = read_between(CHECKINS_CSV, good)

    (event,) = outcome.at_line()
    assert event.state is not None
    assert event.state.name == "Santa\nsecond line"


def test_damaged_first_json_checkin_keeps_format() -> None:
    records = (b"\x00" + CHECKINS_JSON.records[0][1:], *CHECKINS_JSON.records[1:])

    events, stats = read_bytes(CHECKINS_JSON.reader, b"".join(records), CHECKINS_JSON.file_name)

    assert used_indexes(CHECKINS_JSON, events) == {1, 2, 3, 4}
    assert stats.skipped == {"invalid JSON": 1}


# --- line endings, byte-order mark, blank files ------------------------------------------------


@pytest.mark.parametrize("sample", SAMPLES, ids=sample_id)
def test_crlf_line_endings(sample: Sample) -> None:
    data = sample.data().replace(b"\n", b"\r\n")

    events, stats = read_bytes(sample.reader, data, sample.file_name)

    assert stats.used == len(sample.records)
    assert not stats.skipped
    assert stats.warnings == []
    assert b"\\r" not in msgspec.json.encode(events)


@pytest.mark.parametrize("sample", SAMPLES, ids=sample_id)
def test_byte_order_mark(sample: Sample) -> None:
    data = b"\xef\xbb\xbf" + sample.data()

    events, stats = read_bytes(sample.reader, data, sample.file_name)

    assert detect(data) is sample.reader
    assert stats.used == len(sample.records)
    assert not stats.skipped
    assert stats.warnings == []
    assert "\ufeff" not in msgspec.json.encode(events).decode()


def test_byte_order_mark_through_scan(tmp_path: Path) -> None:
    path = tmp_path / "es.ndjson"
    path.write_bytes(b"\xef\xbb\xbf" + ESLOGGER.data())
    config = load_config(None)

    result = scan(
        [str(path)], host="tw-lab-mini-03", config=config, inventory=build_inventory(config)
    )

    (stats,) = result.files
    assert stats.format == "eslogger"
    assert stats.used == RECORDS


@pytest.mark.parametrize("reader", READERS, ids=reader_id)
def test_only_blank_lines(reader: Reader) -> None:
    data = b"\n  \n\t\n\r\n\n"

    events, stats = read_bytes(reader, data)

    assert not reader.sniff(data)
    assert events == []
    if reader in (IPS.reader, CRASH_TEXT.reader):
        assert stats.read == 1
        assert stats.skipped == {"empty report": 1}
        assert [warning.line for warning in stats.warnings] == [0]
    else:
        assert stats.read == 0
        assert stats.warnings == []


# --- hostile names kept as data ----------------------------------------------------------------


@pytest.mark.parametrize("sample", JSON_SAMPLES, ids=sample_id)
def test_hostile_name_kept_in_json(sample: Sample) -> None:
    outcome = read_between(sample, json_text_record(sample, HOSTILE))

    (event,) = outcome.at_line()
    assert JSON_TEXT_VALUES[sample.name](event) == HOSTILE


def test_hostile_image_path_in_unified_json() -> None:
    record = json_record(UNIFIED_NDJSON, with_member(processImagePath="/opt/" + HOSTILE))

    outcome = read_between(UNIFIED_NDJSON, record)

    (event,) = outcome.at_line()
    assert event.process is not None
    assert event.process.path == "/opt/" + HOSTILE
    # The process name is the last path component, so it stops after the "/" of "</script>".
    assert event.process.name == "script>"


@pytest.mark.parametrize("sample", TEXT_SAMPLES, ids=sample_id)
def test_hostile_name_kept_in_text(sample: Sample) -> None:
    outcome = read_between(sample, text_record(sample, HOSTILE))

    (event,) = outcome.at_line()
    assert text_value(sample, event) == HOSTILE


def test_hostile_process_path_in_print() -> None:
    block = launchctl_print_block(EXTRA, program="/tmp/" + HOSTILE)

    outcome = read_between(LAUNCHCTL_PRINT, block)

    (event,) = outcome.at_line()
    assert event.path == "/tmp/" + HOSTILE


def test_hostile_process_in_unified_text() -> None:
    row = unified_text_row(EXTRA, process=HOSTILE)

    outcome = read_between(UNIFIED_TEXT, row)

    (event,) = outcome.at_line()
    assert event.process is not None
    assert event.process.name == HOSTILE


@pytest.mark.parametrize("sample", [IPS, CRASH_TEXT], ids=sample_id)
def test_hostile_name_kept_in_crash_report(sample: Sample) -> None:
    build = ips_report if sample is IPS else crash_text_report
    report = build(process=HOSTILE)

    events, stats = read_bytes(sample.reader, report, sample.file_name)

    assert stats.used == 1
    assert events[0].crash is not None
    assert events[0].crash.process_name == HOSTILE


# --- a whole scan ------------------------------------------------------------------------------


def test_scan_of_hostile_files(tmp_path: Path) -> None:
    folder = tmp_path / "tw-lab-mini-03"
    folder.mkdir()
    for sample in LINE_SAMPLES:
        bad = (
            json_record(sample, with_member(tw_note=HOSTILE))
            if sample in JSON_SAMPLES
            else (text_record(sample, HOSTILE))
        )
        for number, inserted in enumerate((bad, foreign_lines(sample), DEEP.encode() + b"\n")):
            data, _ = insert(sample, inserted)
            (folder / f"{number}-{sample.file_name}").write_bytes(data)
    (folder / "hostile.ips").write_bytes(ips_report(process=HOSTILE))
    config = load_config(None)

    result = scan([str(tmp_path)], config=config, inventory=build_inventory(config))

    assert len(result.files) == 3 * len(LINE_SAMPLES) + 1
    for stats in result.files:
        assert stats.format is not None, stats.file
        assert stats.read == stats.used + sum(stats.skipped.values())
        assert stats.used >= 1


def test_distinct_skip_reasons_are_bounded(tmp_path: Path) -> None:
    stats = FileStats(file=str(tmp_path / "x"))
    context = ReadContext(stats)
    for number in range(MAX_COUNTED_KINDS + 50):
        context.record()
        context.skip(number + 1, f"unknown event type {number}")
        context.note(f"note {number}")
    assert len(stats.skipped) == MAX_COUNTED_KINDS + 1
    assert stats.skipped[OTHER_KINDS] == 50
    assert sum(stats.skipped.values()) == stats.read
    assert stats.notes[OTHER_KINDS] == 50
