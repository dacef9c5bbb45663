"""Render the report view as one self-contained HTML file.

The page carries its style inline, has no script, and declares a Content-Security-Policy that
forbids every fetch, so it works offline and stays inert even if a telemetry string were to get
through unescaped. Jinja2 escapes every value the template writes. "Pages" are sections of the
one file, shown one at a time through URL fragments and the CSS ``:target`` selector.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import jinja2

from tamperwatch.report.view import HOST_LANE, HostView, ReportView

# Badge text of each host health.
HEALTH_LABELS = {
    "impaired": "impaired",
    "blind": "blind",
    "explained": "explained",
    "resolved": "resolved",
    "healthy": "healthy",
    "quiet": "no finding",
}

# Geometry of the per-host timeline, in SVG user units.
TIMELINE_WIDTH = 1200
LABEL_WIDTH = 260
LANE_HEIGHT = 30
AXIS_HEIGHT = 28
# Shortest drawn bar, so that an instant incident or window stays visible.
MIN_BAR = 3.0
# Intervals between the time labels of the axis.
TICKS = 6
# Characters of a lane label; the full name is in the lane's tooltip.
LABEL_CHARS = 34


@dataclass
class Shape:
    x: float
    width: float
    css: str
    tooltip: str
    href: str | None = None


@dataclass
class Lane:
    y: float
    label: str
    name: str
    windows: list[Shape] = field(default_factory=list)
    incidents: list[Shape] = field(default_factory=list)
    marks: list[Shape] = field(default_factory=list)


@dataclass
class Tick:
    x: float
    label: str


@dataclass
class Timeline:
    width: int
    height: float
    plot_left: int
    lanes: list[Lane]
    ticks: list[Tick]
    # Windows of the whole host are shaded across every lane.
    host_windows: list[Shape]


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86_400:.1f} days"


def build_timeline(host: HostView) -> Timeline:
    """Lay out one host's lanes, blind windows, incidents and signals on a common time axis."""
    start, end = host.first, host.last
    if end - start < 60:
        start, end = start - 30, end + 30
    plot = TIMELINE_WIDTH - LABEL_WIDTH - 10
    scale = plot / (end - start)

    def x_of(moment: float) -> float:
        return LABEL_WIDTH + (min(max(moment, start), end) - start) * scale

    def shape(first: float, last: float, css: str, tooltip: str, href: str | None = None) -> Shape:
        left = x_of(first)
        return Shape(left, max(MIN_BAR, x_of(last) - left), css, tooltip, href)

    lanes: dict[str, Lane] = {}
    for index, name in enumerate(host.lanes):
        label = name if name == HOST_LANE else host.labels.get(name, name)
        lanes[name] = Lane(
            y=AXIS_HEIGHT + index * LANE_HEIGHT,
            label=label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…",
            name=f"{label} ({name})" if label != name else name,
        )
    host_windows: list[Shape] = []
    for window in host.windows:
        tooltip = (
            f"blind {_when(window.start)} .. {_when(window.end)} "
            f"({_duration(window.end - window.start)}): {window.reason}"
        )
        area = shape(window.start, window.end, "window", tooltip)
        lanes[window.lane].windows.append(area)
        if window.component is None:
            host_windows.append(area)
    for incident in host.incidents:
        css = f"incident {incident.health} sev-{incident.severity}"
        tooltip = f"{incident.severity} {incident.status}: {incident.title}"
        for ref in incident.components:
            lane = lanes[ref[0]]
            bar = shape(incident.first_seen, incident.last_seen, css, tooltip, incident.anchor)
            lane.incidents.append(bar)
        for signal in incident.signals:
            lane_name = signal.component if signal.component in lanes else None
            if lane_name is None and incident.components:
                lane_name = incident.components[0][0]
            if lane_name is None:
                continue
            tooltip = f"{_when(signal.time)} {signal.kind}: {signal.summary}"
            mark = shape(
                signal.time, signal.time, f"mark {incident.health}", tooltip, incident.anchor
            )
            lanes[lane_name].marks.append(mark)
    # Tick labels leave out what the span line above the timeline shows: the date for a span
    # within one day, the seconds for a span of days.
    tick_format = "%H:%M:%S" if end - start <= 86_400 else "%m-%d %H:%M"
    ticks = []
    for step in range(TICKS + 1):
        moment = start + (end - start) * step / TICKS
        label = datetime.fromtimestamp(moment, tz=UTC).strftime(tick_format)
        ticks.append(Tick(x_of(moment), label))
    return Timeline(
        width=TIMELINE_WIDTH,
        height=AXIS_HEIGHT + max(1, len(lanes)) * LANE_HEIGHT + 4,
        plot_left=LABEL_WIDTH,
        lanes=list(lanes.values()),
        ticks=ticks,
        host_windows=host_windows,
    )


def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("tamperwatch.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["when"] = _when
    environment.filters["duration"] = _duration
    environment.globals["build_timeline"] = build_timeline
    return environment


def render_html(view: ReportView) -> str:
    """Return the whole report as one HTML document."""
    template = _environment().get_template("report.html.j2")
    return template.render(
        report=view, host_lane=HOST_LANE, lane_height=LANE_HEIGHT, health_labels=HEALTH_LABELS
    )


def write_html(view: ReportView, path: Path) -> None:
    """Write the report to ``path`` as UTF-8."""
    path.write_text(render_html(view), encoding="utf-8")
