"""Format readers and the content-based detection that picks one for a file.

The order of :data:`READERS` matters: the more specific test runs first (an ``.ips`` header is
also a JSON line, so the crash reader is asked before the unified-log ndjson reader).
"""

from __future__ import annotations

import re

from tamperwatch.readers.base import Reader
from tamperwatch.readers.crash import CrashTextReader, IpsReader
from tamperwatch.readers.eslogger import EsloggerReader
from tamperwatch.readers.unifiedlog import UnifiedLogNdjsonReader, UnifiedLogTextReader

READERS: tuple[Reader, ...] = (
    EsloggerReader(),
    IpsReader(),
    UnifiedLogNdjsonReader(),
    CrashTextReader(),
    UnifiedLogTextReader(),
)

# Formats recognised by their first bytes that no reader handles yet, with what to tell the user.
_KNOWN_UNSUPPORTED: tuple[tuple[re.Pattern[bytes], str], ...] = (
    (re.compile(rb'^\{.*"hostIdentifier"', re.M), "osquery results are not read by this version"),
    (
        re.compile(rb'"@timestamp"\s*:'),
        "Elastic Common Schema documents are not read by this version",
    ),
    (
        re.compile(rb"^\d+ extension\(s\)\s*$", re.M),
        "systemextensionsctl snapshots are not read by this version",
    ),
    (
        re.compile(rb"^PID\s+Status\s+Label\s*$", re.M),
        "launchctl list snapshots are not read by this version",
    ),
    (re.compile(rb"^\S+ = \{\s*$", re.M), "launchctl print snapshots are not read by this version"),
    (
        re.compile(rb"^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \S+ \S+\[\d+\]", re.M),
        "syslog-style lines carry no year and are not read by this version",
    ),
)

# Magic numbers of compressed and archive files.
_COMPRESSED: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "gzip"),
    (b"PK\x03\x04", "zip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)


def detect(head: bytes) -> Reader | None:
    """Return the reader for a file whose first bytes are ``head``, or ``None``."""
    for reader in READERS:
        if reader.sniff(head):
            return reader
    return None


def describe_unknown(head: bytes) -> str:
    """Say why no reader took a file, for the warning shown to the user."""
    if not head.strip():
        return "empty file"
    for magic, name in _COMPRESSED:
        if head.startswith(magic):
            return f"{name}-compressed; decompress it first (this version reads plain files only)"
    sample = head[:4096]
    for marker, message in _KNOWN_UNSUPPORTED:
        if marker.search(sample):
            return message
    if b"\x00" in sample:
        return "not a recognised telemetry format (binary data)"
    return "not a recognised telemetry format"


__all__ = ["READERS", "Reader", "describe_unknown", "detect"]
