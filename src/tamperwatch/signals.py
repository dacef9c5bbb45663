"""Signals (typed observations about one component) and the actors behind them.

A signal is either an *action* (a process did something to a component: ran ``launchctl
bootout``, sent SIGKILL, deleted a plist) or an *impairment* observed without a known actor (a
crash report, an abnormal exit, launchd noting that a job died). Correlation attributes
impairments to the actions that precede them.
"""

from __future__ import annotations

import math
import posixpath
from dataclasses import dataclass

from tamperwatch.inventory import Component, Inventory
from tamperwatch.model import Evidence
from tamperwatch.process_table import Entry, ProcessTable

PROCESS_KILLED = "process_killed"
PROCESS_SUSPENDED = "process_suspended"
DAEMON_UNLOADED = "daemon_unloaded"
EXTENSION_STATE_CHANGED = "extension_state_changed"
FILTER_DISABLED = "filter_disabled"
ES_CLIENT_TERMINATED = "es_client_terminated"
ES_CLIENT_DEGRADED = "es_client_degraded"
CRASHED = "crashed"
PROTECTION_WEAKENED = "protection_weakened"
EVENT_FLOOD = "event_flood"
TELEMETRY_SILENT = "telemetry_silent"

# ATT&CK v19 techniques per signal kind, used when a rule names none of its own.
# T1685 Disable or Modify Tools, T1686 Disable or Modify System Firewall, T1687 Exploitation for
# Defense Impairment, T1489 Service Stop.
DEFAULT_TECHNIQUES: dict[str, tuple[str, ...]] = {
    PROCESS_KILLED: ("T1685", "T1489"),
    PROCESS_SUSPENDED: ("T1685",),
    DAEMON_UNLOADED: ("T1685", "T1489"),
    EXTENSION_STATE_CHANGED: ("T1685",),
    FILTER_DISABLED: ("T1686",),
    ES_CLIENT_TERMINATED: ("T1687",),
    ES_CLIENT_DEGRADED: ("T1687",),
    CRASHED: ("T1687",),
    PROTECTION_WEAKENED: ("T1685",),
    EVENT_FLOOD: ("T1687",),
    TELEMETRY_SILENT: ("T1685",),
}

# Severity of one signal on its own, as an index into ("low", "medium", "high", "critical").
BASE_SEVERITY: dict[str, int] = {
    PROCESS_KILLED: 2,
    PROCESS_SUSPENDED: 2,
    DAEMON_UNLOADED: 2,
    EXTENSION_STATE_CHANGED: 2,
    FILTER_DISABLED: 2,
    ES_CLIENT_TERMINATED: 2,
    ES_CLIENT_DEGRADED: 0,
    CRASHED: 0,
    PROTECTION_WEAKENED: 1,
    EVENT_FLOOD: 1,
    TELEMETRY_SILENT: 1,
}

# Apple command-line tools recognised by name wherever they run from. A binary with one of
# these names that is not an Apple platform binary is reported as a masquerade.
APPLE_TOOLS = frozenset(
    {
        "launchctl", "kill", "killall", "pkill", "kextunload", "kmutil",
        "systemextensionsctl", "spctl", "csrutil", "pfctl", "socketfilterfw", "defaults",
        "log", "tccutil", "profiles", "rm", "mv", "dd", "chmod",
        "chflags", "xattr", "plutil", "osascript", "sudo", "su", "sh", "bash", "zsh",
        "unlink", "cp", "sfltool", "tmutil", "networksetup", "installer", "touch",
    }
)  # fmt: skip

# Folders whose binaries only Apple ships on a SIP-protected system.
APPLE_SYSTEM_PREFIXES = ("/bin/", "/sbin/", "/usr/bin/", "/usr/sbin/", "/usr/libexec/", "/System/")

# Programs that put a person at a keyboard in the process chain.
INTERACTIVE_HOSTS = frozenset(
    {"Terminal", "iTerm2", "sshd", "login", "tmux", "screen", "sshd-session", "Warp", "Alacritty"}
)

# The macOS installer and its helpers; they run package scripts.
INSTALLER_NAMES = frozenset(
    {"installer", "installd", "system_installd", "package_script_service", "Installer"}
)


@dataclass(frozen=True)
class ProcessView:
    """A process of an actor chain as it was when the signal was raised."""

    pid: int
    path: str | None
    args: tuple[str, ...] | None
    team_id: str | None
    signing_id: str | None
    platform_binary: bool | None
    tty: bool

    @property
    def name(self) -> str:
        return posixpath.basename(self.path) if self.path else ""

    @classmethod
    def of(cls, entry: Entry) -> ProcessView:
        return cls(
            pid=entry.pid,
            path=entry.path,
            args=tuple(entry.args) if entry.args is not None else None,
            team_id=entry.team_id,
            signing_id=entry.signing_id,
            platform_binary=entry.platform_binary,
            tty=entry.tty,
        )


@dataclass(frozen=True)
class Actor:
    """The process behind an action, with its ancestry (nearest first)."""

    process: ProcessView
    ancestry: tuple[ProcessView, ...]
    group: tuple[str, int]

    @property
    def chain(self) -> tuple[ProcessView, ...]:
        return (self.process, *self.ancestry)

    @property
    def masquerade(self) -> bool:
        return is_masquerade(self.process)

    @classmethod
    def from_entry(cls, table: ProcessTable, entry: Entry) -> Actor:
        ancestry = table.ancestry(entry)
        if entry.session_id is not None and entry.session_id > 1:
            group = ("session", entry.session_id)
        else:
            top = entry
            for ancestor in ancestry:
                if ancestor.pid <= 1:
                    break
                top = ancestor
            group = ("tree", top.pid)
        return cls(ProcessView.of(entry), tuple(ProcessView.of(a) for a in ancestry), group)


def is_masquerade(process: ProcessView) -> bool:
    """Tell whether a process is named like an Apple tool but is not Apple's binary."""
    name = process.name
    if name not in APPLE_TOOLS:
        return False
    if process.platform_binary is not None:
        return not process.platform_binary
    return not (process.path or "").startswith(APPLE_SYSTEM_PREFIXES)


def is_interactive(actor: Actor) -> bool:
    """Tell whether a person at a terminal, or a remote shell, is in the actor's chain."""
    for process in actor.chain:
        if process.tty:
            return True
        name = process.name
        if name in INTERACTIVE_HOSTS or (process.path or "").endswith(
            "/Terminal.app/Contents/MacOS/Terminal"
        ):
            return True
    return False


def trusted_lineage(actor: Actor, component: Component | None, inventory: Inventory) -> str | None:
    """Return why an actor chain counts as the component's own maintenance, or ``None``.

    The chain is trusted when no process in it has a terminal and every process in it is one of:
    an Apple platform binary, a binary signed with the component's team ID, a management agent,
    or the system installer. At least one of the last three must be present. The installer only
    counts when a package id of the component appears in the chain (the package script path).
    """
    if component is None or is_interactive(actor):
        return None
    team_ids = set(component.team_ids)
    reason: str | None = None
    for process in actor.chain:
        if process.team_id and process.team_id in team_ids:
            reason = reason or (
                f"vendor maintenance: {process.path} is signed with {component.product}'s "
                f"team ID {process.team_id}"
            )
            continue
        agent = inventory.management_agent(process.path)
        if agent is not None:
            reason = reason or f"run by the management agent {agent.name} ({process.path})"
            continue
        if process.name in INSTALLER_NAMES and _installs_component(actor, component, inventory):
            reason = reason or f"system installer running a {component.product} package"
            continue
        if process.platform_binary or (
            process.platform_binary is None
            and (process.path or "").startswith(APPLE_SYSTEM_PREFIXES)
            and not process.team_id
        ):
            continue
        return None
    return reason


def _installs_component(actor: Actor, component: Component, inventory: Inventory) -> bool:
    for process in actor.chain:
        texts = [process.path or "", *(process.args or ())]
        for text in texts:
            found = inventory.component_for_package(text)
            if found is not None and found.id == component.id:
                return True
    return False


@dataclass
class Signal:
    """One observation about one component, with its evidence and, for actions, its actor."""

    kind: str
    time: float
    component: Component | None
    summary: str
    evidence: list[Evidence]
    actor: Actor | None = None
    action: bool = True
    techniques: tuple[str, ...] = ()
    # Index into SEVERITIES; None takes the kind's BASE_SEVERITY.
    severity: int | None = None
    # A signal that only counts once crash_burst_threshold of its kind pile up for a component.
    burst_only: bool = False
    # The pid of the component process the signal is about, when the record names it. Signals
    # of one kind about one pid are one observation seen by several sources.
    target_pid: int | None = None
    # For telemetry_silent: when the component showed life again; infinity while it has not.
    until: float = math.inf
    # For telemetry_silent: when the component became overdue. A sleep or a window that starts
    # before this covers the silence, although the last sign of life came before it.
    overdue_at: float | None = None
    # A state that has lasted past its grace (a stuck approval, a job that cannot start). No
    # shutdown, update or window explains it: they explain an onset, not a lasting state.
    persistent: bool = False

    def __post_init__(self) -> None:
        if not self.techniques:
            self.techniques = DEFAULT_TECHNIQUES.get(self.kind, ())
        if self.severity is None:
            self.severity = BASE_SEVERITY.get(self.kind, 1)
