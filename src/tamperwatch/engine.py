"""The per-host detection core: process table, rules and correlation over time-ordered events.

The same :class:`HostEngine` runs in a batch scan and, fed one event at a time, in a stream.
"""

from __future__ import annotations

import logging

from tamperwatch.config import Config
from tamperwatch.correlate import HostCorrelator
from tamperwatch.incident import Incident
from tamperwatch.inventory import Inventory
from tamperwatch.logpatterns import LogPatterns
from tamperwatch.model import Event
from tamperwatch.process_table import ProcessTable
from tamperwatch.rules import RuleEngine

log = logging.getLogger(__name__)

# Exited processes are forgotten this many correlation windows after they exit; their children
# keep the ancestry they had when their own signals were raised.
PRUNE_AFTER_WINDOWS = 4
PRUNE_EVERY_EVENTS = 50_000


class HostEngine:
    """Detect and correlate impairments on one host from its events in time order."""

    def __init__(
        self, host: str, inventory: Inventory, patterns: LogPatterns, config: Config
    ) -> None:
        self.host = host
        self.config = config
        self.table = ProcessTable()
        self.rules = RuleEngine(inventory, patterns, self.table)
        self.correlator = HostCorrelator(
            host,
            inventory,
            self.table,
            window=config.crash_correlation_window,
            burst_threshold=config.crash_burst_threshold,
            flood_threshold=config.flood_event_threshold,
        )
        self.events = 0
        self.signals = 0

    def feed(self, event: Event) -> None:
        self.events += 1
        self.table.apply(event)
        self.correlator.flood.add(event)
        for signal in self.rules.evaluate(event):
            self.signals += 1
            self.correlator.add(signal)
        if self.events % PRUNE_EVERY_EVENTS == 0:
            horizon = event.time - PRUNE_AFTER_WINDOWS * self.config.crash_correlation_window
            self.table.prune(horizon)

    def finish(self) -> list[Incident]:
        incidents = self.correlator.finish()
        log.debug(
            "host %s: %d events, %d signals, %d incidents",
            self.host,
            self.events,
            self.signals,
            len(incidents),
        )
        return incidents
