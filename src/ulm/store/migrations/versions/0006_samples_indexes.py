"""samples: indexes for the snapshot's read of empty hosts and for retention in batches

`ix_samples_host_ts`: how long a host has been empty (its newest VM sample) without scanning
every sample of the window. `ix_samples_resolution_ts`: retention finds the oldest raw sample
without scanning past months of downsampled ones. Measured with EXPLAIN on both engines
(docs/benchmarks.md, "daemon at scale").

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 04:40:00
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_samples_host_ts", "samples", ["host", "ts"])
    op.create_index("ix_samples_resolution_ts", "samples", ["resolution_s", "ts"])


def downgrade() -> None:
    op.drop_index("ix_samples_resolution_ts", table_name="samples")
    op.drop_index("ix_samples_host_ts", table_name="samples")
