"""Read evidence records back from the scanned files, so an incident page can show them.

The input files may have changed or gone since the scan, so a record that cannot be read is
shown by its location alone. Reading is bounded: each record is cut at :data:`MAX_RECORD_CHARS`
and at most :data:`MAX_RECORDS` records are read per report.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from tamperwatch.render import neutralize
from tamperwatch.report.view import EvidenceView, ReportView

log = logging.getLogger(__name__)

MAX_RECORD_CHARS = 4000
MAX_RECORDS = 20_000

# Bytes read per call while skipping the rest of a long line.
_CHUNK = 64 * 1024


def attach_records(view: ReportView) -> tuple[int, int]:
    """Fill ``record`` of every evidence location whose file can be read.

    Returns the number of records found and the number of locations looked for.
    """
    by_path: dict[str, list[EvidenceView]] = {}
    count = 0
    for item in _evidence_of(view):
        if count >= MAX_RECORDS:
            log.info("evidence records past the first %d are shown by location only", MAX_RECORDS)
            break
        if item.line > 0:
            by_path.setdefault(item.path, []).append(item)
            count += 1
    found = 0
    for path, items in by_path.items():
        found += _read_lines(path, items)
    return found, count


def _evidence_of(view: ReportView) -> Iterable[EvidenceView]:
    for host in view.hosts:
        for incident in host.incidents:
            for signal in incident.signals:
                yield from signal.evidence
        for window in host.windows:
            yield from window.evidence


def _read_lines(path: str, items: list[EvidenceView]) -> int:
    by_line: dict[int, list[EvidenceView]] = {}
    for item in items:
        by_line.setdefault(item.line, []).append(item)
    last = max(by_line)
    found = 0
    try:
        with Path(path).open("rb") as stream:
            for number in range(1, last + 1):
                line = stream.readline(MAX_RECORD_CHARS * 4)
                if not line:
                    break
                complete = line.endswith(b"\n")
                if not complete:
                    _skip_rest_of_line(stream)
                targets = by_line.get(number)
                if targets is None:
                    continue
                record = neutralize(
                    line.decode("utf-8", "replace").rstrip("\r\n"), MAX_RECORD_CHARS
                )
                if not complete:
                    record += " ... (the line continues)"
                for item in targets:
                    item.record = record
                found += len(targets)
    except OSError as exc:
        log.info("%s: evidence not read back: %s", path, exc.strerror or exc)
    return found


def _skip_rest_of_line(stream: BinaryIO) -> None:
    while True:
        chunk = stream.readline(_CHUNK)
        if not chunk or chunk.endswith(b"\n"):
            return
