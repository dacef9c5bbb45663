"""Normalized events that every reader produces and the engine consumes.

Readers turn one record of their format into at most one :class:`Event`. The structs are not
tracked by the garbage collector (``gc=False``): none of them can be part of a reference cycle,
and a scan holds millions of them. An event keeps only the
fields that detection uses; the evidence pointer (source format, file, line) leads back to the
full record.
"""

from __future__ import annotations

import msgspec


class Evidence(msgspec.Struct, frozen=True, order=True, gc=False):
    """Location of a record: reader name, file path (``-`` for stdin) and 1-based line."""

    source: str
    file: str
    line: int


class Process(msgspec.Struct, gc=False):
    """A process as one record describes it.

    ``pidversion`` comes from the audit token and distinguishes two processes that reused one
    pid, or one process before and after ``exec``. Fields a format does not carry stay ``None``.
    """

    pid: int
    pidversion: int | None = None
    ppid: int | None = None
    parent_pidversion: int | None = None
    path: str | None = None
    args: list[str] | None = None
    team_id: str | None = None
    signing_id: str | None = None
    platform_binary: bool | None = None
    tty: bool = False
    euid: int | None = None
    group_id: int | None = None
    session_id: int | None = None
    name: str | None = None
    # Start time of the process as the record gives it (RFC 3339 text). Readers fill it only for
    # launchd (pid 1), because its start is the boot of the host.
    start_time: str | None = None


class CrashInfo(msgspec.Struct, gc=False):
    """The fields of a crash report that tell what ended the process and who ended it."""

    process_name: str | None = None
    bundle_id: str | None = None
    version: str | None = None
    exception_type: str | None = None
    signal: str | None = None
    namespace: str | None = None
    code: int | None = None
    indicator: str | None = None
    by_process: str | None = None
    by_pid: int | None = None
    team_id: str | None = None
    bug_type: str | None = None
    application_specific: str | None = None
    os_version: str | None = None


class StateInfo(msgspec.Struct, gc=False):
    """One row of a state snapshot, a health record or a check-in: a part of a component at a time.

    ``subject`` names what the row describes:

    * ``system_extension``: ``name`` is the bundle id; ``state`` the db.plist state name with
      underscores (``activated_enabled``, ``terminated_waiting_to_uninstall_on_reboot``);
      ``enabled``/``active`` the two ``*`` columns of ``systemextensionsctl list``;
    * ``launchd_job``: ``name`` is the label; ``state`` is ``running``, ``not running``,
      ``waiting`` or ``spawn scheduled``; ``last_exit_status`` a negative signal number or an exit
      code; ``runs`` and ``last_exit_reason`` from ``launchctl print``;
    * ``process``: ``name`` is the process name, ``pid`` and ``path`` (in ``detail``) when known;
    * ``agent_health``: a telemetry agent reporting on itself (osquery_info, a vendor health CLI);
    * ``checkin``: a management-plane record; ``name`` is the agent or component named by the
      console and ``state`` its status text, lower-cased.

    ``snapshot`` names the snapshot the row belongs to (file and time), so that a row missing
    from a later snapshot of the same source can be noticed.
    """

    subject: str
    name: str
    state: str | None = None
    team_id: str | None = None
    version: str | None = None
    pid: int | None = None
    path: str | None = None
    last_exit_status: int | None = None
    last_exit_reason: str | None = None
    runs: int | None = None
    enabled: bool | None = None
    active: bool | None = None
    healthy: bool | None = None
    snapshot: str | None = None
    detail: str | None = None


class Event(msgspec.Struct, gc=False):
    """One normalized record.

    ``time`` is seconds since the Unix epoch in UTC. ``kind`` is the eslogger short event name
    for Endpoint Security records (``exec``, ``fork``, ``signal``, ...), ``log`` for a unified
    log message, ``crash`` for a crash report and ``state`` for a snapshot row, health record or
    check-in (see :class:`StateInfo`). ``process`` is the process that acted (the ES
    instigator, the process that logged the message, the crashed process). ``target`` is the
    process acted on (exec image, fork child, signal or task-port target).
    """

    time: float
    kind: str
    evidence: Evidence
    host: str | None = None
    process: Process | None = None
    target: Process | None = None
    path: str | None = None
    dest_path: str | None = None
    signal: int | None = None
    status: int | None = None
    flags: int | None = None
    identifier: str | None = None
    message: str | None = None
    subsystem: str | None = None
    category: str | None = None
    crash: CrashInfo | None = None
    state: StateInfo | None = None
    # Operating-system version the record names (Jamf's host.os, a crash report's OS version).
    os_version: str | None = None
    event_type: int | None = None
    seq_num: int | None = None
    global_seq_num: int | None = None
