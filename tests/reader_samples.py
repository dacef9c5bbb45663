"""Small valid files of every reader's format, for the robustness tests.

Each :class:`Sample` is a file of a few records that the tests damage. Every record carries a
number of its own (in a pid, a label or a host name), and :meth:`Sample.record_index` finds that
number again in the event the record became. A test can then tell which records survived a
damaged neighbour.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from tamperwatch.model import Event
from tamperwatch.readers import READERS
from tamperwatch.readers.base import FileStats, ReadContext, Reader

RECORDS = 5
HOST = "tw-lab-mini-03"
# 2026-12-03 07:41:05 UTC, the time of the first record; record i is i seconds later.
BASE_EPOCH = 1_796_283_665
SNAPSHOT_TIME = "2026-12-03T07:41:05Z"


def reader_named(description: str) -> Reader:
    """Return the reader of :data:`READERS` whose description is ``description``."""
    return next(reader for reader in READERS if reader.description == description)


@dataclass(frozen=True)
class Sample:
    """A valid file: ``header`` lines, one chunk of lines per record, then ``footer`` lines.

    ``json_records`` is set for formats whose records are JSON objects, so that tests can edit
    the decoded objects. ``index_of`` maps an event to the number of the record it came from.
    """

    name: str
    reader: Reader
    file_name: str
    records: tuple[bytes, ...]
    index_of: Callable[[Event], int | None]
    header: bytes = b""
    footer: bytes = b""
    json_records: bool = False

    def data(self, records: tuple[bytes, ...] | None = None) -> bytes:
        return self.header + b"".join(self.records if records is None else records) + self.footer

    def record_index(self, event: Event) -> int | None:
        return self.index_of(event)


def read_bytes(
    reader: Reader, data: bytes, file: str = "sample.txt", host: str | None = None
) -> tuple[list[Event], FileStats]:
    """Read ``data`` with ``reader`` as a file named ``file``; return the events and counts."""
    stats = FileStats(file)
    context = ReadContext(stats, host=host, file_mtime=float(BASE_EPOCH))
    events = list(reader.read(io.BytesIO(data), context))
    return events, stats


def line_count(data: bytes) -> int:
    """Return the number of lines of a file, counting a last line without a newline."""
    return data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)


def located_problems(stats: FileStats, data: bytes) -> list[str]:
    """List the warnings that name another file or a line outside ``data`` (0 is the file)."""
    lines = line_count(data)
    return [
        f"{warning.file}:{warning.line}: {warning.message}"
        for warning in stats.warnings
        if warning.file != stats.file or not 0 <= warning.line <= lines
    ]


def _numbered(pattern: str, base: int) -> Callable[[str | None], int | None]:
    compiled = re.compile(pattern)

    def index(text: str | None) -> int | None:
        match = compiled.fullmatch(text or "")
        return None if match is None else int(match[1]) - base

    return index


def _pid_index(base: int) -> Callable[[Event], int | None]:
    def index(event: Event) -> int | None:
        process = event.process
        if process is None or not base <= process.pid < base + RECORDS:
            return None
        return process.pid - base

    return index


def _state_index(pattern: str, base: int = 0) -> Callable[[Event], int | None]:
    number = _numbered(pattern, base)

    def index(event: Event) -> int | None:
        return None if event.state is None else number(event.state.name)

    return index


def _host_index(event: Event) -> int | None:
    return _numbered(r"tw-fleet-(\d+)", 0)(event.host)


def _json_line(value: object) -> bytes:
    # eslogger and log write "/" as "\/", like NSJSONSerialization.
    return json.dumps(value, separators=(",", ":")).replace("/", "\\/").encode() + b"\n"


def _iso(offset: int, fraction: str = ".250000000") -> str:
    minute, second = divmod(5 + offset, 60)
    return f"2026-12-03T07:{41 + minute:02d}:{second:02d}{fraction}Z"


# --- eslogger ------------------------------------------------------------------------------------


def _audit_token(pid: int, pidversion: int) -> dict[str, int]:
    return {
        "auid": 502,
        "euid": 0,
        "egid": 0,
        "ruid": 0,
        "rgid": 0,
        "pid": pid,
        "asid": 100_211,
        "pidversion": pidversion,
    }


def es_process(pid: int, path: str) -> dict[str, object]:
    """An ``es_process_t`` as eslogger prints it on macOS 15."""
    return {
        "audit_token": _audit_token(pid, pid * 3),
        "parent_audit_token": _audit_token(733, 2199),
        "responsible_audit_token": _audit_token(733, 2199),
        "ppid": 733,
        "original_ppid": 733,
        "group_id": pid,
        "session_id": 733,
        "codesigning_flags": 570_522_385,
        "is_platform_binary": True,
        "is_es_client": False,
        "signing_id": "com.apple." + path.rsplit("/", 1)[-1],
        "team_id": None,
        "cdhash": "9C0F3E6A1B2D4C5E6F708192A3B4C5D6E7F80912",
        "start_time": "2026-12-03T07:40:59.000000Z",
        "tty": {"path": "/dev/ttys002", "path_truncated": False},
        "executable": {"path": path, "path_truncated": False},
    }


def es_exec(index: int, path: str = "/bin/launchctl") -> dict[str, object]:
    """An eslogger exec message whose acting process has pid ``5100 + index``."""
    pid = 5100 + index
    return {
        "schema_version": 1,
        "version": 9,
        "time": _iso(index),
        "mach_time": 48_213_377_001 + index,
        "seq_num": 40 + index,
        "global_seq_num": 900 + index,
        "event_type": 9,
        "action_type": 1,
        "action": {"result": {"result_type": 0, "result": {"auth": 0}}},
        "thread": {"thread_id": 77_001},
        "process": es_process(pid, "/bin/zsh"),
        "event": {
            "exec": {
                "target": es_process(pid, path),
                "args": ["launchctl", "print", f"system/com.example.job{index}"],
                "cwd": {"path": "/Users/ops", "path_truncated": False},
            }
        },
    }


def eslogger_line(index: int, path: str = "/bin/launchctl") -> bytes:
    return _json_line(es_exec(index, path))


ESLOGGER = Sample(
    name="eslogger",
    reader=reader_named("Endpoint Security JSON lines (eslogger, Jamf Protect telemetry)"),
    file_name="es.ndjson",
    records=tuple(eslogger_line(index) for index in range(RECORDS)),
    index_of=_pid_index(5100),
    json_records=True,
)


# --- osquery -------------------------------------------------------------------------------------


def osquery_process_row(index: int, name: str | None = None) -> dict[str, object]:
    """An osquery differential result line of the processes table, pid ``6100 + index``."""
    return {
        "name": "pack_tw_processes",
        "hostIdentifier": HOST,
        "calendarTime": "Thu Dec  3 07:41:05 2026 UTC",
        "unixTime": BASE_EPOCH + index,
        "epoch": 0,
        "counter": 12 + index,
        "numerics": False,
        "decorations": {"host_uuid": "3E7C1A90-55B2-4D0E-8F61-2B9A0C4D7E15"},
        "columns": {
            "pid": str(6100 + index),
            "name": name or f"agentd{index}",
            "path": f"/Library/Tamper Lab/agentd{index}",
            "state": "R",
            "cmdline": f"/Library/Tamper Lab/agentd{index} --daemon",
        },
        "action": "added",
    }


def _osquery_index(event: Event) -> int | None:
    state = event.state
    if state is None or state.pid is None or not 6100 <= state.pid < 6100 + RECORDS:
        return None
    return state.pid - 6100


OSQUERY = Sample(
    name="osquery",
    reader=reader_named("osquery results and status log, JSON lines"),
    file_name="osqueryd.results.log",
    records=tuple(_json_line(osquery_process_row(index)) for index in range(RECORDS)),
    index_of=_osquery_index,
    json_records=True,
)


# --- unified log ---------------------------------------------------------------------------------


def log_record(index: int, image: str = "/usr/libexec/tamperlabd", message: str = "") -> object:
    """One ``log show --style ndjson`` object of process ``7100 + index``."""
    return {
        "traceID": 88_001_234_567 + index,
        "eventMessage": message or f"policy check {index} passed",
        "eventType": "logEvent",
        "source": None,
        "formatString": "%{public}s",
        "activityIdentifier": 0,
        "subsystem": "com.example.tamperlab",
        "category": "policy",
        "threadID": 61_234,
        "senderImageUUID": "A1B2C3D4-E5F6-4711-8899-AABBCCDDEEFF",
        "bootUUID": "",
        "processImagePath": image,
        "timestamp": f"2026-12-03 08:41:{5 + index:02d}.000100+0100",
        "senderImagePath": image,
        "machTimestamp": 48_213_377_001 + index,
        "messageType": "Default",
        "processImageUUID": "A1B2C3D4-E5F6-4711-8899-AABBCCDDEEFF",
        "processID": 7100 + index,
        "senderProgramCounter": 2048,
        "parentActivityIdentifier": 0,
        "timezoneName": "",
    }


UNIFIED_NDJSON = Sample(
    name="unifiedlog-ndjson",
    reader=reader_named("unified log, log show/stream --style ndjson or --style json"),
    file_name="unified.ndjson",
    records=tuple(_json_line(log_record(index)) for index in range(RECORDS)),
    index_of=_pid_index(7100),
    json_records=True,
)

UNIFIED_TEXT_HEADER = (
    "Timestamp                       Thread     Type        Activity             PID    TTL  "
)


def unified_text_row(index: int, process: str = "tamperlabd", message: str = "") -> bytes:
    """One default-style ``log show`` row of process ``7200 + index``."""
    text = message or f"policy check {index} passed"
    return (
        f"2026-12-03 08:41:{5 + index:02d}.000100+0100 0x1e2f     Default     0x0"
        f"                  {7200 + index:<6} 0    {process}: [com.example.tamperlab:policy] "
        f"{text}\n"
    ).encode()


UNIFIED_TEXT = Sample(
    name="unifiedlog-text",
    reader=reader_named("unified log, log show/stream default or compact text style"),
    file_name="unified.log",
    header=(UNIFIED_TEXT_HEADER + "\n").encode(),
    records=tuple(unified_text_row(index) for index in range(RECORDS)),
    index_of=_pid_index(7200),
)


# --- crash reports -------------------------------------------------------------------------------


def ips_parts(
    process: str = "tamperlab-esext", path: str | None = None
) -> tuple[dict[str, object], dict[str, object]]:
    """Return the header and body of an ``.ips`` report of an ES client killed for a missed
    deadline."""
    path = path or f"/Library/SystemExtensions/0A1B/{process}.systemextension/{process}"
    header: dict[str, object] = {
        "app_name": process,
        "timestamp": "2026-12-03 07:41:06.00 +0000",
        "app_version": "2.1",
        "build_version": "210",
        "bug_type": "309",
        "os_version": "macOS 15.5 (24F74)",
        "incident_id": "5E6F7A8B-9C0D-4E1F-8A2B-3C4D5E6F7A8B",
        "name": process,
    }
    body: dict[str, object] = {
        "captureTime": "2026-12-03 07:41:05.9120 +0000",
        "pid": 5901,
        "procName": process,
        "procPath": path,
        "parentPid": 1,
        "codeSigningTeamID": "TWLAB12345",
        "codeSigningID": "com.example.tamperlab.esext",
        "bundleInfo": {"CFBundleIdentifier": "com.example.tamperlab.esext"},
        "exception": {"type": "EXC_CRASH", "signal": "SIGKILL"},
        "termination": {
            "namespace": "ENDPOINTSECURITY",
            "code": 2,
            "indicator": "client did not respond in time",
            "byProc": "endpointsecurityd",
            "byPid": 301,
        },
        "threads": [{"id": 7001, "frames": [{"imageOffset": 512, "imageIndex": 0}]}],
    }
    return header, body


def render_ips(header: object, body: object) -> bytes:
    """Write an ``.ips`` file in Apple's layout: a one-line header, then the body with one
    top-level member a line."""
    if not isinstance(body, dict):
        return (json.dumps(header) + "\n" + json.dumps(body) + "\n").encode()
    members = [f'  "{key}" : {json.dumps(value)}' for key, value in body.items()]
    return (json.dumps(header) + "\n{\n" + ",\n".join(members) + "\n}\n").encode()


def ips_report(process: str = "tamperlab-esext", path: str | None = None) -> bytes:
    return render_ips(*ips_parts(process, path))


def crash_text_report(process: str = "tamperlab-esext", path: str | None = None) -> bytes:
    """A pre-macOS-12 text crash report of the same ES client."""
    path = path or f"/Library/SystemExtensions/0A1B/{process}.systemextension/{process}"
    return (
        f"Process:               {process} [5902]\n"
        f"Path:                  {path}\n"
        "Identifier:            com.example.tamperlab.esext\n"
        "Version:               2.1 (210)\n"
        "Parent Process:        launchd [1]\n"
        "Date/Time:             2026-12-03 07:41:06.120 +0000\n"
        "OS Version:            macOS 11.7.10 (20G1427)\n"
        "Exception Type:        EXC_CRASH (SIGKILL)\n"
        "Termination Reason:    Namespace ENDPOINTSECURITY, Code 2\n"
        "\n"
        "Thread 0 Crashed:\n"
        "0   libsystem_kernel.dylib        0x00007ff8000a1b2c mach_msg_trap + 10\n"
        "\n"
        "Binary Images:\n"
        "0x100000000 - 0x100ffffff tamperlab-esext (2.1) /Library/SystemExtensions/0A1B\n"
    ).encode()


def _crash_index(event: Event) -> int | None:
    return 0 if event.kind == "crash" else None


IPS = Sample(
    name="crash-ips",
    reader=reader_named("crash report, .ips (JSON header and body)"),
    file_name="tamperlab-esext.ips",
    records=(ips_report(),),
    index_of=_crash_index,
)

CRASH_TEXT = Sample(
    name="crash-text",
    reader=reader_named("crash report, translated or legacy text"),
    file_name="tamperlab-esext.crash",
    records=(crash_text_report(),),
    index_of=_crash_index,
)


# --- snapshots -----------------------------------------------------------------------------------

SYSEXT_COLUMNS = "enabled\tactive\tteamID\tbundleID (version)\tname\t[state]"


def sysext_row(index: int, name: str | None = None) -> bytes:
    return (
        f"*\t*\tTWLAB12345\tcom.example.tamperlab.ext{index} (2.1/210)\t"
        f"{name or f'Tamper Lab {index}'}\t[activated enabled]\n"
    ).encode()


SYSEXT = Sample(
    name="sysextctl",
    reader=reader_named("systemextensionsctl list snapshot"),
    file_name="sysext.txt",
    header=(
        f"# time: {SNAPSHOT_TIME}\n{RECORDS} extension(s)\n"
        f"--- com.apple.system_extension.endpoint_security\n{SYSEXT_COLUMNS}\n"
    ).encode(),
    records=tuple(sysext_row(index) for index in range(RECORDS)),
    index_of=_state_index(r"com\.example\.tamperlab\.ext(\d+)"),
)


def launchctl_list_row(index: int, label: str | None = None) -> bytes:
    return f"{8100 + index}\t0\t{label or f'com.example.tamperlab.job{index}'}\n".encode()


LAUNCHCTL_LIST = Sample(
    name="launchctl-list",
    reader=reader_named("launchctl list snapshot"),
    file_name="launchctl-list.txt",
    header=f"# time: {SNAPSHOT_TIME}\nPID\tStatus\tLabel\n".encode(),
    records=tuple(launchctl_list_row(index) for index in range(RECORDS)),
    index_of=_state_index(r"com\.example\.tamperlab\.job(\d+)"),
)


def launchctl_print_block(index: int, label: str | None = None, program: str = "") -> bytes:
    label = label or f"com.example.tamperlab.svc{index}"
    program = program or f"/Library/Tamper Lab/svc{index}"
    return (
        f"system/{label} = {{\n"
        "\tactive count = 1\n"
        f"\tpath = /Library/LaunchDaemons/{label}.plist\n"
        "\ttype = LaunchDaemon\n"
        "\tstate = running\n"
        f"\tprogram = {program}\n"
        "\targuments = {\n"
        f"\t\t{program}\n"
        "\t}\n"
        f"\truns = {index + 1}\n"
        f"\tpid = {8200 + index}\n"
        "\tlast exit code = (never exited)\n"
        "}\n"
    ).encode()


LAUNCHCTL_PRINT = Sample(
    name="launchctl-print",
    reader=reader_named("launchctl print snapshot"),
    file_name="launchctl-print.txt",
    header=f"# time: {SNAPSHOT_TIME}\n".encode(),
    records=tuple(launchctl_print_block(index) for index in range(RECORDS)),
    index_of=_state_index(r"com\.example\.tamperlab\.svc(\d+)"),
)


# --- check-ins -----------------------------------------------------------------------------------


def checkin_csv_row(index: int, host: str | None = None) -> bytes:
    return f"{host or f'tw-fleet-{index}'},Santa,{_iso(index, '')},online\n".encode()


CHECKINS_CSV = Sample(
    name="checkins-csv",
    reader=reader_named("management-plane check-ins, CSV or JSON lines"),
    file_name="checkins.csv",
    header=b"hostname,agent,last_seen,status\n",
    records=tuple(checkin_csv_row(index) for index in range(RECORDS)),
    index_of=_host_index,
)


def checkin_object(index: int, host: str | None = None) -> dict[str, object]:
    return {
        "hostname": host or f"tw-fleet-{index}",
        "agent": "Santa",
        "last_seen": _iso(index, ""),
        "status": "online",
    }


CHECKINS_JSON = Sample(
    name="checkins-json",
    reader=CHECKINS_CSV.reader,
    file_name="checkins.ndjson",
    records=tuple(_json_line(checkin_object(index)) for index in range(RECORDS)),
    index_of=_host_index,
    json_records=True,
)


SAMPLES: tuple[Sample, ...] = (
    ESLOGGER,
    OSQUERY,
    UNIFIED_NDJSON,
    UNIFIED_TEXT,
    IPS,
    CRASH_TEXT,
    SYSEXT,
    LAUNCHCTL_LIST,
    LAUNCHCTL_PRINT,
    CHECKINS_CSV,
    CHECKINS_JSON,
)

# Samples whose records are lines or blocks of lines, several to a file.
LINE_SAMPLES: tuple[Sample, ...] = tuple(sample for sample in SAMPLES if len(sample.records) > 1)


def used_indexes(sample: Sample, events: list[Event]) -> set[int]:
    """Return the record numbers that the events came from."""
    found: set[int] = set()
    for event in events:
        index = sample.record_index(event)
        if index is not None:
            found.add(index)
    return found


def json_paths(
    value: object, prefix: tuple[str | int, ...] = ()
) -> Iterator[tuple[str | int, ...]]:
    """Yield the path of every member and item inside a decoded JSON value."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield (*prefix, key)
            yield from json_paths(item, (*prefix, key))
    elif isinstance(value, list):
        for position, item in enumerate(value):
            yield (*prefix, position)
            yield from json_paths(item, (*prefix, position))
