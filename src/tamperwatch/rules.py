"""Per-event rules: turn one normalized event into signals about monitored components."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable

from tamperwatch import signals as sig
from tamperwatch.commands import (
    CRASH_SIGNALS,
    STOPPING_SIGNALS,
    TERMINATING_SIGNALS,
    CommandInterpreter,
    component_for_identifier,
    signal_label,
)
from tamperwatch.inventory import Component, Inventory
from tamperwatch.logpatterns import LogMatch, LogPatterns
from tamperwatch.model import Event, Process
from tamperwatch.process_table import Entry, ProcessTable
from tamperwatch.signals import Actor, Signal

# ES open(2) flag bits as the kernel reports them in es_event_open_t.fflag (sys/fcntl.h).
FWRITE = 0x2
O_TRUNC = 0x400

# proc_suspend_resume types (es_proc_suspend_resume_type_t in the Endpoint Security SDK header).
SUSPEND = 0
SHUTDOWN_SOCKETS = 3

# Apple daemons whose writes, renames and deletions of logs, preferences and plists are routine.
ROUTINE_FILE_WRITERS = frozenset(
    {
        "syslogd",
        "newsyslog",
        "logd",
        "aslmanager",
        "auditd",
        "mdmclient",
        "ManagedClient",
        "cfprefsd",
        "installd",
        "system_installd",
        "softwareupdated",
        "launchd",
        "sysextd",
        "ReportCrash",
        "OSAnalytics",
        "SubmitDiagInfo",
        "diagnosticd",
        "configd",
        "kernelmanagerd",
        "smd",
        "backgroundtaskmanagementd",
        "tccd",
        "profiles",
        "storagekitd",
    }
)

# Task-port access that lets a process stop, patch or inject into another.
TASK_ACCESS_KINDS = frozenset({"get_task", "trace", "remote_thread_create"})

_SYSEXTD_BUNDLE = re.compile(r"\bID:\s*(?P<bundle>[A-Za-z0-9][\w.-]{2,200})")


class RuleEngine:
    """Evaluate the per-event rules of one host."""

    def __init__(self, inventory: Inventory, patterns: LogPatterns, table: ProcessTable) -> None:
        self.inventory = inventory
        self.patterns = patterns
        self.table = table
        self.commands = CommandInterpreter(inventory)
        # Lifecycle pattern matches (sleep, wake, uninstall confirmations) of the last log event.
        self.lifecycle: list[LogMatch] = []
        self._rules: dict[str, Callable[[Event], list[Signal]]] = {
            "exec": self._exec,
            "signal": self._signal,
            "exit": self._exit,
            "proc_suspend_resume": self._suspend,
            "kextunload": self._kextunload,
            "btm_launch_item_remove": self._btm_remove,
            "profile_remove": self._profile_remove,
            "tcc_modify": self._tcc_modify,
            "log": self._log,
            "crash": self._crash,
            **{kind: self._task_access for kind in TASK_ACCESS_KINDS},
            **{kind: self._file for kind in _FILE_KINDS},
        }

    def evaluate(self, event: Event) -> list[Signal]:
        """Return the signals of one event; most event kinds have no rule and cost one lookup."""
        rule = self._rules.get(event.kind)
        return rule(event) if rule is not None else []

    # helpers -----------------------------------------------------------------------------------

    def actor_of(self, process: Process | None) -> Actor | None:
        entry = self.table.observe(process)
        return Actor.from_entry(self.table, entry) if entry is not None else None

    def _action(
        self,
        event: Event,
        kind: str,
        component: Component,
        summary: str,
        actor: Actor | None = None,
    ) -> list[Signal]:
        """Return one action signal whose actor is the event's instigating process."""
        if actor is None:
            actor = self.actor_of(event.process)
        return [Signal(kind, event.time, component, summary, [event.evidence], actor=actor)]

    def _entry_component(self, process: Process | None) -> Component | None:
        if process is None:
            return None
        entry = self.table.get(self.table.key_of(process))
        path = process.path or (entry.path if entry is not None else None)
        return self.inventory.match_process(path, process.name)

    def _is_routine(self, actor: Actor | None, component: Component | None) -> bool:
        """Tell whether a file action is the component's or the system's own housekeeping."""
        if actor is None:
            return False
        process = actor.process
        if process.platform_binary and process.name in ROUTINE_FILE_WRITERS:
            return True
        return (
            sig.trusted_lineage(actor, component, self.inventory) is not None
            and process.name not in sig.APPLE_TOOLS
        )

    # process events ----------------------------------------------------------------------------

    def _exec(self, event: Event) -> list[Signal]:
        target = event.target
        if target is None:
            return []
        argv = target.args or ([target.path] if target.path else [])
        if not argv:
            return []
        findings = self.commands.interpret(argv, self.table)
        if not findings:
            return []
        entry = self.table.observe(target)
        actor = Actor.from_entry(self.table, entry) if entry is not None else None
        return [
            Signal(
                kind=finding.kind,
                time=event.time,
                component=finding.component,
                summary=finding.summary,
                evidence=[event.evidence],
                actor=actor,
                techniques=finding.techniques,
            )
            for finding in findings
        ]

    def _signal(self, event: Event) -> list[Signal]:
        number = event.signal
        if number is None or event.target is None:
            return []
        if number not in TERMINATING_SIGNALS and number not in STOPPING_SIGNALS:
            return []
        component = self._entry_component(event.target)
        if component is None:
            return []
        kind = sig.PROCESS_SUSPENDED if number in STOPPING_SIGNALS else sig.PROCESS_KILLED
        sender = event.process
        target_name = posixpath.basename(event.target.path or "") or str(event.target.pid)
        summary = f"{signal_label(number)} sent to {target_name}[{event.target.pid}]"
        # launchd or the kernel delivering a signal acts for someone else: attribute it later.
        actor = None
        if sender is not None and sender.pid > 1:
            actor = self.actor_of(sender)
            summary += f" by {posixpath.basename(sender.path or '') or sender.pid}[{sender.pid}]"
        signal = Signal(
            kind,
            event.time,
            component,
            summary,
            [event.evidence],
            actor=actor,
            action=actor is not None,
            target_pid=event.target.pid,
        )
        return [signal]

    def _exit(self, event: Event) -> list[Signal]:
        status = event.status
        if status is None:
            return []
        number = status & 0x7F
        if number in (0, 0x7F):
            return []
        component = self._entry_component(event.process)
        if component is None:
            return []
        name = posixpath.basename((event.process.path if event.process else "") or "")
        pid = event.process.pid if event.process else 0
        if number in CRASH_SIGNALS:
            kind, summary = sig.CRASHED, f"{name}[{pid}] exited with {signal_label(number)}"
        else:
            kind, summary = (
                sig.PROCESS_KILLED,
                f"{name}[{pid}] was terminated by {signal_label(number)}",
            )
        return [
            Signal(
                kind, event.time, component, summary, [event.evidence], action=False, target_pid=pid
            )
        ]

    def _suspend(self, event: Event) -> list[Signal]:
        if event.flags not in (SUSPEND, SHUTDOWN_SOCKETS) or event.target is None:
            return []
        component = self._entry_component(event.target)
        if component is None:
            return []
        actor = self.actor_of(event.process)
        what = "suspended" if event.flags == SUSPEND else "network sockets shut down"
        name = posixpath.basename(event.target.path or "")
        summary = f"{name}[{event.target.pid}] {what}"
        return self._action(event, sig.PROCESS_SUSPENDED, component, summary, actor)

    def _task_access(self, event: Event) -> list[Signal]:
        if event.target is None or event.process is None:
            return []
        component = self._entry_component(event.target)
        if component is None:
            return []
        actor = self.actor_of(event.process)
        if actor is None or actor.process.platform_binary:
            return []
        if sig.trusted_lineage(actor, component, self.inventory) is not None:
            return []
        name = posixpath.basename(event.target.path or "")
        by = f"{actor.process.name}[{actor.process.pid}]"
        summary = f"{event.kind} on {name}[{event.target.pid}] by {by}"
        return self._action(event, sig.PROCESS_SUSPENDED, component, summary, actor)

    # file events -------------------------------------------------------------------------------

    def _file(self, event: Event) -> list[Signal]:
        path = event.path
        if not path:
            return []
        destructive = _is_destructive(event)
        if not destructive and not _is_modifying(event):
            return []
        matches = self.inventory.match_path(path)
        if not matches:
            return []

        actor = self.actor_of(event.process)
        signals: list[Signal] = []
        for component, role in matches:
            if self._is_routine(actor, component):
                continue
            outcome = self._file_outcome(event, component, role, destructive, actor)
            if outcome is None:
                continue
            kind, summary, techniques = outcome
            signals.append(
                Signal(
                    kind,
                    event.time,
                    component,
                    summary,
                    [event.evidence],
                    actor=actor,
                    techniques=techniques,
                )
            )
        return signals

    def _file_outcome(
        self,
        event: Event,
        component: Component,
        role: str,
        destructive: bool,
        actor: Actor | None,
    ) -> tuple[str, str, tuple[str, ...]] | None:
        """Return the signal kind, summary and techniques of one file event on one component."""
        path = event.path
        verb = _file_verb(event)
        if role == "plist":
            if destructive:
                return sig.DAEMON_UNLOADED, f"launchd plist {verb}: {path}", ()
            if event.kind in ("write", "close"):
                return sig.PROTECTION_WEAKENED, f"launchd plist {verb}: {path}", ()
            return None

        if role == "log":
            if destructive:
                return sig.PROTECTION_WEAKENED, f"log {verb}: {path}", ("T1685.006",)
            return None

        if role == "data":
            # Apple's own tools maintain built-in configuration (pf.conf, audit_control) unless a
            # person drives them from a terminal.
            apple_tool = actor is not None and bool(actor.process.platform_binary)
            if (
                component.builtin
                and apple_tool
                and actor is not None
                and not sig.is_interactive(actor)
            ):
                return None
            kind = (
                sig.FILTER_DISABLED if component.id == "packet-filter" else sig.PROTECTION_WEAKENED
            )
            return kind, f"configuration {verb}: {path}", ()

        if role in ("install", "process"):
            if event.kind == "setextattr" and event.identifier != "com.apple.quarantine":
                return None
            if event.kind == "setmode" and event.flags is not None and event.flags & 0o111:
                return None
            if destructive or event.kind in ("setmode", "setflags", "setextattr"):
                return sig.PROTECTION_WEAKENED, f"component files {verb}: {path}", ()
        return None

    def _kextunload(self, event: Event) -> list[Signal]:
        if not event.identifier:
            return []
        component = self.inventory.match_kext(event.identifier)
        if component is None:
            return []
        summary = f"kernel extension {event.identifier} unloaded"
        return self._action(event, sig.EXTENSION_STATE_CHANGED, component, summary)

    def _btm_remove(self, event: Event) -> list[Signal]:
        if not event.path:
            return []
        component = self.inventory.match_plist(event.path) or next(
            (c for c, _ in self.inventory.match_path(event.path)), None
        )
        if component is None:
            return []
        summary = f"background item removed: {event.path}"
        return self._action(event, sig.DAEMON_UNLOADED, component, summary)

    def _profile_remove(self, event: Event) -> list[Signal]:
        identifier = event.identifier or ""
        component = component_for_identifier(self.inventory, identifier)
        if component is None:
            return []
        summary = f"configuration profile {identifier} removed"
        return self._action(event, sig.PROTECTION_WEAKENED, component, summary)

    def _tcc_modify(self, event: Event) -> list[Signal]:
        identity = event.identifier or ""
        # es_tcc_authorization_right_t: 0 denied, 1 unknown, 2 allowed, ...
        if event.flags not in (0, None):
            return []
        component = self.inventory.match_system_extension(identity) or component_for_identifier(
            self.inventory, identity
        )
        if component is None:
            return []
        summary = f"privacy permission {event.message or 'unknown service'} revoked for {identity}"
        return self._action(event, sig.PROTECTION_WEAKENED, component, summary)

    # unified log and crash reports -------------------------------------------------------------

    def _log(self, event: Event) -> list[Signal]:
        signals: list[Signal] = []
        matches = self.patterns.match(event)
        self.lifecycle = [match for match in matches if match.signal == "lifecycle"]
        for match in matches:
            produced = self._log_signal(event, match)
            if produced is not None:
                signals.append(produced)
        return signals

    def _log_signal(self, event: Event, match: LogMatch) -> Signal | None:
        if match.signal == "lifecycle":
            return None
        fields = match.fields
        component = self._log_component(event, fields)
        if component is None and match.signal == sig.ES_CLIENT_TERMINATED:
            component = _es_client_from_label(
                fields.get("label") or fields.get("process_name") or ""
            )
        if component is None:
            return None
        text = (event.message or "")[:300]
        process = event.process
        source = (posixpath.basename(process.path or "") or process.name) if process else None
        summary = f"{source or 'log'}: {text}"
        if not match.verified:
            summary += " (unverified message pattern)"
        actor: Actor | None = None
        sender_pid = fields.get("sender_pid")
        if sender_pid and sender_pid.isdigit() and int(sender_pid) > 1:
            entry = self.table.latest(int(sender_pid))
            if entry is not None:
                actor = Actor.from_entry(self.table, entry)
        return Signal(
            kind=match.signal,
            time=event.time,
            component=component,
            summary=summary,
            evidence=[event.evidence],
            actor=actor,
            action=actor is not None,
            burst_only=match.signal == sig.ES_CLIENT_DEGRADED,
            target_pid=int(fields["pid"]) if fields.get("pid", "").isdigit() else None,
        )

    def _log_component(self, event: Event, fields: dict[str, str]) -> Component | None:
        label = fields.get("label")
        if label:
            found = self.inventory.match_label(label)
            if found is not None:
                return found
        bundle = fields.get("bundle_id")
        if bundle:
            found = self.inventory.match_system_extension(bundle) or self.inventory.match_kext(
                bundle
            )
            if found is not None:
                return found
        name = fields.get("process_name")
        if name:
            found = self.inventory.match_process(None, name)
            if found is not None:
                return found
        if event.process is not None:
            found = self.inventory.match_process(event.process.path, event.process.name)
            if found is not None:
                return found
        if event.subsystem:
            return self.inventory.match_subsystem(event.subsystem)
        return None

    def _crash(self, event: Event) -> list[Signal]:
        crash = event.crash
        process = event.process
        if crash is None or process is None:
            return []
        name = crash.process_name or process.name or posixpath.basename(process.path or "")
        component = self.inventory.match_process(process.path, name)
        if component is None and crash.bundle_id:
            component = self.inventory.match_system_extension(crash.bundle_id)
        if component is None and name == "sysextd" and crash.application_specific:
            return self._sysextd_crash(event, crash.application_specific)
        namespace = (crash.namespace or "").upper()
        if component is None and namespace == "ENDPOINTSECURITY" and crash.code == 2:
            # Only an Endpoint Security client can miss an ES deadline, so the process is
            # security tooling even when the catalog does not list its product.
            component = uncatalogued_es_client(
                name, crash.bundle_id, crash.team_id or process.team_id
            )
        if component is None:
            return []
        how = f"{crash.exception_type or 'crash'}"
        if namespace:
            how += f", termination namespace {namespace} code {crash.code}"
        if namespace == "ENDPOINTSECURITY" and crash.code == 2:
            summary = (
                f"{name}[{process.pid}] killed by Endpoint Security for missing a deadline ({how})"
            )
            return [
                Signal(
                    sig.ES_CLIENT_TERMINATED,
                    event.time,
                    component,
                    summary,
                    [event.evidence],
                    action=False,
                    target_pid=process.pid,
                )
            ]
        actor: Actor | None = None
        if crash.by_pid is not None and crash.by_pid > 1 and crash.by_pid != process.pid:
            entry = self.table.latest(crash.by_pid)
            if entry is not None:
                actor = Actor.from_entry(self.table, entry)
        summary = f"{name}[{process.pid}] crashed ({how})"
        return [
            Signal(
                sig.CRASHED,
                event.time,
                component,
                summary,
                [event.evidence],
                actor=actor,
                action=actor is not None,
                target_pid=process.pid,
            )
        ]

    def _sysextd_crash(self, event: Event, text: str) -> list[Signal]:
        match = _SYSEXTD_BUNDLE.search(text)
        if match is None:
            return []
        bundle = match["bundle"].rstrip(",.")
        component = self.inventory.match_system_extension(bundle)
        if component is None:
            return []
        summary = f"sysextd crashed while handling {bundle}: {text.strip().splitlines()[-1][:200]}"
        return [
            Signal(
                sig.EXTENSION_STATE_CHANGED,
                event.time,
                component,
                summary,
                [event.evidence],
                action=False,
            )
        ]


_FILE_KINDS = frozenset(
    {"unlink", "rename", "truncate", "open", "write", "close", "setmode", "setflags", "setextattr"}
)


def uncatalogued_es_client(name: str, bundle_id: str | None, team_id: str | None) -> Component:
    """Describe an Endpoint Security client that the catalog does not list."""
    identifier = bundle_id or name or "unknown"
    return Component(
        id=f"es-client:{identifier}",
        product=f"{identifier} (Endpoint Security client not in the catalog)",
        vendor=f"team {team_id}" if team_id else "unknown vendor",
        category="es-client",
        team_ids=(team_id,) if team_id else (),
        system_extensions=(bundle_id,) if bundle_id else (),
        process_names=(name,) if name else (),
    )


def _es_client_from_label(label: str) -> Component | None:
    """Describe an ES client named by a launchd label such as ``TEAMID.bundle.id``."""
    if not label:
        return None
    team, _, bundle = label.partition(".")
    if len(team) == 10 and team.isalnum() and team.isupper() and bundle:
        return uncatalogued_es_client(bundle, bundle, team)
    return uncatalogued_es_client(label, None, None)


def _is_destructive(event: Event) -> bool:
    """Tell whether a file event deletes, moves or empties its file."""
    if event.kind in ("unlink", "rename", "truncate"):
        return True
    flags = event.flags or 0
    return event.kind == "open" and bool(flags & O_TRUNC) and bool(flags & FWRITE)


def _is_modifying(event: Event) -> bool:
    """Tell whether a file event changes the content or attributes of its file."""
    if event.kind in ("write", "setmode", "setflags", "setextattr"):
        return True
    return event.kind == "close" and event.flags == 1


def _file_verb(event: Event) -> str:
    return {
        "unlink": "deleted",
        "rename": f"moved to {event.dest_path}" if event.dest_path else "moved",
        "truncate": "truncated",
        "open": "truncated",
        "write": "written",
        "close": "modified",
        "setmode": f"mode set to {event.flags:o}" if event.flags is not None else "mode changed",
        "setflags": "flags changed",
        "setextattr": f"attribute {event.identifier} set",
    }.get(event.kind, event.kind)


def entry_name(entry: Entry) -> str:
    return posixpath.basename(entry.path or "") or str(entry.pid)
