"""Tests of the unified-log impairment patterns: packaged entries, user files and limits."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tamperwatch.logpatterns import (
    MAX_CACHED_PROCESSES,
    MAX_MESSAGE_CHARS,
    SIGNALS,
    LogMatch,
    LogPatternError,
    LogPatterns,
    load_log_patterns,
)
from tamperwatch.model import Event, Evidence, Process
from tamperwatch.readers.base import FileStats, ReadContext
from tamperwatch.readers.unifiedlog import UnifiedLogNdjsonReader

PATTERNS = load_log_patterns()


def log_event(process: str | None, message: str, subsystem: str | None = None) -> Event:
    return Event(
        time=1_795_000_000.0,
        kind="log",
        evidence=Evidence("unifiedlog", "test.ndjson", 1),
        process=None if process is None else Process(pid=77, name=process),
        message=message,
        subsystem=subsystem,
    )


def matches(process: str | None, message: str, subsystem: str | None = None) -> list[LogMatch]:
    return PATTERNS.match(log_event(process, message, subsystem))


# (pattern id, process, subsystem, message, expected fields)
POSITIVE = [
    (
        "launchd-job-killed",
        "launchd",
        None,
        "[system/com.northwind.edr.agent [4242]:] exited due to SIGKILL | sent by "
        "launchctl[5150], ran for 93211ms",
        {
            "label": "com.northwind.edr.agent",
            "pid": "4242",
            "signal_name": "SIGKILL",
            "sender_name": "launchctl",
            "sender_pid": "5150",
        },
    ),
    (
        "launchd-job-killed",
        "launchd",
        None,
        "(com.northwind.edr.agent[4242]): Service exited due to SIGTERM | sent by killall[6001]",
        {
            "label": "com.northwind.edr.agent",
            "pid": "4242",
            "signal_name": "SIGTERM",
            "sender_name": "killall",
            "sender_pid": "6001",
        },
    ),
    (
        "launchd-job-killed",
        "launchd",
        None,
        "[gui/502/com.northwind.edr.ui [913]:] exited due to SIGKILL, ran for 10ms",
        {"label": "com.northwind.edr.ui", "pid": "913", "signal_name": "SIGKILL"},
    ),
    (
        "launchd-job-crashed",
        "launchd",
        None,
        "[user/502/com.northwind.edr.helper [914]:] exited due to SIGSEGV, ran for 50ms",
        {"label": "com.northwind.edr.helper", "pid": "914", "signal_name": "SIGSEGV"},
    ),
    (
        "launchd-job-crashed",
        "launchd",
        None,
        "[pid/4242/com.northwind.xpc [915]:] exited due to SIGABRT | sent by edrxpc[915]",
        {
            "label": "com.northwind.xpc",
            "pid": "915",
            "signal_name": "SIGABRT",
            "sender_name": "edrxpc",
            "sender_pid": "915",
        },
    ),
    (
        "launchd-job-exit-status",
        "launchd",
        None,
        "[system/com.northwind.edr.agent [4242]:] exited due to exit(78), ran for 120ms",
        {"label": "com.northwind.edr.agent", "pid": "4242", "code": "78"},
    ),
    (
        "launchd-job-exit-status",
        "launchd",
        None,
        "(com.northwind.edr.agent[4242]): Service exited with abnormal code: 1",
        {"label": "com.northwind.edr.agent", "pid": "4242", "code": "1"},
    ),
    (
        "launchd-es-client-timeout",
        "launchd",
        None,
        "[system/NW4TEAM123.com.northwind.edr.esext [808]:] exited with exit reason "
        "(namespace: 27 code: 0x2) - EndpointSecurity client terminated, ran for 19001ms",
        {
            "label": "NW4TEAM123.com.northwind.edr.esext",
            "pid": "808",
            "namespace": "27",
            "code": "0x2",
        },
    ),
    (
        "launchd-bootout",
        "launchd",
        None,
        "[system/com.northwind.edr.agent]: Service bootout initiated by: "
        "launchctl[6021]<-zsh[5990]<-sshd[5901]",
        {"label": "com.northwind.edr.agent", "sender_name": "launchctl", "sender_pid": "6021"},
    ),
    (
        "launchd-respawn-throttled",
        "launchd",
        None,
        "(com.northwind.edr.agent): Service only ran for 2 seconds. Pushing respawn out by 8 "
        "seconds.",
        {"label": "com.northwind.edr.agent"},
    ),
    (
        "launchd-sigterm-timeout",
        "launchd",
        None,
        "[system/com.northwind.edr.agent [4242]:] Service did not exit 5 seconds after SIGTERM. "
        "Sending SIGKILL.",
        {"label": "com.northwind.edr.agent", "pid": "4242"},
    ),
    (
        "launchd-spawned",
        "launchd",
        None,
        "(system/com.northwind.edr.agent [4300]) Successfully spawned edragent[4300] because "
        "keepalive",
        {"label": "com.northwind.edr.agent", "pid": "4300", "process_name": "edragent"},
    ),
    (
        "reportcrash-fatal-report",
        "ReportCrash",
        None,
        "Formulating fatal 309 report for corpse[3131] edragent",
        {"pid": "3131", "process_name": "edragent"},
    ),
    (
        "sysextd-duplicate-active",
        "sysextd",
        None,
        "Fatal error: Activate found 2 extensions in active state, ID: com.northwind.edr.esext,  "
        'teamID("NW4TEAM123")',
        {"bundle_id": "com.northwind.edr.esext"},
    ),
    (
        "sysextd-realize",
        "sysextd",
        None,
        "attempting to realize extension with identifier com.northwind.edr.esext",
        {"bundle_id": "com.northwind.edr.esext"},
    ),
    (
        "sysextd-state-change",
        "sysextd",
        None,
        "extension NW4TEAM123 com.northwind.edr.esext (7.3/7301) advancing state from "
        "activated_enabled to terminating_for_uninstall_via_delegate",
        {
            "bundle_id": "com.northwind.edr.esext",
            "state": "terminating_for_uninstall_via_delegate",
        },
    ),
    (
        "sysextd-state-change",
        "sysextd",
        None,
        "com.northwind.edr.netext: now [terminated waiting to uninstall on reboot]",
        {
            "bundle_id": "com.northwind.edr.netext",
            "state": "terminated waiting to uninstall on reboot",
        },
    ),
    (
        "endpointsecurityd-client-terminated",
        "endpointsecurityd",
        None,
        "Client com.northwind.edr.esext (pid 808) terminated: no response before deadline",
        {},
    ),
    (
        "endpointsecurityd-deadline",
        "endpointsecurityd",
        None,
        "es client 808 missed deadline for AUTH_EXEC",
        {},
    ),
    (
        "networkextension-filter-disabled",
        "nesessionmanager",
        None,
        "NEFilterManager: content filter com.northwind.edr.netext disabled by user",
        {},
    ),
    (
        "santa-deadline-deny",
        "com.google.santa.daemon",
        "com.google.santa.daemon",
        "SNTEndpointSecurityClient: deadline reached: deny pid=412, event type: 1 ret=0",
        {"pid": "412", "code": "1"},
    ),
    (
        "lulu-uninstall-confirmed",
        "LuLu",
        "com.objective-see.lulu",
        "user confirmed uninstall",
        {},
    ),
    (
        "lulu-extension-deactivated",
        "LuLu",
        "com.objective-see.lulu",
        "toggling extension (action: 0)",
        {"state": "0"},
    ),
    (
        "osquery-es-publisher-disabled",
        "osqueryd",
        None,
        "eventfactory.cpp:156] Event publisher not enabled: endpointsecurity: EndpointSecurity "
        "client lacks entitlement",
        {},
    ),
    (
        "power-sleep",
        "powerd",
        None,
        "Entering Sleep state due to 'Idle Sleep':TCPKeepAlive=active",
        {},
    ),
    ("power-wake", "powerd", None, "Wake from Deep Idle [CDNVA] : due to EC.LidOpen/Lid Open", {}),
]

# (pattern id, process, subsystem, message): near misses that must not match that pattern.
NEGATIVE = [
    ("launchd-job-killed", "launchd", None, "[system/com.x [1]:] exited due to SIGSEGV"),
    ("launchd-job-killed", "edragent", None, "exited due to SIGKILL | sent by launchctl[5150]"),
    ("launchd-job-crashed", "launchd", None, "[system/com.x [1]:] exited due to SIGKILL"),
    ("launchd-job-exit-status", "launchd", None, "[system/com.x [1]:] exited due to SIGTERM"),
    (
        "launchd-es-client-timeout",
        "launchd",
        None,
        "[system/com.x [1]:] exited with exit reason (namespace: 15 code: 0x0) - RUNNINGBOARD",
    ),
    (
        "launchd-es-client-timeout",
        "launchd",
        None,
        "[system/com.x [1]:] exited with exit reason (namespace: 27 code: 0x1)",
    ),
    ("launchd-bootout", "launchd", None, "Service bootstrap initiated by: launchctl[6021]"),
    ("launchd-respawn-throttled", "launchd", None, "Service only ran for 2 seconds."),
    ("launchd-sigterm-timeout", "launchd", None, "Service exited after SIGTERM"),
    ("launchd-spawned", "launchd", None, "Could not spawn edragent: throttled"),
    ("reportcrash-fatal-report", "ReportCrash", None, "Formulating report for corpse[1] x"),
    ("reportcrash-fatal-report", "logger", None, "Formulating fatal 309 report for corpse[1] x"),
    ("sysextd-duplicate-active", "sysextd", None, "Activate found 1 extension, ID: com.x.y"),
    ("sysextd-realize", "sysextd", None, "realized extension with identifier com.x.y"),
    ("sysextd-state-change", "sysextd", None, "com.northwind.edr.esext is activated"),
    ("sysextd-state-change", "sysextd", None, "validating an extension without an identifier"),
    (
        "endpointsecurityd-client-terminated",
        "endpointsecurityd",
        None,
        "client connected",
    ),
    ("endpointsecurityd-deadline", "endpointsecurityd", None, "deadline set to 60 seconds"),
    ("networkextension-filter-disabled", "nesessionmanager", None, "filter enabled"),
    ("networkextension-filter-disabled", "edragent", None, "filter disabled"),
    ("santa-deadline-deny", "com.google.santa.daemon", None, "deadline reached: allow pid=4"),
    ("lulu-uninstall-confirmed", "LuLu", "com.example.other", "user confirmed uninstall"),
    ("lulu-uninstall-confirmed", "LuLu", None, "user confirmed uninstall"),
    (
        "lulu-extension-deactivated",
        "LuLu",
        "com.objective-see.lulu",
        "toggling extension (action: 1)",
    ),
    (
        "osquery-es-publisher-disabled",
        "osqueryd",
        None,
        "Event publisher not enabled: openbsm: Publisher disabled via configuration",
    ),
    ("power-sleep", "Finder", None, "Entering Sleep state due to 'Idle Sleep'"),
    ("power-wake", "powerd", None, "Wake requests: none scheduled"),
]


@pytest.mark.parametrize(
    ("pattern_id", "process", "subsystem", "message", "fields"),
    POSITIVE,
    ids=[f"{case[0]}-{index}" for index, case in enumerate(POSITIVE)],
)
def test_pattern_matches(
    pattern_id: str, process: str, subsystem: str | None, message: str, fields: dict[str, str]
) -> None:
    found = {match.pattern_id: match for match in matches(process, message, subsystem)}

    assert pattern_id in found
    assert found[pattern_id].fields == fields


@pytest.mark.parametrize(
    ("pattern_id", "process", "subsystem", "message"),
    NEGATIVE,
    ids=[f"{case[0]}-{index}" for index, case in enumerate(NEGATIVE)],
)
def test_pattern_does_not_match(
    pattern_id: str, process: str, subsystem: str | None, message: str
) -> None:
    found = [match.pattern_id for match in matches(process, message, subsystem)]

    assert pattern_id not in found


def test_every_packaged_pattern_has_cases() -> None:
    ids = {spec.id for spec in PATTERNS.patterns}

    assert ids == {case[0] for case in POSITIVE}
    assert ids == {case[0] for case in NEGATIVE}


def test_packaged_patterns_are_described() -> None:
    for spec in PATTERNS.patterns:
        assert spec.signal in SIGNALS, spec.id
        assert spec.source.strip(), spec.id
        assert spec.note.strip(), spec.id
        assert spec.keywords, spec.id


def test_match_carries_signal_and_verified() -> None:
    (match,) = matches("ReportCrash", "Formulating fatal 309 report for corpse[3131] edragent")

    assert match.signal == "crashed"
    assert match.verified is True


def test_non_log_events_are_not_matched() -> None:
    event = log_event("launchd", "exited due to SIGKILL | sent by launchctl[5150]")
    event.kind = "crash"

    assert PATTERNS.match(event) == []


def test_message_is_cut_before_matching() -> None:
    padding = "x" * MAX_MESSAGE_CHARS
    inside = log_event(None, "deadline reached: deny pid=1, event type: 1 " + padding)
    beyond = log_event(None, padding + " deadline reached: deny pid=1, event type: 1")

    assert [match.pattern_id for match in PATTERNS.match(inside)] == ["santa-deadline-deny"]
    assert PATTERNS.match(beyond) == []


def test_invented_process_names_keep_cache_bounded() -> None:
    patterns = load_log_patterns()
    for number in range(MAX_CACHED_PROCESSES + 10):
        patterns.match(log_event(f"proc{number}", "nothing to see"))
    assert len(patterns._by_process) <= MAX_CACHED_PROCESSES
    match = patterns.match(log_event(None, "deadline reached: deny pid=1, event type: 1"))
    assert [m.pattern_id for m in match] == ["santa-deadline-deny"]


def test_patterns_finish_quickly_on_hostile_messages() -> None:
    hostile = [
        "[" * MAX_MESSAGE_CHARS,
        "(" + "a" * (MAX_MESSAGE_CHARS - 1),
        "exited due to SIG" + " " * (MAX_MESSAGE_CHARS - 20),
        "client " * (MAX_MESSAGE_CHARS // 7),
        "com.a.b " * (MAX_MESSAGE_CHARS // 8),
        "activated " * (MAX_MESSAGE_CHARS // 10),
        "deadline " * (MAX_MESSAGE_CHARS // 9),
        "filter " * (MAX_MESSAGE_CHARS // 7),
        "309 report for " + "[" * (MAX_MESSAGE_CHARS - 20),
    ]
    processes = sorted(
        {
            name
            for spec in PATTERNS.patterns
            for name in ([spec.process] if isinstance(spec.process, str) else spec.process or [])
        }
    )
    started = time.perf_counter()
    for message in hostile:
        for process in processes:
            PATTERNS.match(log_event(process, message, "com.objective-see.lulu"))
    elapsed = time.perf_counter() - started

    # Linear patterns take milliseconds here; a backtracking blow-up takes minutes.
    assert elapsed < 10.0


def test_patterns_on_events_from_the_reader(tmp_path: Path) -> None:
    line = (
        '{"timestamp":"2026-11-20 09:15:30.123456+0100","processID":1,'
        '"processImagePath":"\\/sbin\\/launchd","subsystem":"com.apple.xpc.launchd",'
        '"category":"","eventMessage":"[system\\/com.northwind.edr.agent [4242]:] exited due to '
        'SIGKILL | sent by launchctl[5150], ran for 5000ms"}\n'
    )
    path = tmp_path / "launchd.ndjson"
    path.write_text(line)
    with path.open("rb") as source:
        (event,) = UnifiedLogNdjsonReader().read(source, ReadContext(FileStats(str(path))))

    (match,) = PATTERNS.match(event)

    assert match.pattern_id == "launchd-job-killed"
    assert match.fields["sender_name"] == "launchctl"


# --- user files --------------------------------------------------------------------------------

USER_ENTRY = """\
  - id: {id}
    process: {process}
    subsystem: null
    keywords: ["{keyword}"]
    regex: '{regex}'
    signal: {signal}
    verified: false
    source: own notes
    note: test entry
"""


def user_file(tmp_path: Path, *entries: str) -> Path:
    path = tmp_path / "patterns.yaml"
    path.write_text("patterns:\n" + "".join(entries))
    return path


def entry(**values: str) -> str:
    defaults = {
        "id": "northwind-agent-stopped",
        "process": "edragent",
        "keyword": "agent stopping",
        "regex": r"agent stopping, reason=(?P<code>\d+)",
        "signal": "lifecycle",
    }
    defaults.update(values)
    return USER_ENTRY.format(**defaults)


def test_user_file_adds_and_replaces(tmp_path: Path) -> None:
    replacement = entry(
        id="santa-deadline-deny",
        process="null",
        keyword="deadline reached",
        regex=r"deadline reached: (?P<state>deny|allow)",
        signal="es_client_degraded",
    )
    patterns = load_log_patterns(user_file(tmp_path, entry(), replacement))

    added = patterns.match(log_event("edragent", "agent stopping, reason=3"))
    replaced = patterns.match(log_event("santad", "deadline reached: allow pid=9"))

    assert len(patterns) == len(PATTERNS) + 1
    assert [(m.pattern_id, m.fields) for m in added] == [("northwind-agent-stopped", {"code": "3"})]
    assert [(m.pattern_id, m.fields) for m in replaced] == [
        ("santa-deadline-deny", {"state": "allow"})
    ]


def test_user_file_can_disable_a_packaged_pattern(tmp_path: Path) -> None:
    disabled = entry(id="reportcrash-fatal-report") + "    enabled: false\n"
    patterns = load_log_patterns(user_file(tmp_path, disabled))

    found = patterns.match(
        log_event("ReportCrash", "Formulating fatal 309 report for corpse[3131] edragent")
    )

    assert found == []
    assert "reportcrash-fatal-report" not in {spec.id for spec in patterns.patterns}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (entry(regex="agent (stopping"), ["'northwind-agent-stopped'", "regex", "invalid regex"]),
        (entry(signal="exploded"), ["'northwind-agent-stopped'", "signal", "unknown signal"]),
        (entry(regex="(?P<reason>x)"), ["'northwind-agent-stopped'", "regex", "reason"]),
        (entry(regex="(a+)+b"), ["'northwind-agent-stopped'", "regex", "exponential"]),
        (entry(keyword=""), ["'northwind-agent-stopped'", "keywords", "empty keyword"]),
        (entry().replace("    verified: false\n", ""), ["'northwind-agent-stopped'", "verified"]),
        (entry().replace("verified: false", "verified: maybe"), ["verified", "bool"]),
        (entry() + "    colour: red\n", ["'northwind-agent-stopped'", "colour"]),
        (entry() + entry(), ["'northwind-agent-stopped'", "duplicate id"]),
    ],
    ids=[
        "invalid-regex",
        "unknown-signal",
        "unknown-group",
        "nested-repeat",
        "empty-keyword",
        "missing-key",
        "wrong-type",
        "unknown-key",
        "duplicate-id",
    ],
)
def test_invalid_user_file_names_file_pattern_and_key(
    tmp_path: Path, text: str, expected: list[str]
) -> None:
    path = user_file(tmp_path, text)

    with pytest.raises(LogPatternError) as raised:
        load_log_patterns(path)

    message = str(raised.value)
    assert str(path) in message
    for part in expected:
        assert part in message


def test_invalid_yaml_and_missing_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("patterns: [\n")
    missing = tmp_path / "missing.yaml"

    with pytest.raises(LogPatternError, match="invalid YAML"):
        load_log_patterns(broken)
    with pytest.raises(LogPatternError, match="cannot read"):
        load_log_patterns(missing)


def test_file_without_patterns_list(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("- just a list\n")

    with pytest.raises(LogPatternError, match="'patterns' list"):
        load_log_patterns(path)


def test_patterns_built_from_specs() -> None:
    patterns = LogPatterns(spec for spec in PATTERNS.patterns if spec.id.startswith("lulu-"))

    found = patterns.match(log_event("LuLu", "user confirmed uninstall", "com.objective-see.lulu"))

    assert len(patterns) == 2
    assert [match.pattern_id for match in found] == ["lulu-uninstall-confirmed"]


# --- real wording ------------------------------------------------------------------------------

CORPUS_ENV = "TAMPERWATCH_REAL_CORPUS"


def test_verified_patterns_match_real_lines() -> None:
    root = os.environ.get(CORPUS_ENV)
    if not root:
        pytest.skip(f"{CORPUS_ENV} is not set; point it at a folder of real samples")
    folder = Path(root) / "unifiedlog"
    ndjson = folder / "ihmuse_ndjson_logger_and_reportcrash_309.ndjson"
    with ndjson.open("rb") as source:
        events = list(UnifiedLogNdjsonReader().read(source, ReadContext(FileStats(str(ndjson)))))
    console = (folder / "crescendo_issue23_console_copy_sysextd_realize.tsv").read_text()
    sysextd_message = next(
        row.split("\t")[3] for row in console.splitlines() if "\tsysextd\t" in row
    )

    crash_ids = [match.pattern_id for event in events for match in PATTERNS.match(event)]
    realize = matches("sysextd", sysextd_message)

    assert crash_ids == ["reportcrash-fatal-report"]
    assert [match.pattern_id for match in realize] == ["sysextd-realize"]
    assert realize[0].fields["bundle_id"] == "com.suprhackersteve.crescendo.CrescendoExtension"
