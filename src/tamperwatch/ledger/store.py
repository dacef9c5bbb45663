"""The ledger store: open a database, record scans, query entries and change their status.

A ledger is an SQLite file or a PostgreSQL database. Opening it runs the Alembic migrations up to
the newest revision, so a new file or an empty database needs no setup. Recording is idempotent
on the ids: a scan recorded twice adds no row. An entry whose last time grew is updated in place.

Status rules of an incident:

* it enters as ``explained`` when the scan explained it (with a history row by ``tamperwatch``
  that contains the scan's explanation), otherwise as ``open``;
* while no person changed its status, it follows the scan's verdict when a later scan changes
  the verdict (a maintenance window added to the configuration, say);
* ``explain`` and ``resolve`` by a person are never undone by recording.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, time
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal

import msgspec
import platformdirs
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import URL, Engine, create_engine, event, make_url, select
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, selectinload

from tamperwatch.incident import EvidenceRef, Incident
from tamperwatch.ledger.models import (
    IncidentHistoryRow,
    IncidentRow,
    OutageHistoryRow,
    OutageRow,
)
from tamperwatch.liveness import BlindWindow
from tamperwatch.scan import ScanResult
from tamperwatch.timeutil import format_rfc3339

log = logging.getLogger(__name__)

# ``--ledger default`` and an omitted ``--ledger`` both mean the file in the user data directory.
DEFAULT_LOCATION = "default"

# Name in the history of the status changes that tamperwatch makes itself while recording.
AUTOMATIC_ACTOR = "tamperwatch"

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

LedgerStatus = Literal["open", "explained", "resolved"]

SUPPORTED_BACKENDS = ("sqlite", "postgresql")

# Spreadsheets run a cell that starts with one of these as a formula (CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

INCIDENT_CSV_COLUMNS = (
    "id",
    "host",
    "first_seen",
    "last_seen",
    "severity",
    "title",
    "components",
    "status",
    "status_at",
    "status_by",
    "status_reason",
    "created_at",
    "updated_at",
)

OUTAGE_CSV_COLUMNS = (
    "id",
    "host",
    "component",
    "start",
    "end",
    "reason",
    "events_lost",
    "status",
    "explained_by",
    "explained_at",
    "explanation",
    "status_at",
    "status_by",
    "status_reason",
    "created_at",
    "updated_at",
)


class LedgerError(Exception):
    """A ledger that cannot be opened, read or written, or a request that it cannot carry out."""


class UnknownIdError(LedgerError):
    """No incident or outage has the requested id."""


class HistoryEntry(msgspec.Struct, frozen=True):
    """One status change: its time, the new status, the person or tool that made it, and the reason."""

    at: datetime
    status: str
    by: str
    reason: str


class IncidentEntry(msgspec.Struct, frozen=True):
    """An incident in the ledger: the scan's record, its ledger status and its history."""

    id: str
    host: str
    first_seen: datetime
    last_seen: datetime
    severity: str
    title: str
    components: list[str]
    status: str
    created_at: datetime
    updated_at: datetime
    history: list[HistoryEntry]
    incident: Incident


class OutageEntry(msgspec.Struct, frozen=True):
    """A telemetry outage in the ledger, with its ledger status and history."""

    id: str
    host: str
    component: str | None
    start: datetime
    end: datetime
    reason: str
    events_lost: int | None
    evidence: list[EvidenceRef]
    status: str
    explained_by: str | None
    explained_at: datetime | None
    explanation: str | None
    created_at: datetime
    updated_at: datetime
    history: list[HistoryEntry]


class LedgerFilter(msgspec.Struct, frozen=True):
    """Conditions that entries must all meet. A condition set to ``None`` is left out.

    ``since`` and ``until`` select entries whose time span overlaps them: an incident from
    ``first_seen`` to ``last_seen``, an outage from ``start`` to ``end``.
    """

    status: str | None = None
    host: str | None = None
    component: str | None = None
    since: datetime | None = None
    until: datetime | None = None


class RecordCounts(msgspec.Struct):
    """Rows that recording one scan added and updated."""

    incidents_added: int = 0
    incidents_updated: int = 0
    outages_added: int = 0
    outages_updated: int = 0


# locations --------------------------------------------------------------------------------------


def default_path() -> Path:
    """Return the SQLite file used when no ``--ledger`` is given."""
    return platformdirs.user_data_path("tamperwatch") / "ledger.sqlite3"


def ledger_url(location: str | None) -> URL:
    """Turn a ``--ledger`` value into a database URL.

    ``None`` and ``default`` mean :func:`default_path`, a value with ``://`` is a SQLAlchemy URL
    (``sqlite:///PATH`` or ``postgresql+psycopg://...``), anything else is the path of an SQLite
    file. Raises :class:`LedgerError` for an invalid or unsupported URL.
    """
    if location is None or location == DEFAULT_LOCATION:
        return _sqlite_url(default_path())
    if "://" not in location:
        return _sqlite_url(Path(location))
    try:
        url = make_url(location)
    except ArgumentError as exc:
        raise LedgerError(
            f"invalid ledger URL: {exc}; expected sqlite:///PATH or "
            "postgresql+psycopg://USER@HOST/DATABASE"
        ) from None
    backend = url.get_backend_name()
    if backend not in SUPPORTED_BACKENDS:
        raise LedgerError(
            f"unsupported ledger database {backend!r} in {describe_url(url)}: "
            "use an SQLite file path, sqlite:///PATH or postgresql+psycopg://..."
        )
    if url.drivername == "postgresql":
        # SQLAlchemy's default PostgreSQL driver is psycopg2, but the postgres extra installs
        # psycopg 3.
        url = url.set(drivername="postgresql+psycopg")
    return url


def describe_url(url: URL) -> str:
    """Return the URL for messages, with any password masked, or the path of an SQLite file."""
    if url.get_backend_name() == "sqlite" and url.database:
        return url.database
    return url.render_as_string(hide_password=True)


def _sqlite_url(path: Path) -> URL:
    return URL.create("sqlite+pysqlite", database=str(path.expanduser().absolute()))


def outage_id(window: BlindWindow) -> str:
    """Return the stable id of a blind window: a hash of host, component, start and reason."""
    # NOTE: a silence still open when the input ends has the reason "... until the input ended".
    # A later scan in which the component returns words the reason differently, so the ledger
    # then stores two outages for one silence.
    anchor = json.dumps(
        [window.host, window.component or "", format_rfc3339(window.start), window.reason]
    )
    return "bw-" + hashlib.sha256(anchor.encode("utf-8")).hexdigest()[:20]


def parse_time(text: str) -> datetime:
    """Parse a ``--since``/``--until`` value: RFC 3339 with a UTC offset, or a date (UTC midnight).

    Raises :class:`ValueError` for anything else, including a time without an offset.
    """
    value = text.strip()
    if len(value) == 10:
        return datetime.combine(date.fromisoformat(value), time(), tzinfo=UTC)
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset; add Z or an offset such as +02:00")
    return parsed.astimezone(UTC)


# opening -----------------------------------------------------------------------------------------


def _enable_sqlite_foreign_keys(dbapi_connection: Any, connection_record: Any) -> None:
    # SQLite enforces foreign keys only on connections that turn them on.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def _alembic_config() -> AlembicConfig:
    config = AlembicConfig()
    # The value goes through configparser interpolation, where % starts a reference.
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    return config


def _one_line(exc: BaseException) -> str:
    """Return the database's own message of an error, on one line, without SQLAlchemy's link."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        text = str(exc.orig)
    else:
        text = str(exc).split("\n(Background on this error", 1)[0]
    return " ".join(text.split()) or type(exc).__name__


class Ledger:
    """An open ledger. Use :meth:`open`, and :meth:`close` it (or use it as a context manager)."""

    def __init__(self, engine: Engine, location: str) -> None:
        self._engine = engine
        # The database as messages name it, without a password.
        self.location = location

    @classmethod
    def open(cls, location: str | None = None) -> Ledger:
        """Open the ledger at a ``--ledger`` value and bring its schema to the newest revision.

        Raises :class:`LedgerError` when the location is invalid, the database cannot be reached
        or its schema is of a revision this version does not know.
        """
        url = ledger_url(location)
        display = describe_url(url)
        if location is None or location == DEFAULT_LOCATION:
            try:
                default_path().parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise LedgerError(
                    f"cannot create the ledger folder {default_path().parent}: "
                    f"{exc.strerror or exc}"
                ) from None
        try:
            engine = create_engine(url)
        except ImportError as exc:
            raise LedgerError(
                f"the database driver for {display} is not installed ({exc}); "
                "for PostgreSQL, install tamperwatch[postgres]"
            ) from None
        except ArgumentError as exc:
            raise LedgerError(f"invalid ledger URL {display}: {_one_line(exc)}") from None
        if url.get_backend_name() == "sqlite":
            event.listen(engine, "connect", _enable_sqlite_foreign_keys)
        try:
            cls._migrate(engine)
        except CommandError as exc:
            engine.dispose()
            head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
            raise LedgerError(
                f"cannot upgrade the ledger schema at {display}: {exc}; this version of "
                f"tamperwatch knows revisions up to {head}, so the ledger may come from a newer "
                "version"
            ) from None
        except SQLAlchemyError as exc:
            engine.dispose()
            raise LedgerError(f"cannot open the ledger at {display}: {_one_line(exc)}") from None
        return cls(engine, display)

    @staticmethod
    def _migrate(engine: Engine) -> None:
        config = _alembic_config()
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def close(self) -> None:
        """Close every connection of the ledger."""
        self._engine.dispose()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @contextmanager
    def _database_errors(self, action: str) -> Iterator[None]:
        try:
            yield
        except SQLAlchemyError as exc:
            raise LedgerError(
                f"{action} failed in the ledger at {self.location}: {_one_line(exc)}"
            ) from None

    # recording -----------------------------------------------------------------------------------

    def record(self, result: ScanResult, *, now: datetime | None = None) -> RecordCounts:
        """Record the incidents and blind windows of a scan and count the rows added and updated."""
        moment = now or datetime.now(UTC)
        with self._database_errors("recording the scan"):
            try:
                return self._record_once(result, moment)
            except IntegrityError as exc:
                # Another process inserted one of these ids after this one looked it up. The
                # second pass finds that row and updates it.
                log.info("ledger %s: %s; recording again", self.location, _one_line(exc))
                return self._record_once(result, moment)

    def _record_once(self, result: ScanResult, moment: datetime) -> RecordCounts:
        counts = RecordCounts()
        with Session(self._engine) as session, session.begin():
            incidents: dict[str, IncidentRow] = {}
            for incident in result.incidents:
                change = _record_incident(session, incidents, incident, moment)
                if change == "added":
                    counts.incidents_added += 1
                elif change == "updated":
                    counts.incidents_updated += 1
            outages: dict[str, OutageRow] = {}
            for window in result.blind_windows:
                change = _record_outage(session, outages, window, moment)
                if change == "added":
                    counts.outages_added += 1
                elif change == "updated":
                    counts.outages_updated += 1
        log.info(
            "ledger %s: %d incident(s) added, %d updated; %d outage(s) added, %d updated",
            self.location,
            counts.incidents_added,
            counts.incidents_updated,
            counts.outages_added,
            counts.outages_updated,
        )
        return counts

    # queries ---------------------------------------------------------------------------------

    def incidents(self, filters: LedgerFilter | None = None) -> list[IncidentEntry]:
        """Return the incidents that meet the filters, oldest first."""
        filters = filters or LedgerFilter()
        statement = (
            select(IncidentRow)
            .options(selectinload(IncidentRow.history))
            .order_by(IncidentRow.first_seen, IncidentRow.id)
        )
        if filters.status is not None:
            statement = statement.where(IncidentRow.status == filters.status)
        if filters.host is not None:
            statement = statement.where(IncidentRow.host == filters.host)
        if filters.component is not None:
            # LIKE on the quoted JSON string narrows the rows. The exact check below is needed
            # because SQLite's LIKE ignores ASCII case.
            needle = json.dumps(filters.component)
            statement = statement.where(IncidentRow.components.contains(needle, autoescape=True))
        if filters.since is not None:
            statement = statement.where(IncidentRow.last_seen >= filters.since)
        if filters.until is not None:
            statement = statement.where(IncidentRow.first_seen <= filters.until)
        with self._database_errors("reading incidents"), Session(self._engine) as session:
            entries = [_incident_entry(row) for row in session.scalars(statement)]
        if filters.component is not None:
            entries = [entry for entry in entries if filters.component in entry.components]
        return entries

    def outages(self, filters: LedgerFilter | None = None) -> list[OutageEntry]:
        """Return the outages that meet the filters, oldest first."""
        filters = filters or LedgerFilter()
        statement = (
            select(OutageRow)
            .options(selectinload(OutageRow.history))
            .order_by(OutageRow.start, OutageRow.host, OutageRow.id)
        )
        if filters.status is not None:
            statement = statement.where(OutageRow.status == filters.status)
        if filters.host is not None:
            statement = statement.where(OutageRow.host == filters.host)
        if filters.component is not None:
            statement = statement.where(OutageRow.component == filters.component)
        if filters.since is not None:
            statement = statement.where(OutageRow.end >= filters.since)
        if filters.until is not None:
            statement = statement.where(OutageRow.start <= filters.until)
        with self._database_errors("reading outages"), Session(self._engine) as session:
            return [_outage_entry(row) for row in session.scalars(statement)]

    def find(self, entry_id: str) -> IncidentEntry | OutageEntry:
        """Return the incident or outage with this id, or raise :class:`UnknownIdError`."""
        with self._database_errors("reading an entry"), Session(self._engine) as session:
            incident = session.get(
                IncidentRow, entry_id, options=[selectinload(IncidentRow.history)]
            )
            if incident is not None:
                return _incident_entry(incident)
            outage = session.get(OutageRow, entry_id, options=[selectinload(OutageRow.history)])
            if outage is not None:
                return _outage_entry(outage)
        raise self._unknown(entry_id)

    def _unknown(self, entry_id: str) -> UnknownIdError:
        return UnknownIdError(
            f"no incident or outage with id {entry_id!r} in the ledger at {self.location}; "
            "'tamperwatch ledger list' shows the ids"
        )

    # status changes ----------------------------------------------------------------------------

    def explain(
        self, entry_id: str, *, reason: str, by: str, at: datetime | None = None
    ) -> IncidentEntry | OutageEntry:
        """Mark an incident or outage as explained, with the reason and who gave it."""
        return self._set_status(entry_id, "explained", reason=reason, by=by, at=at)

    def resolve(
        self, entry_id: str, *, reason: str, by: str, at: datetime | None = None
    ) -> IncidentEntry | OutageEntry:
        """Mark an incident or outage as resolved, with the reason and who resolved it."""
        return self._set_status(entry_id, "resolved", reason=reason, by=by, at=at)

    def _set_status(
        self,
        entry_id: str,
        status: LedgerStatus,
        *,
        reason: str,
        by: str,
        at: datetime | None,
    ) -> IncidentEntry | OutageEntry:
        reason = reason.strip()
        by = by.strip()
        if not reason:
            raise LedgerError("the reason is empty; say why the status changes")
        if not by:
            raise LedgerError("the name is empty; say who changes the status")
        if by == AUTOMATIC_ACTOR:
            raise LedgerError(
                f"the name {AUTOMATIC_ACTOR!r} is reserved for the changes tamperwatch makes "
                "itself; give your own name"
            )
        moment = at or datetime.now(UTC)
        with (
            self._database_errors(f"setting the status of {entry_id!r}"),
            Session(self._engine) as session,
            session.begin(),
        ):
            incident = session.get(IncidentRow, entry_id)
            if incident is not None:
                incident.status = status
                incident.updated_at = moment
                session.add(
                    IncidentHistoryRow(
                        incident_id=entry_id, at=moment, status=status, by=by, reason=reason
                    )
                )
            else:
                outage = session.get(OutageRow, entry_id)
                if outage is None:
                    raise self._unknown(entry_id)
                outage.status = status
                outage.updated_at = moment
                if status == "explained":
                    outage.explained_by = by
                    outage.explained_at = moment
                    outage.explanation = reason
                session.add(
                    OutageHistoryRow(
                        outage_id=entry_id, at=moment, status=status, by=by, reason=reason
                    )
                )
        log.info("ledger %s: %s set to %s by %s", self.location, entry_id, status, by)
        return self.find(entry_id)


# recording helpers -------------------------------------------------------------------------------


def _parse_incident_time(text: str) -> datetime:
    # Incident times are RFC 3339 UTC as timeutil.format_rfc3339 writes them.
    return datetime.fromisoformat(text).astimezone(UTC)


def _from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _scan_status(incident: Incident) -> LedgerStatus:
    return "explained" if incident.status == "explained" else "open"


def _fill_incident(row: IncidentRow, incident: Incident) -> None:
    row.host = incident.host
    row.first_seen = _parse_incident_time(incident.first_seen)
    row.last_seen = _parse_incident_time(incident.last_seen)
    row.severity = incident.severity
    row.title = incident.title
    row.components = json.dumps([component.id for component in incident.components])
    row.incident = msgspec.json.encode(incident).decode("utf-8")


def _record_incident(
    session: Session, seen: dict[str, IncidentRow], incident: Incident, moment: datetime
) -> Literal["added", "updated"] | None:
    row = seen.get(incident.id) or session.get(IncidentRow, incident.id)
    if row is None:
        status = _scan_status(incident)
        row = IncidentRow(id=incident.id, status=status, created_at=moment, updated_at=moment)
        _fill_incident(row, incident)
        session.add(row)
        seen[incident.id] = row
        if status == "explained":
            session.add(
                IncidentHistoryRow(
                    incident_id=incident.id,
                    at=moment,
                    status=status,
                    by=AUTOMATIC_ACTOR,
                    reason=incident.explanation or "explained by the scan",
                )
            )
        return "added"
    seen[incident.id] = row
    stored = msgspec.json.decode(row.incident, type=Incident)
    verdict_changed = stored.status != incident.status
    # A record with less evidence (a scan of part of the data) never replaces a fuller one.
    if _parse_incident_time(incident.last_seen) <= row.last_seen and not verdict_changed:
        return None
    _fill_incident(row, incident)
    row.updated_at = moment
    if verdict_changed:
        _follow_verdict(session, row, incident, moment)
    return "updated"


def _follow_verdict(
    session: Session, row: IncidentRow, incident: Incident, moment: datetime
) -> None:
    """Move the ledger status to the scan's new verdict, unless a person set the status."""
    latest = session.scalars(
        select(IncidentHistoryRow)
        .where(IncidentHistoryRow.incident_id == row.id)
        .order_by(IncidentHistoryRow.at.desc(), IncidentHistoryRow.id.desc())
        .limit(1)
    ).first()
    if latest is not None and latest.by != AUTOMATIC_ACTOR:
        return
    status = _scan_status(incident)
    if status == row.status:
        return
    row.status = status
    reason = (
        incident.explanation or "explained by the scan"
        if status == "explained"
        else "a later scan no longer explains this incident"
    )
    session.add(
        IncidentHistoryRow(
            incident_id=row.id, at=moment, status=status, by=AUTOMATIC_ACTOR, reason=reason
        )
    )


def _evidence_json(window: BlindWindow) -> str:
    refs = [EvidenceRef(item.source, item.file, item.line) for item in window.evidence]
    return msgspec.json.encode(refs).decode("utf-8")


def _record_outage(
    session: Session, seen: dict[str, OutageRow], window: BlindWindow, moment: datetime
) -> Literal["added", "updated"] | None:
    key = outage_id(window)
    row = seen.get(key) or session.get(OutageRow, key)
    end = _from_epoch(window.end)
    if row is None:
        seen[key] = OutageRow(
            id=key,
            host=window.host,
            component=window.component,
            start=_from_epoch(window.start),
            end=end,
            reason=window.reason,
            events_lost=window.events_lost,
            evidence=_evidence_json(window),
            status="open",
            created_at=moment,
            updated_at=moment,
        )
        session.add(seen[key])
        return "added"
    seen[key] = row
    if end <= row.end:
        return None
    row.end = end
    row.events_lost = window.events_lost
    row.evidence = _evidence_json(window)
    row.updated_at = moment
    return "updated"


# entries ------------------------------------------------------------------------------------------


def _history(rows: Sequence[IncidentHistoryRow] | Sequence[OutageHistoryRow]) -> list[HistoryEntry]:
    return [HistoryEntry(row.at, row.status, row.by, row.reason) for row in rows]


def _incident_entry(row: IncidentRow) -> IncidentEntry:
    return IncidentEntry(
        id=row.id,
        host=row.host,
        first_seen=row.first_seen,
        last_seen=row.last_seen,
        severity=row.severity,
        title=row.title,
        components=json.loads(row.components),
        status=row.status,
        created_at=row.created_at,
        updated_at=row.updated_at,
        history=_history(row.history),
        incident=msgspec.json.decode(row.incident, type=Incident),
    )


def _outage_entry(row: OutageRow) -> OutageEntry:
    return OutageEntry(
        id=row.id,
        host=row.host,
        component=row.component,
        start=row.start,
        end=row.end,
        reason=row.reason,
        events_lost=row.events_lost,
        evidence=msgspec.json.decode(row.evidence, type=list[EvidenceRef]),
        status=row.status,
        explained_by=row.explained_by,
        explained_at=row.explained_at,
        explanation=row.explanation,
        created_at=row.created_at,
        updated_at=row.updated_at,
        history=_history(row.history),
    )


# export -------------------------------------------------------------------------------------------


def format_time(moment: datetime | None) -> str:
    """Format a ledger time as RFC 3339 UTC with microseconds, or ``""`` for none."""
    return "" if moment is None else format_rfc3339(moment.timestamp())


def csv_cell(value: str) -> str:
    """Prefix a single quote to a cell that a spreadsheet would run as a formula."""
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value


def _last_change(history: list[HistoryEntry]) -> list[str]:
    if not history:
        return ["", "", ""]
    latest = history[-1]
    return [format_time(latest.at), latest.by, latest.reason]


def _incident_csv_row(entry: IncidentEntry) -> list[str]:
    return [
        entry.id,
        entry.host,
        format_time(entry.first_seen),
        format_time(entry.last_seen),
        entry.severity,
        entry.title,
        ";".join(entry.components),
        entry.status,
        *_last_change(entry.history),
        format_time(entry.created_at),
        format_time(entry.updated_at),
    ]


def _outage_csv_row(entry: OutageEntry) -> list[str]:
    return [
        entry.id,
        entry.host,
        entry.component or "",
        format_time(entry.start),
        format_time(entry.end),
        entry.reason,
        "" if entry.events_lost is None else str(entry.events_lost),
        entry.status,
        entry.explained_by or "",
        format_time(entry.explained_at),
        entry.explanation or "",
        *_last_change(entry.history),
        format_time(entry.created_at),
        format_time(entry.updated_at),
    ]


def write_incidents_csv(
    entries: Sequence[IncidentEntry], stream: IO[str], *, cell: Callable[[str], str] = csv_cell
) -> None:
    """Write incidents as CSV with a header row. ``cell`` makes each value safe to open.

    The ``status_*`` columns describe the latest status change. JSON lines carry the whole
    history.
    """
    _write_csv(INCIDENT_CSV_COLUMNS, (_incident_csv_row(entry) for entry in entries), stream, cell)


def write_outages_csv(
    entries: Sequence[OutageEntry], stream: IO[str], *, cell: Callable[[str], str] = csv_cell
) -> None:
    """Write outages as CSV with a header row. ``cell`` makes each value safe to open."""
    _write_csv(OUTAGE_CSV_COLUMNS, (_outage_csv_row(entry) for entry in entries), stream, cell)


def _write_csv(
    header: Sequence[str],
    rows: Iterator[list[str]],
    stream: IO[str],
    cell: Callable[[str], str],
) -> None:
    writer = csv.writer(stream)
    writer.writerow(header)
    for row in rows:
        writer.writerow([cell(value) for value in row])


def write_entries_jsonl(
    entries: Sequence[IncidentEntry] | Sequence[OutageEntry], stream: IO[bytes]
) -> None:
    """Write one entry per line as JSON (UTF-8), with its whole status history."""
    encoder = msgspec.json.Encoder()
    for entry in entries:
        stream.write(encoder.encode(entry))
        stream.write(b"\n")
