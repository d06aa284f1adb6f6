"""energy: the BMCs' power readings

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 09:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "power_readings",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("watts", sa.Float(), nullable=False),
        sa.Column("resolution_s", sa.Float(), nullable=False, server_default="0"),
    )
    op.create_index("ix_power_readings_host_ts", "power_readings", ["host", "ts"])


def downgrade() -> None:
    op.drop_index("ix_power_readings_host_ts", "power_readings")
    op.drop_table("power_readings")
