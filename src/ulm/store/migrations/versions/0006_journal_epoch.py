"""journal.epoch and leases.since: every journaled action carries its leader's fencing epoch

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 04:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL: written before fencing, or by a process that leads nothing (a dry run)
    with op.batch_alter_table("journal") as batch:
        batch.add_column(sa.Column("epoch", sa.Integer(), nullable=True))
    with op.batch_alter_table("leases") as batch:  # when the current epoch began
        batch.add_column(sa.Column("since", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("leases") as batch:
        batch.drop_column("since")
    with op.batch_alter_table("journal") as batch:
        batch.drop_column("epoch")
