"""Reader for Endpoint Security messages as JSON lines: ``eslogger`` and ES-shaped vendor streams.

eslogger (macOS 13+) prints one ``es_message_t`` per line. Its man page states that the structure
is not an API, so this reader keys on field names, never on order, and tolerates missing fields. Audit
tokens are objects up to macOS 15 (message version 9) and arrays of eight integers
``[auid, euid, egid, ruid, rgid, pid, asid, pidversion]`` on macOS 26 (version 10).

Jamf Protect's telemetry stream has the same core with ``glob_seq_num`` instead of
``global_seq_num``, a ``host`` object and millisecond times; it is read here too.

Decoding goes through msgspec structs that name only the fields detection uses, so the rest of
each (large) line is skipped without building Python objects for it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from importlib import resources
from typing import BinaryIO
from urllib.parse import unquote

import msgspec

from tamperwatch.model import Event, Evidence, Process
from tamperwatch.readers.base import ReadContext, Reader, decode_json, in_time_range, iter_lines
from tamperwatch.timeutil import parse_rfc3339


class _TokenObject(msgspec.Struct):
    pid: int
    pidversion: int | None = None
    euid: int | None = None


# An audit token is either an object (macOS <= 15) or eight integers (macOS 26).
_Token = _TokenObject | list[int]


class _File(msgspec.Struct):
    path: str | None = None


class _Executable(msgspec.Struct):
    path: str | None = None


class _Process(msgspec.Struct):
    audit_token: _Token | None = None
    parent_audit_token: _Token | None = None
    ppid: int | None = None
    group_id: int | None = None
    session_id: int | None = None
    team_id: str | None = None
    signing_id: str | None = None
    is_platform_binary: bool | None = None
    executable: _Executable | None = None
    tty: _File | None = None
    start_time: str | None = None


class _Exec(msgspec.Struct):
    target: _Process | None = None
    args: list[str] | None = None


class _Fork(msgspec.Struct):
    child: _Process | None = None


class _Exit(msgspec.Struct):
    stat: int | None = None


class _Signal(msgspec.Struct):
    sig: int | None = None
    target: _Process | None = None


class _Targeted(msgspec.Struct):
    target: _Process | None = None
    type: int | None = None


class _FileTarget(msgspec.Struct):
    target: _File | None = None


class _Close(msgspec.Struct):
    target: _File | None = None
    modified: bool | None = None


class _Open(msgspec.Struct):
    file: _File | None = None
    fflag: int | None = None


class _NewPath(msgspec.Struct):
    dir: _File | None = None
    filename: str | None = None


class _Destination(msgspec.Struct):
    existing_file: _File | None = None
    new_path: _NewPath | None = None


class _Rename(msgspec.Struct):
    source: _File | None = None
    destination: _Destination | None = None


class _Create(msgspec.Struct):
    destination: _Destination | None = None


class _SetMode(msgspec.Struct):
    target: _File | None = None
    mode: int | None = None


class _SetFlags(msgspec.Struct):
    target: _File | None = None
    flags: int | None = None


class _SetExtAttr(msgspec.Struct):
    target: _File | None = None
    extattr: str | None = None


class _Kext(msgspec.Struct):
    identifier: str | None = None


class _BtmItem(msgspec.Struct):
    item_url: str | None = None
    item_type: int | None = None


class _Btm(msgspec.Struct):
    item: _BtmItem | None = None
    instigator: _Process | None = None


class _Profile(msgspec.Struct):
    identifier: str | None = None
    display_name: str | None = None


class _ProfileEvent(msgspec.Struct):
    profile: _Profile | None = None
    instigator: _Process | None = None


class _Tcc(msgspec.Struct):
    service: str | None = None
    identity: str | None = None
    right: int | None = None
    instigator: _Process | None = None


class _Payload(msgspec.Struct):
    """The ``event`` object: exactly one of these keys is present on each line."""

    exec: _Exec | None = None
    fork: _Fork | None = None
    exit: _Exit | None = None
    signal: _Signal | None = None
    proc_suspend_resume: _Targeted | None = None
    get_task: _Targeted | None = None
    get_task_read: _Targeted | None = None
    get_task_inspect: _Targeted | None = None
    trace: _Targeted | None = None
    remote_thread_create: _Targeted | None = None
    unlink: _FileTarget | None = None
    truncate: _FileTarget | None = None
    write: _FileTarget | None = None
    close: _Close | None = None
    open: _Open | None = None
    rename: _Rename | None = None
    create: _Create | None = None
    setmode: _SetMode | None = None
    setflags: _SetFlags | None = None
    setextattr: _SetExtAttr | None = None
    deleteextattr: _SetExtAttr | None = None
    kextload: _Kext | None = None
    kextunload: _Kext | None = None
    btm_launch_item_add: _Btm | None = None
    btm_launch_item_remove: _Btm | None = None
    profile_add: _ProfileEvent | None = None
    profile_remove: _ProfileEvent | None = None
    tcc_modify: _Tcc | None = None


class _HostObject(msgspec.Struct):
    hostname: str | None = None
    os: str | None = None


class _Message(msgspec.Struct):
    time: str | None = None
    event_type: int | None = None
    seq_num: int | None = None
    global_seq_num: int | None = None
    glob_seq_num: int | None = None
    process: _Process | None = None
    event: _Payload | None = None
    host: _HostObject | None = None


def _load_event_names() -> dict[int, str]:
    """Map ``es_event_type_t`` values to eslogger short names, from the packaged table."""
    text = resources.files("tamperwatch.data").joinpath("es_event_types.csv").read_text("utf-8")
    names: dict[int, str] = {}
    for row in csv.DictReader(io.StringIO(text)):
        names[int(row["value"])] = (
            row["eslogger_key"] or row["name"].removeprefix("ES_EVENT_TYPE_").lower()
        )
    return names


EVENT_NAMES: dict[int, str] = _load_event_names()


def _token_ids(token: _Token | None) -> tuple[int | None, int | None, int | None]:
    """Return ``(pid, pidversion, euid)`` from an object or array audit token."""
    if token is None:
        return None, None, None
    if isinstance(token, list):
        if len(token) != 8:
            return None, None, None
        return token[5], token[7], token[1]
    return token.pid, token.pidversion, token.euid


def _process(raw: _Process | None) -> Process | None:
    if raw is None:
        return None
    pid, pidversion, euid = _token_ids(raw.audit_token)
    if pid is None:
        return None
    parent_pid, parent_pidversion, _ = _token_ids(raw.parent_audit_token)
    return Process(
        pid=pid,
        pidversion=pidversion,
        ppid=raw.ppid if raw.ppid is not None else parent_pid,
        parent_pidversion=parent_pidversion,
        path=raw.executable.path if raw.executable is not None else None,
        team_id=raw.team_id or None,
        signing_id=raw.signing_id or None,
        platform_binary=raw.is_platform_binary,
        tty=raw.tty is not None,
        euid=euid,
        group_id=raw.group_id,
        session_id=raw.session_id,
        start_time=raw.start_time if pid == 1 else None,
    )


def _file_path(raw: _File | None) -> str | None:
    return raw.path if raw is not None else None


def _destination_path(raw: _Destination | None) -> str | None:
    if raw is None:
        return None
    if raw.existing_file is not None:
        return raw.existing_file.path
    if raw.new_path is not None and raw.new_path.filename is not None:
        directory = _file_path(raw.new_path.dir) or ""
        return f"{directory.rstrip('/')}/{raw.new_path.filename}"
    return None


def _file_url_path(url: str | None) -> str | None:
    """Turn a BTM ``item_url`` such as ``file:///Library/LaunchDaemons/x.plist`` into a path."""
    if url is None:
        return None
    if url.startswith("file://"):
        return unquote(url[len("file://") :])
    return url


def _fill(event: Event, payload: _Payload) -> None:
    """Copy the fields of the one payload present into the normalized event."""
    kind = event.kind
    if kind == "exec" and payload.exec is not None:
        event.target = _process(payload.exec.target)
        if event.target is not None:
            event.target.args = payload.exec.args
    elif kind == "fork" and payload.fork is not None:
        event.target = _process(payload.fork.child)
    elif kind == "exit" and payload.exit is not None:
        event.status = payload.exit.stat
    elif kind == "signal" and payload.signal is not None:
        event.signal = payload.signal.sig
        event.target = _process(payload.signal.target)
    elif kind in _TARGETED:
        targeted = getattr(payload, kind)
        if targeted is not None:
            event.target = _process(targeted.target)
            event.flags = targeted.type
    elif kind in ("unlink", "truncate", "write"):
        file_event = getattr(payload, kind)
        if file_event is not None:
            event.path = _file_path(file_event.target)
    elif kind == "close" and payload.close is not None:
        event.path = _file_path(payload.close.target)
        event.flags = 1 if payload.close.modified else 0
    elif kind == "open" and payload.open is not None:
        event.path = _file_path(payload.open.file)
        event.flags = payload.open.fflag
    elif kind == "rename" and payload.rename is not None:
        event.path = _file_path(payload.rename.source)
        event.dest_path = _destination_path(payload.rename.destination)
    elif kind == "create" and payload.create is not None:
        event.path = _destination_path(payload.create.destination)
    elif kind == "setmode" and payload.setmode is not None:
        event.path = _file_path(payload.setmode.target)
        event.flags = payload.setmode.mode
    elif kind == "setflags" and payload.setflags is not None:
        event.path = _file_path(payload.setflags.target)
        event.flags = payload.setflags.flags
    elif kind in ("setextattr", "deleteextattr"):
        attr_event = getattr(payload, kind)
        if attr_event is not None:
            event.path = _file_path(attr_event.target)
            event.identifier = attr_event.extattr
    elif kind in ("kextload", "kextunload"):
        kext = getattr(payload, kind)
        if kext is not None:
            event.identifier = kext.identifier
    elif kind in ("btm_launch_item_add", "btm_launch_item_remove"):
        btm = getattr(payload, kind)
        if btm is not None:
            _use_instigator(event, btm.instigator)
            if btm.item is not None:
                event.path = _file_url_path(btm.item.item_url)
                event.flags = btm.item.item_type
    elif kind in ("profile_add", "profile_remove"):
        profile_event = getattr(payload, kind)
        if profile_event is not None:
            _use_instigator(event, profile_event.instigator)
            if profile_event.profile is not None:
                event.identifier = profile_event.profile.identifier
                event.message = profile_event.profile.display_name
    elif kind == "tcc_modify" and payload.tcc_modify is not None:
        _use_instigator(event, payload.tcc_modify.instigator)
        event.identifier = payload.tcc_modify.identity
        event.message = payload.tcc_modify.service
        event.flags = payload.tcc_modify.right


def _use_instigator(event: Event, instigator: _Process | None) -> None:
    """Make the payload's instigator the acting process.

    For BTM, profile and TCC events the message's own process is the system daemon that
    recorded the change (backgroundtaskmanagementd, mdmclient, tccd). The instigator is the
    process that requested it.
    """
    process = _process(instigator)
    if process is not None:
        event.process = process


_TARGETED = frozenset(
    {
        "proc_suspend_resume",
        "get_task",
        "get_task_read",
        "get_task_inspect",
        "trace",
        "remote_thread_create",
    }
)


class EsloggerReader(Reader):
    """Endpoint Security messages as JSON lines (eslogger, Jamf Protect telemetry)."""

    name = "eslogger"
    description = "Endpoint Security JSON lines (eslogger, Jamf Protect telemetry)"

    def __init__(self) -> None:
        self._decoder = msgspec.json.Decoder(_Message)

    def sniff(self, head: bytes) -> bool:
        first = head.lstrip()[:4096]
        if not first.startswith(b"{"):
            return False
        return b'"event_type"' in first and (b'"event"' in first or b'"process"' in first)

    def read(self, source: BinaryIO, context: ReadContext) -> Iterator[Event]:
        decoder = self._decoder
        file = context.file
        for number, raw in iter_lines(source, context):
            if not raw.strip():
                continue
            context.record()
            message = decode_json(decoder, raw, number, context)
            if message is None:
                continue
            event = self._convert(message, number, file, context)
            if event is not None:
                context.used()
                yield event

    def _convert(
        self, message: _Message, number: int, file: str, context: ReadContext
    ) -> Event | None:
        if message.time is None:
            context.skip(number, "missing timestamp")
            return None
        when = parse_rfc3339(message.time)
        if when is None or not in_time_range(when):
            context.skip(number, "invalid timestamp", repr(message.time[:64]))
            return None
        if message.event_type is None:
            context.skip(number, "missing event_type")
            return None
        kind = EVENT_NAMES.get(message.event_type)
        if kind is None:
            # Newer macOS releases add event types; the record still proves its process alive.
            context.note(f"unknown event type {message.event_type}")
            kind = "unknown"
        event = Event(
            time=when,
            kind=kind,
            evidence=Evidence("eslogger", file, number),
            process=_process(message.process),
            event_type=message.event_type,
            seq_num=message.seq_num,
            global_seq_num=(
                message.global_seq_num
                if message.global_seq_num is not None
                else message.glob_seq_num
            ),
        )
        if message.host is not None:
            event.host = message.host.hostname or None
            event.os_version = message.host.os
        if message.event is not None:
            _fill(event, message.event)
        else:
            # The record keeps its time and sequence numbers, which tell liveness and lost
            # events, but without its body it cannot show what happened.
            context.warn(number, f"{kind} record without its event body: used for timing only")
        if message.process is None:
            context.warn(number, f"{kind} record without its process")
        return event
