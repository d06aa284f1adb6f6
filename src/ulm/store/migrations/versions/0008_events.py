"""events: what the event stream told, kept across restarts; journal: moves by time

`events` holds the stream's events that no other table keeps (a migration started, a condition
that began or ended, a leader change, what the API was asked to do), written in bulk by the
event bus and aged by retention. `ix_journal_kind_ts`: the migrations started since the day
began (the daily migration budget) without reading the whole journal.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 14:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("vm", sa.String(255), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("src", sa.String(255), nullable=False),
        sa.Column("dst", sa.String(255), nullable=False),
        sa.Column("plan_id", sa.String(64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
    )
    op.create_index("ix_events_ts", "events", ["ts"])
    op.create_index("ix_journal_kind_ts", "journal", ["kind", "ts"])


def downgrade() -> None:
    op.drop_index("ix_journal_kind_ts", table_name="journal")
    op.drop_index("ix_events_ts", table_name="events")
    op.drop_table("events")
