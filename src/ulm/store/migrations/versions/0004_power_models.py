"""power models: each configured curve's watts, so that a snapshot carries them

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 01:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "power_models",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("watts", sa.JSON(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("power_models")
