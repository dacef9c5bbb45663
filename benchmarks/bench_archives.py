"""Measure the memory and speed of reading compressed inputs and archives.

Run from the repository root with the project installed::

    python benchmarks/bench_archives.py [--mib N] [--out DIR] [--repeats R]

The script writes a synthetic eslogger capture of at least N MiB (default 200) with
:class:`tamperwatch.synth.EsWriter`: one host where Santa's daemon and ``mds_stores`` write
file events. It packs the capture three ways: gzip (``.ndjson.gz``, level 6), a gzip-compressed
tar with the capture in a host folder (``.tar.gz``), and a zip (deflate). It also writes a
decompression bomb: the first 2,000 lines of the capture, gzip-compressed, followed by 1 GiB of
zero bytes in about 1 MiB.

Each input is read the way ``tamperwatch scan`` reads it, through
:func:`tamperwatch.archives.iter_input_parts` (members listed with
:func:`tamperwatch.archives.list_archive`), into the eslogger reader, and every event is
dropped, so the figures show the cost of reading and decompressing, not of keeping events.
The plain capture goes through the same path as the baseline. Each measurement runs in a
fresh child process and reports the median time of R runs (default 3) and the peak resident
set size, ``VmHWM`` from ``/proc/self/status``, also before the first run. ``ru_maxrss`` is not
used: Linux keeps it across ``execve``, so a spawned child starts with its parent's peak. One
further run per input under :mod:`tracemalloc` gives the peak of Python allocations.

The script prints Markdown tables and asserts nothing, because it is a measurement, not a
test. Without ``--out`` the inputs go to a temporary folder that is removed at the end.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import statistics
import sys
import tarfile
import tempfile
import time
import tracemalloc
import zipfile
from pathlib import Path
from typing import Any

from bench_scan import describe_machine, run_in_child

from tamperwatch import archives
from tamperwatch.readers.base import FileStats, ReadContext
from tamperwatch.readers.eslogger import EsloggerReader
from tamperwatch.synth import EsWriter

DEFAULT_MIB = 200
DEFAULT_REPEATS = 3
SEED = 20_261_203
START = "2026-12-03T06:00:00Z"
HOST = "bench-mac-07"
SANTA_DAEMON = (
    "/Applications/Santa.app/Contents/Library/SystemExtensions/"
    "com.northpolesec.santa.daemon.systemextension/Contents/MacOS/com.northpolesec.santa.daemon"
)
MDS_STORES = (
    "/System/Library/Frameworks/CoreServices.framework/Frameworks/Metadata.framework"
    "/Versions/A/Support/mds_stores"
)
# File events are written in bursts of this size, one simulated second apart.
BURST = 500
BOMB_LINES = 2_000
BOMB_ZERO_MIB = 1024


def write_capture(path: Path, mebibytes: int) -> int:
    """Write an eslogger capture of at least ``mebibytes`` MiB and return its line count."""
    writer = EsWriter(START, seed=SEED)
    santa = writer.spawn(SANTA_DAEMON, [SANTA_DAEMON], team_id="ZMCG7MLDV9", platform_binary=False)
    mds = writer.already_running(MDS_STORES, [MDS_STORES])

    def burst() -> None:
        writer.noise(santa, BURST, "open")
        writer.noise(mds, BURST, "stat")
        writer.advance(1.0)

    # The size of a first burst sets the number of bursts, because lines() copies all lines.
    burst()
    sample = writer.lines()
    per_burst = sum(len(line) + 1 for line in sample)
    for _ in range(-(-mebibytes * 1024 * 1024 // per_burst)):
        burst()
    writer.write_to(path)
    return len(writer.lines())


def pack_inputs(folder: Path, capture: Path) -> dict[str, Path]:
    """Write the gzip, tar.gz, zip and bomb inputs next to the capture."""
    packed = {"plain": capture}
    gz = folder / "capture.ndjson.gz"
    with capture.open("rb") as source, gzip.open(gz, "wb", compresslevel=6) as target:
        shutil.copyfileobj(source, target, 1024 * 1024)
    packed["gzip"] = gz
    tgz = folder / "collection.tar.gz"
    with tarfile.open(tgz, "w:gz") as tar:
        tar.add(capture, arcname=f"collection/{HOST}/eslogger.ndjson")
    packed["tar.gz"] = tgz
    zipped = folder / "collection.zip"
    with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(capture, f"{HOST}/eslogger.ndjson")
    packed["zip"] = zipped
    bomb = folder / "bomb.ndjson.gz"
    with capture.open("rb") as source:
        head = b"".join(source.readline() for _ in range(BOMB_LINES))
    zeros = gzip.compress(bytes(1024 * 1024), compresslevel=9)
    bomb.write_bytes(gzip.compress(head) + zeros * BOMB_ZERO_MIB)
    packed["bomb"] = bomb
    return packed


def _high_water_bytes() -> int:
    """Return ``VmHWM`` from ``/proc/self/status``, or 0 where there is no such file."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def read_once(path: str) -> dict[str, Any]:
    """Read every record of one input, dropping each, and return the event count and problems."""
    reader = EsloggerReader()
    notices: list[str] = []
    listed = archives.list_archive(path, notices)
    inputs = listed or [(path, None, None)]
    events = 0
    problems: list[str] = []
    for name, _host, ref in inputs:
        stats = FileStats(file=name)
        with archives.open_member(ref) if ref is not None else open(name, "rb") as source:
            parts = archives.iter_input_parts(source, name=name, ref=ref, stats=stats, mtime=None)
            for part in parts:
                context = ReadContext(stats, HOST)
                context.file = part.name
                part.stream.read(64 * 1024)
                part.stream.seek(0)
                for _event in reader.read(part.stream, context):
                    events += 1
        if stats.error:
            problems.append(stats.error)
        problems.extend(w.message for w in stats.warnings if "not read" in w.message)
    return {"events": events, "problems": problems}


def measure_read(path: str, repeats: int) -> dict[str, Any]:
    """Time ``repeats`` reads of one input in this process and report its memory peaks."""
    hwm_setup = _high_water_bytes()
    durations = []
    outcome: dict[str, Any] = {}
    for _ in range(repeats):
        start = time.perf_counter()
        outcome = read_once(path)
        durations.append(time.perf_counter() - start)
    return {
        **outcome,
        "durations": durations,
        "hwm_setup": hwm_setup,
        "hwm_peak": _high_water_bytes(),
    }


def measure_tracemalloc(path: str) -> int:
    """Read one input once under tracemalloc and return the peak of traced allocations."""
    tracemalloc.start()
    read_once(path)
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def _mib(value: float) -> str:
    return f"{value / 1024**2:,.1f} MiB"


def format_report(results: dict[str, Any]) -> str:
    capture_bytes = results["capture"]["bytes"]
    lines = [
        "| Machine | |",
        "|---|---|",
        *(f"| {key} | {value} |" for key, value in results["machine"].items()),
        "",
        f"Capture: {results['capture']['lines']:,} eslogger lines, {_mib(capture_bytes)} "
        "decompressed.",
        "",
        f"| Input | Size on disk | Events | Median s (min-max of {results['repeats']}) "
        "| MiB/s decompressed | VmHWM (before the first run) | tracemalloc peak |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label, row in results["inputs"].items():
        durations = row["durations"]
        median = statistics.median(durations)
        # The bomb stops early, so the capture size is not what it decompressed.
        rate = "-" if label == "bomb" else f"{capture_bytes / 1024**2 / median:,.1f}"
        lines.append(
            f"| {label} | {_mib(row['size'])} | {row['events']:,} "
            f"| {median:.2f} ({min(durations):.2f}-{max(durations):.2f}) | {rate} "
            f"| {_mib(row['hwm_peak'])} ({_mib(row['hwm_setup'])}) "
            f"| {_mib(row['traced_peak'])} |"
        )
    lines.append("")
    for label, row in results["inputs"].items():
        for problem in row["problems"]:
            lines.append(f"- {label}: {problem}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=DEFAULT_MIB, help="capture size in MiB")
    parser.add_argument("--repeats", type=int, default=DEFAULT_REPEATS, help="runs per input")
    parser.add_argument("--out", type=Path, help="folder to keep the inputs and results.json")
    args = parser.parse_args(argv)

    folder = args.out or Path(tempfile.mkdtemp(prefix="bench-archives-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        capture = folder / "eslogger.ndjson"
        started = time.perf_counter()
        line_count = write_capture(capture, args.mib)
        inputs = pack_inputs(folder, capture)
        print(f"inputs written in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        results: dict[str, Any] = {
            "machine": describe_machine(),
            "repeats": args.repeats,
            "capture": {"bytes": capture.stat().st_size, "lines": line_count},
            "inputs": {},
        }
        for label, path in inputs.items():
            row = run_in_child(measure_read, str(path), args.repeats)
            row["traced_peak"] = run_in_child(measure_tracemalloc, str(path))
            row["size"] = path.stat().st_size
            results["inputs"][label] = row
            print(f"{label}: done", file=sys.stderr)
        (folder / "results.json").write_text(json.dumps(results, indent=2))
        print(format_report(results))
    finally:
        if args.out is None:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
