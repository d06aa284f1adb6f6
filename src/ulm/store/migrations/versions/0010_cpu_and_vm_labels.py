"""hosts.cpu_model/cpu_features, vms.cpu_features: what libvirt says of CPUs

The libvirt collector reads a host's CPU model and features from `getCapabilities` (once per
connection) and a VM's required CPU features from its domain XML (with its labels, from the
domain's metadata: `vms.labels` already exists). Stored so that every snapshot, the daemon's
and `ulm status`'s, has them for the scheduler's CPU compatibility filter. Current state, not
history; JSON lists of feature names ([] = unknown: no check).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 18:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("hosts") as batch:
        batch.add_column(sa.Column("cpu_model", sa.Text(), nullable=False, server_default=""))
        batch.add_column(sa.Column("cpu_features", sa.JSON(), nullable=False,
                                   server_default="[]"))
    with op.batch_alter_table("vms") as batch:
        batch.add_column(sa.Column("cpu_features", sa.JSON(), nullable=False,
                                   server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("vms") as batch:
        batch.drop_column("cpu_features")
    with op.batch_alter_table("hosts") as batch:
        batch.drop_column("cpu_features")
        batch.drop_column("cpu_model")
