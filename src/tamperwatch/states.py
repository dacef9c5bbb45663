"""Broken states seen in snapshots: system extensions, launchd jobs and console check-ins.

A system extension listed as ``activated enabled`` does not prove that its process runs, so the
rows of ``systemextensionsctl list`` are read together with the launchd jobs of the same host.
Snapshots of one source are compared over time: a component's extension that disappears from a
later snapshot was removed.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from tamperwatch import signals as sig
from tamperwatch.commands import CRASH_SIGNALS, signal_label
from tamperwatch.inventory import Component, Inventory
from tamperwatch.liveness import LimitRecorder
from tamperwatch.model import Event, Evidence, StateInfo
from tamperwatch.signals import Signal

# States of a system extension that leave it not running (db.plist names; the list is the one a
# third-party parser uses, not an Apple document).
STOPPED_EXTENSION_STATES = frozenset(
    {
        "activated_disabled",
        "terminating_for_uninstall",
        "terminating_for_uninstall_but_still_running",
        "terminating_for_uninstall_via_delegate",
        "terminating_for_disable",
        "terminating_for_disable_but_still_running",
        "uninstalling",
        "uninstalled",
    }
)
WAITING_FOR_USER = "activated_waiting_for_user"
ENABLED = "activated_enabled"
UNINSTALL_ON_REBOOT = "terminated_waiting_to_uninstall_on_reboot"

_FALSE = frozenset({"0", "false", "no"})

# Security settings read from osquery tables: setting name -> (component id, signal kind, values
# that mean off, what that means).
_SETTING_RULES: dict[str, tuple[str, str, frozenset[str], str]] = {
    "alf.global_state": ("application-firewall", sig.FILTER_DISABLED, frozenset({"0"}), "application firewall off"),
    "alf.firewall_unload": ("application-firewall", sig.FILTER_DISABLED, frozenset({"1"}), "application firewall unloaded"),
    "gatekeeper.assessments_enabled": ("gatekeeper", sig.PROTECTION_WEAKENED, frozenset({"0"}), "Gatekeeper assessments off"),
    "sip_config.sip": ("sip", sig.PROTECTION_WEAKENED, frozenset({"0"}), "System Integrity Protection off"),
    "com.apple.alf globalstate": ("application-firewall", sig.FILTER_DISABLED, frozenset({"0"}), "application firewall off"),
    "/Library/Preferences/com.apple.alf globalstate": ("application-firewall", sig.FILTER_DISABLED, frozenset({"0"}), "application firewall off"),
    **{
        f"{domain} {key}": ("software-update", sig.PROTECTION_WEAKENED, _FALSE, f"software update setting {key} off")
        for domain in ("com.apple.SoftwareUpdate", "/Library/Preferences/com.apple.SoftwareUpdate")
        for key in ("AutomaticCheckEnabled", "CriticalUpdateInstall", "ConfigDataInstall", "AutomaticDownload")
    },
}  # fmt: skip

# launchd respawns a crashing job about every 10 s. A job still "spawn scheduled" after this many
# runs, or whose run count climbs between two snapshots, cannot start.
SPAWN_LOOP_RUNS = 10


def _uncatalogued_extension_job(state: StateInfo) -> Component | None:
    """Describe the system extension behind a launchd job the catalog does not list.

    launchd runs a system extension as ``TEAMID.bundle.id``, submitted by smd. Such a job that
    cannot start is an impairment, whatever product the extension belongs to.
    """
    team, _, bundle = state.name.partition(".")
    submitted = "submitted by smd" in (state.detail or "") + (state.path or "")
    if not (submitted and len(team) == 10 and team.isalnum() and team.isupper() and bundle):
        return None
    return Component(
        id=f"system-extension:{bundle}",
        product=f"{bundle} (system extension not in the catalog)",
        vendor=f"team {team}",
        category="system-extension",
        team_ids=(team,),
        system_extensions=(bundle,),
        launchd_labels=(state.name,),
    )


# A system extension row and a launchd job row this close in time describe one moment (seconds).
JOIN_SECONDS = 3600.0

# Extensions, launchd jobs and reported states remembered per host, in each table of the
# tracker, because labels and versions come from the input. A row that would add one more is
# judged on its own, so its changes are not followed and a state already reported can repeat.
MAX_TRACKED_STATES = 10_000
STATES_DROPPED = (
    "state tracking limit: {count} snapshot rows of extensions or launchd jobs beyond "
    f"{MAX_TRACKED_STATES:,} per table were not compared with other snapshots"
)


def _is_extension_job(label: str, bundle: str) -> bool:
    """Tell whether a launchd label is the job of a system extension (``TEAMID.bundle.id``)."""
    return label == bundle or label.endswith("." + bundle)


@dataclass
class _Extension:
    component: Component
    first_waiting: float | None = None
    reported_waiting: bool = False
    enabled_at: float | None = None
    evidence: Evidence | None = None


@dataclass
class StateTracker:
    """Judge the state rows of one host as they arrive in event time."""

    inventory: Inventory
    approval_grace: float
    # Component of a name that a console or health record uses (see HostEngine).
    name_resolver: Callable[[str], Component | None] | None = None
    # Seconds in which a healthy check-in cancels an unhealthy one of the same component.
    recovery_grace: float = 300.0
    # Where rows that the table limits leave out are counted.
    limits: LimitRecorder | None = None
    _pending_unhealthy: dict[str, Signal] = field(default_factory=dict)
    # Keyed by (bundle id, version): an upgrade lists two versions of one bundle side by side.
    _extensions: dict[tuple[str, str], _Extension] = field(default_factory=dict)
    _snapshot: str | None = None
    _snapshot_time: float | None = None
    _snapshot_evidence: Evidence | None = None
    _snapshot_rows: set[str] = field(default_factory=set)
    _snapshot_enabled: set[str] = field(default_factory=set)
    _pending_residue: list[tuple[Event, Component, StateInfo]] = field(default_factory=list)
    _previous_rows: set[str] | None = None
    _jobs_seen_loaded: set[str] = field(default_factory=set)
    _job_status: dict[str, tuple[int | None, int | None]] = field(default_factory=dict)
    _spawn_reported: set[str] = field(default_factory=set)
    _stopped_reported: set[tuple[str, str]] = field(default_factory=set)
    _settings_off: dict[str, bool] = field(default_factory=dict)
    _job_runs: dict[str, int] = field(default_factory=dict)
    # Latest launchd snapshot rows of jobs without a pid: label -> (time, evidence).
    _jobs_down: dict[str, tuple[float, Evidence]] = field(default_factory=dict)
    # Whether a table limit left out part of the row being judged.
    _row_dropped: bool = False

    def evaluate(self, event: Event) -> list[Signal]:
        """Judge one state row; a row that the table limits leave out is counted once."""
        self._row_dropped = False
        signals = self._evaluate(event)
        if self._row_dropped and self.limits is not None:
            self.limits.dropped(STATES_DROPPED, event.time)
        return signals

    def _evaluate(self, event: Event) -> list[Signal]:
        state = event.state
        if state is None:
            return []
        if state.subject == "system_extension":
            return self._extension(event, state)
        if state.subject == "launchd_job":
            return self._job(event, state)
        if state.subject == "launchd_plist":
            return self._plist(event, state)
        if state.subject == "checkin" and state.healthy is False:
            return self._unhealthy(event, state)
        if state.subject == "checkin" and state.healthy:
            self._recovered(event, state)
        if state.subject == "setting":
            return self._setting(event, state)
        return []

    def _setting(self, event: Event, state: StateInfo) -> list[Signal]:
        """Report a security setting when it turns off (once, until it is on again)."""
        rule = _SETTING_RULES.get(state.name)
        if rule is None:
            return []
        component_id, kind, off_values, what = rule
        off = (state.state or "").strip().casefold() in off_values
        was_off = self._settings_off.get(state.name, False)
        self._settings_off[state.name] = off
        component = self.inventory.get(component_id)
        if not off or was_off or component is None:
            return []
        return [self._signal(event, kind, component, f"{what} ({state.name} = {state.state})")]

    def finish(self) -> list[Signal]:
        """Judge the last snapshot and the unhealthy check-ins still unanswered at the end."""
        signals = self._close_snapshot() if self._snapshot is not None else []
        signals.extend(self._pending_unhealthy.values())
        self._pending_unhealthy.clear()
        return signals

    # system extensions -------------------------------------------------------------------------

    def _extension(self, event: Event, state: StateInfo) -> list[Signal]:
        signals = self._follow_snapshot(event, state.snapshot)
        component = self.inventory.match_system_extension(state.name)
        if component is None:
            return signals
        key = (state.name, state.version or "")
        if not self._room(self._extensions, key) or not self._room(self._snapshot_rows, state.name):
            return signals
        self._snapshot_rows.add(state.name)
        tracked = self._extensions.setdefault(key, _Extension(component))
        tracked.evidence = event.evidence
        value = state.state or ""
        if value == ENABLED:
            tracked.enabled_at = event.time
            tracked.first_waiting = None
            self._snapshot_enabled.add(state.name)
            signals.extend(self._job_down_for(event, component, state.name))
            return signals
        if value == WAITING_FOR_USER:
            if tracked.first_waiting is None:
                tracked.first_waiting = event.time
            waited = event.time - tracked.first_waiting
            if waited > self.approval_grace and not tracked.reported_waiting:
                tracked.reported_waiting = True
                signals.append(
                    self._signal(
                        event,
                        sig.EXTENSION_STATE_CHANGED,
                        component,
                        f"system extension {state.name} ({state.version or '?'}) still waits for "
                        f"user approval after {waited / 60:.0f} min",
                        persistent=True,
                    )
                )
            return signals
        if value == UNINSTALL_ON_REBOOT:
            # Beside an enabled successor in the same snapshot this is what an upgrade leaves
            # behind until reboot; the snapshot's other rows decide when it closes.
            if len(self._pending_residue) < MAX_TRACKED_STATES:
                self._pending_residue.append((event, component, state))
            else:
                self._row_dropped = True
            return signals
        if value in STOPPED_EXTENSION_STATES:
            return signals + self._stopped(event, component, state, f"is {value.replace('_', ' ')}")
        return signals

    def _stopped(
        self, event: Event, component: Component, state: StateInfo, what: str
    ) -> list[Signal]:
        key = (state.name, state.state or "")
        if key in self._stopped_reported:
            return []
        if self._room(self._stopped_reported, key):
            self._stopped_reported.add(key)
        summary = f"system extension {state.name} ({state.version or '?'}) {what}"
        return [self._signal(event, sig.EXTENSION_STATE_CHANGED, component, summary)]

    def _follow_snapshot(self, event: Event, snapshot: str | None) -> list[Signal]:
        if snapshot is None or snapshot == self._snapshot:
            return []
        signals = self._close_snapshot() if self._snapshot is not None else []
        self._snapshot = snapshot
        self._snapshot_time = event.time
        self._snapshot_evidence = event.evidence
        self._snapshot_rows = set()
        self._snapshot_enabled = set()
        return signals

    def _close_snapshot(self) -> list[Signal]:
        """Compare the snapshot that just ended with the one before it."""
        when = self._snapshot_time if self._snapshot_time is not None else 0.0
        signals: list[Signal] = []
        for residue_event, component, state in self._pending_residue:
            if state.name not in self._snapshot_enabled:
                signals += self._stopped(
                    residue_event, component, state, "is to be uninstalled at reboot"
                )
        self._pending_residue = []
        rows = self._snapshot_rows
        if self._previous_rows is not None:
            for bundle in sorted(self._previous_rows - rows):
                versions = [t for (name, _), t in self._extensions.items() if name == bundle]
                tracked = versions[-1] if versions else None
                if tracked is None or tracked.evidence is None:
                    continue
                # The last row that listed it, and the first row of the snapshot without it.
                evidence = [tracked.evidence]
                if self._snapshot_evidence is not None:
                    evidence.append(self._snapshot_evidence)
                signals.append(
                    Signal(
                        sig.EXTENSION_STATE_CHANGED,
                        when,
                        tracked.component,
                        f"system extension {bundle} is missing from a later snapshot",
                        evidence,
                        action=False,
                    )
                )
        if rows:
            self._previous_rows = set(rows)
        return signals

    # launchd jobs ------------------------------------------------------------------------------

    def _job(self, event: Event, state: StateInfo) -> list[Signal]:
        component = self.inventory.match_label(state.name) or _uncatalogued_extension_job(state)
        if component is None:
            return []
        signals: list[Signal] = []
        label = state.name
        if state.state == "not loaded":
            if label in self._jobs_seen_loaded:
                self._jobs_seen_loaded.discard(label)
                signals.append(
                    self._signal(
                        event,
                        sig.DAEMON_UNLOADED,
                        component,
                        f"launchd job {label} is no longer loaded",
                    )
                )
            return signals
        if self._room(self._jobs_seen_loaded, label):
            self._jobs_seen_loaded.add(label)
        status = state.last_exit_status
        previous = self._job_status.get(label)
        if self._room(self._job_status, label):
            self._job_status[label] = (status, state.pid)
        if status is not None and status < 0 and (previous is None or previous[0] != status):
            number = -status
            kind = sig.CRASHED if number in CRASH_SIGNALS else sig.PROCESS_KILLED
            running = f"running again as pid {state.pid}" if state.pid else "not running"
            signals.append(
                self._signal(
                    event,
                    kind,
                    component,
                    f"launchd job {label} last ended by {signal_label(number)}; {running}",
                )
            )
        runs_before = self._job_runs.get(label)
        if state.runs is not None and self._room(self._job_runs, label):
            self._job_runs[label] = state.runs
        climbing = runs_before is not None and state.runs is not None and state.runs > runs_before
        spawn_loop = state.state == "spawn scheduled" and (
            (state.runs or 0) >= SPAWN_LOOP_RUNS or climbing
        )
        if spawn_loop and label not in self._spawn_reported:
            if self._room(self._spawn_reported, label):
                self._spawn_reported.add(label)
            reason = (
                f", last exit reason {state.last_exit_reason}" if state.last_exit_reason else ""
            )
            signals.append(
                self._signal(
                    event,
                    sig.EXTENSION_STATE_CHANGED,
                    component,
                    f"launchd job {label} cannot start: spawn scheduled after {state.runs} runs{reason}",
                    persistent=True,
                )
            )
        if state.pid is None and state.state in ("not running", "spawn scheduled"):
            signals.extend(self._enabled_but_not_running(event, component, label))
        elif state.pid is not None:
            self._jobs_down.pop(label, None)
        return signals

    def _enabled_but_not_running(
        self, event: Event, component: Component, label: str
    ) -> list[Signal]:
        """Report a job of an extension that snapshots list as enabled while it does not run."""
        if self._room(self._jobs_down, label):
            self._jobs_down[label] = (event.time, event.evidence)
        for (bundle, _), tracked in self._extensions.items():
            if tracked.component.id != component.id or tracked.enabled_at is None:
                continue
            if (
                _is_extension_job(label, bundle)
                and abs(event.time - tracked.enabled_at) <= JOIN_SECONDS
            ):
                return self._not_running(
                    event.time, component, bundle, label, tracked.evidence, event.evidence
                )
        return []

    def _job_down_for(self, event: Event, component: Component, bundle: str) -> list[Signal]:
        """Report an enabled extension whose job a nearby launchd snapshot showed not running."""
        for label, (when, evidence) in self._jobs_down.items():
            if _is_extension_job(label, bundle) and abs(event.time - when) <= JOIN_SECONDS:
                return self._not_running(
                    event.time, component, bundle, label, event.evidence, evidence
                )
        return []

    def _not_running(
        self,
        when: float,
        component: Component,
        bundle: str,
        label: str,
        listed: Evidence | None,
        job: Evidence | None,
    ) -> list[Signal]:
        key = (bundle, "enabled but not running")
        if key in self._stopped_reported:
            return []
        if self._room(self._stopped_reported, key):
            self._stopped_reported.add(key)
        return [
            Signal(
                sig.EXTENSION_STATE_CHANGED,
                when,
                component,
                f"system extension {bundle} is listed as activated enabled but its launchd job "
                f"{label} is not running",
                [e for e in (listed, job) if e is not None],
                action=False,
                persistent=True,
            )
        ]

    def _plist(self, event: Event, state: StateInfo) -> list[Signal]:
        component = self.inventory.match_label(state.name)
        if state.path:
            component = component or self.inventory.match_plist(state.path)
        if component is None:
            return []
        if state.state == "removed":
            return [
                self._signal(
                    event, sig.DAEMON_UNLOADED, component, f"launchd plist of {state.name} removed"
                )
            ]
        if state.enabled is False:
            return [
                self._signal(
                    event,
                    sig.DAEMON_UNLOADED,
                    component,
                    f"launchd plist of {state.name} is disabled",
                )
            ]
        return []

    def _unhealthy(self, event: Event, state: StateInfo) -> list[Signal]:
        """Hold an unhealthy check-in: it counts only if no healthy one follows in time."""
        resolve = self.name_resolver or self.inventory.match_product_name
        component = resolve(state.name)
        if component is None or component.id in self._pending_unhealthy:
            return []
        summary = f"management console reports {state.name} as {state.state or 'unhealthy'}"
        self._pending_unhealthy[component.id] = self._signal(
            event, sig.PROTECTION_WEAKENED, component, summary
        )
        return []

    def _recovered(self, event: Event, state: StateInfo) -> None:
        resolve = self.name_resolver or self.inventory.match_product_name
        component = resolve(state.name)
        if component is None:
            return
        pending = self._pending_unhealthy.get(component.id)
        if pending is not None and event.time - pending.time <= self.recovery_grace:
            # A stop and start seconds apart (an agent upgrade restarting itself) is no outage.
            del self._pending_unhealthy[component.id]

    def due(self, now: float) -> list[Signal]:
        """Return the unhealthy check-ins that no recovery followed within the grace."""
        if not self._pending_unhealthy:
            return []
        expired = [
            component_id
            for component_id, signal in self._pending_unhealthy.items()
            if now - signal.time > self.recovery_grace
        ]
        return [self._pending_unhealthy.pop(component_id) for component_id in expired]

    def _room(self, table: Collection[object], key: object) -> bool:
        """Tell whether ``key`` is in ``table`` or fits in it; mark the row when it does not."""
        if key in table or len(table) < MAX_TRACKED_STATES:
            return True
        self._row_dropped = True
        return False

    @staticmethod
    def _signal(
        event: Event, kind: str, component: Component, summary: str, *, persistent: bool = False
    ) -> Signal:
        return Signal(
            kind,
            event.time,
            component,
            summary,
            [event.evidence],
            action=False,
            persistent=persistent,
        )
