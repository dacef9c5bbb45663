"""Tables of the ledger, as SQLAlchemy 2 declarative models.

Only the Alembic migrations in ``migrations/`` create and change the schema. These models must
describe the same tables, and a test compares the two. Times are stored in UTC, as
``timestamptz`` on PostgreSQL and as ISO text without an offset on SQLite. In Python they are
always aware UTC datetimes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    Dialect,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    event,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Mapper, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

# Constraint names are fixed so that later migrations can name the constraints they change.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

_STATUS_CHECK = "status IN ('open', 'explained', 'resolved')"


class UTCDateTime(TypeDecorator[datetime]):
    """A point in time that goes in and comes out as an aware datetime in UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} given for a UTC column")
        value = value.astimezone(UTC)
        # SQLite has no time zone type, so the stored text is UTC without an offset.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime from the database, got {type(value).__name__}")
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class IncidentRow(Base):
    """One incident as the scan reported it, with the status the ledger gives it."""

    __tablename__ = "incidents"
    __table_args__ = (CheckConstraint(_STATUS_CHECK, name="status"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    host: Mapped[str] = mapped_column(Text, index=True)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    severity: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(Text)
    # JSON array of component ids, for filtering. The full references are in ``incident``.
    components: Mapped[str] = mapped_column(Text)
    # The whole incident record as tamperwatch's JSON-lines output writes it.
    incident: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    history: Mapped[list[IncidentHistoryRow]] = relationship(
        back_populates="incident_row",
        order_by=lambda: (IncidentHistoryRow.at, IncidentHistoryRow.id),
    )


class IncidentHistoryRow(Base):
    """One change of an incident's ledger status. tamperwatch only ever inserts rows."""

    __tablename__ = "incident_history"
    __table_args__ = (CheckConstraint(_STATUS_CHECK, name="status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[str] = mapped_column(ForeignKey("incidents.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16))
    by: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)

    incident_row: Mapped[IncidentRow] = relationship(back_populates="history")


class OutageRow(Base):
    """A telemetry outage: one blind window of a scan, in which detection was impossible."""

    __tablename__ = "outages"
    __table_args__ = (CheckConstraint(_STATUS_CHECK, name="status"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    host: Mapped[str] = mapped_column(Text, index=True)
    # None for an outage of the whole host.
    component: Mapped[str | None] = mapped_column(Text, index=True)
    start: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    end: Mapped[datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(Text)
    events_lost: Mapped[int | None] = mapped_column(Integer)
    # JSON array of {source, file, line} of the records around the outage.
    evidence: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), index=True)
    explained_by: Mapped[str | None] = mapped_column(Text)
    explained_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    explanation: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    history: Mapped[list[OutageHistoryRow]] = relationship(
        back_populates="outage_row",
        order_by=lambda: (OutageHistoryRow.at, OutageHistoryRow.id),
    )


class OutageHistoryRow(Base):
    """One change of an outage's ledger status. tamperwatch only ever inserts rows."""

    __tablename__ = "outage_history"
    __table_args__ = (CheckConstraint(_STATUS_CHECK, name="status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    outage_id: Mapped[str] = mapped_column(ForeignKey("outages.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16))
    by: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)

    outage_row: Mapped[OutageRow] = relationship(back_populates="history")


def _reject_history_change(mapper: Mapper[Any], connection: Any, target: Any) -> None:
    # The history is an audit trail. This guards the ORM only: SQL sent outside it is not checked.
    raise PermissionError(f"{mapper.class_.__name__} rows are never changed or deleted")


for _history in (IncidentHistoryRow, OutageHistoryRow):
    event.listen(_history, "before_update", _reject_history_change)
    event.listen(_history, "before_delete", _reject_history_change)
