"""End-to-end tests of ``tamperwatch scan``: exit codes, output formats, hosts and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tamperwatch import cli
from tamperwatch.synth import EsWriter, interactive_shell

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_cli(
    *args: str, stdin: bytes | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "tamperwatch", *args],
        input=stdin,
        capture_output=True,
        cwd=cwd,
        timeout=120,
        check=False,
    )


def kill_capture(path: Path, *, process_name: str = "kill") -> Path:
    writer = EsWriter("2026-11-22T08:00:00Z", seed=3)
    daemon = writer.spawn(
        "/Library/CS/falcond", ["/Library/CS/falcond"], team_id="X9E956P446", platform_binary=False
    )
    shell = interactive_shell(writer)
    kill = writer.command(f"sudo {process_name} -9 {daemon.pid}", shell=shell, keep=True)[-1]
    writer.signal(kill, daemon, 9)
    writer.exit(daemon, 9)
    writer.write_to(path)
    return path


def quiet_capture(path: Path) -> Path:
    writer = EsWriter("2026-11-22T08:00:00Z", seed=4)
    shell = interactive_shell(writer)
    writer.command("ls -l /Library/LaunchDaemons", shell=shell)
    writer.command("launchctl list", shell=shell)
    writer.write_to(path)
    return path


def test_examples_exit_one_with_all_scenarios() -> None:
    result = run_cli("scan", str(EXAMPLES), "--format", "jsonl")
    assert result.returncode == 1, result.stderr.decode()
    incidents = [json.loads(line) for line in result.stdout.splitlines()]
    by_host = {
        incident["host"]: incident for incident in incidents if incident["host"] != "ops-mac-05"
    }
    mixed = [incident for incident in incidents if incident["host"] == "ops-mac-05"]
    assert len(mixed) == 2
    assert all(incident["status"] == "suspicious" for incident in mixed)
    assert set(by_host) == {"mbp-finance-07", "build-mac-02", "design-mac-11", "it-mac-03"}
    assert by_host["it-mac-03"]["status"] == "explained"
    assert by_host["mbp-finance-07"]["actor"]["path"] == "/bin/launchctl"
    assert by_host["build-mac-02"]["actor"]["path"] == "/Users/dana/bin/fsstorm"
    assert "crash burst" in by_host["design-mac-11"]["title"]
    assert b"Inputs" in result.stderr


def test_incident_ids_are_stable_across_runs() -> None:
    first = run_cli("scan", str(EXAMPLES), "--format", "jsonl").stdout
    second = run_cli("scan", str(EXAMPLES), "--format", "jsonl").stdout
    assert [json.loads(line)["id"] for line in first.splitlines()] == [
        json.loads(line)["id"] for line in second.splitlines()
    ]


def test_incident_record_fields(tmp_path: Path) -> None:
    capture = kill_capture(tmp_path / "es.ndjson")
    result = run_cli("scan", str(capture), "--host", "lab-mac", "--format", "jsonl")
    incident = json.loads(result.stdout.splitlines()[0])
    assert set(incident) == {
        "id", "host", "first_seen", "last_seen", "status", "explanation", "severity", "title",
        "components", "signals", "actor", "attack",
    }  # fmt: skip
    assert incident["host"] == "lab-mac"
    assert incident["first_seen"].endswith("Z")
    assert incident["components"] == [
        {"id": "crowdstrike-falcon", "product": "CrowdStrike Falcon", "vendor": "CrowdStrike"}
    ]
    assert incident["attack"]["analytic"] == "AN2040"
    assert "T1685" in incident["attack"]["techniques"]
    evidence = incident["signals"][0]["evidence"][0]
    assert evidence["source"] == "eslogger"
    assert evidence["line"] >= 1
    assert [a["path"] for a in incident["actor"]["ancestry"]][:2] == ["/usr/bin/sudo", "/bin/zsh"]


def test_clean_input_exits_zero(tmp_path: Path) -> None:
    capture = quiet_capture(tmp_path / "es.ndjson")
    result = run_cli("scan", str(capture), "--host", "lab-mac")
    assert result.returncode == 0, result.stderr.decode()
    assert b"0 incident(s)" in result.stdout


def test_missing_path_exits_two(tmp_path: Path) -> None:
    result = run_cli("scan", str(tmp_path / "nope.ndjson"))
    assert result.returncode == 2
    assert b"no such file or folder" in result.stderr
    assert b"Traceback" not in result.stderr


def test_unreadable_file_exits_two(tmp_path: Path) -> None:
    quiet_capture(tmp_path / "es.ndjson")
    (tmp_path / "gone.ndjson").symlink_to(tmp_path / "deleted-capture.ndjson")
    result = run_cli("scan", str(tmp_path), "--host", "lab-mac")
    assert result.returncode == 2
    assert b"gone.ndjson: cannot read" in result.stdout


def test_folder_links_are_named_not_followed(tmp_path: Path) -> None:
    (tmp_path / "alpha").mkdir()
    quiet_capture(tmp_path / "alpha" / "a.ndjson")
    (tmp_path / "alpha" / "loop").symlink_to(tmp_path)
    result = run_cli("scan", str(tmp_path))
    assert result.returncode == 0
    assert b"symbolic link to a folder, not followed" in result.stdout


def test_invalid_config_exits_two(tmp_path: Path) -> None:
    config = tmp_path / "tw.yaml"
    config.write_text("crash_burst_threshold: -4\n")
    capture = quiet_capture(tmp_path / "es.ndjson")
    result = run_cli("scan", str(capture), "--config", str(config))
    assert result.returncode == 2
    assert b"crash_burst_threshold" in result.stderr
    assert b"tw.yaml" in result.stderr


def test_stdin_and_output_file(tmp_path: Path) -> None:
    capture = kill_capture(tmp_path / "es.ndjson")
    out = tmp_path / "incidents.jsonl"
    result = run_cli(
        "scan",
        "-",
        "--host",
        "piped-mac",
        "--format",
        "jsonl",
        "--output",
        str(out),
        stdin=capture.read_bytes(),
    )
    assert result.returncode == 1
    assert result.stdout == b""
    lines = out.read_text().splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0])["host"] == "piped-mac"


def test_records_without_host_are_warned_about(tmp_path: Path) -> None:
    capture = kill_capture(tmp_path / "es.ndjson")
    result = run_cli("scan", str(capture), "--format", "jsonl")
    assert json.loads(result.stdout.splitlines()[0])["host"] == "(unknown host)"
    assert b"carry no host name" in result.stderr


def test_collection_subfolders_name_hosts(tmp_path: Path) -> None:
    (tmp_path / "alpha").mkdir()
    (tmp_path / "beta").mkdir()
    kill_capture(tmp_path / "alpha" / "a.ndjson")
    quiet_capture(tmp_path / "beta" / "b.ndjson")
    result = run_cli("scan", str(tmp_path), "--format", "jsonl")
    hosts = {json.loads(line)["host"] for line in result.stdout.splitlines()}
    assert hosts == {"alpha"}
    assert b"carry no host name" not in result.stderr


def test_bad_lines_are_reported_with_location(tmp_path: Path) -> None:
    capture = kill_capture(tmp_path / "es.ndjson")
    lines = capture.read_bytes().splitlines(keepends=True)
    damaged = [*lines[:3], b"\x00\xffgarbage{\n", *lines[3:], lines[-1][:40]]
    capture.write_bytes(b"".join(damaged))
    result = run_cli("scan", str(capture), "--host", "lab-mac")
    assert result.returncode == 1
    text = result.stdout.decode()
    assert "es.ndjson:4:" in text
    assert f"es.ndjson:{len(damaged)}:" in text
    assert "Traceback" not in result.stderr.decode()


def test_unknown_format_is_named(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("shopping list\nmilk\n")
    (tmp_path / "empty.log").write_bytes(b"")
    result = run_cli("scan", str(tmp_path), "--host", "lab-mac")
    assert result.returncode == 2
    text = result.stdout.decode()
    assert "not a recognised telemetry format" in text
    assert "empty file" in text
    assert b"no telemetry record could be read" in result.stderr


def test_zstd_input_is_named(tmp_path: Path) -> None:
    packed = tmp_path / "es.ndjson.zst"
    # A zstd frame magic number, then bytes that are never decoded.
    packed.write_bytes(b"\x28\xb5\x2f\xfd\x04\x58" + bytes(range(64)))
    result = run_cli("scan", str(packed), "--host", "lab-mac")
    assert result.returncode == 2
    assert b"zstd-compressed, which this version does not read" in result.stdout


def test_byte_order_mark_is_skipped(tmp_path: Path) -> None:
    capture = kill_capture(tmp_path / "es.ndjson")
    capture.write_bytes(b"\xef\xbb\xbf" + capture.read_bytes())
    result = run_cli("scan", str(capture), "--host", "lab-mac", "--format", "jsonl")
    assert result.returncode == 1
    assert len(result.stdout.splitlines()) == 1


def test_host_option_inside_a_collection_is_explained(tmp_path: Path) -> None:
    (tmp_path / "alpha").mkdir()
    kill_capture(tmp_path / "alpha" / "a.ndjson")
    result = run_cli("scan", str(tmp_path), "--host", "other", "--format", "jsonl")
    assert json.loads(result.stdout.splitlines()[0])["host"] == "alpha"
    assert b"--host other applies only to files outside host subfolders" in result.stderr


def test_es_client_outside_the_catalog_is_reported(tmp_path: Path) -> None:
    report = tmp_path / "guard.crash"
    report.write_text(
        "Process:             com.example.guard.extension [1239]\n"
        "Path:                /Library/SystemExtensions/*/com.example.guard.extension\n"
        "Identifier:          com.example.guard.extension\n"
        "Parent Process:      launchd [1]\n"
        "Exception Type:    EXC_CRASH (SIGKILL)\n"
        "Date/Time:           2026-11-22 23:10:06.0659 +0000\n"
        "Termination Reason:  Namespace ENDPOINTSECURITY, Code 2, EndpointSecurity client terminated "
        "because it failed to respond to a message before its deadline\n"
    )
    result = run_cli("scan", str(report), "--host", "lab-mac", "--format", "jsonl")
    assert result.returncode == 1
    incident = json.loads(result.stdout.splitlines()[0])
    assert incident["components"][0]["id"] == "es-client:com.example.guard.extension"
    assert incident["signals"][0]["kind"] == "es_client_terminated"


def test_escape_sequences_never_reach_the_terminal(tmp_path: Path) -> None:
    hostile = "kill\x1b]0;pwned\x07\x1b[2J"
    capture = kill_capture(tmp_path / "es.ndjson")
    text = capture.read_text().replace('"kill"', json.dumps(hostile))
    capture.write_text(text)
    result = run_cli("scan", str(capture), "--host", "lab-mac")
    output = result.stdout.decode()
    assert "\x1b" not in output
    assert "\x07" not in output
    assert "\\x1b" in output


def test_rich_markup_in_telemetry_printed_literally(tmp_path: Path) -> None:
    hostile = "[link=https://example.invalid]kill[/link][bold red]x"
    capture = kill_capture(tmp_path / "es.ndjson")
    text = capture.read_text().replace('"kill"', json.dumps(hostile))
    capture.write_text(text)
    result = run_cli("scan", str(capture), "--host", "lab-mac")
    output = result.stdout.decode()
    assert hostile in output
    assert "\x1b]8;" not in output


def test_verbose_log_lines_neutralise_names(tmp_path: Path) -> None:
    host_folder = tmp_path / "collection" / "lab\x1b]0;pwned\x07\u202emac"
    host_folder.mkdir(parents=True)
    kill_capture(host_folder / "es.ndjson")
    result = run_cli("scan", str(tmp_path / "collection"), "-vv", "--format", "jsonl")
    errors = result.stderr.decode()
    assert "records read" in errors
    assert "\x1b" not in errors
    assert "\x07" not in errors
    assert "\u202e" not in errors
    assert "lab\\x1b]0;pwned" in errors


def test_version_and_help() -> None:
    assert run_cli("--version").stdout.startswith(b"tamperwatch ")
    help_text = run_cli("scan", "--help").stdout.decode()
    assert "--format" in help_text
    assert "--host" in help_text


def test_usage_error_exits_two() -> None:
    result = run_cli("scan", "--format", "xml", str(EXAMPLES))
    assert result.returncode == 2


def test_closed_pipe_keeps_the_scan_status(tmp_path: Path) -> None:
    for target, expected in ((str(quiet_capture(tmp_path / "es.ndjson")), 0), (str(EXAMPLES), 1)):
        process = subprocess.Popen(
            [sys.executable, "-m", "tamperwatch", "scan", target, "--host", "lab-mac"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert process.stdout is not None
        process.stdout.readline()
        process.stdout.close()
        assert process.wait(timeout=120) == expected


def test_ecs_format_writes_one_document_per_incident() -> None:
    result = run_cli("scan", str(EXAMPLES), "--format", "ecs")
    assert result.returncode == 1
    documents = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(documents) == 6
    assert {document["event"]["kind"] for document in documents} == {"alert"}


@pytest.mark.parametrize("command", ["scan", "report"])
def test_scan_storage_failure_is_clear(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    def failing_scan(*args: object, **kwargs: object) -> None:
        raise OSError("cannot write the temporary run file /tmp/x.run: No space left on device")

    monkeypatch.setattr(cli, "scan", failing_scan)
    arguments = [command, str(EXAMPLES)]
    if command == "report":
        arguments += ["--html", str(tmp_path / "r.html")]
    result = CliRunner().invoke(cli.app, arguments)
    assert result.exit_code == 2
    assert "error: scan failed: cannot write the temporary run file" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
