"""maintenance: remember the VMs to bring back ("return home")

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 05:06:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("maintenance") as batch:
        batch.add_column(sa.Column("return_home", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
        batch.add_column(sa.Column("home_vms", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("maintenance") as batch:
        batch.drop_column("home_vms")
        batch.drop_column("return_home")
