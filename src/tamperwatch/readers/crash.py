"""Readers for macOS crash reports: ``.ips`` files and text reports.

An ``.ips`` file (macOS 12+) is a one-line JSON header followed by a pretty-printed JSON body;
``bug_type`` "309" marks a crash report. Older ``.ips`` files with ``bug_type`` "109" carry a
text report after the header. Text reports are either a Console export that starts with
``Translated Report (Full Report Below)`` or a pre-macOS-12 report that starts with ``Process:``.

One file is one report and becomes at most one ``crash`` event, whose evidence line is 1. A
report cut short still becomes an event when its header gives a time and a process name, and
a warning reports the truncation.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import msgspec

from tamperwatch.model import CrashInfo, Event, Evidence, Process
from tamperwatch.readers.base import (
    UTF8_BOM,
    ReadContext,
    Reader,
    decode_json,
    decode_text,
    in_time_range,
    is_utf8,
)
from tamperwatch.timeutil import parse_local_with_offset

# Maximum size of a report file, in bytes; a larger file is skipped with a warning.
MAX_REPORT_BYTES = 32 * 1024 * 1024

# ``bug_type`` values of crash reports: "309" for JSON reports (macOS 12+), "109" for the older
# text reports. Other values (panics, jetsam, stackshots, ...) are not crash reports.
CRASH_BUG_TYPES = frozenset({"309", "109"})

_TRANSLATED_TITLE = "Translated Report (Full Report Below)"


class _IpsHeader(msgspec.Struct):
    app_name: str | None = None
    name: str | None = None
    timestamp: str | None = None
    bug_type: str | int | None = None
    app_version: str | None = None
    build_version: str | None = None
    bundle_id: str | None = msgspec.field(default=None, name="bundleID")
    os_version: str | None = None


class _BundleInfo(msgspec.Struct):
    identifier: str | None = msgspec.field(default=None, name="CFBundleIdentifier")
    short_version: str | None = msgspec.field(default=None, name="CFBundleShortVersionString")
    build: str | None = msgspec.field(default=None, name="CFBundleVersion")


class _Exception(msgspec.Struct):
    type: str | None = None
    signal: str | None = None


class _Termination(msgspec.Struct):
    namespace: str | None = None
    code: int | str | None = None
    indicator: str | None = None
    by_process: str | None = msgspec.field(default=None, name="byProc")
    by_pid: int | None = msgspec.field(default=None, name="byPid")


class _IpsBody(msgspec.Struct):
    capture_time: str | None = msgspec.field(default=None, name="captureTime")
    pid: int | None = None
    proc_name: str | None = msgspec.field(default=None, name="procName")
    proc_path: str | None = msgspec.field(default=None, name="procPath")
    parent_pid: int | None = msgspec.field(default=None, name="parentPid")
    team_id: str | None = msgspec.field(default=None, name="codeSigningTeamID")
    signing_id: str | None = msgspec.field(default=None, name="codeSigningID")
    bundle_info: _BundleInfo | None = msgspec.field(default=None, name="bundleInfo")
    exception: _Exception | None = None
    termination: _Termination | None = None
    # Application Specific Information: image name -> lines, e.g. {"libsystem_c.dylib": [...]}.
    asi: dict[str, list[str] | str] | None = None
    bug_type: str | int | None = None


_HEADER_DECODER = msgspec.json.Decoder(_IpsHeader)
_BODY_DECODER = msgspec.json.Decoder(_IpsBody)

# A top-level member of Apple's pretty-printed body: two spaces, key, " : ", value on one line.
# Used to recover the leading members of a body that was cut off.
_BODY_MEMBER = re.compile(r'  "(?P<key>[A-Za-z_]+)" : (?P<value>.*)')

# Maximum length of a text-report line parsed as a "Key: value" field. Header fields are
# short, and the limit keeps the field patterns fast on hostile input.
_MAX_FIELD_LINE_CHARS = 4096


def _version(short: str | None, build: str | None) -> str | None:
    """Format a version as text reports print it: ``2.2.4 (2.2.4)``, or whichever part exists."""
    if short and build:
        return f"{short} ({build})"
    return short or build or None


def _parse_code(value: int | str | None) -> int | None:
    """Parse a termination code: an integer, or text in decimal or ``0x`` hexadecimal."""
    if value is None or isinstance(value, int):
        return value
    text = value.strip()
    try:
        return int(text, 16) if text.lower().startswith("0x") else int(text)
    except ValueError:
        return None


def _asi_text(asi: dict[str, list[str] | str] | None) -> str | None:
    if not asi:
        return None
    lines: list[str] = []
    for value in asi.values():
        lines.extend([value] if isinstance(value, str) else value)
    return "\n".join(lines) or None


def _salvage_members(members: dict[str, Any], context: ReadContext) -> _IpsBody:
    """Build a body from decoded members, keeping each field whose value has the right type."""
    valid: dict[str, Any] = {}
    for info in msgspec.structs.fields(_IpsBody):
        if info.encode_name not in members:
            continue
        try:
            valid[info.name] = msgspec.convert(members[info.encode_name], type=info.type)
        except msgspec.ValidationError as error:
            context.warn(1, f"invalid field {info.encode_name} ignored: {error}")
    return _IpsBody(**valid)


def _salvage_cut_body(body: str) -> dict[str, Any]:
    """Decode the one-line top-level members of a body that does not parse as a whole."""
    members: dict[str, Any] = {}
    for line in body.splitlines():
        match = _BODY_MEMBER.fullmatch(line.rstrip())
        if match is None or match["key"] in members:
            continue
        try:
            members[match["key"]] = msgspec.json.decode(match["value"].removesuffix(","))
        except (msgspec.DecodeError, RecursionError):
            continue
    return members


@dataclass
class _Report:
    """The fields of one crash report that the event needs, from either layout."""

    bug_type: str | None = None
    time_text: str | None = None
    fallback_time_text: str | None = None
    pid: int | None = None
    process_name: str | None = None
    path: str | None = None
    ppid: int | None = None
    team_id: str | None = None
    signing_id: str | None = None
    crash: CrashInfo = field(default_factory=CrashInfo)
    # False when the report was cut off or its body is missing.
    complete: bool = True


def _report_from_ips(header: _IpsHeader, body: _IpsBody | None, complete: bool) -> _Report:
    report = _Report(
        bug_type=None if header.bug_type is None else str(header.bug_type),
        time_text=header.timestamp,
        process_name=header.app_name or header.name,
        complete=complete,
    )
    report.crash.version = _version(header.app_version, header.build_version)
    report.crash.bundle_id = header.bundle_id
    report.crash.os_version = header.os_version
    if body is not None:
        _apply_body(report, body)
    report.crash.process_name = report.process_name
    report.crash.bug_type = report.bug_type
    return report


def _apply_body(report: _Report, body: _IpsBody) -> None:
    if report.bug_type is None and body.bug_type is not None:
        report.bug_type = str(body.bug_type)
    if body.capture_time is not None:
        report.fallback_time_text = report.time_text
        report.time_text = body.capture_time
    report.pid = body.pid
    report.process_name = body.proc_name or report.process_name
    report.path = body.proc_path
    report.ppid = body.parent_pid
    report.team_id = body.team_id
    report.signing_id = body.signing_id
    crash = report.crash
    crash.team_id = body.team_id
    crash.application_specific = _asi_text(body.asi)
    if body.bundle_info is not None:
        crash.bundle_id = body.bundle_info.identifier or crash.bundle_id
        crash.version = (
            _version(body.bundle_info.short_version, body.bundle_info.build) or crash.version
        )
    if body.exception is not None:
        crash.exception_type = body.exception.type
        crash.signal = body.exception.signal
    if body.termination is not None:
        crash.namespace = body.termination.namespace
        crash.code = _parse_code(body.termination.code)
        crash.indicator = body.termination.indicator
        crash.by_process = body.termination.by_process
        crash.by_pid = body.termination.by_pid


def _crash_event(report: _Report, source: str, context: ReadContext) -> Event | None:
    """Build the event of a crash report, or count a skip and return ``None``.

    A report that lacks its body or was cut short needs a time and a process name to be used.
    Without them it is skipped as ``truncated report``.
    """
    if not report.complete and (report.time_text is None or report.process_name is None):
        context.skip(1, "truncated report", "no time or process name before the cut")
        return None
    if report.time_text is None:
        context.skip(1, "missing timestamp")
        return None
    time = parse_local_with_offset(report.time_text)
    if time is None and report.fallback_time_text is not None:
        time = parse_local_with_offset(report.fallback_time_text)
    if time is None or not in_time_range(time):
        context.skip(1, "invalid timestamp", report.time_text[:64])
        return None
    process = None
    if report.pid is not None:
        process = Process(
            pid=report.pid,
            ppid=report.ppid,
            path=report.path,
            name=report.process_name,
            team_id=report.team_id,
            signing_id=report.signing_id,
        )
    return Event(
        time=time,
        kind="crash",
        evidence=Evidence(source, context.file, 1),
        host=context.host,
        process=process,
        crash=report.crash,
    )


def _read_bounded(source: BinaryIO, context: ReadContext) -> bytes | None:
    """Read a whole report without a leading byte-order mark.

    Return ``None``, with the report counted as skipped, for a file larger than the limit and
    for a file that holds only white space.
    """
    data = source.read(MAX_REPORT_BYTES + 1).removeprefix(UTF8_BOM)
    if len(data) > MAX_REPORT_BYTES:
        context.record()
        context.skip(1, "report too large", f"larger than {MAX_REPORT_BYTES} bytes")
        return None
    if not data.strip():
        context.record()
        context.skip(0, "empty report")
        return None
    return data


class IpsReader(Reader):
    """``.ips`` crash reports: a one-line JSON header, then a JSON (or, for "109", text) body."""

    name = "crash"
    description = "crash report, .ips (JSON header and body)"

    def sniff(self, head: bytes) -> bool:
        stripped = head.lstrip()
        if not stripped.startswith(b"{"):
            return False
        first = stripped.split(b"\n", 1)[0]
        return b'"bug_type"' in first and (
            b'"os_version"' in first or b'"incident_id"' in first or b'"timestamp"' in first
        )

    def read(self, source: BinaryIO, context: ReadContext) -> Iterator[Event]:
        data = _read_bounded(source, context)
        if data is None:
            return
        context.record()
        header_bytes, _, body_bytes = data.lstrip().partition(b"\n")
        header = decode_json(_HEADER_DECODER, header_bytes, 1, context)
        if header is None:
            return
        # The header's bug_type decides before the body, which can be large, is decoded.
        if header.bug_type is not None and str(header.bug_type) not in CRASH_BUG_TYPES:
            context.skip(1, f"not a crash report (bug_type {header.bug_type})")
            return
        report = self._parse_body(header, body_bytes, context)
        if report.bug_type is None:
            context.skip(1, "missing bug_type")
            return
        if report.bug_type not in CRASH_BUG_TYPES:
            context.skip(1, f"not a crash report (bug_type {report.bug_type})")
            return
        event = _crash_event(report, self.name, context)
        if event is not None:
            context.used()
            yield event

    def _parse_body(self, header: _IpsHeader, body_bytes: bytes, context: ReadContext) -> _Report:
        """Combine the header with the body: JSON, text (older "109" reports) or missing."""
        body_text = decode_text(body_bytes)
        if not body_text.strip():
            context.warn(1, "truncated report: header only, no body")
            return _report_from_ips(header, None, complete=False)
        if not body_text.lstrip().startswith("{"):
            return self._parse_text_body(header, body_text, context)
        body, complete = self._decode_body(body_bytes, body_text, context)
        return _report_from_ips(header, body, complete)

    @staticmethod
    def _decode_body(
        body_bytes: bytes, body_text: str, context: ReadContext
    ) -> tuple[_IpsBody | None, bool]:
        """Decode the JSON body; return it and whether it was complete.

        A wrongly typed field costs only that field. A body cut off keeps the one-line
        top-level members before the cut, which include the time, process and termination.
        Invalid UTF-8 is replaced with U+FFFD, with a warning.
        """
        body: bytes | str = body_bytes
        if not is_utf8(body_bytes):
            context.warn(2, "invalid UTF-8 replaced with U+FFFD")
            body = body_text
        try:
            return _BODY_DECODER.decode(body), True
        except (msgspec.DecodeError, RecursionError):
            pass
        try:
            members = msgspec.json.decode(body)
        except (msgspec.DecodeError, RecursionError):
            last_line = body_text.rstrip().count("\n") + 2
            context.warn(last_line, "truncated report: the body is not complete JSON")
            return _salvage_members(_salvage_cut_body(body_text), context), False
        if not isinstance(members, dict):
            context.warn(2, "truncated report: the body is not a JSON object")
            return None, False
        return _salvage_members(members, context), True

    @staticmethod
    def _parse_text_body(header: _IpsHeader, body_text: str, context: ReadContext) -> _Report:
        """Read the text report that older ("109") ``.ips`` files carry after the header."""
        text = _parse_text_report(
            body_text.split("\n"), first_line=2, ends_with_newline=body_text.endswith("\n")
        )
        report = _report_from_text(text, context)
        if report.bug_type is None and header.bug_type is not None:
            report.bug_type = str(header.bug_type)
        report.crash.bug_type = report.bug_type
        if report.time_text is None:
            report.time_text = header.timestamp
        if report.process_name is None:
            report.process_name = header.app_name or header.name
            report.crash.process_name = report.process_name
        return report


# --- text reports ------------------------------------------------------------------------------

# "Key:   value" at the start of a line of a text report.
_TEXT_FIELD = re.compile(r"(?P<key>[A-Z][A-Za-z/ ]*?):[ \t]+(?P<value>\S.*)")
# "name [pid]", as in "Process:  sysextd [45250]" or "Parent Process:  launchd [1]".
_NAME_AND_PID = re.compile(r"(?P<name>.*)\[(?P<pid>\d+)\]")
# "EXC_CRASH (SIGKILL)", also "EXC_CRASH (SIGKILL (Code Signature Invalid))".
_EXCEPTION_TYPE = re.compile(r"(?P<type>\S+)(?:\s+\((?P<signal>SIG[A-Z0-9]+))?.*")
# "Namespace ENDPOINTSECURITY, Code 2, text" and "Namespace SIGNAL, Code 0x4"; the comma
# after the code is missing in some copies.
_TERMINATION_REASON = re.compile(
    r"(?:Namespace\s+)?(?P<namespace>[A-Z][A-Z_]*)\s*[,|]?\s*"
    r"Code\s+(?P<code>0x[0-9a-fA-F]+|-?\d+)(?:,?\s*(?P<text>.*\S))?\s*"
)
# Sections that follow the header of a complete report.
_BODY_SECTION = re.compile(r"(?:Thread \d+|Binary Images:|Backtrace not available)")

_TEXT_KEYS = frozenset(
    {
        "Process",
        "Path",
        "Identifier",
        "Version",
        "Parent Process",
        "Date/Time",
        "Exception Type",
        "Termination Reason",
        "Termination Signal",
        "Terminating Process",
        "OS Version",
    }
)


@dataclass
class _TextReport:
    fields: dict[str, str] = field(default_factory=dict)
    application_specific: list[str] = field(default_factory=list)
    has_body_sections: bool = False
    last_line: int = 1
    ends_with_newline: bool = True


def _parse_text_report(lines: list[str], first_line: int, ends_with_newline: bool) -> _TextReport:
    """Collect the header fields of a text report; the first occurrence of a key wins.

    Reading stops where a translated report is followed by its full JSON report.
    """
    report = _TextReport(ends_with_newline=ends_with_newline)
    in_asi = False
    for offset, raw in enumerate(lines):
        line = raw.rstrip()
        stripped = line.strip()
        if stripped == "Full Report" or stripped.startswith('{"'):
            break
        if stripped:
            report.last_line = first_line + offset
        if in_asi:
            if stripped:
                report.application_specific.append(stripped)
                continue
            in_asi = False
        if stripped == "Application Specific Information:":
            in_asi = True
            continue
        if _BODY_SECTION.match(line):
            report.has_body_sections = True
            continue
        if len(line) > _MAX_FIELD_LINE_CHARS:
            continue
        match = _TEXT_FIELD.fullmatch(line)
        if match is not None and match["key"] in _TEXT_KEYS:
            report.fields.setdefault(match["key"], match["value"])
    return report


def _report_from_text(text: _TextReport, context: ReadContext) -> _Report:
    fields = text.fields
    report = _Report(time_text=fields.get("Date/Time"), path=fields.get("Path"))
    crash = report.crash

    process = _NAME_AND_PID.fullmatch(fields.get("Process", ""))
    if process is not None:
        report.process_name = process["name"].strip() or None
        report.pid = int(process["pid"])
    elif "Process" in fields:
        report.process_name = fields["Process"]
    parent = _NAME_AND_PID.fullmatch(fields.get("Parent Process", ""))
    if parent is not None:
        report.ppid = int(parent["pid"])
    crash.process_name = report.process_name
    crash.bundle_id = fields.get("Identifier")
    crash.version = fields.get("Version")
    crash.os_version = fields.get("OS Version")

    exception = _EXCEPTION_TYPE.fullmatch(fields.get("Exception Type", ""))
    if exception is not None:
        crash.exception_type = exception["type"]
        crash.signal = exception["signal"]
    reason = _TERMINATION_REASON.fullmatch(fields.get("Termination Reason", ""))
    if reason is not None:
        crash.namespace = reason["namespace"]
        crash.code = _parse_code(reason["code"])
        crash.indicator = reason["text"]
    crash.indicator = crash.indicator or fields.get("Termination Signal")
    terminator = _NAME_AND_PID.fullmatch(fields.get("Terminating Process", ""))
    if terminator is not None:
        crash.by_process = terminator["name"].strip() or None
        crash.by_pid = int(terminator["pid"])
    crash.application_specific = "\n".join(text.application_specific) or None

    if not text.ends_with_newline:
        context.warn(text.last_line, "truncated report: the file ends inside a line")
        report.complete = False
    elif not text.has_body_sections:
        context.warn(text.last_line, "truncated report: no thread backtraces or binary images")
        report.complete = False
    return report


class CrashTextReader(Reader):
    """Text crash reports: Console's translated export and the pre-macOS-12 layout."""

    name = "crash"
    description = "crash report, translated or legacy text"

    def sniff(self, head: bytes) -> bool:
        for line in decode_text(head[:4096]).splitlines()[:8]:
            stripped = line.strip()
            if not stripped or set(stripped) == {"-"}:
                continue
            if stripped == _TRANSLATED_TITLE:
                return True
            if stripped.startswith("Process:"):
                return _NAME_AND_PID.fullmatch(stripped.removeprefix("Process:")) is not None
            return False
        return False

    def read(self, source: BinaryIO, context: ReadContext) -> Iterator[Event]:
        data = _read_bounded(source, context)
        if data is None:
            return
        context.record()
        text = decode_text(data)
        parsed = _parse_text_report(
            text.split("\n"), first_line=1, ends_with_newline=not text or text.endswith("\n")
        )
        report = _report_from_text(parsed, context)
        if report.time_text is None:
            context.skip(1, "missing timestamp")
            return
        event = _crash_event(report, self.name, context)
        if event is not None:
            context.used()
            yield event
