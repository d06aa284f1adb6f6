"""vms.state: what a VM's CPUs do; hosts.quarantine: why its figures are disbelieved

`vms.state` is libvirt's domain state as ULM keeps it (`ulm.model.VmState`: running, paused,
crashed, shut off), written by every collection: a paused VM is no longer counted as a running
one, and `ulm status` and the API say so. `hosts.quarantine` is the bogus-metrics guard's
verdict of the last round ("" = believed), so that processes other than the daemon (`ulm
status`, `ulm apply`'s re-check) see the quarantine too. Both are current state, rewritten
every round, not history: the events table keeps when they began and ended.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 17:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("vms") as batch:
        batch.add_column(sa.Column("state", sa.String(16), nullable=False,
                                   server_default="running"))
    with op.batch_alter_table("hosts") as batch:
        batch.add_column(sa.Column("quarantine", sa.Text(), nullable=False,
                                   server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("hosts") as batch:
        batch.drop_column("quarantine")
    with op.batch_alter_table("vms") as batch:
        batch.drop_column("state")
