"""The per-host detection core: process table, rules and correlation over time-ordered events.

The same :class:`HostEngine` runs in a batch scan and, fed one event at a time, in a stream.
"""

from __future__ import annotations

import logging
from fnmatch import fnmatchcase

from tamperwatch import signals as sig
from tamperwatch.config import Config, maintenance_spans
from tamperwatch.correlate import HostCorrelator
from tamperwatch.explain import (
    OS_UPDATE_GRACE_SECONDS,
    SHUTDOWN_GRACE_SECONDS,
    PowerTracker,
    Span,
    span_from_event,
)
from tamperwatch.incident import Incident
from tamperwatch.inventory import Component, Inventory
from tamperwatch.liveness import BlindWindow, LimitRecorder, LivenessTracker, Silence
from tamperwatch.logpatterns import LogPatterns
from tamperwatch.model import Event
from tamperwatch.process_table import ProcessTable
from tamperwatch.rules import RuleEngine
from tamperwatch.signals import Signal
from tamperwatch.states import StateTracker
from tamperwatch.timeutil import parse_rfc3339

log = logging.getLogger(__name__)

# Exited processes are forgotten this many correlation windows after they exit; their children
# keep the ancestry they had when their own signals were raised.
PRUNE_AFTER_WINDOWS = 4
PRUNE_EVERY_EVENTS = 50_000

# osquery's es_process_events table as a source of its own, because osqueryd can keep reporting
# its health while this table stays empty (its audit or ES publisher died).
OSQUERY_PROCESS_EVENTS = Component(
    id="osquery/es_process_events",
    product="osquery process events (es_process_events)",
    vendor="osquery",
    category="telemetry-source",
)

# Distinct unknown console names kept per host for the warning. Records naming further ones are
# counted in ``unknown_names_dropped``.
MAX_UNKNOWN_NAMES = 100

# Process images whose component is remembered (about 200 bytes each). The memo is a cache:
# it is cleared when full and filled again from the process table and the inventory.
MAX_IMAGE_COMPONENTS = 200_000


class HostEngine:
    """Detect and correlate impairments on one host from its events in time order."""

    def __init__(
        self, host: str, inventory: Inventory, patterns: LogPatterns, config: Config
    ) -> None:
        self.host = host
        self.config = config
        # Every structure of the engine that grows with the input has a limit. What a limit
        # drops is counted here, and finish() reports it as blind windows.
        self.limits = LimitRecorder(host)
        self.liveness = LivenessTracker(host, config.telemetry_gap_threshold, self.limits)
        self.table = ProcessTable(limits=self.limits)
        self.rules = RuleEngine(inventory, patterns, self.table)
        self.correlator = HostCorrelator(
            host,
            inventory,
            self.table,
            window=config.crash_correlation_window,
            burst_threshold=config.crash_burst_threshold,
            flood_threshold=config.flood_event_threshold,
            limits=self.limits,
        )
        self.inventory = inventory
        self.states = StateTracker(
            inventory,
            config.approval_grace,
            self.component_named,
            recovery_grace=config.crash_correlation_window,
            limits=self.limits,
        )
        checkins = config.checkins or {}
        self._names: dict[str, str] = dict(checkins.get("component_names", {}))
        # Console names that fit no component, or several, with the count of their records.
        self.unknown_names: dict[str, int] = {}
        self.unknown_names_dropped = 0
        # Names already counted for the event being fed: liveness and the state tracker both
        # look a check-in's name up.
        self._names_counted: set[str] = set()
        self.power = PowerTracker()
        self._os_version: tuple[str, float] | None = None
        self._launchd_start: float | None = None
        self._watermark_before: float | None = None
        self.correlator.maintenance_windows = [
            window
            for window in maintenance_spans(config)
            if window.host_pattern == "*" or fnmatchcase(host, window.host_pattern)
        ]
        self.events = 0
        self.signals = 0
        # Component of each process image, looked up once per image.
        self._image_components: dict[tuple[int, int], Component | None] = {}
        self._silence_signals: dict[str, Signal] = {}

    def feed(self, event: Event) -> None:
        self.events += 1
        if self._names_counted:
            self._names_counted.clear()
        self._watermark_before = self.liveness.watermark
        for silence in self.liveness.advance(event):
            self._report_silence(silence)
        self.liveness.sequence(event)
        self._power_spans(event)
        self.table.apply(event)
        self.correlator.flood.add(event)
        for signal in self.rules.evaluate(event):
            self.signals += 1
            self.correlator.add(signal)
        if event.kind == "log" and self.rules.lifecycle:
            self._power_log(event)
        for signal in self.states.due(event.time):
            self.signals += 1
            self.correlator.add(signal)
        if event.kind == "state":
            for signal in self.states.evaluate(event):
                self.signals += 1
                self.correlator.add(signal)
        if self.liveness.rejected:
            return
        component = self._alive_component(event)
        if component is not None:
            ended = self.liveness.alive(
                component, event.time, event.evidence, self.config.telemetry_gap_threshold
            )
            if ended is not None:
                self._end_silence(ended)
        if event.evidence.source == "osquery" and event.kind in ("exec", "fork", "exit"):
            # The row proves osquery's Endpoint Security publisher alive, whatever process it
            # describes.
            ended = self.liveness.alive(
                OSQUERY_PROCESS_EVENTS,
                event.time,
                event.evidence,
                self.config.event_source_gap_threshold,
            )
            if ended is not None:
                self._end_silence(ended)
        if self.events % PRUNE_EVERY_EVENTS == 0:
            horizon = event.time - PRUNE_AFTER_WINDOWS * self.config.crash_correlation_window
            self.table.prune(horizon)

    def _boot(self, event: Event) -> None:
        """Open a reboot span when launchd (pid 1) has a new start time: the host booted."""
        for process in (event.process, event.target):
            if process is None or process.pid != 1 or not process.start_time:
                continue
            booted = parse_rfc3339(process.start_time)
            if booted is None:
                continue
            previous, self._launchd_start = self._launchd_start, booted
            # Sources write the same instant with 3, 6 or 9 fractional digits.
            if previous is None or abs(booted - previous) <= 1.0:
                continue
            last = self._watermark_before if self._watermark_before is not None else booted
            if booted < last - 1.0:
                # A boot before records already seen is not a reboot between them.
                continue
            # From the last record before the reboot to the boot, and a grace after it.
            self.correlator.add_span(
                Span(last, max(booted, event.time), "host rebooted", SHUTDOWN_GRACE_SECONDS)
            )

    def _power_spans(self, event: Event) -> None:
        process, target = event.process, event.target
        # Readers fill start_time only for launchd, so most events skip the boot check.
        if (process is not None and process.start_time) or (
            target is not None and target.start_time
        ):
            self._boot(event)
        os_version = event.os_version or (event.crash.os_version if event.crash else None)
        if os_version:
            self._os_version_change(event.time, os_version)
        kind = event.kind
        span = None
        if kind == "exec":
            span = span_from_event(event)
        elif kind == "exit" and event.status == 15:
            span = self.power.termination(event.time)
        if span is not None:
            self.correlator.add_span(span)

    def _os_version_change(self, when: float, version: str) -> None:
        """Open an OS update span when the reported OS version changes between two records."""
        previous = self._os_version
        self._os_version = (version, when)
        if previous is None or previous[0] == version:
            return
        # The update happened between the two records. After a long gap the span covers only
        # the last part of it, so that days of unrelated incidents are not explained.
        start = max(previous[1], when - OS_UPDATE_GRACE_SECONDS)
        self.correlator.add_span(
            Span(
                start,
                when,
                f"macOS updated from {previous[0]} to {version}",
                OS_UPDATE_GRACE_SECONDS,
            )
        )

    def _power_log(self, event: Event) -> None:
        for match in self.rules.lifecycle:
            if match.pattern_id == "power-sleep":
                self.power.sleep(event.time)
            elif match.pattern_id == "power-wake":
                span = self.power.wake(event.time)
                if span is not None:
                    self.correlator.add_span(span)

    @property
    def blind_windows(self) -> list[BlindWindow]:
        return self.liveness.blind_windows

    def _alive_component(self, event: Event) -> Component | None:
        """Return the component that this event proves alive, if any."""
        kind = event.kind
        if kind == "crash":
            return None
        if kind == "state":
            return self._alive_from_state(event)
        process = event.process
        if process is None:
            return None
        if kind == "exit" and event.status:
            return None
        if kind == "log":
            found = self.inventory.match_process(process.path, process.name)
            if found is None and event.subsystem:
                found = self.inventory.match_subsystem(event.subsystem)
            return found
        key = self.table.key_of(process)
        if key is None:
            return None
        try:
            return self._image_components[key]
        except KeyError:
            pass
        entry = self.table.get(key)
        path = entry.path if entry is not None else process.path
        found = self.inventory.match_process(path) if path else None
        if len(self._image_components) >= MAX_IMAGE_COMPONENTS:
            self._image_components.clear()
        self._image_components[key] = found
        return found

    def _alive_from_state(self, event: Event) -> Component | None:
        state = event.state
        if state is None:
            return None
        subject = state.subject
        if subject == "launchd_job" and state.pid is not None:
            return self.inventory.match_label(state.name)
        if subject == "process":
            return self.inventory.match_process(state.path, state.name)
        if subject in ("agent_health", "checkin") and state.healthy is not False:
            return self.component_named(state.name)
        return None

    def component_named(self, name: str) -> Component | None:
        """Return the component a console or health record names, from the configuration first."""
        configured = self._names.get(name.strip().casefold())
        found = (
            self.inventory.get(configured)
            if configured
            else self.inventory.match_product_name(name)
        )
        if found is None and name.strip() and name not in self._names_counted:
            self._names_counted.add(name)
            if name in self.unknown_names or len(self.unknown_names) < MAX_UNKNOWN_NAMES:
                self.unknown_names[name] = self.unknown_names.get(name, 0) + 1
            else:
                self.unknown_names_dropped += 1
        return found

    def _report_silence(self, silence: Silence) -> None:
        component = silence.component
        minutes = (silence.detected_at - silence.since) / 60
        signal = Signal(
            kind=sig.TELEMETRY_SILENT,
            time=silence.since,
            component=component,
            summary=(
                f"{component.product} showed no sign of life for {minutes:.0f} min while the "
                "host kept reporting"
            ),
            evidence=[silence.last_evidence, silence.proof_of_host],
            action=False,
            overdue_at=silence.overdue_at,
        )
        self._silence_signals[component.id] = signal
        self.signals += 1
        self.correlator.add(signal)

    def _end_silence(self, silence: Silence) -> None:
        signal = self._silence_signals.pop(silence.component.id, None)
        if signal is None or silence.ended_at is None:
            return
        minutes = (silence.ended_at - silence.since) / 60
        signal.summary = (
            f"{silence.component.product} showed no sign of life for {minutes:.0f} min while the "
            "host kept reporting, then came back"
        )
        signal.until = silence.ended_at
        if silence.end_evidence is not None:
            signal.evidence.append(silence.end_evidence)

    def finish(self) -> list[Incident]:
        if self.liveness.watermark is not None:
            for component_id, signal in self._silence_signals.items():
                minutes = (self.liveness.watermark - signal.time) / 60
                product = signal.component.product if signal.component else component_id
                signal.summary = (
                    f"{product} showed no sign of life for {minutes:.0f} min, until the input "
                    "ended, while the host kept reporting"
                )
        self.liveness.finish()
        for signal in self.states.finish():
            self.signals += 1
            self.correlator.add(signal)
        incidents = self.correlator.finish()
        self.liveness.blind_windows.extend(self.limits.windows())
        log.info(
            "host %s: %d events, %d signals, %d incidents",
            self.host,
            self.events,
            self.signals,
            len(incidents),
        )
        return incidents
