"""Create the incident and outage tables and their status histories.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STATUS_CHECK = "status IN ('open', 'explained', 'resolved')"


def _history_columns(parent_column: str) -> list[sa.Column[object]]:
    return [
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(parent_column, sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("by", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("host", sa.Text(), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("components", sa.Text(), nullable=False),
        sa.Column("incident", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incidents")),
        sa.CheckConstraint(_STATUS_CHECK, name=op.f("ck_incidents_status")),
    )
    op.create_index(op.f("ix_incidents_host"), "incidents", ["host"])
    op.create_index(op.f("ix_incidents_first_seen"), "incidents", ["first_seen"])
    op.create_index(op.f("ix_incidents_status"), "incidents", ["status"])

    op.create_table(
        "incident_history",
        *_history_columns("incident_id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incident_history")),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_incident_history_incident_id_incidents"),
        ),
        sa.CheckConstraint(_STATUS_CHECK, name=op.f("ck_incident_history_status")),
    )
    op.create_index(op.f("ix_incident_history_incident_id"), "incident_history", ["incident_id"])

    op.create_table(
        "outages",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("host", sa.Text(), nullable=False),
        sa.Column("component", sa.Text(), nullable=True),
        sa.Column("start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("events_lost", sa.Integer(), nullable=True),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("explained_by", sa.Text(), nullable=True),
        sa.Column("explained_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("explanation", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outages")),
        sa.CheckConstraint(_STATUS_CHECK, name=op.f("ck_outages_status")),
    )
    op.create_index(op.f("ix_outages_host"), "outages", ["host"])
    op.create_index(op.f("ix_outages_component"), "outages", ["component"])
    op.create_index(op.f("ix_outages_start"), "outages", ["start"])
    op.create_index(op.f("ix_outages_status"), "outages", ["status"])

    op.create_table(
        "outage_history",
        *_history_columns("outage_id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outage_history")),
        sa.ForeignKeyConstraint(
            ["outage_id"],
            ["outages.id"],
            name=op.f("fk_outage_history_outage_id_outages"),
        ),
        sa.CheckConstraint(_STATUS_CHECK, name=op.f("ck_outage_history_status")),
    )
    op.create_index(op.f("ix_outage_history_outage_id"), "outage_history", ["outage_id"])


def downgrade() -> None:
    op.drop_table("outage_history")
    op.drop_table("outages")
    op.drop_table("incident_history")
    op.drop_table("incidents")
