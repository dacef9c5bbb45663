"""Tests of liveness: silent components, host-wide gaps, dropped events and clock jumps."""

from __future__ import annotations

import json
from pathlib import Path

from tamperwatch.config import Config, build_inventory
from tamperwatch.scan import ScanResult, scan
from tamperwatch.synth import EsWriter, SynthProcess

FALCON_TEAM = "X9E956P446"


def run(tmp_path: Path, writer: EsWriter, **settings: float) -> ScanResult:
    capture = tmp_path / "capture.ndjson"
    writer.write_to(capture)
    config = Config(**settings)  # type: ignore[arg-type]
    return scan([str(capture)], host="live-mac", config=config, inventory=build_inventory(config))


def busy_host(writer: EsWriter) -> tuple[SynthProcess, SynthProcess]:
    daemon = writer.spawn(
        "/Library/CS/falcond", ["/Library/CS/falcond"], team_id=FALCON_TEAM, platform_binary=False
    )
    worker = writer.spawn("/usr/libexec/backupd", ["backupd"])
    return daemon, worker


def test_component_silent_while_host_reports(tmp_path: Path) -> None:
    writer = EsWriter("2026-11-23T09:00:00Z", seed=20)
    daemon, worker = busy_host(writer)
    for _ in range(6):
        writer.noise(daemon, 3)
        writer.noise(worker, 3)
        writer.advance(300)
    for _ in range(12):
        writer.noise(worker, 3)
        writer.advance(300)
    result = run(tmp_path, writer, telemetry_gap_threshold=1800.0)
    silent = [i for i in result.incidents if i.signals[0].kind == "telemetry_silent"]
    assert len(silent) == 1
    assert silent[0].components[0].id == "crowdstrike-falcon"
    assert silent[0].status == "suspicious"
    windows = [w for w in result.blind_windows if w.component == "crowdstrike-falcon"]
    assert len(windows) == 1
    assert "until the input ended" in windows[0].reason


def test_silence_ends_when_the_component_returns(tmp_path: Path) -> None:
    writer = EsWriter("2026-11-23T09:00:00Z", seed=21)
    daemon, worker = busy_host(writer)
    writer.noise(daemon, 2)
    for _ in range(10):
        writer.noise(worker, 3)
        writer.advance(300)
    writer.noise(daemon, 2)
    result = run(tmp_path, writer, telemetry_gap_threshold=1800.0)
    silent = [i for i in result.incidents if i.signals[0].kind == "telemetry_silent"]
    assert len(silent) == 1
    assert "came back" in silent[0].signals[0].summary
    assert len(silent[0].signals[0].evidence) == 3


def test_whole_host_quiet_is_a_blind_window_only(tmp_path: Path) -> None:
    writer = EsWriter("2026-11-23T09:00:00Z", seed=22)
    daemon, worker = busy_host(writer)
    writer.noise(daemon, 2)
    writer.noise(worker, 2)
    writer.advance(4 * 3600)
    writer.noise(worker, 2)
    writer.noise(daemon, 2)
    result = run(tmp_path, writer, telemetry_gap_threshold=1800.0)
    assert not [i for i in result.incidents if i.signals[0].kind == "telemetry_silent"]
    assert [w.reason for w in result.blind_windows] == ["no telemetry from the host"]


def test_input_ending_is_not_silence(tmp_path: Path) -> None:
    writer = EsWriter("2026-11-23T09:00:00Z", seed=23)
    daemon, worker = busy_host(writer)
    writer.noise(daemon, 2)
    writer.advance(600)
    writer.noise(worker, 2)
    result = run(tmp_path, writer, telemetry_gap_threshold=1800.0)
    assert result.incidents == []
    assert result.blind_windows == []


def test_dropped_events_become_a_blind_window(tmp_path: Path) -> None:
    writer = EsWriter("2026-11-23T09:00:00Z", seed=24)
    _, worker = busy_host(writer)
    writer.noise(worker, 5)
    writer.drop("open", 37)
    writer.noise(worker, 5)
    result = run(tmp_path, writer)
    lost = [w for w in result.blind_windows if w.events_lost is not None]
    assert len(lost) == 1
    assert lost[0].events_lost == 37
    assert "lost 37 events" in lost[0].reason


def test_future_clock_does_not_silence_others(tmp_path: Path) -> None:
    writer = EsWriter("2026-11-23T09:00:00Z", seed=25)
    daemon, worker = busy_host(writer)
    writer.noise(daemon, 2)
    writer.noise(worker, 2)
    capture = tmp_path / "capture.ndjson"
    writer.write_to(capture)
    lines = capture.read_text().splitlines()
    future = json.loads(lines[-1].replace("\\/", "/"))
    future["time"] = "2031-01-01T00:00:00.000000000Z"
    lines.append(json.dumps(future))
    capture.write_text("\n".join(lines) + "\n")
    config = Config(telemetry_gap_threshold=1800.0)
    result = scan([str(capture)], host="live-mac", config=config, inventory=build_inventory(config))
    assert result.incidents == []
    assert result.blind_windows == []


def test_type_sequence_gap_without_global_numbers(tmp_path: Path) -> None:
    writer = EsWriter("2026-11-23T09:00:00Z", seed=27)
    _, worker = busy_host(writer)
    writer.noise(worker, 5)
    writer.drop("open", 12)
    writer.noise(worker, 5)
    capture = tmp_path / "capture.ndjson"
    writer.write_to(capture)
    stripped = []
    for line in capture.read_text().splitlines():
        record = json.loads(line)
        record.pop("global_seq_num", None)
        stripped.append(json.dumps(record))
    capture.write_text("\n".join(stripped) + "\n")
    config = Config()
    result = scan([str(capture)], host="live-mac", config=config, inventory=build_inventory(config))
    lost = [w for w in result.blind_windows if w.events_lost is not None]
    assert [(w.events_lost, w.reason) for w in lost] == [
        (12, "the Endpoint Security client lost 12 events of type open")
    ]


def test_late_record_fills_its_sequence_gap(tmp_path: Path) -> None:
    writer = EsWriter("2026-11-23T09:00:00Z", seed=28)
    _, worker = busy_host(writer)
    writer.noise(worker, 6)
    capture = tmp_path / "capture.ndjson"
    writer.write_to(capture)
    lines = capture.read_text().splitlines()
    moved = json.loads(lines[4].replace("\\/", "/"))
    moved["time"] = "2026-11-23T09:00:30.000000000Z"
    lines[4] = json.dumps(moved)
    capture.write_text("\n".join(lines) + "\n")
    config = Config()
    result = scan([str(capture)], host="live-mac", config=config, inventory=build_inventory(config))
    assert [w for w in result.blind_windows if w.events_lost] == []
