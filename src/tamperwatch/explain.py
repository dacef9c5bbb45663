"""Benign look-alikes: spans of event time in which an impairment has an innocent explanation.

A span comes from the telemetry itself (a shutdown or reboot command, an OS update) or from an
approved maintenance window in the configuration. An incident whose signals all fall inside a
span that covers its host and components is explained, with the span's reason. A component that
is still silent when the span and its grace have ended is not explained: the change explains
the onset of an outage, not an absence that persists after it.
"""

from __future__ import annotations

import fnmatch
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass

from tamperwatch.model import Event
from tamperwatch.timeutil import format_rfc3339

# Commands that stop the whole host, so every component stops with them. The grace (seconds)
# gives the host time to come back and its components time to start again.
SHUTDOWN_COMMANDS = frozenset({"shutdown", "reboot", "halt"})
SHUTDOWN_GRACE_SECONDS = 15 * 60

# Processes that install macOS updates. Components restart during and after an update.
OS_UPDATE_PROCESSES = frozenset({"softwareupdate", "startosinstall", "osinstallersetupd"})
OS_UPDATE_GRACE_SECONDS = 2 * 3600


@dataclass(frozen=True)
class Span:
    """A span of event time with a reason, limited to some hosts and components."""

    start: float
    end: float
    reason: str
    grace: float = 0.0
    host_pattern: str = "*"
    components: tuple[str, ...] = ()
    author: str | None = None

    def covers(self, host: str, component_ids: Sequence[str], first: float, last: float) -> bool:
        """Tell whether the span covers these components of this host from first to last."""
        if not fnmatch.fnmatchcase(host, self.host_pattern):
            return False
        if self.components and not all(c in self.components for c in component_ids):
            return False
        return self.start <= first and last <= self.end + self.grace

    def describe(self) -> str:
        text = f"{self.reason} ({format_rfc3339(self.start)} .. {format_rfc3339(self.end)}"
        if self.author:
            text += f", approved by {self.author}"
        return text + ")"


# Grace after a wake for components to report again (seconds).
WAKE_GRACE_SECONDS = 10 * 60

# Processes terminated by SIGTERM within MASS_TERMINATION_SECONDS that mean the whole system is
# shutting down (launchd sends SIGTERM to every job at shutdown).
MASS_TERMINATION_PROCESSES = 25
MASS_TERMINATION_SECONDS = 10.0


class PowerTracker:
    """Turn sleep and wake log lines, and shutdown-like mass terminations, into spans."""

    def __init__(self) -> None:
        self._asleep_since: float | None = None
        self._terminations: list[float] = []
        self._shutdown_reported_at: float | None = None

    def sleep(self, when: float) -> None:
        if self._asleep_since is None:
            self._asleep_since = when

    def wake(self, when: float) -> Span | None:
        start, self._asleep_since = self._asleep_since, None
        if start is None or when < start:
            return None
        return Span(start, when, "host asleep", WAKE_GRACE_SECONDS)

    def termination(self, when: float) -> Span | None:
        """Count one SIGTERM exit; return a shutdown span when enough come together."""
        # NOTE: a heuristic: launchd terminates every job at shutdown, but a script that kills
        # many processes at once looks the same. The threshold keeps that rare.
        recent = [t for t in self._terminations if when - t <= MASS_TERMINATION_SECONDS]
        recent.append(when)
        self._terminations = recent[-MASS_TERMINATION_PROCESSES:]
        if len(recent) < MASS_TERMINATION_PROCESSES:
            return None
        if (
            self._shutdown_reported_at is not None
            and when - self._shutdown_reported_at < SHUTDOWN_GRACE_SECONDS
        ):
            return None
        self._shutdown_reported_at = when
        start = recent[0]
        return Span(
            start - MASS_TERMINATION_SECONDS,
            when,
            "host shutting down (mass termination of processes)",
            SHUTDOWN_GRACE_SECONDS,
        )


def span_from_event(event: Event) -> Span | None:
    """Return the explanation span an event opens: a shutdown, a reboot or an OS update."""
    if event.kind != "exec" or event.target is None:
        return None
    target = event.target
    name = posixpath.basename(target.path or "")
    args = target.args or []
    if name in SHUTDOWN_COMMANDS and target.platform_binary is not False:
        command = " ".join(args) or name
        return Span(
            event.time,
            event.time,
            f"host shutdown or reboot by `{command}`",
            SHUTDOWN_GRACE_SECONDS,
        )
    if name in OS_UPDATE_PROCESSES and target.platform_binary is not False:
        if name == "softwareupdate" and not any(arg in ("-i", "--install", "-ia") for arg in args):
            return None
        return Span(event.time, event.time, f"macOS update by {name}", OS_UPDATE_GRACE_SECONDS)
    if name == "installer" and target.platform_binary is not False:
        # The system installer with Apple's macOS installer package (InstallAssistant.pkg).
        packages = [arg for arg in args if arg.lower().endswith(".pkg")]
        if any("installassistant" in p.lower() or "/macos" in p.lower() for p in packages):
            return Span(
                event.time, event.time, "macOS update by installer", OS_UPDATE_GRACE_SECONDS
            )
    return None
