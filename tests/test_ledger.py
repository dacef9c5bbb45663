"""The incident and outage ledger: recording scans, status history, filters, exports and the CLI.

Every test uses a real SQLite file in tmp_path. The PostgreSQL tests at the end run only when
TAMPERWATCH_POSTGRES_URL names a database; they work in a schema of their own and drop it after.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, make_url, select, text
from sqlalchemy.orm import Session

from tamperwatch.config import Config, build_inventory
from tamperwatch.incident import Incident
from tamperwatch.ledger import (
    AUTOMATIC_ACTOR,
    IncidentEntry,
    Ledger,
    LedgerError,
    LedgerFilter,
    OutageEntry,
    UnknownIdError,
    csv_cell,
    ledger_url,
    outage_id,
    parse_time,
    write_entries_jsonl,
    write_incidents_csv,
    write_outages_csv,
)
from tamperwatch.ledger.models import Base, IncidentHistoryRow
from tamperwatch.liveness import BlindWindow
from tamperwatch.model import Evidence
from tamperwatch.scan import ScanResult, scan

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# Ids of the example incidents and outages, as `tamperwatch scan examples/` reports them.
FALCON_KILL = "tw-22acc077699bf589f101"
SANTA_INSTALL = "tw-1d678e37f45591345a2a"
OSQUERY_BOOTOUT = "tw-1b171dd0f5745bd2720d"
LOST_EVENTS = "bw-4c44d43acc9f4f2c80a9"
OSQUERY_SILENT = "bw-23b555e027e491ddc31c"

T1 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
T2 = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)

TABLES = ("incidents", "incident_history", "outages", "outage_history")


@pytest.fixture(scope="module")
def examples() -> ScanResult:
    config = Config()
    return scan([str(EXAMPLES)], config=config, inventory=build_inventory(config))


@pytest.fixture
def ledger_file(tmp_path: Path) -> Path:
    return tmp_path / "ledger.sqlite3"


@pytest.fixture
def recorded(ledger_file: Path, examples: ScanResult) -> Iterator[Ledger]:
    with Ledger.open(str(ledger_file)) as ledger:
        ledger.record(examples, now=T1)
        yield ledger


def row_count(path: Path, table: str) -> int:
    connection = sqlite3.connect(path)
    try:
        (count,) = connection.execute(f"SELECT count(*) FROM {table}").fetchone()
    finally:
        connection.close()
    return int(count)


def one_incident(result: ScanResult, incident_id: str) -> Incident:
    return next(incident for incident in result.incidents if incident.id == incident_id)


def later(rfc3339: str, seconds: float) -> str:
    moment = datetime.fromisoformat(rfc3339) + timedelta(seconds=seconds)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tamperwatch", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


# recording ----------------------------------------------------------------------------------------


def test_record_examples_adds_every_entry(ledger_file: Path, examples: ScanResult) -> None:
    with Ledger.open(str(ledger_file)) as ledger:
        counts = ledger.record(examples, now=T1)
        incidents = ledger.incidents()
        outages = ledger.outages()
    assert counts.incidents_added == len(examples.incidents) == 6
    assert counts.outages_added == len(examples.blind_windows) == 3
    assert counts.incidents_updated == 0
    assert counts.outages_updated == 0
    assert {entry.id for entry in incidents} == {incident.id for incident in examples.incidents}
    assert {entry.id for entry in outages} == {outage_id(w) for w in examples.blind_windows}


def test_suspicious_incident_enters_open(recorded: Ledger) -> None:
    entry = recorded.find(FALCON_KILL)
    assert isinstance(entry, IncidentEntry)
    assert entry.status == "open"
    assert entry.history == []
    assert entry.host == "mbp-finance-07"
    assert entry.components == ["crowdstrike-falcon"]
    assert entry.first_seen == datetime(2026, 11, 18, 14, 4, 7, 525921, tzinfo=UTC)
    assert entry.created_at == T1


def test_explained_incident_enters_explained(recorded: Ledger, examples: ScanResult) -> None:
    entry = recorded.find(SANTA_INSTALL)
    assert isinstance(entry, IncidentEntry)
    assert entry.status == "explained"
    assert len(entry.history) == 1
    assert entry.history[0].by == AUTOMATIC_ACTOR
    assert entry.history[0].status == "explained"
    assert entry.history[0].reason == one_incident(examples, SANTA_INSTALL).explanation
    assert entry.history[0].at == T1


def test_full_incident_json_is_kept(recorded: Ledger, examples: ScanResult) -> None:
    entry = recorded.find(OSQUERY_BOOTOUT)
    assert isinstance(entry, IncidentEntry)
    assert entry.incident == one_incident(examples, OSQUERY_BOOTOUT)


def test_outage_fields_come_from_blind_window(recorded: Ledger) -> None:
    entry = recorded.find(LOST_EVENTS)
    assert isinstance(entry, OutageEntry)
    assert entry.host == "build-mac-02"
    assert entry.component is None
    assert entry.events_lost == 212
    assert entry.reason == "the Endpoint Security client lost 212 events"
    assert entry.status == "open"
    assert [ref.line for ref in entry.evidence] == [1018, 1019]


def test_record_twice_adds_nothing(ledger_file: Path, examples: ScanResult) -> None:
    with Ledger.open(str(ledger_file)) as ledger:
        ledger.record(examples, now=T1)
        before = {table: row_count(ledger_file, table) for table in TABLES}
        counts = ledger.record(examples, now=T2)
    after = {table: row_count(ledger_file, table) for table in TABLES}
    assert counts.incidents_added == 0
    assert counts.incidents_updated == 0
    assert counts.outages_added == 0
    assert counts.outages_updated == 0
    assert after == before


def test_reopened_ledger_records_nothing_new(ledger_file: Path, examples: ScanResult) -> None:
    with Ledger.open(str(ledger_file)) as ledger:
        ledger.record(examples, now=T1)
    with Ledger.open(str(ledger_file)) as ledger:
        counts = ledger.record(examples, now=T2)
        entry = ledger.find(FALCON_KILL)
    assert counts.incidents_added == 0
    assert counts.outages_added == 0
    assert entry.created_at == T1


def test_grown_incident_updated_in_place(ledger_file: Path, examples: ScanResult) -> None:
    original = one_incident(examples, FALCON_KILL)
    grown = msgspec.structs.replace(
        original, last_seen=later(original.last_seen, 60), severity="high"
    )
    with Ledger.open(str(ledger_file)) as ledger:
        ledger.record(examples, now=T1)
        counts = ledger.record(ScanResult([grown], []), now=T2)
        entry = ledger.find(FALCON_KILL)
    assert counts.incidents_updated == 1
    assert counts.incidents_added == 0
    assert isinstance(entry, IncidentEntry)
    assert entry.last_seen == datetime.fromisoformat(grown.last_seen)
    assert entry.severity == "high"
    assert entry.incident == grown
    assert entry.updated_at == T2
    assert entry.created_at == T1
    assert entry.history == []
    assert row_count(ledger_file, "incidents") == 6


def test_shorter_incident_keeps_stored_record(ledger_file: Path, examples: ScanResult) -> None:
    original = one_incident(examples, FALCON_KILL)
    shorter = msgspec.structs.replace(original, last_seen=original.first_seen, signals=[])
    with Ledger.open(str(ledger_file)) as ledger:
        ledger.record(examples, now=T1)
        counts = ledger.record(ScanResult([shorter], []), now=T2)
        entry = ledger.find(FALCON_KILL)
    assert counts.incidents_updated == 0
    assert isinstance(entry, IncidentEntry)
    assert entry.incident == original


def test_grown_outage_updated_in_place(ledger_file: Path) -> None:
    evidence = [Evidence("eslogger", "capture.ndjson", 40)]
    window = BlindWindow("lab-mac-4", 1_800_000_000.0, 1_800_000_300.0, "no telemetry", None, 7)
    grown = BlindWindow("lab-mac-4", 1_800_000_000.0, 1_800_000_900.0, "no telemetry", None, 9)
    grown.evidence = evidence
    with Ledger.open(str(ledger_file)) as ledger:
        ledger.record(ScanResult([], [], blind_windows=[window]), now=T1)
        counts = ledger.record(ScanResult([], [], blind_windows=[grown]), now=T2)
        outages = ledger.outages()
    assert counts.outages_updated == 1
    assert counts.outages_added == 0
    assert len(outages) == 1
    assert outages[0].end == datetime.fromtimestamp(1_800_000_900.0, UTC)
    assert outages[0].events_lost == 9
    assert [ref.file for ref in outages[0].evidence] == ["capture.ndjson"]


def test_outage_id_is_stable() -> None:
    first = BlindWindow("lab-mac-4", 1_800_000_000.0, 1_800_000_300.0, "no telemetry")
    same_start = BlindWindow("lab-mac-4", 1_800_000_000.0, 1_800_009_999.0, "no telemetry")
    other_reason = BlindWindow("lab-mac-4", 1_800_000_000.0, 1_800_000_300.0, "lost 3 events")
    other_component = BlindWindow(
        "lab-mac-4", 1_800_000_000.0, 1_800_000_300.0, "no telemetry", "santa-nps"
    )
    assert outage_id(first) == outage_id(same_start)
    assert outage_id(first).startswith("bw-")
    assert outage_id(first) != outage_id(other_reason)
    assert outage_id(first) != outage_id(other_component)


# status changes -----------------------------------------------------------------------------------


def test_explain_then_resolve_keeps_history(recorded: Ledger) -> None:
    recorded.explain(FALCON_KILL, reason="sensor reinstall, change 3141", by="alice", at=T1)
    entry = recorded.resolve(FALCON_KILL, reason="sensor reporting again", by="bob", at=T2)
    assert entry.status == "resolved"
    assert [change.status for change in entry.history] == ["explained", "resolved"]
    assert [change.by for change in entry.history] == ["alice", "bob"]
    assert [change.at for change in entry.history] == [T1, T2]
    assert entry.history[0].reason == "sensor reinstall, change 3141"
    assert entry.updated_at == T2


def test_history_is_ordered_by_time(recorded: Ledger) -> None:
    # The second change carries the earlier time, as an import of older decisions would.
    recorded.explain(FALCON_KILL, reason="second", by="alice", at=T2)
    recorded.explain(FALCON_KILL, reason="first", by="alice", at=T1)
    entry = recorded.find(FALCON_KILL)
    assert [change.reason for change in entry.history] == ["first", "second"]


def test_same_time_changes_keep_insert_order(recorded: Ledger) -> None:
    recorded.explain(OSQUERY_BOOTOUT, reason="a", by="alice", at=T1)
    recorded.resolve(OSQUERY_BOOTOUT, reason="b", by="bob", at=T1)
    entry = recorded.find(OSQUERY_BOOTOUT)
    assert [change.reason for change in entry.history] == ["a", "b"]


def test_explain_outage_fills_explanation(recorded: Ledger) -> None:
    entry = recorded.explain(LOST_EVENTS, reason="backup flood", by="kim", at=T1)
    assert isinstance(entry, OutageEntry)
    assert entry.status == "explained"
    assert entry.explained_by == "kim"
    assert entry.explained_at == T1
    assert entry.explanation == "backup flood"
    assert [change.status for change in entry.history] == ["explained"]


def test_resolve_outage_keeps_explanation(recorded: Ledger) -> None:
    recorded.explain(LOST_EVENTS, reason="backup flood", by="kim", at=T1)
    entry = recorded.resolve(LOST_EVENTS, reason="backup moved", by="lee", at=T2)
    assert isinstance(entry, OutageEntry)
    assert entry.status == "resolved"
    assert entry.explanation == "backup flood"
    assert [change.by for change in entry.history] == ["kim", "lee"]


def test_status_changes_survive_rerecording(recorded: Ledger, examples: ScanResult) -> None:
    recorded.resolve(FALCON_KILL, reason="done", by="bob", at=T1)
    recorded.resolve(LOST_EVENTS, reason="done", by="bob", at=T1)
    recorded.record(examples, now=T2)
    assert recorded.find(FALCON_KILL).status == "resolved"
    assert recorded.find(LOST_EVENTS).status == "resolved"
    assert len(recorded.find(FALCON_KILL).history) == 1


def test_unknown_id_raises(recorded: Ledger) -> None:
    with pytest.raises(UnknownIdError, match="no incident or outage with id 'tw-missing'"):
        recorded.find("tw-missing")
    with pytest.raises(UnknownIdError):
        recorded.explain("tw-missing", reason="x", by="alice")
    with pytest.raises(UnknownIdError):
        recorded.resolve("bw-missing", reason="x", by="alice")


@pytest.mark.parametrize(
    ("reason", "by", "message"),
    [
        ("", "alice", "the reason is empty"),
        ("   ", "alice", "the reason is empty"),
        ("fixed", "", "the name is empty"),
        ("fixed", AUTOMATIC_ACTOR, "reserved"),
    ],
)
def test_status_change_needs_reason_and_name(
    recorded: Ledger, reason: str, by: str, message: str
) -> None:
    with pytest.raises(LedgerError, match=message):
        recorded.resolve(FALCON_KILL, reason=reason, by=by)
    assert recorded.find(FALCON_KILL).status == "open"


def test_history_rows_cannot_be_changed(recorded: Ledger, ledger_file: Path) -> None:
    engine = create_engine(f"sqlite:///{ledger_file}")
    try:
        with Session(engine) as session:
            row = session.scalars(select(IncidentHistoryRow)).first()
            assert row is not None
            row.reason = "rewritten"
            with pytest.raises(PermissionError):
                session.flush()
    finally:
        engine.dispose()


# scan verdicts on re-recording ------------------------------------------------------------------


def test_scan_explanation_moves_open_incident(ledger_file: Path, examples: ScanResult) -> None:
    original = one_incident(examples, FALCON_KILL)
    explained = msgspec.structs.replace(
        original, status="explained", explanation="maintenance window: sensor upgrade"
    )
    with Ledger.open(str(ledger_file)) as ledger:
        ledger.record(ScanResult([original], []), now=T1)
        counts = ledger.record(ScanResult([explained], []), now=T2)
        entry = ledger.find(FALCON_KILL)
    assert counts.incidents_updated == 1
    assert entry.status == "explained"
    assert [(c.by, c.reason) for c in entry.history] == [
        (AUTOMATIC_ACTOR, "maintenance window: sensor upgrade")
    ]


def test_scan_verdict_reopens_automatic_explanation(
    ledger_file: Path, examples: ScanResult
) -> None:
    original = one_incident(examples, SANTA_INSTALL)
    suspicious = msgspec.structs.replace(original, status="suspicious", explanation=None)
    with Ledger.open(str(ledger_file)) as ledger:
        ledger.record(ScanResult([original], []), now=T1)
        ledger.record(ScanResult([suspicious], []), now=T2)
        entry = ledger.find(SANTA_INSTALL)
    assert entry.status == "open"
    assert [change.status for change in entry.history] == ["explained", "open"]
    assert entry.history[-1].by == AUTOMATIC_ACTOR


def test_scan_verdict_never_overrides_a_person(ledger_file: Path, examples: ScanResult) -> None:
    original = one_incident(examples, SANTA_INSTALL)
    suspicious = msgspec.structs.replace(original, status="suspicious", explanation=None)
    with Ledger.open(str(ledger_file)) as ledger:
        ledger.record(ScanResult([original], []), now=T1)
        ledger.explain(SANTA_INSTALL, reason="approved upgrade", by="alice", at=T1)
        ledger.record(ScanResult([suspicious], []), now=T2)
        entry = ledger.find(SANTA_INSTALL)
    assert entry.status == "explained"
    assert [change.by for change in entry.history] == [AUTOMATIC_ACTOR, "alice"]


# filters ------------------------------------------------------------------------------------------


def test_filter_by_status(recorded: Ledger) -> None:
    explained = recorded.incidents(LedgerFilter(status="explained"))
    open_ids = {entry.id for entry in recorded.incidents(LedgerFilter(status="open"))}
    assert [entry.id for entry in explained] == [SANTA_INSTALL]
    assert len(open_ids) == 5
    assert SANTA_INSTALL not in open_ids
    assert recorded.incidents(LedgerFilter(status="resolved")) == []


def test_filter_by_host(recorded: Ledger) -> None:
    incidents = recorded.incidents(LedgerFilter(host="ops-mac-05"))
    outages = recorded.outages(LedgerFilter(host="ops-mac-05"))
    assert {entry.host for entry in incidents} == {"ops-mac-05"}
    assert len(incidents) == 2
    assert len(outages) == 2
    assert recorded.incidents(LedgerFilter(host="ops-mac")) == []


def test_filter_by_component_is_exact(recorded: Ledger) -> None:
    osquery = recorded.incidents(LedgerFilter(component="osquery"))
    santa = recorded.incidents(LedgerFilter(component="santa-nps"))
    assert [entry.id for entry in osquery] == [OSQUERY_BOOTOUT]
    assert len(santa) == 3
    assert recorded.incidents(LedgerFilter(component="santa")) == []
    assert recorded.incidents(LedgerFilter(component="%")) == []
    assert recorded.incidents(LedgerFilter(component="SANTA-NPS")) == []
    outages = recorded.outages(LedgerFilter(component="osquery"))
    assert [entry.id for entry in outages] == [OSQUERY_SILENT]


def test_filter_by_time_overlap(recorded: Ledger) -> None:
    # The Falcon incident lasts from 14:04:07.5 to 14:04:16.6 on 2026-11-18.
    inside = recorded.incidents(
        LedgerFilter(
            since=datetime(2026, 11, 18, 14, 4, 10, tzinfo=UTC),
            until=datetime(2026, 11, 18, 14, 4, 12, tzinfo=UTC),
        )
    )
    after = recorded.incidents(LedgerFilter(since=parse_time("2026-11-22")))
    before = recorded.incidents(LedgerFilter(until=parse_time("2026-11-18T23:59:59Z")))
    assert [entry.id for entry in inside] == [FALCON_KILL]
    assert {entry.host for entry in after} == {"ops-mac-05"}
    assert [entry.id for entry in before] == [FALCON_KILL]
    late_outages = recorded.outages(LedgerFilter(since=parse_time("2026-11-22T09:00:00+01:00")))
    assert {entry.host for entry in late_outages} == {"ops-mac-05"}


def test_filters_combine(recorded: Ledger) -> None:
    entries = recorded.incidents(LedgerFilter(status="open", component="santa-nps"))
    assert len(entries) == 2
    assert all(entry.status == "open" for entry in entries)


def test_parse_time_forms() -> None:
    assert parse_time("2026-11-18") == datetime(2026, 11, 18, tzinfo=UTC)
    assert parse_time("2026-11-18T14:00:00Z") == datetime(2026, 11, 18, 14, tzinfo=UTC)
    assert parse_time("2026-11-18T16:00:00+02:00") == datetime(2026, 11, 18, 14, tzinfo=UTC)
    with pytest.raises(ValueError, match="no UTC offset"):
        parse_time("2026-11-18T14:00:00")
    with pytest.raises(ValueError):
        parse_time("yesterday")


# exports ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("lab-mac-4", "lab-mac-4"),
        ("a=b", "a=b"),
        ("", ""),
    ],
)
def test_csv_cell_prefixes_formulas(value: str, expected: str) -> None:
    assert csv_cell(value) == expected


def test_csv_export_neutralises_formulas(ledger_file: Path) -> None:
    config = Config()
    hostile = scan(
        [str(EXAMPLES / "it-mac-03" / "eslogger.ndjson")],
        host='=HYPERLINK("http://lab.invalid")',
        config=config,
        inventory=build_inventory(config),
    )
    assert len(hostile.incidents) == 1
    titled = msgspec.structs.replace(hostile.incidents[0], title="@SUM(1+1) santa stopped")
    with Ledger.open(str(ledger_file)) as ledger:
        ledger.record(ScanResult([titled], []), now=T1)
        stream = io.StringIO()
        write_incidents_csv(ledger.incidents(), stream)
    rows = list(csv.DictReader(io.StringIO(stream.getvalue())))
    assert len(rows) == 1
    assert rows[0]["host"] == '\'=HYPERLINK("http://lab.invalid")'
    assert rows[0]["title"] == "'@SUM(1+1) santa stopped"
    assert rows[0]["status"] == "explained"
    assert rows[0]["status_by"] == AUTOMATIC_ACTOR


def test_csv_export_of_incidents(recorded: Ledger) -> None:
    recorded.resolve(FALCON_KILL, reason="sensor back", by="bob", at=T2)
    stream = io.StringIO()
    write_incidents_csv(recorded.incidents(LedgerFilter(host="mbp-finance-07")), stream)
    rows = list(csv.DictReader(io.StringIO(stream.getvalue())))
    assert len(rows) == 1
    assert rows[0]["id"] == FALCON_KILL
    assert rows[0]["first_seen"] == "2026-11-18T14:04:07.525921Z"
    assert rows[0]["components"] == "crowdstrike-falcon"
    assert rows[0]["status"] == "resolved"
    assert rows[0]["status_at"] == "2026-11-24T10:30:00.000000Z"
    assert rows[0]["status_reason"] == "sensor back"


def test_csv_export_of_outages(recorded: Ledger) -> None:
    stream = io.StringIO()
    write_outages_csv(recorded.outages(), stream)
    rows = list(csv.DictReader(io.StringIO(stream.getvalue())))
    assert rows[0]["id"] == LOST_EVENTS
    assert rows[0]["events_lost"] == "212"
    assert rows[0]["component"] == ""
    assert len(rows) == 3


def test_jsonl_export_carries_history(recorded: Ledger, examples: ScanResult) -> None:
    recorded.explain(FALCON_KILL, reason="sensor reinstall", by="alice", at=T1)
    recorded.resolve(FALCON_KILL, reason="sensor back", by="bob", at=T2)
    stream = io.BytesIO()
    write_entries_jsonl(recorded.incidents(), stream)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == 6
    falcon = next(line for line in lines if line["id"] == FALCON_KILL)
    assert falcon["status"] == "resolved"
    assert [change["by"] for change in falcon["history"]] == ["alice", "bob"]
    assert falcon["history"][0]["at"] == "2026-11-24T09:00:00Z"
    expected = json.loads(msgspec.json.encode(one_incident(examples, FALCON_KILL)))
    assert falcon["incident"] == expected


# schema and locations -----------------------------------------------------------------------------


def test_schema_created_by_alembic(recorded: Ledger, ledger_file: Path) -> None:
    connection = sqlite3.connect(ledger_file)
    try:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
        versions = connection.execute("SELECT version_num FROM alembic_version").fetchall()
    finally:
        connection.close()
    assert "alembic_version" in tables
    assert set(TABLES) <= tables
    assert versions == [("0001",)]


def test_migration_matches_models(recorded: Ledger, ledger_file: Path) -> None:
    engine = create_engine(f"sqlite:///{ledger_file}")
    try:
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_newer_schema_is_reported(recorded: Ledger, ledger_file: Path) -> None:
    connection = sqlite3.connect(ledger_file)
    with connection:
        connection.execute("UPDATE alembic_version SET version_num = '9999'")
    connection.close()
    with pytest.raises(LedgerError, match="newer version"):
        Ledger.open(str(ledger_file))


def test_open_rejects_bad_locations(tmp_path: Path) -> None:
    not_a_database = tmp_path / "notes.txt"
    not_a_database.write_text("incident notes\n" * 100, encoding="utf-8")
    with pytest.raises(LedgerError, match="unsupported ledger database 'mysql'"):
        Ledger.open("mysql://db.lab.invalid/ledger")
    with pytest.raises(LedgerError, match="file is not a database"):
        Ledger.open(str(not_a_database))
    with pytest.raises(LedgerError, match="unable to open database file"):
        Ledger.open(str(tmp_path / "missing-folder" / "ledger.sqlite3"))


def test_ledger_url_forms(tmp_path: Path) -> None:
    relative = ledger_url("ledger.sqlite3")
    assert relative.get_backend_name() == "sqlite"
    assert relative.database == str(Path("ledger.sqlite3").absolute())
    assert ledger_url("postgresql://auditor@db.lab.invalid/ledger").drivername == (
        "postgresql+psycopg"
    )
    assert ledger_url(f"sqlite:///{tmp_path}/a.db").database == f"{tmp_path}/a.db"


def test_password_is_masked_in_messages() -> None:
    with pytest.raises(LedgerError) as caught:
        Ledger.open("oracle://auditor:hunter2@db.lab.invalid/ledger")
    assert "hunter2" not in str(caught.value)
    assert "***" in str(caught.value)


# command line -------------------------------------------------------------------------------------


def test_cli_scan_records_once(ledger_file: Path) -> None:
    first = run_cli("scan", str(EXAMPLES), "--ledger", str(ledger_file))
    second = run_cli("scan", str(EXAMPLES), "--format", "jsonl", "--ledger", str(ledger_file))
    assert first.returncode == 1, first.stderr
    assert "6 incident(s) added, 0 updated; 3 outage(s) added" in first.stderr
    assert second.returncode == 1, second.stderr
    assert "0 incident(s) added, 0 updated; 0 outage(s) added, 0 updated" in second.stderr
    assert all(json.loads(line)["id"] for line in second.stdout.splitlines())
    assert row_count(ledger_file, "incidents") == 6


def test_cli_list_and_filters(ledger_file: Path) -> None:
    run_cli("scan", str(EXAMPLES), "--ledger", str(ledger_file))
    everything = run_cli("ledger", "list", "--ledger", str(ledger_file))
    explained = run_cli("ledger", "list", "--status", "explained", "--ledger", str(ledger_file))
    outages = run_cli(
        "ledger",
        "list",
        "--kind",
        "outages",
        "--component",
        "osquery",
        "--ledger",
        str(ledger_file),
    )
    assert everything.returncode == 0, everything.stderr
    assert "6 incident(s)" in everything.stdout
    assert FALCON_KILL in everything.stdout
    assert explained.returncode == 0
    assert SANTA_INSTALL in explained.stdout
    assert FALCON_KILL not in explained.stdout
    assert outages.returncode == 0
    assert OSQUERY_SILENT in outages.stdout
    assert LOST_EVENTS not in outages.stdout


def test_cli_explain_resolve_show(ledger_file: Path) -> None:
    location = ("--ledger", str(ledger_file))
    run_cli("scan", str(EXAMPLES), *location)
    explain = run_cli(
        "ledger", "explain", FALCON_KILL, "--reason", "change 3141", "--by", "alice", *location
    )
    resolve = run_cli(
        "ledger", "resolve", FALCON_KILL, "--reason", "sensor back", "--by", "bob", *location
    )
    show = run_cli("ledger", "show", FALCON_KILL, *location)
    assert explain.returncode == 0, explain.stderr
    assert f"{FALCON_KILL} is now explained (by alice)" in explain.stdout
    assert resolve.returncode == 0, resolve.stderr
    assert show.returncode == 0, show.stderr
    assert "status:     resolved" in show.stdout
    assert show.stdout.index("by alice: change 3141") < show.stdout.index("by bob: sensor back")


def test_cli_show_incident_actor_and_evidence(ledger_file: Path) -> None:
    run_cli("scan", str(EXAMPLES), "--ledger", str(ledger_file))
    show = run_cli("ledger", "show", FALCON_KILL, "--ledger", str(ledger_file))
    assert show.returncode == 0, show.stderr
    assert "actor: launchctl bootout system/com.crowdstrike.falcon.Agent" in show.stdout
    assert "signing id com.apple.launchctl" in show.stdout
    assert "eslogger.ndjson:17]" in show.stdout


def test_cli_show_outage(ledger_file: Path) -> None:
    run_cli("scan", str(EXAMPLES), "--ledger", str(ledger_file))
    show = run_cli("ledger", "show", LOST_EVENTS, "--ledger", str(ledger_file))
    assert show.returncode == 0, show.stderr
    assert f"outage {LOST_EVENTS}" in show.stdout
    assert "events lost: 212" in show.stdout
    assert "history: no status change yet" in show.stdout


@pytest.mark.parametrize(
    "arguments",
    [
        ("list",),
        ("show", "tw-0000"),
        ("explain", "tw-0000", "--reason", "x", "--by", "alice"),
        ("export", "--format", "csv"),
    ],
    ids=["list", "show", "explain", "export"],
)
def test_cli_missing_ledger_file_not_created(ledger_file: Path, arguments: tuple[str, ...]) -> None:
    result = run_cli("ledger", *arguments, "--ledger", str(ledger_file))
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: no ledger at {ledger_file}")
    assert not ledger_file.exists()


@pytest.mark.parametrize("command", ["show", "explain", "resolve"])
def test_cli_unknown_id_exits_2(ledger_file: Path, command: str) -> None:
    Ledger.open(str(ledger_file)).close()
    extra = () if command == "show" else ("--reason", "x", "--by", "alice")
    result = run_cli("ledger", command, "tw-0000", *extra, "--ledger", str(ledger_file))
    assert result.returncode == 2
    assert result.stderr.startswith("error: no incident or outage with id 'tw-0000'")
    assert "Traceback" not in result.stderr


def test_cli_status_change_requires_reason_and_by(ledger_file: Path) -> None:
    no_reason = run_cli(
        "ledger", "resolve", FALCON_KILL, "--by", "bob", "--ledger", str(ledger_file)
    )
    no_by = run_cli("ledger", "explain", FALCON_KILL, "--reason", "x", "--ledger", str(ledger_file))
    assert no_reason.returncode == 2
    assert "--reason" in no_reason.stderr
    assert no_by.returncode == 2
    assert "--by" in no_by.stderr


def test_cli_bad_ledgers_exit_2(tmp_path: Path) -> None:
    not_a_database = tmp_path / "notes.txt"
    not_a_database.write_text("incident notes\n" * 100, encoding="utf-8")
    # A Unix socket folder without a server: the connection fails without network traffic.
    unreachable = f"postgresql+psycopg://auditor:hunter2@/ledger?host={tmp_path}"
    for location in ("foo://lab", str(not_a_database), unreachable):
        result = run_cli("ledger", "list", "--ledger", location)
        assert result.returncode == 2, location
        assert result.stderr.startswith("error: "), location
        assert result.stderr.count("\n") == 1, result.stderr
        assert "Traceback" not in result.stderr
        assert "hunter2" not in result.stderr


def test_cli_scan_with_bad_ledger_exits_2(tmp_path: Path) -> None:
    result = run_cli("scan", str(EXAMPLES), "--ledger", "foo://lab")
    assert result.returncode == 2
    assert "error: unsupported ledger database 'foo'" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_bad_time_exits_2(ledger_file: Path) -> None:
    result = run_cli("ledger", "list", "--since", "last week", "--ledger", str(ledger_file))
    assert result.returncode == 2
    assert "invalid --since 'last week'" in result.stderr


def test_cli_export_csv_and_jsonl(ledger_file: Path, tmp_path: Path) -> None:
    location = ("--ledger", str(ledger_file))
    run_cli("scan", str(EXAMPLES), *location)
    csv_file = tmp_path / "audit.csv"
    to_file = run_cli("ledger", "export", "--format", "csv", "--output", str(csv_file), *location)
    to_stdout = run_cli("ledger", "export", "--format", "jsonl", "--kind", "outages", *location)
    assert to_file.returncode == 0, to_file.stderr
    with csv_file.open(encoding="utf-8", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert len(rows) == 6
    assert {row["status"] for row in rows} == {"open", "explained"}
    assert to_stdout.returncode == 0, to_stdout.stderr
    outages = [json.loads(line) for line in to_stdout.stdout.splitlines()]
    assert outages[0]["id"] == LOST_EVENTS
    assert len(outages) == 3


def test_cli_export_filters(ledger_file: Path) -> None:
    location = ("--ledger", str(ledger_file))
    run_cli("scan", str(EXAMPLES), *location)
    result = run_cli("ledger", "export", "--format", "csv", "--host", "it-mac-03", *location)
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert result.returncode == 0, result.stderr
    assert [row["id"] for row in rows] == [SANTA_INSTALL]


def test_cli_list_escapes_telemetry(ledger_file: Path, examples: ScanResult) -> None:
    hostile = msgspec.structs.replace(
        one_incident(examples, FALCON_KILL),
        host="lab\x1b[2J-mac",
        title="falcon \u202estopped",
    )
    with Ledger.open(str(ledger_file)) as ledger:
        ledger.record(ScanResult([hostile], []), now=T1)
    listed = run_cli("ledger", "list", "--ledger", str(ledger_file))
    shown = run_cli("ledger", "show", FALCON_KILL, "--ledger", str(ledger_file))
    for result in (listed, shown):
        assert result.returncode == 0, result.stderr
        assert "\x1b" not in result.stdout
        assert "\u202e" not in result.stdout
        assert "lab\\x1b[2J-mac" in result.stdout
        assert "\\u202e" in result.stdout


def test_cli_default_ledger_location(tmp_path: Path) -> None:
    # platformdirs puts the user data folder under XDG_DATA_HOME on Linux and HOME on macOS.
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data"), "HOME": str(tmp_path)}
    recorded = run_cli("scan", str(EXAMPLES), "--ledger", "default", env=env)
    listed = run_cli("ledger", "list", env=env)
    created = list(tmp_path.rglob("ledger.sqlite3"))
    assert recorded.returncode == 1, recorded.stderr
    assert listed.returncode == 0, listed.stderr
    assert "6 incident(s)" in listed.stdout
    assert len(created) == 1
    assert created[0].parent.name == "tamperwatch"


# PostgreSQL ---------------------------------------------------------------------------------------


@pytest.fixture
def postgres_location() -> Iterator[str]:
    """Yield a URL of TAMPERWATCH_POSTGRES_URL whose search path is a new, empty schema."""
    base = os.environ.get("TAMPERWATCH_POSTGRES_URL")
    if not base:
        pytest.skip("TAMPERWATCH_POSTGRES_URL is not set; it names a PostgreSQL database to test")
    url = ledger_url(base)
    schema = f"tamperwatch_test_{uuid.uuid4().hex[:12]}"
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        scoped = url.update_query_dict({"options": f"-csearch_path={schema}"})
        yield scoped.render_as_string(hide_password=False)
    finally:
        with engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()


def test_postgres_records_once_and_keeps_history(
    postgres_location: str, examples: ScanResult
) -> None:
    with Ledger.open(postgres_location) as ledger:
        first = ledger.record(examples, now=T1)
        second = ledger.record(examples, now=T2)
        ledger.explain(FALCON_KILL, reason="change 3141", by="alice", at=T1)
        entry = ledger.resolve(FALCON_KILL, reason="sensor back", by="bob", at=T2)
        santa = ledger.incidents(LedgerFilter(component="santa-nps", status="open"))
        late = ledger.outages(LedgerFilter(since=parse_time("2026-11-22")))
    assert first.incidents_added == 6
    assert first.outages_added == 3
    assert second.incidents_added == 0
    assert second.outages_added == 0
    assert [change.by for change in entry.history] == ["alice", "bob"]
    assert entry.history[0].at == T1
    assert entry.status == "resolved"
    assert len(santa) == 2
    assert {outage.host for outage in late} == {"ops-mac-05"}


def test_postgres_schema_created_by_alembic(postgres_location: str) -> None:
    Ledger.open(postgres_location).close()
    engine = create_engine(make_url(postgres_location))
    try:
        with engine.connect() as connection:
            version = connection.execute(text("SELECT version_num FROM alembic_version")).all()
            differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    finally:
        engine.dispose()
    assert version == [("0001",)]
    assert differences == []


def test_postgres_cli_round_trip(postgres_location: str) -> None:
    location = ("--ledger", postgres_location)
    scanned = run_cli("scan", str(EXAMPLES), *location)
    resolved = run_cli(
        "ledger", "resolve", LOST_EVENTS, "--reason", "backup moved", "--by", "kim", *location
    )
    listed = run_cli("ledger", "list", "--kind", "outages", "--status", "resolved", *location)
    assert scanned.returncode == 1, scanned.stderr
    assert resolved.returncode == 0, resolved.stderr
    assert LOST_EVENTS in listed.stdout
    assert "1 outage(s)" in listed.stdout
