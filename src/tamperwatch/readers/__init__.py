"""Format readers and the content-based detection that picks one for a file.

The order of :data:`READERS` matters: the more specific test runs first (an ``.ips`` header is
also a JSON line, so the crash reader is asked before the unified-log ndjson reader).
"""

from __future__ import annotations

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
_KNOWN_UNSUPPORTED: tuple[tuple[bytes, str], ...] = (
    (b'"hostIdentifier"', "osquery results are not read by this version"),
    (b'"@timestamp"', "Elastic Common Schema documents are not read by this version"),
    (b"extension(s)", "systemextensionsctl snapshots are not read by this version"),
    (b"PID\tStatus\tLabel", "launchctl list snapshots are not read by this version"),
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
    sample = head[:4096]
    for marker, message in _KNOWN_UNSUPPORTED:
        if marker in sample:
            return message
    if b"\x00" in sample:
        return "not a recognised telemetry format (binary data)"
    return "not a recognised telemetry format"


__all__ = ["READERS", "Reader", "describe_unknown", "detect"]
