"""Measure the speed and memory of ``tamperwatch.scan.scan`` on a synthetic eslogger capture.

Run from the repository root with the project installed::

    python benchmarks/bench_scan.py [--events N] [--out DIR] [--repeats R] [--profile]

The script writes an eslogger capture of N events (default 500,000) with
:class:`tamperwatch.synth.EsWriter`. It models one developer Mac: several hundred processes fork
and exec (shells, ``make``, ``clang``, ``ld``, ``git``, Spotlight workers), most events are file
events, and CrowdStrike's ``falcond`` (team ID X9E956P446, ``/Library/CS/falcond``) runs
throughout, restarted after each impairment. Two impairments happen a third and two thirds of the way in: an administrator runs
``sudo launchctl bootout system/com.crowdstrike.falcon.Agent`` from a Terminal shell, and later
``sudo kill -9`` on falcond.

It then times, with :func:`time.perf_counter`, the median of R runs (default 3) of:

* the whole scan, ``scan([capture], ...)``;
* the eslogger reader alone, iterating ``EsloggerReader().read(...)``;
* the engine alone: events read and sorted beforehand, then fed to a fresh ``HostEngine``.

``Config()``, ``build_inventory(config)`` and ``load_log_patterns()`` run once, outside the
timing, as the command line does before it scans. Each measurement runs in a fresh child
process, so its peak RSS (``ru_maxrss``) belongs to that measurement alone. The tracemalloc
peak comes from one scan of a capture of N/10 events, because tracing slows the scan several
times over.

``--profile`` also runs the whole scan once under cProfile and prints the top 25 functions by
cumulative and by own time. Without ``--out`` the captures go to a temporary folder that is
removed at the end. With ``--out`` the captures, ``results.json`` and ``scan.prof`` stay there.

The script prints Markdown tables and asserts nothing about timing, because it is a
measurement, not a test.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import multiprocessing
import os
import platform
import pstats
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from tamperwatch.config import Config, build_inventory
from tamperwatch.engine import HostEngine
from tamperwatch.logpatterns import load_log_patterns
from tamperwatch.model import Event
from tamperwatch.readers.base import FileStats, ReadContext
from tamperwatch.readers.eslogger import EsloggerReader
from tamperwatch.scan import scan
from tamperwatch.synth import EsWriter, SynthProcess

DEFAULT_EVENTS = 500_000
DEFAULT_REPEATS = 3
# A fixed seed, so that every run scans the same capture.
SEED = 20_261_122
START = "2026-11-22T08:00:00Z"
HOST = "bench-mac-01"
PROFILE_TOP = 25
TARGET_EVENTS_PER_SECOND = 100_000

FALCOND = "/Library/CS/falcond"
FALCON_TEAM_ID = "X9E956P446"
FALCON_PLIST = "/Library/LaunchDaemons/com.crowdstrike.falcond.plist"
CLT_BIN = "/Library/Developer/CommandLineTools/usr/bin"
MDS_STORES = (
    "/System/Library/Frameworks/CoreServices.framework/Frameworks/Metadata.framework"
    "/Versions/A/Support/mds_stores"
)
MDWORKER = (
    "/System/Library/Frameworks/CoreServices.framework/Frameworks/Metadata.framework"
    "/Versions/A/Support/mdworker_shared"
)

# Share of each compiler's file events by eslogger event kind. A compiler mostly stats and
# reads headers, and writes one object file.
COMPILER_FILE_MIX = (
    ("stat", 0.30),
    ("open", 0.35),
    ("close", 0.25),
    ("write", 0.07),
    ("create", 0.02),
    ("unlink", 0.01),
)

# A build round writes at most this many events (8 compilers of at most 1,400 file events,
# the linker, falcond, Spotlight and git), so the loop stops before it overshoots the target.
MAX_ROUND_EVENTS = 16_000

# The capture is topped up with falcond file events in bursts of this size, so that no process
# writes thousands of events in one second.
FILL_CHUNK = 400

ResultT = TypeVar("ResultT")


# ---------------------------------------------------------------------------- the capture


class Scenario:
    """One developer Mac with CrowdStrike Falcon, replayed through an :class:`EsWriter`."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.writer = EsWriter(START, seed=seed)
        self.writer.tool_paths.update(
            {"make": "/usr/bin/make", "git": "/usr/bin/git", "clang": f"{CLT_BIN}/clang"}
        )
        self.processes = 0
        self.rounds = 0
        self.falcond = self._start_falcond()
        self.mds = self.writer.already_running(MDS_STORES, [MDS_STORES])
        self.developer = self.writer.open_terminal(501, "ksato")
        self.admin = self.writer.open_terminal(502, "opsadmin")
        # Terminal, login and zsh of the two windows.
        self.processes += 5

    def count(self) -> int:
        # lines() copies the writer's list, a few milliseconds at 500,000 lines, so callers ask
        # once per round or per fill chunk.
        return len(self.writer.lines())

    def _start_falcond(self) -> SynthProcess:
        self.processes += 1
        return self.writer.spawn(
            FALCOND,
            [FALCOND],
            team_id=FALCON_TEAM_ID,
            platform_binary=False,
            via_xpcproxy=True,
        )

    def _command(self, line: str, shell: SynthProcess, *, keep: bool = False) -> list[SynthProcess]:
        started = self.writer.command(line, shell=shell, keep=keep)
        self.processes += len(started)
        return started

    def _spawn(
        self, path: str, args: list[str], parent: SynthProcess, *, via_xpcproxy: bool = False
    ) -> SynthProcess:
        self.processes += 1
        return self.writer.spawn(path, args, parent=parent, via_xpcproxy=via_xpcproxy)

    def _file_events(self, proc: SynthProcess, total: int) -> None:
        for kind, share in COMPILER_FILE_MIX:
            count = max(1, round(total * share))
            self.writer.noise(proc, count, kind)

    def build_round(self) -> None:
        """Run one ``make`` with its compilers and linker, plus background activity."""
        writer = self.writer
        rng = self.rng
        self.rounds += 1
        make = self._command("make -j8", self.developer, keep=True)[-1]
        objects = []
        for index in range(rng.randint(4, 8)):
            source = f"src/module{self.rounds:03d}_{index}.c"
            objects.append(source.replace(".c", ".o"))
            compiler = self._spawn(
                f"{CLT_BIN}/clang",
                ["clang", "-O2", "-c", source, "-o", objects[-1]],
                make,
            )
            self._file_events(compiler, rng.randint(400, 1400))
            writer.exit(compiler)
        linker = self._spawn(f"{CLT_BIN}/ld", ["ld", "-o", "build/app", *objects], make)
        self._file_events(linker, rng.randint(200, 600))
        writer.exit(linker)
        writer.exit(make)

        # The security daemon and Spotlight look at what the build wrote.
        writer.noise(self.falcond, rng.randint(200, 600), "open")
        writer.noise(self.falcond, rng.randint(100, 300), "stat")
        worker = self._spawn(
            MDWORKER, [MDWORKER, "-s", "mdworker-bundle"], writer.launchd, via_xpcproxy=True
        )
        writer.noise(worker, rng.randint(50, 200), "open")
        writer.exit(worker)
        writer.noise(self.mds, rng.randint(100, 300), "open")

        self._command("git status --short", self.developer)
        if self.rounds % 4 == 0:
            self._command("git commit -am wip", self.developer)
        writer.advance(rng.uniform(0.5, 5.0))

    def bootout_falcon(self) -> None:
        """Unload the Falcon agent from the admin's shell, stop falcond, and load it 30 s later."""
        writer = self.writer
        self._command("sudo launchctl bootout system/com.crowdstrike.falcon.Agent", self.admin)
        writer.signal(writer.launchd, self.falcond, 15)
        writer.exit(self.falcond, 15)
        writer.advance(30.0)
        self._command(f"sudo launchctl bootstrap system {FALCON_PLIST}", self.admin)
        self.falcond = self._start_falcond()

    def kill_falcond(self) -> None:
        """Kill falcond from the admin's shell, then start a new one as launchd does."""
        writer = self.writer
        started = self._command(f"sudo kill -9 {self.falcond.pid}", self.admin, keep=True)
        sudo, kill = started[0], started[-1]
        writer.signal(kill, self.falcond, 9)
        writer.exit(self.falcond, 9)
        writer.exit(kill)
        writer.exit(sudo)
        writer.advance(10.0)
        self.falcond = self._start_falcond()

    def fill(self, total: int) -> None:
        """Top the capture up to ``total`` events with falcond file events."""
        while (remaining := total - self.count()) > 0:
            self.writer.noise(self.falcond, min(remaining, FILL_CHUNK), "stat")


def write_capture(path: Path, events: int, seed: int) -> dict[str, Any]:
    """Write a capture of ``events`` eslogger lines to ``path`` and describe what it contains.

    The capture has more lines than ``events`` only when ``events`` is smaller than the fixed
    events of the scenario's set-up and impairments (41 lines with the default seed).
    """
    scenario = Scenario(seed)
    impairments: list[tuple[int, Callable[[], None]]] = [
        (events // 3, scenario.bootout_falcon),
        (2 * events // 3, scenario.kill_falcond),
    ]
    while True:
        count = scenario.count()
        while impairments and count >= impairments[0][0]:
            impairments.pop(0)[1]()
            count = scenario.count()
        if events - count <= MAX_ROUND_EVENTS:
            break
        scenario.build_round()
    for _, impair in impairments:
        impair()
    scenario.fill(events)
    scenario.writer.write_to(path)
    return {
        "events": scenario.count(),
        "bytes": path.stat().st_size,
        "processes": scenario.processes,
        "build_rounds": scenario.rounds,
    }


# ---------------------------------------------------------------------------- measurements


def _peak_rss_bytes() -> int:
    # Linux reports ru_maxrss in KiB and macOS in bytes.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def _timed(action: Callable[[], int], repeats: int) -> tuple[list[float], int]:
    """Run ``action`` ``repeats`` times and return the durations and its last count."""
    durations = []
    count = 0
    for _ in range(repeats):
        gc.collect()
        started = time.perf_counter()
        count = action()
        durations.append(time.perf_counter() - started)
    return durations, count


def measure_scan(path: str, repeats: int) -> dict[str, Any]:
    """Time the whole scan of one capture."""
    config = Config()
    inventory = build_inventory(config)
    patterns = load_log_patterns()
    rss_before = _peak_rss_bytes()
    incidents: list[str] = []

    def run() -> int:
        result = scan([path], host=HOST, config=config, inventory=inventory, patterns=patterns)
        incidents[:] = [f"{i.status}: {i.title}" for i in result.incidents]
        return sum(result.events_per_host.values())

    durations, events = _timed(run, repeats)
    return {
        "durations": durations,
        "events": events,
        "incidents": incidents,
        "rss_setup": rss_before,
        "rss_peak": _peak_rss_bytes(),
    }


def _read_events(path: str) -> list[Event]:
    context = ReadContext(FileStats(file=path), HOST)
    with open(path, "rb") as source:
        return list(EsloggerReader().read(source, context))


def measure_reader(path: str, repeats: int) -> dict[str, Any]:
    """Time the eslogger reader alone: decode every line into an event and drop it."""
    rss_before = _peak_rss_bytes()

    def run() -> int:
        context = ReadContext(FileStats(file=path), HOST)
        count = 0
        with open(path, "rb") as source:
            for _event in EsloggerReader().read(source, context):
                count += 1
        return count

    durations, events = _timed(run, repeats)
    return {
        "durations": durations,
        "events": events,
        "rss_setup": rss_before,
        "rss_peak": _peak_rss_bytes(),
    }


def measure_engine(path: str, repeats: int) -> dict[str, Any]:
    """Time one ``HostEngine`` over events that were read and sorted beforehand."""
    config = Config()
    inventory = build_inventory(config)
    patterns = load_log_patterns()
    events = _read_events(path)
    # The same order and host as scan() gives the engine.
    events.sort(key=lambda e: (e.time, e.global_seq_num or 0))
    for event in events:
        event.host = HOST
    rss_before = _peak_rss_bytes()

    def run() -> int:
        engine = HostEngine(HOST, inventory, patterns, config)
        for event in events:
            engine.feed(event)
        engine.finish()
        return engine.events

    durations, count = _timed(run, repeats)
    return {
        "durations": durations,
        "events": count,
        "rss_setup": rss_before,
        "rss_peak": _peak_rss_bytes(),
    }


def measure_tracemalloc(path: str) -> dict[str, Any]:
    """Scan once under tracemalloc and return the peak of traced allocations."""
    config = Config()
    inventory = build_inventory(config)
    patterns = load_log_patterns()
    tracemalloc.start()
    result = scan([path], host=HOST, config=config, inventory=inventory, patterns=patterns)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"events": sum(result.events_per_host.values()), "peak": peak}


def profile_scan(path: str, output: str) -> dict[str, Any]:
    """Scan once under cProfile, save the stats to ``output`` and return the two top lists."""
    config = Config()
    inventory = build_inventory(config)
    patterns = load_log_patterns()
    profiler = cProfile.Profile()
    profiler.enable()
    scan([path], host=HOST, config=config, inventory=inventory, patterns=patterns)
    profiler.disable()
    profiler.dump_stats(output)
    listings = {}
    for order in ("cumulative", "tottime"):
        text = io.StringIO()
        pstats.Stats(output, stream=text).strip_dirs().sort_stats(order).print_stats(PROFILE_TOP)
        listings[order] = text.getvalue()
    return listings


def run_in_child(function: Callable[..., ResultT], *args: Any) -> ResultT:
    """Run ``function`` in a fresh interpreter, so that its peak RSS is its own."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(processes=1) as pool:
        return pool.apply(function, args)


# ---------------------------------------------------------------------------- report


def describe_machine() -> dict[str, str]:
    """Describe the CPU, cores, memory, Python and OS that the numbers come from."""
    cpu = platform.processor() or platform.machine()
    memory = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024**2:.1f} GiB"
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory": memory,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "os": platform.platform(),
    }


def _mib(value: int) -> str:
    return f"{value / 1024**2:,.0f} MiB"


def format_report(results: dict[str, Any]) -> str:
    capture = results["capture"]
    lines = [
        "| Machine | |",
        "|---|---|",
        *(f"| {key} | {value} |" for key, value in results["machine"].items()),
        "",
        f"Capture: {capture['events']:,} events, {capture['bytes'] / 1024**2:,.0f} MiB "
        f"({capture['bytes'] / capture['events']:,.0f} bytes per line), "
        f"{capture['processes']} processes started, {capture['build_rounds']} build rounds.",
        "",
        f"| Measurement | Events | Median s (min-max of {results['repeats']}) "
        "| Events/s | MiB/s | Peak RSS (after set-up) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, key in (
        ("Whole scan", "scan"),
        ("eslogger reader only", "reader"),
        ("Engine only (events pre-read)", "engine"),
    ):
        row = results[key]
        median = statistics.median(row["durations"])
        lines.append(
            f"| {label} | {row['events']:,} "
            f"| {median:.2f} ({min(row['durations']):.2f}-{max(row['durations']):.2f}) "
            f"| {row['events'] / median:,.0f} "
            f"| {capture['bytes'] / 1024**2 / median:,.1f} "
            f"| {_mib(row['rss_peak'])} ({_mib(row['rss_setup'])}) |"
        )
    traced = results["tracemalloc"]
    scan_rate = results["scan"]["events"] / statistics.median(results["scan"]["durations"])
    lines += [
        "",
        f"tracemalloc peak, one scan of {traced['events']:,} events: {_mib(traced['peak'])} "
        f"({traced['peak'] / traced['events']:,.0f} bytes per event).",
        "",
        f"Whole scan: {scan_rate:,.0f} events/s on one core, "
        f"{scan_rate / TARGET_EVENTS_PER_SECOND:.2f} x the target of "
        f"{TARGET_EVENTS_PER_SECOND:,} events/s per core.",
        "",
        "Incidents found by the scan:",
        *(f"- {incident}" for incident in results["scan"]["incidents"]),
    ]
    return "\n".join(lines)


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--events",
        type=int,
        default=DEFAULT_EVENTS,
        help=f"number of eslogger events in the capture (default {DEFAULT_EVENTS:,})",
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="folder that keeps the captures, results.json and scan.prof "
        "(default: a temporary folder, removed at the end)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=DEFAULT_REPEATS,
        help=f"timed runs per measurement; the median is reported (default {DEFAULT_REPEATS})",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help=f"also profile one scan with cProfile and print the top {PROFILE_TOP} functions",
    )
    arguments = parser.parse_args(argv)
    if arguments.events < 10:
        parser.error(f"--events must be at least 10, got {arguments.events}")
    if arguments.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {arguments.repeats}")
    return arguments


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    keep = arguments.out is not None
    folder = arguments.out if keep else Path(tempfile.mkdtemp(prefix="tamperwatch-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        capture = folder / f"eslogger-{arguments.events}.ndjson"
        small_events = max(10, arguments.events // 10)
        small = folder / f"eslogger-{small_events}.ndjson"
        print(f"writing {capture} ...", file=sys.stderr)
        started = time.perf_counter()
        description = run_in_child(write_capture, capture, arguments.events, SEED)
        print(f"  {time.perf_counter() - started:.1f} s", file=sys.stderr)
        run_in_child(write_capture, small, small_events, SEED)

        results: dict[str, Any] = {
            "machine": describe_machine(),
            "repeats": arguments.repeats,
            "capture": description,
        }
        for key, function in (
            ("scan", measure_scan),
            ("reader", measure_reader),
            ("engine", measure_engine),
        ):
            print(f"measuring {key} ...", file=sys.stderr)
            results[key] = run_in_child(function, str(capture), arguments.repeats)
        print("measuring tracemalloc peak ...", file=sys.stderr)
        results["tracemalloc"] = run_in_child(measure_tracemalloc, str(small))
        print(format_report(results))

        if arguments.profile:
            print("profiling one scan ...", file=sys.stderr)
            listings = run_in_child(profile_scan, str(capture), str(folder / "scan.prof"))
            for order, text in listings.items():
                print(f"\n### cProfile, sorted by {order}\n\n```\n{text.strip()}\n```")
        if keep:
            (folder / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    finally:
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
