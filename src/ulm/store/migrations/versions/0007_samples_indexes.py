"""samples: indexes for the snapshot's read of empty hosts and for retention in batches

`ix_samples_host_ts`: how long a host has been empty (its newest VM sample) without scanning
every sample of the window. `ix_samples_resolution_ts`: retention finds the oldest raw sample
without scanning past months of downsampled ones. `ix_samples_mem` (partial: rows with a memory
figure): a VM's newest memory figure when the window has none, at no cost where no source
reports one. Measured with EXPLAIN on both engines
(docs/benchmarks.md, "daemon at scale").

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 04:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_samples_host_ts", "samples", ["host", "ts"])
    op.create_index("ix_samples_resolution_ts", "samples", ["resolution_s", "ts"])
    op.create_index("ix_samples_mem", "samples", ["kind", "name", "ts"],
                    sqlite_where=sa.text("mem_mib IS NOT NULL"),
                    postgresql_where=sa.text("mem_mib IS NOT NULL"))


def downgrade() -> None:
    op.drop_index("ix_samples_mem", table_name="samples")
    op.drop_index("ix_samples_resolution_ts", table_name="samples")
    op.drop_index("ix_samples_host_ts", table_name="samples")
