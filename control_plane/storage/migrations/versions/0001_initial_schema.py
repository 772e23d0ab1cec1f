"""The initial schema: backfills, their partitions, runs, events, asset status and daemon cursors.

Revision ID: 0001
Revises: (none)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "asset_partition_status",
        sa.Column("asset_key", sa.String(length=512), nullable=False),
        sa.Column("partition_key", sa.String(length=512), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("run_id", sa.String(length=40), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("asset_key", "partition_key", name=op.f("pk_asset_partition_status")),
    )
    op.create_table(
        "backfills",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("location", sa.String(length=255), nullable=False),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("max_concurrent_runs", sa.Integer(), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("origin", sa.String(length=255), nullable=False),
        sa.Column("request_id", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_backfills")),
    )
    with op.batch_alter_table("backfills", schema=None) as batch_op:
        batch_op.create_index("ix_backfills_created_at", ["created_at"], unique=False)
        batch_op.create_index("ix_backfills_request_id", ["request_id"], unique=True)
        batch_op.create_index("ix_backfills_status_created_at", ["status", "created_at"], unique=False)

    op.create_table(
        "daemon_cursors",
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_daemon_cursors")),
    )
    op.create_table(
        "reported_events",
        sa.Column("run_id", sa.String(length=40), nullable=False),
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "event_id", name=op.f("pk_reported_events")),
    )
    op.create_table(
        "run_events",
        sa.Column("run_id", sa.String(length=40), nullable=False),
        sa.Column("sequence", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("asset_key", sa.String(length=512), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "sequence", name=op.f("pk_run_events")),
    )
    op.create_table(
        "backfill_assets",
        sa.Column("backfill_id", sa.String(length=40), nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("asset_key", sa.String(length=512), nullable=False),
        sa.ForeignKeyConstraint(
            ["backfill_id"],
            ["backfills.id"],
            name=op.f("fk_backfill_assets_backfill_id_backfills"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("backfill_id", "ordinal", name=op.f("pk_backfill_assets")),
    )
    op.create_table(
        "backfill_partitions",
        sa.Column("backfill_id", sa.String(length=40), nullable=False),
        sa.Column("asset_key", sa.String(length=512), nullable=False),
        sa.Column("partition_key", sa.String(length=512), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("run_id", sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(
            ["backfill_id"],
            ["backfills.id"],
            name=op.f("fk_backfill_partitions_backfill_id_backfills"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "backfill_id", "asset_key", "partition_key", name=op.f("pk_backfill_partitions")
        ),
    )
    with op.batch_alter_table("backfill_partitions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_backfill_partitions_backfill_id_status", ["backfill_id", "status"], unique=False
        )
        batch_op.create_index("ix_backfill_partitions_run_id", ["run_id"], unique=False)

    op.create_table(
        "backfill_request_parts",
        sa.Column("backfill_id", sa.String(length=40), nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("asset_key", sa.String(length=512), nullable=True),
        sa.Column("start_key", sa.String(length=512), nullable=True),
        sa.Column("end_key", sa.String(length=512), nullable=True),
        sa.ForeignKeyConstraint(
            ["backfill_id"],
            ["backfills.id"],
            name=op.f("fk_backfill_request_parts_backfill_id_backfills"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("backfill_id", "ordinal", name=op.f("pk_backfill_request_parts")),
    )
    op.create_table(
        "backfill_tags",
        sa.Column("backfill_id", sa.String(length=40), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["backfill_id"],
            ["backfills.id"],
            name=op.f("fk_backfill_tags_backfill_id_backfills"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("backfill_id", "key", name=op.f("pk_backfill_tags")),
    )
    with op.batch_alter_table("backfill_tags", schema=None) as batch_op:
        batch_op.create_index("ix_backfill_tags_key_value", ["key", "value"], unique=False)

    op.create_table(
        "runs",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("backfill_id", sa.String(length=40), nullable=True),
        sa.Column("location", sa.String(length=255), nullable=False),
        sa.Column("partition_range_start", sa.String(length=512), nullable=True),
        sa.Column("partition_range_end", sa.String(length=512), nullable=True),
        sa.Column("partition_count", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("run_key", sa.String(length=512), nullable=True),
        sa.Column("launcher_kind", sa.String(length=32), nullable=True),
        sa.Column("launcher_handle", sa.String(length=512), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["backfill_id"], ["backfills.id"], name=op.f("fk_runs_backfill_id_backfills"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
    )
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_runs_backfill_id_status_created_at", ["backfill_id", "status", "created_at"], unique=False
        )
        batch_op.create_index("ix_runs_created_at", ["created_at"], unique=False)
        batch_op.create_index("ix_runs_location_run_key", ["location", "run_key"], unique=True)
        batch_op.create_index(
            "ix_runs_status_priority_created_at", ["status", "priority", "created_at"], unique=False
        )

    op.create_table(
        "run_assets",
        sa.Column("run_id", sa.String(length=40), nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("asset_key", sa.String(length=512), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_run_assets_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "ordinal", name=op.f("pk_run_assets")),
    )
    op.create_table(
        "run_tags",
        sa.Column("run_id", sa.String(length=40), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_run_tags_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "key", name=op.f("pk_run_tags")),
    )
    with op.batch_alter_table("run_tags", schema=None) as batch_op:
        batch_op.create_index("ix_run_tags_key_value", ["key", "value"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("run_tags", schema=None) as batch_op:
        batch_op.drop_index("ix_run_tags_key_value")

    op.drop_table("run_tags")
    op.drop_table("run_assets")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index("ix_runs_status_priority_created_at")
        batch_op.drop_index("ix_runs_location_run_key")
        batch_op.drop_index("ix_runs_created_at")
        batch_op.drop_index("ix_runs_backfill_id_status_created_at")

    op.drop_table("runs")
    with op.batch_alter_table("backfill_tags", schema=None) as batch_op:
        batch_op.drop_index("ix_backfill_tags_key_value")

    op.drop_table("backfill_tags")
    op.drop_table("backfill_request_parts")
    with op.batch_alter_table("backfill_partitions", schema=None) as batch_op:
        batch_op.drop_index("ix_backfill_partitions_run_id")
        batch_op.drop_index("ix_backfill_partitions_backfill_id_status")

    op.drop_table("backfill_partitions")
    op.drop_table("backfill_assets")
    op.drop_table("run_events")
    op.drop_table("reported_events")
    op.drop_table("daemon_cursors")
    with op.batch_alter_table("backfills", schema=None) as batch_op:
        batch_op.drop_index("ix_backfills_status_created_at")
        batch_op.drop_index("ix_backfills_request_id")
        batch_op.drop_index("ix_backfills_created_at")

    op.drop_table("backfills")
    op.drop_table("asset_partition_status")
