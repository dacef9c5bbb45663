"""Measure the peak memory of ``tamperwatch.scan.scan`` on large eslogger captures of one host.

Run from the repository root with the project installed::

    python benchmarks/bench_memory.py [--scenario developer|fork-storm] [--events N]
                                      [--out DIR] [--keep] [--budget EVENTS]

Scenarios:

* ``developer`` (default, 10,000,000 events): the developer Mac of ``bench_scan.py`` (build
  rounds, Spotlight, git, CrowdStrike's falcond with two impairments), replayed for N events.
* ``fork-storm`` (default 1,000,000 events): a script started from a Terminal shell forks and
  execs a new program again and again, each in a new process, and none of them exits. So every
  event names a process the host has not seen before. Afterwards an administrator runs
  ``sudo kill -9`` on falcond from a second Terminal window opened before the storm.

The capture is written with :class:`tamperwatch.synth.EsWriter` and streamed to the file as it
grows, so the writer keeps at most one build round of lines in memory. The scan then runs in a
fresh child process, which reads its own ``VmRSS`` from ``/proc/self/status`` every
:data:`SAMPLE_SECONDS` seconds from a thread, and its peak (``VmHWM``) at the end. The
script prints a Markdown table and asserts nothing, because it is a measurement, not a test.
Without ``--keep`` the capture is deleted at the end; it takes about 2.2 KiB per event. With
``--keep`` and ``--out``, a later run of the same scenario and size scans the kept capture
again instead of writing a new one.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from bench_scan import HOST, SEED, Scenario, describe_machine

from tamperwatch.config import Config, build_inventory
from tamperwatch.logpatterns import load_log_patterns
from tamperwatch.scan import scan
from tamperwatch.spool import SPOOL_BUDGET_EVENTS
from tamperwatch.synth import EVENT_TYPES, EsWriter

DEFAULT_EVENTS = {"developer": 10_000_000, "fork-storm": 1_000_000}
SAMPLE_SECONDS = 0.5
# Progress is logged to standard error every this many events while the capture is written.
PROGRESS_EVENTS = 1_000_000
STORM_FOLDER = "/private/tmp/.cache/w"


# ---------------------------------------------------------------------------- captures


class _Stream:
    """Move an :class:`EsWriter`'s lines into an open file as they are written."""

    def __init__(self, writer: EsWriter, out: IO[str]) -> None:
        self.writer = writer
        self.out = out
        self.written = 0
        self._next_report = PROGRESS_EVENTS

    def flush(self) -> None:
        # NOTE: EsWriter keeps every line in a private list and has no public way to drain it.
        # The benchmark empties that list, so that a capture of millions of lines fits in memory.
        lines: list[str] = self.writer._lines
        self.out.write("".join(line + "\n" for line in lines))
        self.written += len(lines)
        lines.clear()
        if self.written >= self._next_report:
            print(f"  {self.written:,} events written", file=sys.stderr, flush=True)
            self._next_report += PROGRESS_EVENTS

    def unwrite_exit(self) -> None:
        """Take back the exit line just written, with its sequence numbers.

        The sequence numbers are rewound too, so that the capture has no gap in them that the
        scan would report as events lost by the ES client.
        """
        writer = self.writer
        writer._lines.pop()
        writer._global_seq -= 1
        writer._seq[EVENT_TYPES["exit"]] -= 1


def write_developer(path: Path, events: int) -> dict[str, Any]:
    """Write the developer Mac of ``bench_scan.py`` for ``events`` events to ``path``."""
    scenario = Scenario(SEED)
    with path.open("w", encoding="utf-8") as out:
        stream = _Stream(scenario.writer, out)
        impairments: list[tuple[int, Callable[[], None]]] = [
            (events // 3, scenario.bootout_falcon),
            (2 * events // 3, scenario.kill_falcond),
        ]
        while stream.written < events:
            while impairments and stream.written >= impairments[0][0]:
                impairments.pop(0)[1]()
            scenario.build_round()
            stream.flush()
        for _, impair in impairments:
            impair()
        stream.flush()
    return {"events": stream.written, "processes": scenario.processes}


def write_fork_storm(path: Path, events: int) -> dict[str, Any]:
    """Write a fork storm of ``events`` events, then a kill of falcond from a shell."""
    scenario = Scenario(SEED)
    writer = scenario.writer
    with path.open("w", encoding="utf-8") as out:
        stream = _Stream(writer, out)
        script = writer.command(
            "sh /private/tmp/.cache/run.sh", shell=scenario.developer, keep=True
        )[-1]
        stream.flush()
        processes = 0
        while stream.written < events:
            child = writer.spawn(f"{STORM_FOLDER}{processes}", [f"w{processes}"], parent=script)
            processes += 1
            # The writer reuses a pid only after an exit, and pids end at 99,999. The child exits
            # in the writer, but its exit line is taken back, so the capture shows no exit and
            # each fork and exec names a (pid, pidversion) the scan has not seen.
            writer.exit(child)
            stream.unwrite_exit()
            if processes % 1000 == 0:
                stream.flush()
        scenario.kill_falcond()
        stream.flush()
    return {"events": stream.written, "processes": processes}


WRITERS: dict[str, Callable[[Path, int], dict[str, Any]]] = {
    "developer": write_developer,
    "fork-storm": write_fork_storm,
}


# ---------------------------------------------------------------------------- measurement


def _status_bytes(field: str) -> int | None:
    """Return a memory field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``) in bytes."""
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return None


def _rss_bytes() -> int:
    return _status_bytes("VmRSS") or 0


def _peak_rss_bytes() -> int:
    # VmHWM starts afresh in the child, while Linux carries ru_maxrss over from the parent
    # that forked it, which has written the capture.
    peak = _status_bytes("VmHWM")
    if peak is not None:
        return peak
    # macOS reports ru_maxrss in bytes.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def measure_scan(path: str, budget: int) -> dict[str, Any]:
    """Scan one capture while a thread samples RSS, and return the time, memory and findings."""
    config = Config()
    inventory = build_inventory(config)
    patterns = load_log_patterns()
    rss_setup = _peak_rss_bytes()
    samples: list[tuple[float, int]] = []
    done = threading.Event()
    started = time.perf_counter()

    def sample() -> None:
        while not done.wait(SAMPLE_SECONDS):
            samples.append((time.perf_counter() - started, _rss_bytes()))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    result = scan(
        [path],
        host=HOST,
        config=config,
        inventory=inventory,
        patterns=patterns,
        spool_budget=budget,
    )
    duration = time.perf_counter() - started
    done.set()
    sampler.join()
    return {
        "duration": duration,
        "events": sum(result.events_per_host.values()),
        "rss_setup": rss_setup,
        "rss_peak": _peak_rss_bytes(),
        "samples": samples,
        "incidents": [
            f"{incident.status}: {incident.title} (actor chain of "
            f"{len(incident.actor.ancestry) + 1 if incident.actor else 0})"
            for incident in result.incidents
        ],
        "blind_windows": [window.reason for window in result.blind_windows],
        "warnings": result.warnings,
    }


def run_in_child(path: str, budget: int) -> dict[str, Any]:
    """Run :func:`measure_scan` in a fresh interpreter, so that its peak RSS is its own."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(processes=1) as pool:
        result: dict[str, Any] = pool.apply(measure_scan, (path, budget))
        return result


# ---------------------------------------------------------------------------- report


def _mib(value: float) -> str:
    return f"{value / 1024**2:,.0f} MiB"


def _commit() -> str:
    try:
        completed = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return completed.stdout.strip()


def format_report(results: dict[str, Any]) -> str:
    run = results["scan"]
    capture = results["capture"]
    samples = run["samples"]
    # RSS at each tenth of the scan's duration shows whether memory grows with the events read.
    marks = []
    for tenth in range(1, 11):
        moment = run["duration"] * tenth / 10
        before = [rss for when, rss in samples if when <= moment]
        if before:
            marks.append(_mib(before[-1]))
    lines = [
        f"Scenario {results['scenario']}, spool budget {results['budget']:,} events, "
        f"commit {results['commit']}, Python {platform.python_version()}.",
        "",
        f"Capture: {capture['events']:,} events, {capture['bytes'] / 1024**3:,.2f} GiB, "
        f"{capture['processes']:,} processes started; written in {capture['seconds']:,.0f} s.",
        "",
        "| Events | Scan s | Events/s | Peak RSS | RSS after set-up |",
        "|---:|---:|---:|---:|---:|",
        f"| {run['events']:,} | {run['duration']:,.1f} | {run['events'] / run['duration']:,.0f} "
        f"| {_mib(run['rss_peak'])} | {_mib(run['rss_setup'])} |",
        "",
        "RSS at each tenth of the scan: " + ", ".join(marks),
        "",
        "Incidents:",
        *(f"- {incident}" for incident in run["incidents"]),
        "",
        "Blind windows:",
        *(f"- {reason}" for reason in run["blind_windows"]),
        "",
        "Warnings:",
        *(f"- {warning}" for warning in run["warnings"]),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", choices=sorted(WRITERS), default="developer")
    parser.add_argument(
        "--events",
        type=int,
        help="capture size in events (default: 10,000,000 for developer, 1,000,000 for fork-storm)",
    )
    parser.add_argument(
        "--budget",
        type=int,
        default=SPOOL_BUDGET_EVENTS,
        help=f"events the scan keeps in memory before it sorts on disk (default {SPOOL_BUDGET_EVENTS:,})",
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="folder for the capture and the results file (default: a new temporary folder)",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the capture after the scan, and scan a capture kept in --out again",
    )
    args = parser.parse_args()

    events = args.events or DEFAULT_EVENTS[args.scenario]
    folder = args.out or Path(tempfile.mkdtemp(prefix="tamperwatch-bench-memory-"))
    folder.mkdir(parents=True, exist_ok=True)
    capture = folder / f"{args.scenario}-{events}.ndjson"
    described = folder / f"{args.scenario}-{events}.json"

    try:
        if args.keep and capture.exists() and described.exists():
            print(f"reusing {capture}", file=sys.stderr, flush=True)
            written = json.loads(described.read_text())
        else:
            print(f"writing {events:,} events to {capture}", file=sys.stderr, flush=True)
            started = time.perf_counter()
            written = WRITERS[args.scenario](capture, events)
            written["seconds"] = time.perf_counter() - started
            written["bytes"] = capture.stat().st_size
            described.write_text(json.dumps(written))
        print("scanning", file=sys.stderr, flush=True)
        results = {
            "scenario": args.scenario,
            "budget": args.budget,
            "commit": _commit(),
            "machine": describe_machine(),
            "capture": written,
            "scan": run_in_child(str(capture), args.budget),
        }
    finally:
        if not args.keep:
            capture.unlink(missing_ok=True)

    (folder / f"results-{args.scenario}-{events}.json").write_text(json.dumps(results, indent=2))
    print(format_report(results))


if __name__ == "__main__":
    main()
