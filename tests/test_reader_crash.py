"""Tests of the crash-report readers on hand-written ``.ips`` files and text reports."""

from __future__ import annotations

import io
import json
import os
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tamperwatch.model import Event
from tamperwatch.readers import crash as crash_module
from tamperwatch.readers.base import SNIFF_BYTES, FileStats, ReadContext, Reader
from tamperwatch.readers.crash import CrashTextReader, IpsReader

IPS = IpsReader()
TEXT = CrashTextReader()

ESEXT_PATH = (
    "/Library/SystemExtensions/5D0C7E21-3A4B-4C5D-8E9F-0A1B2C3D4E5F/"
    "com.northwind.edr.esext.systemextension/Contents/MacOS/com.northwind.edr.esext"
)
DEADLINE_TEXT = (
    "EndpointSecurity client terminated because it failed to respond to a message before its "
    "deadline"
)


def epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def run(reader: Reader, path: Path) -> tuple[list[Event], FileStats]:
    stats = FileStats(str(path))
    with path.open("rb") as source:
        events = list(reader.read(source, ReadContext(stats, host="mbp-lisbon-02")))
    return events, stats


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def ips_header(**changes: object) -> dict[str, object]:
    header: dict[str, object] = {
        "app_name": "com.northwind.edr.esext",
        "timestamp": "2026-11-20 14:02:11.00 +0000",
        "app_version": "7.3",
        "slice_uuid": "6f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0",
        "build_version": "7301",
        "platform": 1,
        "bundleID": "com.northwind.edr.esext",
        "share_with_app_devs": 0,
        "is_first_party": 0,
        "bug_type": "309",
        "os_version": "macOS 15.4 (24E248)",
        "incident_id": "0C1D2E3F-4A5B-4C6D-8E7F-901A2B3C4D5E",
        "name": "com.northwind.edr.esext",
    }
    header.update(changes)
    return header


def ips_body(**changes: object) -> dict[str, object]:
    body: dict[str, object] = {
        "uptime": 5400,
        "procRole": "Unspecified",
        "version": 2,
        "userID": 0,
        "captureTime": "2026-11-20 14:02:10.8812 +0000",
        "incident": "0C1D2E3F-4A5B-4C6D-8E7F-901A2B3C4D5E",
        "pid": 808,
        "cpuType": "ARM-64",
        "procName": "com.northwind.edr.esext",
        "procPath": ESEXT_PATH,
        "bundleInfo": {
            "CFBundleShortVersionString": "7.3",
            "CFBundleVersion": "7301",
            "CFBundleIdentifier": "com.northwind.edr.esext",
        },
        "parentProc": "launchd",
        "parentPid": 1,
        "codeSigningID": "com.northwind.edr.esext",
        "codeSigningTeamID": "NW4TEAM123",
        "exception": {
            "codes": "0x0, 0x0",
            "rawCodes": [0, 0],
            "type": "EXC_CRASH",
            "signal": "SIGKILL",
        },
        "termination": {
            "flags": 6,
            "code": 2,
            "namespace": "ENDPOINTSECURITY",
            "indicator": DEADLINE_TEXT,
            "byProc": "endpointsecurityd",
            "byPid": 312,
        },
        "asi": {"libsystem_c.dylib": ["first note", "second note"]},
        "threads": [{"id": 5150, "frames": [{"imageOffset": 1024, "imageIndex": 0}] * 5}] * 4,
    }
    body.update(changes)
    return body


def ips_text(header: dict[str, object], body: dict[str, object] | None) -> str:
    first = json.dumps(header, separators=(",", ":"))
    if body is None:
        return first + "\n"
    # Apple's layout: two-space indent, "key" : value, nested objects on one line.
    members = [
        f'  "{key}" : {json.dumps(value, separators=(",", ":"))}' for key, value in body.items()
    ]
    return first + "\n{\n" + ",\n".join(members) + "\n}"


def test_ips_es_client_killed(tmp_path: Path) -> None:
    path = write(tmp_path, "esext.ips", ips_text(ips_header(), ips_body()))

    events, stats = run(IPS, path)

    assert stats.read == 1
    assert stats.used == 1
    assert stats.warnings == []
    (event,) = events
    assert event.kind == "crash"
    assert event.time == pytest.approx(epoch("2026-11-20T14:02:10.8812+00:00"))
    assert event.host == "mbp-lisbon-02"
    assert event.evidence.source == "crash"
    assert event.evidence.line == 1
    assert event.target is None
    process = event.process
    assert process is not None
    assert process.pid == 808
    assert process.ppid == 1
    assert process.path == ESEXT_PATH
    assert process.name == "com.northwind.edr.esext"
    assert process.team_id == "NW4TEAM123"
    assert process.signing_id == "com.northwind.edr.esext"
    info = event.crash
    assert info is not None
    assert info.process_name == "com.northwind.edr.esext"
    assert info.bundle_id == "com.northwind.edr.esext"
    assert info.version == "7.3 (7301)"
    assert info.exception_type == "EXC_CRASH"
    assert info.signal == "SIGKILL"
    assert info.namespace == "ENDPOINTSECURITY"
    assert info.code == 2
    assert info.indicator == DEADLINE_TEXT
    assert info.by_process == "endpointsecurityd"
    assert info.by_pid == 312
    assert info.team_id == "NW4TEAM123"
    assert info.bug_type == "309"
    assert info.application_specific == "first note\nsecond note"


def test_ips_hex_code_string(tmp_path: Path) -> None:
    termination = {"code": "0x4", "namespace": "SIGNAL", "indicator": "Illegal instruction: 4"}
    path = write(tmp_path, "hex.ips", ips_text(ips_header(), ips_body(termination=termination)))

    events, _ = run(IPS, path)

    assert events[0].crash is not None
    assert events[0].crash.code == 4


def test_ips_header_only_is_used_with_warning(tmp_path: Path) -> None:
    path = write(tmp_path, "header.ips", ips_text(ips_header(), None))

    events, stats = run(IPS, path)

    assert stats.used == 1
    assert "truncated report" in stats.warnings[0].message
    (event,) = events
    assert event.time == pytest.approx(epoch("2026-11-20T14:02:11+00:00"))
    assert event.process is None
    assert event.crash is not None
    assert event.crash.process_name == "com.northwind.edr.esext"
    assert event.crash.version == "7.3 (7301)"


def test_ips_header_only_without_name_is_skipped(tmp_path: Path) -> None:
    header = ips_header()
    del header["app_name"]
    del header["name"]
    path = write(tmp_path, "nameless.ips", ips_text(header, None))

    events, stats = run(IPS, path)

    assert events == []
    assert stats.read == 1
    assert stats.skipped["truncated report"] == 1


def test_ips_cut_body_keeps_leading_members(tmp_path: Path) -> None:
    text = ips_text(ips_header(), ips_body())
    cut = text[: text.index('"threads"') + 30]
    path = write(tmp_path, "cut.ips", cut)

    events, stats = run(IPS, path)

    assert stats.used == 1
    assert any("truncated report" in warning.message for warning in stats.warnings)
    (event,) = events
    assert event.time == pytest.approx(epoch("2026-11-20T14:02:10.8812+00:00"))
    assert event.process is not None
    assert event.process.pid == 808
    assert event.crash is not None
    assert event.crash.namespace == "ENDPOINTSECURITY"
    assert event.crash.code == 2


def test_ips_not_a_crash_report(tmp_path: Path) -> None:
    path = write(tmp_path, "stackshot.ips", ips_text(ips_header(bug_type="288"), {"x": 1}))

    events, stats = run(IPS, path)

    assert events == []
    assert stats.read == 1
    assert stats.skipped["not a crash report (bug_type 288)"] == 1


def test_ips_bug_type_from_body_when_header_lacks_it(tmp_path: Path) -> None:
    header = ips_header()
    del header["bug_type"]
    crash_path = write(tmp_path, "crash.ips", ips_text(header, ips_body(bug_type="309")))
    other_path = write(tmp_path, "other.ips", ips_text(header, ips_body(bug_type="298")))

    crash_events, _ = run(IPS, crash_path)
    other_events, other_stats = run(IPS, other_path)

    assert len(crash_events) == 1
    assert crash_events[0].crash is not None
    assert crash_events[0].crash.bug_type == "309"
    assert other_events == []
    assert other_stats.skipped["not a crash report (bug_type 298)"] == 1


def test_ips_wrong_field_type_drops_only_that_field(tmp_path: Path) -> None:
    path = write(tmp_path, "typed.ips", ips_text(ips_header(), ips_body(pid="808")))

    events, stats = run(IPS, path)

    assert stats.used == 1
    assert events[0].process is None
    assert events[0].crash is not None
    assert events[0].crash.namespace == "ENDPOINTSECURITY"
    assert any("invalid field pid" in warning.message for warning in stats.warnings)


def test_ips_invalid_header(tmp_path: Path) -> None:
    path = write(tmp_path, "broken.ips", '{"app_name":"x","bug_type":"309", oops\n{}')

    events, stats = run(IPS, path)

    assert events == []
    assert stats.skipped["invalid JSON"] == 1


def test_ips_capture_time_missing_uses_header_time(tmp_path: Path) -> None:
    body = ips_body()
    del body["captureTime"]
    path = write(tmp_path, "notime.ips", ips_text(ips_header(), body))

    events, _ = run(IPS, path)

    assert events[0].time == pytest.approx(epoch("2026-11-20T14:02:11+00:00"))


def test_ips_too_large_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(crash_module, "MAX_REPORT_BYTES", 200)
    path = write(tmp_path, "big.ips", ips_text(ips_header(), ips_body()))

    events, stats = run(IPS, path)

    assert events == []
    assert stats.read == 1
    assert stats.skipped["report too large"] == 1


LEGACY_REPORT = """\
Process:               edragent [4242]
Path:                  /Library/Application Support/Northwind/edragent
Identifier:            edragent
Version:               6.9.1
Code Type:             X86-64 (Native)
Parent Process:        launchd [1]
User ID:               0

Date/Time:             2026-11-20 08:44:19.512 -0800
OS Version:            Mac OS X 10.15.7 (19H15)
Report Version:        12

Exception Type:        EXC_BAD_ACCESS (SIGSEGV)
Exception Codes:       KERN_INVALID_ADDRESS at 0x0000000000000010
Exception Note:        EXC_CORPSE_NOTIFY

Termination Signal:    Segmentation fault: 11
Termination Reason:    Namespace SIGNAL, Code 0xb
Terminating Process:   exc handler [4242]

Application Specific Information:
policy engine: rule table corrupt
reloading from disk

Thread 0 Crashed:: Dispatch queue: com.apple.main-thread
0   edragent                      0x000000010a1b2c3d 0x10a1b0000 + 11325

Binary Images:
0x10a1b0000 - 0x10a1fffff +edragent (6.9.1) <0A1B2C3D> /Library/Application Support/Northwind/edragent
"""


def test_legacy_text_report(tmp_path: Path) -> None:
    path = write(tmp_path, "edragent.crash", LEGACY_REPORT)

    events, stats = run(TEXT, path)

    assert TEXT.sniff(path.read_bytes())
    assert stats.used == 1
    assert stats.warnings == []
    (event,) = events
    assert event.time == pytest.approx(epoch("2026-11-20T08:44:19.512-08:00"))
    assert event.evidence.line == 1
    assert event.process is not None
    assert event.process.pid == 4242
    assert event.process.ppid == 1
    assert event.process.name == "edragent"
    assert event.process.path == "/Library/Application Support/Northwind/edragent"
    info = event.crash
    assert info is not None
    assert info.bundle_id == "edragent"
    assert info.version == "6.9.1"
    assert info.exception_type == "EXC_BAD_ACCESS"
    assert info.signal == "SIGSEGV"
    assert info.namespace == "SIGNAL"
    assert info.code == 11
    assert info.indicator == "Segmentation fault: 11"
    assert info.by_process == "exc handler"
    assert info.by_pid == 4242
    assert info.application_specific == "policy engine: rule table corrupt\nreloading from disk"


TRANSLATED_REPORT = f"""\
-------------------------------------
Translated Report (Full Report Below)
-------------------------------------

Process:               com.northwind.edr.esext [808]
Path:                  {ESEXT_PATH}
Identifier:            com.northwind.edr.esext
Version:               7.3 (7301)
Code Type:             ARM-64 (Native)
Parent Process:        launchd [1]
User ID:               0

Date/Time:             2026-11-20 14:02:10.8812 +0000
OS Version:            macOS 15.4 (24E248)

Exception Type:        EXC_CRASH (SIGKILL)
Exception Codes:       0x0000000000000000, 0x0000000000000000

Termination Reason:    Namespace ENDPOINTSECURITY, Code 2, {DEADLINE_TEXT}

Thread 0:
0   libsystem_kernel.dylib        0x0000000190a1b2c4 mach_msg2_trap + 8


-----------
Full Report
-----------

{{"app_name":"other","timestamp":"2020-01-01 00:00:00.00 +0000","bug_type":"309"}}
{{
  "procName" : "other",
  "pid" : 1
}}
"""


def test_translated_report_ignores_full_report(tmp_path: Path) -> None:
    path = write(tmp_path, "esext.txt", TRANSLATED_REPORT)

    events, stats = run(TEXT, path)

    assert TEXT.sniff(path.read_bytes())
    assert stats.used == 1
    assert stats.warnings == []
    (event,) = events
    assert event.time == pytest.approx(epoch("2026-11-20T14:02:10.8812+00:00"))
    assert event.process is not None
    assert event.process.pid == 808
    assert event.process.name == "com.northwind.edr.esext"
    info = event.crash
    assert info is not None
    assert info.namespace == "ENDPOINTSECURITY"
    assert info.code == 2
    assert info.indicator == DEADLINE_TEXT
    assert info.signal == "SIGKILL"
    assert info.version == "7.3 (7301)"


def test_termination_reason_without_comma_after_code(tmp_path: Path) -> None:
    report = TRANSLATED_REPORT.replace("Code 2, Endpoint", "Code 2 Endpoint")
    path = write(tmp_path, "nocomma.txt", report)

    events, _ = run(TEXT, path)

    assert events[0].crash is not None
    assert events[0].crash.code == 2
    assert events[0].crash.indicator == DEADLINE_TEXT


def test_text_report_without_date_is_skipped(tmp_path: Path) -> None:
    report = LEGACY_REPORT.replace("Date/Time:             2026-11-20 08:44:19.512 -0800\n", "")
    path = write(tmp_path, "nodate.crash", report)

    events, stats = run(TEXT, path)

    assert events == []
    assert stats.read == 1
    assert stats.skipped["missing timestamp"] == 1


def test_text_report_cut_mid_line_warns_with_line(tmp_path: Path) -> None:
    report = LEGACY_REPORT[: LEGACY_REPORT.index("reloading from") + 6]
    path = write(tmp_path, "cut.crash", report)

    events, stats = run(TEXT, path)

    assert stats.used == 1
    assert events[0].crash is not None
    assert events[0].crash.code == 11
    assert stats.warnings[0].line == report.count("\n") + 1
    assert "truncated report" in stats.warnings[0].message


def test_ips_109_with_text_body(tmp_path: Path) -> None:
    header = ips_header(app_name="edragent", name="edragent", bug_type="109")
    path = write(tmp_path, "legacy.ips", json.dumps(header) + "\n" + LEGACY_REPORT)

    events, stats = run(IPS, path)

    assert stats.used == 1
    assert events[0].crash is not None
    assert events[0].crash.bug_type == "109"
    assert events[0].crash.signal == "SIGSEGV"
    assert events[0].time == pytest.approx(epoch("2026-11-20T08:44:19.512-08:00"))


def test_crash_sniff() -> None:
    ips = ips_text(ips_header(), ips_body()).encode()

    assert IPS.sniff(ips)
    assert not IPS.sniff(b'{"timestamp":"2026-11-20 09:15:30.1+0100","eventMessage":"x"}\n')
    assert not IPS.sniff(LEGACY_REPORT.encode())
    assert TEXT.sniff(LEGACY_REPORT.encode())
    assert TEXT.sniff(TRANSLATED_REPORT.encode())
    assert not TEXT.sniff(ips)
    assert not TEXT.sniff(b"Process: something without a pid\n")


# --- damaged input -----------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    sample=st.sampled_from(["ips", "legacy", "translated"]),
    cut=st.floats(min_value=0.0, max_value=1.0),
    noise=st.binary(max_size=12),
)
def test_damaged_report_is_counted_not_raised(sample: str, cut: float, noise: bytes) -> None:
    reader, text = {
        "ips": (IPS, ips_text(ips_header(), ips_body())),
        "legacy": (TEXT, LEGACY_REPORT),
        "translated": (TEXT, TRANSLATED_REPORT),
    }[sample]
    data = text.encode()
    position = int(len(data) * cut)
    damaged = data[:position] + noise
    stats = FileStats("damaged")

    events = list(reader.read(io.BytesIO(damaged), ReadContext(stats)))

    assert len(events) <= 1
    assert stats.read == 1
    assert stats.used == len(events)
    assert stats.read == stats.used + sum(stats.skipped.values())


# --- real samples ------------------------------------------------------------------------------

CORPUS_ENV = "TAMPERWATCH_REAL_CORPUS"


def test_real_crash_reports() -> None:
    root = os.environ.get(CORPUS_ENV)
    if not root:
        pytest.skip(f"{CORPUS_ENV} is not set; point it at a folder of real samples")
    files = sorted(path for path in (Path(root) / "ips").iterdir() if path.is_file())
    assert files, f"no files in {Path(root) / 'ips'}"
    for path in files:
        head = path.read_bytes()[:SNIFF_BYTES]
        readers = [reader for reader in (IPS, TEXT) if reader.sniff(head)]
        assert len(readers) == 1, path.name
        events, stats = run(readers[0], path)
        assert len(events) == 1, path.name
        if "TRUNCATED" in path.name:
            assert stats.warnings, path.name
