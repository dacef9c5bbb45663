"""An agent that keeps reporting its health while one of its event sources has died."""

from __future__ import annotations

import json
from pathlib import Path

from tamperwatch.config import Config, build_inventory
from tamperwatch.scan import scan

START = 1795168800  # 2026-11-20T10:00:00Z


def result_line(name: str, moment: int, columns: dict[str, str]) -> str:
    return json.dumps(
        {
            "name": name,
            "hostIdentifier": "fleet-mac-19",
            "calendarTime": "Fri Nov 20 10:00:00 2026 UTC",
            "unixTime": str(moment),
            "epoch": "0",
            "counter": "0",
            "decorations": {"hostname": "fleet-mac-19"},
            "columns": columns,
            "action": "added",
        }
    )


def osquery_log(path: Path, events_stop_after_minutes: int, minutes: int = 90) -> Path:
    lines = []
    sequence = 1
    for minute in range(minutes):
        moment = START + minute * 60
        lines.append(
            result_line(
                "pack_health_osquery_info",
                moment,
                {
                    "pid": "512",
                    "uuid": "6A1C2B3D-0000-4000-8000-000000000019",
                    "instance_id": "b1f0",
                    "version": "5.14.1",
                    "config_hash": "9f2e",
                    "start_time": str(START - 3600),
                    "watcher": "511",
                },
            )
        )
        if minute < events_stop_after_minutes:
            for offset in range(3):
                lines.append(
                    result_line(
                        "pack_process_events",
                        moment,
                        {
                            "event_type": "exec",
                            "pid": str(4000 + sequence),
                            "parent": "1",
                            "path": "/usr/libexec/xpcproxy",
                            "cmdline": "xpcproxy com.apple.mdworker.shared",
                            "cmdline_count": "2",
                            "signing_id": "com.apple.xpcproxy",
                            "team_id": "",
                            "platform_binary": "1",
                            "seq_num": str(sequence),
                            "global_seq_num": str(sequence),
                            "time": str(moment + offset),
                            "uid": "0",
                            "euid": "0",
                            "exit_code": "",
                            "child_pid": "",
                        },
                    )
                )
                sequence += 1
    path.write_text("\n".join(lines) + "\n")
    return path


def test_osquery_event_table_dies(tmp_path: Path) -> None:
    config = Config()
    result = scan(
        [str(osquery_log(tmp_path / "osquery.log", 40))],
        config=config,
        inventory=build_inventory(config),
    )
    silent = [i for i in result.incidents if i.signals[0].kind == "telemetry_silent"]
    assert [i.components[0].id for i in silent] == ["osquery/es_process_events"]
    assert silent[0].host == "fleet-mac-19"


def test_osquery_event_table_alive(tmp_path: Path) -> None:
    config = Config()
    result = scan(
        [str(osquery_log(tmp_path / "osquery.log", 90))],
        config=config,
        inventory=build_inventory(config),
    )
    assert result.incidents == []
