"""Resource limits and hostile time order: the on-disk event sort, the engine's bounded tables,
duplicate records, records out of order, and clocks far in the future or the past."""

from __future__ import annotations

import errno
import io
import json
import os
import random
import shutil
import sys
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
from rich.console import Console

from tamperwatch import correlate, liveness, process_table, spool, states
from tamperwatch import signals as sig
from tamperwatch.config import Config, build_inventory
from tamperwatch.correlate import HostCorrelator
from tamperwatch.explain import Span
from tamperwatch.inventory import Component, Inventory
from tamperwatch.liveness import LimitRecorder
from tamperwatch.model import Event, Evidence, Process, StateInfo
from tamperwatch.process_table import ProcessTable
from tamperwatch.render import print_text, write_blind_windows
from tamperwatch.scan import ScanResult, scan
from tamperwatch.signals import Signal
from tamperwatch.spool import EventSpool, order_key
from tamperwatch.states import StateTracker
from tamperwatch.synth import EsWriter, interactive_shell
from tamperwatch.timeutil import format_rfc3339

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
FALCOND = "/Library/CS/falcond"
FALCON_TEAM = "X9E956P446"
HOST = "limit-mac"


@pytest.fixture(scope="module")
def inventory() -> Inventory:
    return build_inventory(Config())


def run_scan(paths: list[Path], inventory: Inventory, **options: Any) -> ScanResult:
    return scan([str(p) for p in paths], host=HOST, config=Config(), inventory=inventory, **options)


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def incident_view(result: ScanResult) -> list[tuple[Any, ...]]:
    """Incidents without ids and evidence locations, which change when lines move."""
    return [
        (
            incident.host,
            incident.status,
            incident.severity,
            incident.title,
            incident.first_seen,
            incident.last_seen,
            tuple((s.kind, s.time, s.summary) for s in incident.signals),
        )
        for incident in result.incidents
    ]


def window_view(result: ScanResult) -> list[tuple[Any, ...]]:
    return [(w.host, w.start, w.end, w.reason, w.events_lost) for w in result.blind_windows]


def retimed(line: str, when: str) -> str:
    record = json.loads(line.replace("\\/", "/"))
    record["time"] = when
    return json.dumps(record)


def is_falcond_open(line: str) -> bool:
    record = json.loads(line.replace("\\/", "/"))
    return "open" in record["event"] and record["process"]["executable"]["path"] == FALCOND


def two_impairments(seed: int) -> tuple[list[str], int]:
    """Return the lines of a host with a kill at 08:00 and a bootout three hours later, and the
    index of the first line of the later part."""
    writer = EsWriter("2026-11-24T08:00:00Z", seed=seed)
    daemon = writer.spawn(FALCOND, [FALCOND], team_id=FALCON_TEAM, platform_binary=False)
    shell = interactive_shell(writer)
    writer.noise(daemon, 20)
    kill = writer.command(f"sudo kill -9 {daemon.pid}", shell=shell, keep=True)[-1]
    writer.signal(kill, daemon, 9)
    writer.exit(daemon, 9)
    daemon = writer.spawn(FALCOND, [FALCOND], team_id=FALCON_TEAM, platform_binary=False)
    writer.noise(daemon, 20)
    split = len(writer.lines())
    writer.advance(3 * 3600)
    writer.noise(daemon, 20)
    writer.command("sudo launchctl bootout system/com.crowdstrike.falcon.Agent", shell=shell)
    writer.signal(writer.launchd, daemon, 15)
    writer.exit(daemon, 15)
    writer.noise(shell, 5)
    return writer.lines(), split


# the spool ------------------------------------------------------------------------------------


def random_events(count: int, seed: int) -> list[Event]:
    """Events of three hosts with many ties in time and sequence number, each one distinct."""
    rng = random.Random(seed)
    events = []
    for line in range(1, count + 1):
        events.append(
            Event(
                time=1_795_000_000.0 + rng.randint(0, 40),
                kind="open",
                evidence=Evidence("eslogger", "t.ndjson", line),
                host=rng.choice(["a-mac", "b-mac", "c-mac"]),
                path=f"/tmp/{line}",
                global_seq_num=rng.choice([None, rng.randint(0, 5)]),
            )
        )
    return events


def test_spool_order_matches_stable_sort(tmp_path: Path) -> None:
    events = random_events(3000, seed=1)
    with EventSpool(budget=37, max_open_runs=3, directory=str(tmp_path)) as events_spool:
        for event in events:
            events_spool.add(event)
        drained = {host: list(events_spool.drain(host)) for host in events_spool.hosts()}
        assert events_spool.spilled_events > 0
        assert events_spool.merge_passes > 0
    for host, got in drained.items():
        expected = sorted((e for e in events if e.host == host), key=order_key)
        assert [e.evidence.line for e in got] == [e.evidence.line for e in expected]


def test_spool_removes_folder_on_error(tmp_path: Path) -> None:
    folder: Path | None = None
    with pytest.raises(RuntimeError), EventSpool(budget=5, directory=str(tmp_path)) as failing:
        for event in random_events(50, seed=2):
            failing.add(event)
        folder = failing.folder
        assert folder is not None
        assert any(folder.iterdir())
        raise RuntimeError("engine failed")
    assert folder is not None
    assert not folder.exists()
    assert list(tmp_path.iterdir()) == []


def test_spool_sorted_input_needs_no_merge(tmp_path: Path) -> None:
    events = sorted(random_events(3000, seed=5), key=order_key)
    with EventSpool(budget=20, max_open_runs=3, directory=str(tmp_path)) as ordered:
        for event in events:
            ordered.add(event)
        drained = {host: list(ordered.drain(host)) for host in ordered.hosts()}
        assert ordered.run_files > 3
        assert ordered.merge_passes == 0
    for host, got in drained.items():
        expected = [e for e in events if e.host == host]
        assert [e.evidence.line for e in got] == [e.evidence.line for e in expected]


def test_spool_write_failure_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class FullDisk:
        def write(self, data: bytes) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

        def close(self) -> None:
            pass

    original_init = spool._FrameWriter.__init__

    def init_on_full_disk(self: spool._FrameWriter, path: Path) -> None:
        original_init(self, path)
        self._stream.close()
        self._stream = FullDisk()  # type: ignore[assignment]

    monkeypatch.setattr(spool._FrameWriter, "__init__", init_on_full_disk)
    message = r"cannot write the temporary run file .*No space left"
    with (
        pytest.raises(OSError, match=message),
        EventSpool(budget=10, directory=str(tmp_path)) as failing,
    ):
        # The failure shows when the next spill or the merge waits for the file.
        for event in random_events(100, seed=6):
            failing.add(event)
        list(failing.drain("a-mac"))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts /proc/self/fd")
def test_spool_open_run_files_bounded(tmp_path: Path) -> None:
    max_open = 4
    with EventSpool(budget=10, max_open_runs=max_open, directory=str(tmp_path)) as bounded:
        for event in random_events(2000, seed=3):
            event.host = "a-mac"
            bounded.add(event)
        assert bounded.run_files > max_open
        baseline = len(os.listdir("/proc/self/fd"))
        peak_open = 0
        count = 0
        for _ in bounded.drain("a-mac"):
            count += 1
            peak_open = max(peak_open, len(os.listdir("/proc/self/fd")) - baseline)
    assert count == 2000
    assert peak_open <= max_open


def test_spool_drops_duplicates_across_runs(tmp_path: Path) -> None:
    events = random_events(500, seed=4)
    copies = [
        msgspec.structs.replace(e, evidence=Evidence("eslogger", "copy.ndjson", 1)) for e in events
    ]
    with EventSpool(budget=25, directory=str(tmp_path)) as deduplicating:
        for event in events + copies:
            deduplicating.add(event)
        drained = [e for host in deduplicating.hosts() for e in deduplicating.drain(host)]
        duplicates = sum(deduplicating.duplicates.values())
    assert len(drained) == 500
    assert duplicates == 500
    assert {e.evidence.file for e in drained} == {"t.ndjson"}


def test_spill_matches_memory_for_examples(
    tmp_path: Path, inventory: Inventory, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = Config()
    in_memory = scan([str(EXAMPLES)], config=config, inventory=inventory)
    spill_files: list[Path] = []
    new_file = EventSpool._new_file

    def counting_new_file(self: EventSpool) -> Path:
        path = new_file(self)
        spill_files.append(path)
        return path

    monkeypatch.setattr(EventSpool, "_new_file", counting_new_file)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    spilled = scan([str(EXAMPLES)], config=config, inventory=inventory, spool_budget=7)
    assert len(spill_files) > 10
    assert list(tmp_path.iterdir()) == []
    assert msgspec.to_builtins(spilled.incidents) == msgspec.to_builtins(in_memory.incidents)
    assert window_view(spilled) == window_view(in_memory)
    assert spilled.events_per_host == in_memory.events_per_host
    assert spilled.warnings == in_memory.warnings


# duplicates -----------------------------------------------------------------------------------


def test_same_records_twice_in_one_file(tmp_path: Path, inventory: Inventory) -> None:
    lines, _ = two_impairments(seed=11)
    once = run_scan([write_lines(tmp_path / "once.ndjson", lines)], inventory)
    twice = run_scan([write_lines(tmp_path / "twice.ndjson", lines + lines)], inventory)
    assert len(once.incidents) == 2
    assert incident_view(twice) == incident_view(once)
    assert [len(i.signals) for i in twice.incidents] == [len(i.signals) for i in once.incidents]
    assert window_view(twice) == window_view(once)
    assert twice.events_per_host == once.events_per_host
    duplicate_warnings = [w for w in twice.warnings if "read more than once" in w]
    assert duplicate_warnings == [
        f"host {HOST}: {len(lines)} records were read more than once (the same record in one "
        "file twice, or in two files) and were used once"
    ]


def test_same_records_in_two_files(tmp_path: Path, inventory: Inventory) -> None:
    lines, _ = two_impairments(seed=12)
    single = tmp_path / "single"
    single.mkdir()
    once = run_scan([write_lines(single / "eslogger.ndjson", lines)], inventory)
    doubled = tmp_path / "doubled"
    doubled.mkdir()
    first = write_lines(doubled / "eslogger.ndjson", lines)
    second = write_lines(doubled / "eslogger2.ndjson", lines)
    twice = run_scan([first, second], inventory)
    assert incident_view(twice) == incident_view(once)
    evidence_files = {e.file for i in twice.incidents for s in i.signals for e in s.evidence}
    assert evidence_files == {str(first)}
    assert window_view(twice) == window_view(once)
    assert any(f"{len(lines)} records were read more than once" in w for w in twice.warnings)


def test_example_folders_copied_twice(tmp_path: Path, inventory: Inventory) -> None:
    config = Config()
    for host in ("mbp-finance-07", "design-mac-11", "build-mac-02"):
        original = scan([str(EXAMPLES / host)], config=config, inventory=inventory, host=host)
        folder = tmp_path / host
        shutil.copytree(EXAMPLES / host, folder)
        for path in sorted(folder.iterdir()):
            shutil.copy(path, folder / f"zz-copy-{path.name}")
        doubled = scan([str(folder)], config=config, inventory=inventory, host=host)
        assert incident_view(doubled) == incident_view(original), host
        assert window_view(doubled) == window_view(original), host
        assert [len(i.signals) for i in doubled.incidents] == [
            len(i.signals) for i in original.incidents
        ], host


# time order -----------------------------------------------------------------------------------


def test_hours_out_of_order_in_one_file(tmp_path: Path, inventory: Inventory) -> None:
    lines, split = two_impairments(seed=13)
    ordered = run_scan([write_lines(tmp_path / "ordered.ndjson", lines)], inventory)
    swapped = lines[split:] + lines[:split]
    shuffled = run_scan([write_lines(tmp_path / "swapped.ndjson", swapped)], inventory)
    assert len(ordered.incidents) == 2
    assert incident_view(shuffled) == incident_view(ordered)
    assert window_view(shuffled) == window_view(ordered)
    assert [w.reason for w in ordered.blind_windows] == ["no telemetry from the host"]


def test_hours_out_of_order_across_files(tmp_path: Path, inventory: Inventory) -> None:
    lines, split = two_impairments(seed=14)
    ordered = run_scan([write_lines(tmp_path / "ordered.ndjson", lines)], inventory)
    # The later half is read first.
    later = write_lines(tmp_path / "a-later.ndjson", lines[split:])
    earlier = write_lines(tmp_path / "b-earlier.ndjson", lines[:split])
    split_result = run_scan([later, earlier], inventory)
    assert incident_view(split_result) == incident_view(ordered)
    assert window_view(split_result) == window_view(ordered)


@pytest.mark.parametrize(
    "when",
    [
        "9999-12-30T12:00:00.000000000Z",
        "1970-01-01T00:00:00.000000000Z",
        "0001-01-02T00:00:00.000000000Z",
    ],
)
def test_records_far_from_the_others(tmp_path: Path, inventory: Inventory, when: str) -> None:
    lines, split = two_impairments(seed=15)
    plain = run_scan([write_lines(tmp_path / "plain.ndjson", lines)], inventory)
    # Copies of two file events of falcond dated far away, one early and one late in the file.
    noise = [i for i, line in enumerate(lines) if is_falcond_open(line)]
    early, late = noise[0], next(i for i in noise if i > split)
    odd = [retimed(lines[early], when), retimed(lines[late], when)]
    odd_lines = [*lines[:10], odd[0], *lines[10:], odd[1]]
    result = run_scan([write_lines(tmp_path / "odd.ndjson", odd_lines)], inventory)
    assert incident_view(result) == incident_view(plain)
    assert window_view(result) == window_view(plain)
    assert (
        f"host {HOST}: 2 record(s) are dated more than a week before or after the host's other "
        "records (a wrong clock?); they were not used for silence and blind windows"
    ) in result.warnings


def test_kill_dated_year_9999_is_reported(tmp_path: Path, inventory: Inventory) -> None:
    writer = EsWriter("2026-11-24T08:00:00Z", seed=16)
    daemon = writer.spawn(FALCOND, [FALCOND], team_id=FALCON_TEAM, platform_binary=False)
    shell = interactive_shell(writer)
    writer.noise(daemon, 10)
    kill = writer.command(f"sudo kill -9 {daemon.pid}", shell=shell, keep=True)[-1]
    writer.signal(kill, daemon, 9)
    lines = writer.lines()
    lines[-1] = retimed(lines[-1], "9999-12-30T12:00:00.000000000Z")
    result = run_scan([write_lines(tmp_path / "future.ndjson", lines)], inventory)
    # The kill command at its own time, and the signal it sent dated at the end of year 9999.
    assert [i.first_seen for i in result.incidents] == [
        "2026-11-24T08:00:01.512880Z",
        "9999-12-30T12:00:00.000000Z",
    ]
    assert result.blind_windows == []
    text = io.StringIO()
    print_text(result, Console(file=text, width=200))
    assert "9999-12-30T12:00:00.000000Z" in text.getvalue()


def test_clock_jump_is_a_warning_not_a_window(tmp_path: Path, inventory: Inventory) -> None:
    writer = EsWriter("2026-11-24T08:00:00Z", seed=17)
    daemon = writer.spawn(FALCOND, [FALCOND], team_id=FALCON_TEAM, platform_binary=False)
    worker = writer.spawn("/usr/libexec/backupd", ["backupd"])
    for _ in range(30):
        writer.noise(daemon, 5)
        writer.noise(worker, 5)
        writer.advance(60)
    lines = writer.lines()
    # The last ten records come from a clock set a year ahead.
    jumped = [retimed(line, "2027-11-24T08:00:00.000000000Z") for line in lines[-10:]]
    result = run_scan([write_lines(tmp_path / "jump.ndjson", lines[:-10] + jumped)], inventory)
    assert result.incidents == []
    assert result.blind_windows == []
    assert any(w.startswith(f"host {HOST}: 10 record(s) are dated") for w in result.warnings)
    windows = io.BytesIO()
    write_blind_windows(result.blind_windows, windows)
    assert windows.getvalue() == b""


def test_clock_stuck_in_1970_at_start(tmp_path: Path, inventory: Inventory) -> None:
    writer = EsWriter("2026-11-24T08:00:00Z", seed=18)
    daemon = writer.spawn(FALCOND, [FALCOND], team_id=FALCON_TEAM, platform_binary=False)
    worker = writer.spawn("/usr/libexec/backupd", ["backupd"])
    for _ in range(6):
        writer.noise(daemon, 3)
        writer.noise(worker, 3)
        writer.advance(300)
    for _ in range(12):
        writer.noise(worker, 3)
        writer.advance(300)
    lines = writer.lines()
    plain = run_scan([write_lines(tmp_path / "plain.ndjson", lines)], inventory)
    stuck = [
        retimed(line, f"1970-01-01T00:00:{i:02d}.000000000Z") for i, line in enumerate(lines[:5])
    ]
    result = run_scan([write_lines(tmp_path / "stuck.ndjson", stuck + lines[5:])], inventory)
    silent = [i for i in result.incidents if i.signals[0].kind == "telemetry_silent"]
    assert len(silent) == 1
    assert incident_view(result) == incident_view(plain)
    assert all(w.end - w.start < 86_400 for w in result.blind_windows)
    assert any(w.startswith(f"host {HOST}: 5 record(s) are dated") for w in result.warnings)


# engine limits --------------------------------------------------------------------------------


def test_fork_storm_fills_table_and_reports_window(
    tmp_path: Path, inventory: Inventory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(process_table, "MAX_ENTRIES", 300)
    writer = EsWriter("2026-11-24T08:00:00Z", seed=19)
    daemon = writer.spawn(FALCOND, [FALCOND], team_id=FALCON_TEAM, platform_binary=False)
    admin = interactive_shell(writer, 502, user_name="opsadmin")
    script = writer.command("sh /private/tmp/run.sh", shell=interactive_shell(writer), keep=True)[
        -1
    ]
    for index in range(600):
        writer.spawn(f"/private/tmp/w{index}", [f"w{index}"], parent=script)
    kill = writer.command(f"sudo kill -9 {daemon.pid}", shell=admin, keep=True)[-1]
    writer.signal(kill, daemon, 9)
    writer.exit(daemon, 9)
    result = run_scan([write_lines(tmp_path / "storm.ndjson", writer.lines())], inventory)
    full = [w for w in result.blind_windows if w.reason.startswith("process table full")]
    assert len(full) == 1
    assert full[0].reason.endswith("process images forgotten, ancestry incomplete")
    forgotten = int(full[0].reason.split()[3].replace(",", ""))
    assert forgotten > 900
    assert len(result.incidents) == 1
    incident = result.incidents[0]
    assert incident.status == "suspicious"
    assert incident.actor is not None
    assert incident.actor.path == "/bin/kill"
    # The storm pushed login and Terminal out of the table; the shell was seen again when it
    # forked sudo, so the chain ends there.
    assert [a.path for a in incident.actor.ancestry] == ["/usr/bin/sudo", "/bin/zsh"]


def test_process_table_bound_and_args_cut() -> None:
    limits = LimitRecorder(HOST)
    table = ProcessTable(max_entries=50, limits=limits)
    parent = Process(pid=300, pidversion=1, ppid=1, path="/bin/zsh")
    for pid in range(1000, 1200):
        child = Process(pid=pid, pidversion=pid, ppid=300, parent_pidversion=1, path="/bin/w")
        table.apply(
            Event(
                time=float(pid),
                kind="fork",
                evidence=Evidence("t", "t", pid),
                process=parent,
                target=child,
            )
        )
    assert len(table) == 50
    assert limits.count(process_table.TABLE_FULL) == table.evicted

    windows = limits.windows()
    # The parent and 49 children fill the table; the 50th child evicts the first entry.
    assert [w.start for w in windows] == [1049.0]
    assert windows[0].end == 1199.0

    image = Process(
        pid=1199, pidversion=5000, ppid=300, path="/bin/echo", args=["echo", "x" * 40_000]
    )
    table.apply(
        Event(
            time=2000.0, kind="exec", evidence=Evidence("t", "t", 1), process=parent, target=image
        )
    )
    entry = table.latest(1199)
    assert entry is not None
    assert entry.args is not None
    assert sum(map(len, entry.args)) == process_table.MAX_ARGS_CHARS
    assert limits.count(process_table.ARGS_CUT) == 1


def falcon(inventory: Inventory) -> Component:
    component = inventory.get("crowdstrike-falcon")
    assert component is not None
    return component


def kill_signal(component: Component, when: float, line: int, *, pid: int | None = None) -> Signal:
    return Signal(
        sig.PROCESS_KILLED,
        when,
        component,
        f"SIGKILL sent to falcond[{pid or line}]",
        [Evidence("eslogger", "t.ndjson", line)],
        action=False,
        target_pid=pid or line,
    )


def correlator(inventory: Inventory, limits: LimitRecorder) -> HostCorrelator:
    return HostCorrelator(
        HOST,
        inventory,
        ProcessTable(),
        window=300.0,
        burst_threshold=3,
        flood_threshold=1000,
        limits=limits,
    )


def test_incident_signal_limit(inventory: Inventory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(correlate, "MAX_SIGNALS_PER_INCIDENT", 5)
    limits = LimitRecorder(HOST)
    grouping = correlator(inventory, limits)
    for line in range(1, 21):
        grouping.add(kill_signal(falcon(inventory), 1_795_000_000.0 + line, line))
    # A new kind of signal still joins: it can change the verdict.
    crash = Signal(
        sig.CRASHED,
        1_795_000_015.0,
        falcon(inventory),
        "falcond crashed",
        [Evidence("crash", "c.ips", 1)],
        action=False,
    )
    grouping.add(crash)
    incidents = grouping.finish()
    assert len(incidents) == 1
    assert len(incidents[0].signals) == 6
    assert incidents[0].signals[-1].kind == "crashed"
    # The last signal counted, although not listed, still ends the incident.
    assert incidents[0].last_seen == format_rfc3339(1_795_000_020.0)
    assert limits.count(correlate.SIGNALS_DROPPED, "crowdstrike-falcon") == 15


def test_incident_and_open_limits(inventory: Inventory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(correlate, "MAX_INCIDENTS_PER_HOST", 20)
    monkeypatch.setattr(correlate, "MAX_OPEN_INCIDENTS", 4)
    limits = LimitRecorder(HOST)
    grouping = correlator(inventory, limits)
    for index in range(30):
        component = Component(
            id=f"es-client:tool{index}",
            product=f"tool{index}",
            vendor="unknown",
            category="es-client",
        )
        grouping.add(kill_signal(component, 1_795_000_000.0 + index, index + 1))
    incidents = grouping.finish()
    assert len(incidents) == 20
    assert (
        sum(limits.count(correlate.INCIDENTS_DROPPED, f"es-client:tool{i}") for i in range(20, 30))
        == 10
    )
    assert limits.count(correlate.CLOSED_EARLY) == 16


def test_evidence_limit_per_signal(inventory: Inventory) -> None:
    limits = LimitRecorder(HOST)
    grouping = correlator(inventory, limits)
    for line in range(1, 101):
        grouping.add(kill_signal(falcon(inventory), 1_795_000_000.0 + line / 10, line, pid=4242))
    incidents = grouping.finish()
    assert len(incidents[0].signals) == 1
    assert len(incidents[0].signals[0].evidence) == correlate.MAX_EVIDENCE_PER_SIGNAL
    assert (
        limits.count(correlate.EVIDENCE_DROPPED, "crowdstrike-falcon")
        == 100 - correlate.MAX_EVIDENCE_PER_SIGNAL
    )


def test_span_limit(inventory: Inventory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(correlate, "MAX_SPANS", 3)
    limits = LimitRecorder(HOST)
    grouping = correlator(inventory, limits)
    for index in range(5):
        grouping.add_span(Span(float(index), float(index), "host shutdown"))
    assert len(grouping.spans) == 3
    assert limits.count(correlate.SPANS_DROPPED) == 2


def test_flood_tracker_group_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(correlate, "MAX_FLOOD_GROUPS", 10)
    limits = LimitRecorder(HOST)
    flood = correlate.FloodTracker(300.0, limits)
    for pid in range(100, 130):
        process = Process(pid=pid, group_id=pid)
        flood.add(
            Event(
                time=1_795_000_000.5, kind="fork", evidence=Evidence("t", "t", pid), process=process
            )
        )
    assert limits.count(correlate.FLOOD_POOLED) == 20
    top = flood.top(1_795_000_001.0)
    assert top is not None
    assert top[2] == 30


def test_blind_window_limit(
    tmp_path: Path, inventory: Inventory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(liveness, "MAX_BLIND_WINDOWS", 3)
    writer = EsWriter("2026-11-24T08:00:00Z", seed=20)
    worker = writer.spawn("/usr/libexec/backupd", ["backupd"])
    for _ in range(7):
        writer.noise(worker, 2)
        writer.advance(2 * 3600)
    writer.noise(worker, 2)
    result = run_scan([write_lines(tmp_path / "gaps.ndjson", writer.lines())], inventory)
    reasons = [w.reason for w in result.blind_windows]
    assert reasons.count("no telemetry from the host") == 3
    assert "blind window limit: 4 more blind windows of this host merged into this one" in reasons


def launchd_row(label: str, line: int) -> Event:
    return Event(
        time=1_795_000_000.0 + line,
        kind="state",
        evidence=Evidence("launchctl", "launchctl.txt", line),
        state=StateInfo(
            subject="launchd_job",
            name=label,
            state="running",
            pid=500 + line,
            detail="submitted by smd",
        ),
    )


def test_state_tables_bounded(inventory: Inventory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(states, "MAX_TRACKED_STATES", 5)
    limits = LimitRecorder(HOST)
    tracker = StateTracker(inventory, 3600.0, limits=limits)
    for line in range(12):
        tracker.evaluate(launchd_row(f"ABCDE12345.com.example.ext{line}", line))
    assert len(tracker._job_status) == 5
    assert limits.count(states.STATES_DROPPED) == 7


def test_unknown_console_names_counted(
    tmp_path: Path, inventory: Inventory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tamperwatch import engine

    monkeypatch.setattr(engine, "MAX_UNKNOWN_NAMES", 2)
    rows = ["host,time,agent,status"] + [
        f"{HOST},2026-11-24T08:{minute:02d}:00Z,Agent {minute % 4},healthy" for minute in range(8)
    ]
    csv = tmp_path / "checkins.csv"
    csv.write_text("\n".join(rows) + "\n")
    result = scan([str(csv)], config=Config(), inventory=inventory)
    named = [w for w in result.warnings if "which fits no single component" in w]
    assert len(named) == 2
    assert named[0].startswith(f"host {HOST}: 2 check-in or health records name 'Agent 0'")
    assert (
        f"host {HOST}: 4 more check-in or health records name components that fit none; only "
        "the first 2 names are listed"
    ) in result.warnings


def test_clock_step_back_is_warned(tmp_path: Path, inventory: Inventory) -> None:
    lines, split = two_impairments(seed=18)
    stepped = []
    for line in lines[split:]:
        record = json.loads(line.replace("\\/", "/"))
        moment = datetime.fromisoformat(record["time"][:26] + "+00:00") - timedelta(days=3)
        stepped.append(retimed(line, moment.strftime("%Y-%m-%dT%H:%M:%S.%f000Z")))
    path = write_lines(tmp_path / "stepped.ndjson", [*lines[:split], *stepped])
    result = run_scan([path], inventory)
    warning = next(w for w in result.warnings if "clock probably stepped back" in w)
    assert warning.startswith(f"host {HOST}: ")
    assert f"{path}:1 before {path}:" in warning
    assert warning.startswith(f"host {HOST}: {split} record(s) are numbered before")
    plain = run_scan([write_lines(tmp_path / "plain.ndjson", lines)], inventory)
    assert not any("stepped back" in w for w in plain.warnings)
