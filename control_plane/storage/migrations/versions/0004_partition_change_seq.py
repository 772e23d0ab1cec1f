"""Partition rows carry the sequence of the write that last changed them, for WatchBackfill's changes.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("backfills") as batch:
        batch.add_column(sa.Column("partition_change_seq", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("backfill_partitions") as batch:
        batch.add_column(sa.Column("change_seq", sa.Integer(), nullable=False, server_default="0"))
    op.create_index(
        "ix_backfill_partitions_backfill_id_change_seq", "backfill_partitions", ["backfill_id", "change_seq"]
    )


def downgrade() -> None:
    op.drop_index("ix_backfill_partitions_backfill_id_change_seq", table_name="backfill_partitions")
    with op.batch_alter_table("backfill_partitions") as batch:
        batch.drop_column("change_seq")
    with op.batch_alter_table("backfills") as batch:
        batch.drop_column("partition_change_seq")
