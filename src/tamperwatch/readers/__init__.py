"""Format readers and the content-based detection that picks one for a file.

The order of :data:`READERS` matters: the more specific test runs first (an ``.ips`` header is
also a JSON line, so the crash reader is asked before the unified-log ndjson reader).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from tamperwatch.readers.base import UTF8_BOM, Reader
from tamperwatch.readers.checkins import CheckinReader
from tamperwatch.readers.crash import CrashTextReader, IpsReader
from tamperwatch.readers.eslogger import EsloggerReader
from tamperwatch.readers.osquery import OsqueryReader
from tamperwatch.readers.snapshots import (
    LaunchctlListReader,
    LaunchctlPrintReader,
    SysextListReader,
)
from tamperwatch.readers.unifiedlog import UnifiedLogNdjsonReader, UnifiedLogTextReader

READERS: tuple[Reader, ...] = (
    EsloggerReader(),
    OsqueryReader(),
    IpsReader(),
    UnifiedLogNdjsonReader(),
    CrashTextReader(),
    SysextListReader(),
    LaunchctlPrintReader(),
    LaunchctlListReader(),
    UnifiedLogTextReader(),
    CheckinReader(),
)

# Formats recognised by their first bytes that no reader handles yet, with what to tell the user.
_KNOWN_UNSUPPORTED: tuple[tuple[re.Pattern[bytes], str], ...] = (
    (
        re.compile(rb'"@timestamp"\s*:'),
        "Elastic Common Schema documents are not read by this version",
    ),
    (
        re.compile(rb"\A\s*\[\s*\{"),
        "a JSON array, read by this version only from log show --style json; write other "
        "records as JSON lines, one object per line",
    ),
    (
        re.compile(rb"^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \S+ \S+\[\d+\]", re.M),
        "syslog-style lines carry no year and are not read by this version",
    ),
)


def readers_for(options: Mapping[str, Any]) -> tuple[Reader, ...]:
    """Return the readers with the configured reader options applied.

    The check-in reader needs the configured column names already to recognise an export.
    """
    checkins = options.get("checkins")
    if not checkins:
        return READERS
    return tuple(CheckinReader(checkins) if r.name == "checkins" else r for r in READERS)


def detect(head: bytes, readers: tuple[Reader, ...] = READERS) -> Reader | None:
    """Return the reader for a file whose first bytes are ``head``, or ``None``.

    A leading UTF-8 byte-order mark is ignored, as the readers ignore it.
    """
    head = head.removeprefix(UTF8_BOM)
    for reader in readers:
        if reader.sniff(head):
            return reader
    return None


def describe_unknown(head: bytes) -> str:
    """Say why no reader took a file, for the warning shown to the user."""
    # Imported here because the archives module imports this package.
    from tamperwatch.archives import archive_of, compression_of

    if not head.strip():
        return "empty file"
    container = compression_of(head) or archive_of(head)
    if container == "zstd":
        return "zstd-compressed, which this version does not read; decompress it first"
    if container is not None:
        # The scan opens the other kinds itself, and hands them over only when they sit too
        # deep inside other archives or compressed files.
        return (
            f"{container} data nested too deep in other archives or compressed files; "
            "unpack the outer ones first"
        )
    sample = head[:4096]
    for marker, message in _KNOWN_UNSUPPORTED:
        if marker.search(sample):
            return message
    if b"\x00" in sample:
        return "not a recognised telemetry format (binary data)"
    return "not a recognised telemetry format"


__all__ = ["READERS", "Reader", "describe_unknown", "detect", "readers_for"]
