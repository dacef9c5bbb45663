"""Tests of the check-in reader on hand-written console exports in CSV and JSON lines."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tamperwatch.model import Event
from tamperwatch.readers import checkins
from tamperwatch.readers.base import FileStats, ReadContext
from tamperwatch.readers.checkins import (
    CheckinReader,
    load_settings,
    normalise_name,
    parse_checkin_time,
)

READER = CheckinReader()
UTC_NOTE = "check-in times without a zone read as UTC"


def epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def write(tmp_path: Path, text: str, name: str = "checkins.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def run(
    path: Path, options: dict[str, Any] | None = None, reader: CheckinReader = READER
) -> tuple[list[Event], FileStats]:
    stats = FileStats(str(path))
    context = ReadContext(stats, options={"checkins": options} if options is not None else None)
    with path.open("rb") as source:
        events = list(reader.read(source, context))
    return events, stats


def states(events: list[Event]) -> list[tuple[str | None, str, str | None, bool | None]]:
    return [
        (e.host, e.state.name, e.state.state, e.state.healthy)
        for e in events
        if e.state is not None
    ]


CONSOLE_COLUMNS = {
    "host": "Computer Name",
    "component": "Agent",
    "time": "Last Check-in",
    "status": "Status",
}


# --- CSV -------------------------------------------------------------------------------------


def test_csv_default_columns(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "hostname,agent,last_seen,status\n"
        "mac-ops-031,Northwind EDR,2026-11-20T09:15:30Z,Online\n"
        "mac-ops-032,Northwind EDR,2026-11-20T09:16:05+01:00,OFFLINE\n"
        "mac-ops-033,Northwind EDR,2026-11-20T09:17:00Z,pending\n",
    )
    events, stats = run(path)
    assert states(events) == [
        ("mac-ops-031", "Northwind EDR", "online", True),
        ("mac-ops-032", "Northwind EDR", "offline", False),
        ("mac-ops-033", "Northwind EDR", "pending", None),
    ]
    assert [e.time for e in events] == [
        epoch("2026-11-20T09:15:30+00:00"),
        epoch("2026-11-20T09:16:05+01:00"),
        epoch("2026-11-20T09:17:00+00:00"),
    ]
    assert all(e.kind == "state" for e in events)
    assert all(e.state is not None and e.state.subject == "checkin" for e in events)
    assert [e.evidence.line for e in events] == [2, 3, 4]
    assert {e.evidence.source for e in events} == {"checkins"}
    assert stats.read == 3
    assert stats.used == 3
    assert not stats.notes


def test_csv_configured_columns_and_lists(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "Computer Name,Serial,Agent,Last Check-in,Status\n"
        "Design iMac 4,C02ZX0AAJV3Q,Acme Sensor,2026-11-20T08:00:00Z,Sensor Disabled\n"
        "Design iMac 5,C02ZX0ABJV3Q,Acme Sensor,2026-11-20T08:05:00Z,Connected\n",
    )
    options = {
        "columns": CONSOLE_COLUMNS,
        "healthy_status": ["connected"],
        "unhealthy_status": ["sensor disabled"],
    }
    events, stats = run(path, options)
    assert states(events) == [
        ("Design iMac 4", "Acme Sensor", "sensor disabled", False),
        ("Design iMac 5", "Acme Sensor", "connected", True),
    ]
    assert not stats.warnings


def test_csv_header_names_are_normalised(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "Device Name;Product;Last Check-In;Health\nmac-ops-040;Acme Sensor;1795166130;Healthy\n",
    )
    events, _ = run(path)
    assert states(events) == [("mac-ops-040", "Acme Sensor", "healthy", True)]
    assert events[0].time == 1795166130.0


def test_csv_quoted_fields_and_embedded_newline(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "host,component,time,status,note\n"
        '"mac, lab 1",Acme Sensor,2026-11-20T09:00:00Z,online,"two\nlines"\n'
        'mac-lab-2,"Acme ""Pro"" Sensor",2026-11-20T09:01:00Z,online,\n',
    )
    events, stats = run(path)
    assert states(events) == [
        ("mac, lab 1", "Acme Sensor", "online", True),
        ("mac-lab-2", 'Acme "Pro" Sensor', "online", True),
    ]
    assert [e.evidence.line for e in events] == [2, 4]
    assert stats.read == 2


def test_csv_tab_delimited_with_blank_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "\nhost\ttime\tstatus\n\nmac-ops-050\t2026-11-20T09:00:00Z\tonline\n\n",
        name="checkins.tsv",
    )
    events, stats = run(path)
    assert states(events) == [("mac-ops-050", "", "online", True)]
    assert events[0].evidence.line == 4
    assert stats.read == 1


def test_csv_without_status_or_component(tmp_path: Path) -> None:
    path = write(tmp_path, "computer,last_contact\nmac-ops-060,2026-11-20T09:00:00Z\n")
    events, _ = run(path)
    assert events[0].state is not None
    assert events[0].state.name == ""
    assert events[0].state.state is None
    assert events[0].state.healthy is None


def test_csv_bad_rows_located(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "host,agent,time,status\n"
        "mac-ops-070,Acme Sensor,2026-11-20T09:00:00Z,online\n"
        ",Acme Sensor,2026-11-20T09:01:00Z,online\n"
        "mac-ops-072,Acme Sensor,,online\n"
        "mac-ops-073,Acme Sensor,next week,online\n"
        "mac-ops-074,Acme Sensor\n"
        "mac-ops-075,Acme Sensor,2026-11-20T09:05:00Z,online\n",
    )
    events, stats = run(path)
    assert [e.host for e in events] == ["mac-ops-070", "mac-ops-075"]
    assert stats.read == 6
    assert stats.used == 2
    assert stats.skipped["missing host"] == 1
    assert stats.skipped["missing time"] == 2
    assert stats.skipped["invalid time"] == 1
    assert [(w.line, w.message.split(":")[0]) for w in stats.warnings] == [
        (3, "missing host"),
        (4, "missing time"),
        (5, "invalid time"),
        (6, "missing time"),
    ]


def test_csv_record_too_large_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checkins, "MAX_RECORD_BYTES", 200)
    path = write(
        tmp_path,
        "host,time,status,note\n"
        'mac-ops-080,2026-11-20T09:00:00Z,online,"' + "x" * 300 + '"\n'
        "mac-ops-081,2026-11-20T09:01:00Z,online,short\n",
    )
    events, stats = run(path)
    assert [e.host for e in events] == ["mac-ops-081"]
    assert stats.skipped["invalid CSV row"] == 1
    assert stats.warnings[0].line == 2


def test_csv_unclosed_quote_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checkins, "MAX_RECORD_BYTES", 120)
    rows = "".join(f"mac-ops-{n},2026-11-20T09:00:00Z,online\n" for n in range(10))
    path = write(tmp_path, 'host,time,status\nmac-ops-090,"2026-11-20\n' + rows)
    events, stats = run(path)
    assert stats.skipped["invalid CSV row"] >= 1
    assert stats.warnings[0].line == 2
    assert stats.read == stats.used + sum(stats.skipped.values())
    assert events
    assert events[-1].host == "mac-ops-9"


def test_csv_configured_column_missing(tmp_path: Path) -> None:
    path = write(tmp_path, "Computer Name,Agent,Status\nDesign iMac 4,Acme Sensor,online\n")
    events, stats = run(path, {"columns": CONSOLE_COLUMNS})
    assert events == []
    assert stats.read == 0
    messages = [w.message for w in stats.warnings]
    assert "configured time column 'last_check_in' not found" in messages
    assert "no time column in the header; the file is not read" in messages


def test_csv_configured_column_falls_back_to_guess(tmp_path: Path) -> None:
    path = write(tmp_path, "host,reported_at\nmac-ops-100,2026-11-20T09:00:00Z\n")
    events, stats = run(path, {"columns": {"host": "Computer Name"}})
    assert [e.host for e in events] == ["mac-ops-100"]
    assert stats.warnings[0].line == 1
    assert "configured host column 'computer_name' not found" in stats.warnings[0].message


def test_csv_with_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(b"\xef\xbb\xbfhost,time\nmac-ops-110,2026-11-20T09:00:00Z\n")
    events, _ = run(path)
    assert [e.host for e in events] == ["mac-ops-110"]


# --- JSON lines ------------------------------------------------------------------------------


def json_lines(tmp_path: Path, *objects: object, name: str = "checkins.ndjson") -> Path:
    text = "".join((o if isinstance(o, str) else json.dumps(o)) + "\n" for o in objects)
    return write(tmp_path, text, name)


def test_json_lines_default_keys(tmp_path: Path) -> None:
    path = json_lines(
        tmp_path,
        {"hostname": "mac-ops-200", "sensor": "Acme", "last_seen": 1795166130, "state": "Online"},
        {"hostname": "mac-ops-201", "sensor": "Acme", "last_seen": 1795166130500, "state": None},
        {"HostName": "mac-ops-202", "Sensor": "Acme", "Last_Seen": "2026-11-20T09:15:30Z"},
    )
    events, stats = run(path)
    assert states(events) == [
        ("mac-ops-200", "Acme", "online", True),
        ("mac-ops-201", "Acme", None, None),
        ("mac-ops-202", "Acme", None, None),
    ]
    assert [e.time for e in events] == [1795166130.0, 1795166130.5, 1795166130.0]
    assert [e.evidence.line for e in events] == [1, 2, 3]
    assert stats.read == stats.used == 3


def test_json_lines_configured_columns(tmp_path: Path) -> None:
    path = json_lines(
        tmp_path,
        {
            "Computer Name": "Design iMac 7",
            "Agent": "Acme Sensor",
            "Last Check-in": "2026-11-20 10:15:30",
            "Status": "Degraded",
        },
    )
    events, stats = run(path, {"columns": CONSOLE_COLUMNS})
    assert states(events) == [("Design iMac 7", "Acme Sensor", "degraded", False)]
    assert stats.notes[UTC_NOTE] == 1


def test_json_lines_bad_records_located(tmp_path: Path) -> None:
    path = json_lines(
        tmp_path,
        {"host": "mac-ops-210", "time": "2026-11-20T09:00:00Z"},
        "{broken",
        "[1, 2]",
        {"host": {"name": "mac-ops-213"}, "time": "2026-11-20T09:00:00Z"},
        {"host": "mac-ops-214"},
        {"host": "mac-ops-215", "time": True},
        "",
        {"host": "mac-ops-217", "time": "2026-11-20T09:00:00Z"},
    )
    events, stats = run(path)
    assert [e.host for e in events] == ["mac-ops-210", "mac-ops-217"]
    assert stats.read == 7
    assert stats.skipped["invalid JSON"] == 1
    assert stats.skipped["invalid record"] == 2
    assert stats.skipped["missing time"] == 1
    assert stats.skipped["invalid time"] == 1
    assert [w.line for w in stats.warnings] == [2, 3, 4, 5, 6]


# --- times and zones -------------------------------------------------------------------------


def test_time_without_zone_read_as_utc(tmp_path: Path) -> None:
    path = write(tmp_path, "host,time\nmac-ops-300,2026-11-20 09:15:30\n")
    events, stats = run(path)
    assert events[0].time == datetime(2026, 11, 20, 9, 15, 30, tzinfo=UTC).timestamp()
    assert stats.notes[UTC_NOTE] == 1


def test_time_without_zone_read_in_configured_zone(tmp_path: Path) -> None:
    path = write(tmp_path, "host,time\nmac-ops-301,2026-07-01 09:00:00\n")
    events, stats = run(path, {"timezone": "America/Chicago"})
    expected = datetime(2026, 7, 1, 9, 0, tzinfo=ZoneInfo("America/Chicago")).timestamp()
    assert events[0].time == expected
    assert stats.notes["check-in times without a zone read as America/Chicago"] == 1
    assert stats.notes[UTC_NOTE] == 0


def test_time_with_zone_takes_no_note(tmp_path: Path) -> None:
    path = write(tmp_path, "host,time\nmac-ops-302,2026-07-01 09:00:00 +0200\n")
    events, stats = run(path, {"timezone": "America/Chicago"})
    assert events[0].time == epoch("2026-07-01T09:00:00+02:00")
    assert not stats.notes


BERLIN_NOON = datetime(2026, 7, 1, 12, 0, tzinfo=ZoneInfo("Europe/Berlin")).timestamp()


@pytest.mark.parametrize(
    ("value", "expected", "assumed"),
    [
        ("2026-07-01T10:00:00Z", BERLIN_NOON, False),
        ("2026-07-01T12:00:00.250+02:00", BERLIN_NOON + 0.25, False),
        ("2026-07-01 12:00:00+0200", BERLIN_NOON, False),
        ("2026-07-01 12:00:00 +02:00", BERLIN_NOON, False),
        ("2026-07-01 10:00:00 UTC", BERLIN_NOON, False),
        ("2026-07-01 10:00:00Z", BERLIN_NOON, False),
        ("2026-07-01 12:00:00 Europe/Berlin", BERLIN_NOON, False),
        ("2026-07-01 10:00", BERLIN_NOON, True),
        ("2026-07-01 10:00:00", BERLIN_NOON, True),
        ("2026-07-01T10:00:00.5", BERLIN_NOON + 0.5, True),
        (str(int(BERLIN_NOON)), BERLIN_NOON, False),
        (int(BERLIN_NOON), BERLIN_NOON, False),
        (int(BERLIN_NOON) * 1000 + 250, BERLIN_NOON + 0.25, False),
        (f"{int(BERLIN_NOON)}.5", BERLIN_NOON + 0.5, False),
    ],
)
def test_parse_checkin_time(value: object, expected: float, assumed: bool) -> None:
    assert parse_checkin_time(value, UTC) == (expected, assumed)


@pytest.mark.parametrize(
    "value",
    [
        "yesterday",
        "2026-13-01 10:00:00",
        "2026-07-01 10:00:00 Mars/Olympus",
        "2026-07-01 10:00:00 +25:00",
        "07/01/2026 10:00",
        "-5",
        True,
        None,
        [1],
        10**16,
    ],
)
def test_parse_checkin_time_rejects(value: object) -> None:
    assert parse_checkin_time(value, UTC) == (None, False)


# --- settings --------------------------------------------------------------------------------


def test_invalid_settings_warn_and_use_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, "host,time,status\nmac-ops-400,2026-11-20 09:00:00,offline\n")
    options = {"timezone": "Mars/Olympus", "healthy_status": "online", "columns": ["host"]}
    events, stats = run(path, options)
    assert states(events) == [("mac-ops-400", "", "offline", False)]
    assert stats.notes[UTC_NOTE] == 1
    assert [w.line for w in stats.warnings] == [0, 0, 0]


def test_load_settings_lower_cases_status_lists() -> None:
    settings, problems = load_settings({"healthy_status": ["Online "], "unhealthy_status": []})
    assert problems == []
    assert settings.healthy == frozenset({"online"})
    assert settings.unhealthy == frozenset()


@pytest.mark.parametrize(
    ("name", "normalised"),
    [("Last Check-in", "last_check_in"), (" Computer  Name ", "computer_name"), ("host", "host")],
)
def test_normalise_name(name: str, normalised: str) -> None:
    assert normalise_name(name) == normalised


# --- format detection ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "head",
    [
        b"hostname,agent,last_seen,status\nmac,Acme,2026-11-20T09:00:00Z,online\n",
        b"Device Name;Last Contact\n",
        b"host\ttimestamp\n",
        b'{"host": "mac-ops-500", "agent": "Acme", "last_check_in": "2026-11-20T09:00:00Z"}\n',
        b'{"device_name": "mac-ops-501", "reported_at": 1795166130}\n',
    ],
)
def test_sniff_accepts_exports(head: bytes) -> None:
    assert READER.sniff(head)


@pytest.mark.parametrize(
    "head",
    [
        b"hostname,agent,status\n",
        b"last_seen\n",
        b"",
        b'[{"host": "a", "time": 1}]\n',
        # eslogger
        b'{"event_type": 9, "time": "2026-11-20T09:00:00Z", "process": {}, "host": "a"}\n',
        # unified log
        b'{"timestamp": "2026-11-20 09:00:00.000000+0100", "eventMessage": "x", "host": "a"}\n',
        # osquery
        b'{"hostIdentifier": "a", "unixTime": 1, "host": "a", "time": 1, "columns": {}}\n',
        # ECS: the host is an object
        b'{"@timestamp": "2026-11-20T09:00:00Z", "host": {"hostname": "a"}}\n',
        b'{"host": {"hostname": "a"}, "timestamp": "2026-11-20T09:00:00Z"}\n',
        b"{not json\n",
    ],
)
def test_sniff_rejects_other_files(head: bytes) -> None:
    assert not READER.sniff(head)


def test_sniff_uses_configured_columns() -> None:
    head = b"Computer Name,Agent,Last Check-in,Status\n"
    assert not READER.sniff(head.replace(b"Computer Name", b"Asset"))
    configured = CheckinReader({"columns": {**CONSOLE_COLUMNS, "host": "Asset"}})
    assert configured.sniff(head.replace(b"Computer Name", b"Asset"))


def test_constructor_settings_used_without_context_options(tmp_path: Path) -> None:
    reader = CheckinReader({"columns": {"host": "Asset"}, "timezone": "Europe/Berlin"})
    path = write(tmp_path, "Asset,time\nmac-ops-600,2026-07-01 12:00:00\n")
    events, stats = run(path, reader=reader)
    assert [e.host for e in events] == ["mac-ops-600"]
    assert events[0].time == BERLIN_NOON
    assert stats.notes["check-in times without a zone read as Europe/Berlin"] == 1
