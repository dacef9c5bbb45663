"""Incident and outage ledger: scan results kept across runs, with a status history for each.

See :mod:`tamperwatch.ledger.store` for the rules of recording and status changes.
"""

from tamperwatch.ledger.store import (
    AUTOMATIC_ACTOR,
    DEFAULT_LOCATION,
    HistoryEntry,
    IncidentEntry,
    Ledger,
    LedgerError,
    LedgerFilter,
    OutageEntry,
    RecordCounts,
    UnknownIdError,
    csv_cell,
    default_path,
    describe_url,
    format_time,
    ledger_url,
    outage_id,
    parse_time,
    write_entries_jsonl,
    write_incidents_csv,
    write_outages_csv,
)

__all__ = [
    "AUTOMATIC_ACTOR",
    "DEFAULT_LOCATION",
    "HistoryEntry",
    "IncidentEntry",
    "Ledger",
    "LedgerError",
    "LedgerFilter",
    "OutageEntry",
    "RecordCounts",
    "UnknownIdError",
    "csv_cell",
    "default_path",
    "describe_url",
    "format_time",
    "ledger_url",
    "outage_id",
    "parse_time",
    "write_entries_jsonl",
    "write_incidents_csv",
    "write_outages_csv",
]
