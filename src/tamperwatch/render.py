"""Output of scan results: the text summary for people and the JSON-lines incident stream.

Every string that comes from telemetry is attacker-controlled. Before it reaches a terminal,
control characters, escape sequences and bidirectional overrides are replaced by visible escapes,
and rich renders it as plain text, never as markup.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from typing import IO, Any

import msgspec
from rich.console import Console
from rich.table import Table
from rich.text import Text

from tamperwatch.incident import ActorRecord, Incident, SignalRecord
from tamperwatch.liveness import BlindWindow
from tamperwatch.readers.base import FileStats
from tamperwatch.scan import ScanResult
from tamperwatch.timeutil import format_rfc3339

# Characters that reorder or hide text in a terminal without being control characters.
_INVISIBLE = frozenset(
    {
        0x200B,
        0x200C,
        0x200D,
        0x200E,
        0x200F,
        0x2028,
        0x2029,
        0x202A,
        0x202B,
        0x202C,
        0x202D,
        0x202E,
        0x2066,
        0x2067,
        0x2068,
        0x2069,
        0xFEFF,
    }
)

# Evidence locations printed per signal; --format jsonl carries all of them.
EVIDENCE_SHOWN = 3

_SEVERITY_STYLES = {"low": "cyan", "medium": "yellow", "high": "red", "critical": "bold red"}


def neutralize(text: str | None, limit: int = 2000) -> str:
    """Make a telemetry string safe to print: visible escapes for control and invisible characters."""
    if text is None:
        return ""
    if len(text) > limit:
        text = text[:limit] + f"... ({len(text) - limit} more characters)"
    out = []
    for char in text:
        code = ord(char)
        if code < 0x20 or code == 0x7F or 0x80 <= code < 0xA0:
            out.append(f"\\x{code:02x}")
        elif code in _INVISIBLE:
            out.append(f"\\u{code:04x}")
        else:
            out.append(char)
    return "".join(out)


def write_json_lines(records: Iterable[Any], stream: IO[bytes]) -> None:
    """Write each record (a msgspec struct, or dicts and lists) as one line of JSON (UTF-8)."""
    encoder = msgspec.json.Encoder()
    for record in records:
        stream.write(encoder.encode(record))
        stream.write(b"\n")


def write_jsonl(incidents: Iterable[Incident], stream: IO[bytes]) -> None:
    """Write one incident per line as JSON (UTF-8)."""
    write_json_lines(incidents, stream)


def print_text(result: ScanResult, console: Console) -> None:
    """Print incidents, then per-file counts and warnings, for a person at a terminal."""
    incidents = result.incidents
    suspicious = len(result.suspicious)
    console.print(
        Text(
            f"{len(incidents)} incident(s): {suspicious} suspicious, "
            f"{len(incidents) - suspicious} explained",
            style="bold",
        )
    )
    for incident in incidents:
        _print_incident(incident, console)
    _print_blind_windows(result.blind_windows, console)
    _print_files(result.files, console)
    for warning in result.warnings:
        console.print(Text("warning: " + neutralize(warning), style="yellow"))


def _print_incident(incident: Incident, console: Console) -> None:
    console.print()
    verdict_style = "bold red" if incident.status == "suspicious" else "green"
    header = Text()
    header.append(f"[{incident.severity.upper()}] ", style=_SEVERITY_STYLES[incident.severity])
    header.append(neutralize(incident.title), style="bold")
    console.print(header)
    line = Text("  ")
    line.append(incident.status, style=verdict_style)
    line.append(
        f"  host {neutralize(incident.host)}  {incident.first_seen} .. {incident.last_seen}"
    )
    line.append(f"  id {incident.id}", style="dim")
    console.print(line)
    if incident.explanation:
        console.print(Text("  explained: " + neutralize(incident.explanation), style="green"))
    components = ", ".join(f"{c.product} ({c.id})" for c in incident.components)
    console.print(Text("  components: " + neutralize(components)))
    if incident.actor is not None:
        print_actor(incident.actor, console)
    print_signals(incident.signals, console)
    console.print(
        Text("  ATT&CK: " + ", ".join([incident.attack.analytic, *incident.attack.techniques]))
    )


def print_actor(actor: ActorRecord, console: Console) -> None:
    """Print the actor chain, nearest process first, and the actor's signing facts."""
    chain = [_process_label(actor.pid, actor.path, actor.args)]
    chain.extend(_process_label(a.pid, a.path, a.args) for a in actor.ancestry)
    console.print(Text("  actor: " + neutralize(" <- ".join(chain), limit=4000)))
    facts = [f"team {actor.team_id}" if actor.team_id else "no team id"]
    facts.append(f"signing id {actor.signing_id}" if actor.signing_id else "no signing id")
    if actor.platform_binary:
        facts.append("Apple platform binary")
    elif actor.platform_binary is False:
        facts.append("not an Apple platform binary")
    if actor.masquerade:
        facts.append("MASQUERADE: named like an Apple tool but not Apple's binary")
    console.print(Text("         " + neutralize("; ".join(facts))))


def print_signals(signals: Iterable[SignalRecord], console: Console) -> None:
    """Print one line per signal with its first evidence locations."""
    for signal in signals:
        where = ", ".join(f"{e.file}:{e.line}" for e in signal.evidence[:EVIDENCE_SHOWN])
        if len(signal.evidence) > EVIDENCE_SHOWN:
            where += f" and {len(signal.evidence) - EVIDENCE_SHOWN} more"
        console.print(
            Text(f"  - {signal.time} {signal.kind}: ")
            + Text(neutralize(signal.summary))
            + Text(f"  [{neutralize(where)}]", style="dim")
        )


def blind_window_record(window: BlindWindow) -> dict[str, object]:
    """Return a blind window as a JSON-ready mapping with RFC 3339 times."""
    return {
        "host": window.host,
        "start": format_rfc3339(window.start),
        "end": format_rfc3339(window.end),
        "reason": window.reason,
        "component": window.component,
        "events_lost": window.events_lost,
        "evidence": [{"source": e.source, "file": e.file, "line": e.line} for e in window.evidence],
    }


def write_blind_windows(windows: Iterable[BlindWindow], stream: IO[bytes]) -> None:
    """Write one blind window per line as JSON (UTF-8)."""
    write_json_lines(map(blind_window_record, windows), stream)


def _print_blind_windows(windows: list[BlindWindow], console: Console) -> None:
    if not windows:
        return
    console.print()
    console.print(
        Text(
            f"{len(windows)} blind window(s): spans in which detection was impossible", style="bold"
        )
    )
    for window in windows:
        minutes = (window.end - window.start) / 60
        line = (
            f"  {neutralize(window.host)}  {format_rfc3339(window.start)} .. {format_rfc3339(window.end)}"
            f" ({minutes:.1f} min): {neutralize(window.reason)}"
        )
        where = ", ".join(f"{e.file}:{e.line}" for e in window.evidence[:EVIDENCE_SHOWN])
        console.print(Text(line) + Text(f"  [{neutralize(where)}]", style="dim"))


def _location(file: str, line: int) -> str:
    """Return ``file:line``, or the file alone for a problem of the whole file (line 0)."""
    return f"{neutralize(file)}:{line}" if line > 0 else neutralize(file)


def _process_label(pid: int, path: str | None, args: list[str] | None) -> str:
    if args:
        # Quoted as a shell would need them, so that the argument boundaries stay visible.
        return f"{shlex.join(args)} [{pid}]"
    return f"{path or '?'} [{pid}]"


def _print_files(files: list[FileStats], console: Console) -> None:
    if not files:
        return
    console.print()
    table = Table(title="Inputs", title_justify="left", show_lines=False)
    table.add_column("file", overflow="fold")
    table.add_column("format")
    table.add_column("host")
    table.add_column("read", justify="right")
    table.add_column("used", justify="right")
    table.add_column("skipped")
    for stats in files:
        skipped = "; ".join(f"{count} {reason}" for reason, count in stats.skipped.most_common())
        if stats.error:
            skipped = stats.error
        elif stats.unrecognised:
            skipped = stats.unrecognised
        table.add_row(
            Text(neutralize(stats.file)),
            Text(stats.format or "-"),
            Text(neutralize(stats.host) if stats.host else "-"),
            str(stats.read),
            str(stats.used),
            Text(neutralize(skipped) or "0"),
        )
    console.print(table)
    for stats in files:
        if stats.error:
            console.print(
                Text(f"error: {neutralize(stats.file)}: {neutralize(stats.error)}", style="red")
            )
        elif stats.unrecognised:
            console.print(
                Text(
                    f"warning: {neutralize(stats.file)}: {neutralize(stats.unrecognised)}",
                    style="yellow",
                )
            )
        for note, count in stats.notes.most_common():
            console.print(
                Text(f"note: {neutralize(stats.file)}: {neutralize(note)} ({count})", style="dim")
            )
        for warning in stats.warnings[:10]:
            console.print(
                Text(
                    f"warning: {_location(warning.file, warning.line)}: {neutralize(warning.message)}",
                    style="yellow",
                )
            )
        hidden = len(stats.warnings) - 10 + stats.dropped_warnings
        if hidden > 0:
            console.print(
                Text(f"warning: {neutralize(stats.file)}: {hidden} more warning(s)", style="yellow")
            )


def print_stats_stderr(result: ScanResult, console: Console) -> None:
    """Print the per-file counts and warnings only (the JSON-lines mode sends these to stderr)."""
    _print_files(result.files, console)
    for warning in result.warnings:
        console.print(Text("warning: " + neutralize(warning), style="yellow"))
