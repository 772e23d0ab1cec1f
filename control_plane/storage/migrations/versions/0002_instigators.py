"""Sensor and schedule state, their ticks, and what each tick created.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "instigator_state",
        sa.Column("location", sa.String(length=255), nullable=False),
        sa.Column("instigator_type", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("cursor", sa.Text(), nullable=True),
        sa.Column("last_tick_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("location", "instigator_type", "name", name=op.f("pk_instigator_state")),
    )
    op.create_table(
        "instigator_ticks",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("location", sa.String(length=255), nullable=False),
        sa.Column("instigator_type", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cursor_before", sa.Text(), nullable=True),
        sa.Column("cursor_after", sa.Text(), nullable=True),
        sa.Column("skip_reason", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("error_kind", sa.String(length=32), nullable=True),
        sa.Column("error_class", sa.String(length=255), nullable=True),
        sa.Column("error_traceback", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_instigator_ticks")),
    )
    with op.batch_alter_table("instigator_ticks", schema=None) as batch_op:
        batch_op.create_index(
            "ix_instigator_ticks_instigator_started_at",
            ["location", "instigator_type", "name", "started_at"],
            unique=False,
        )
        batch_op.create_index("ix_instigator_ticks_status", ["status"], unique=False)

    op.create_table(
        "instigator_tick_targets",
        sa.Column("tick_id", sa.String(length=40), nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("target_id", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["tick_id"],
            ["instigator_ticks.id"],
            name=op.f("fk_instigator_tick_targets_tick_id_instigator_ticks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tick_id", "ordinal", name=op.f("pk_instigator_tick_targets")),
    )


def downgrade() -> None:
    op.drop_table("instigator_tick_targets")
    with op.batch_alter_table("instigator_ticks", schema=None) as batch_op:
        batch_op.drop_index("ix_instigator_ticks_status")
        batch_op.drop_index("ix_instigator_ticks_instigator_started_at")
    op.drop_table("instigator_ticks")
    op.drop_table("instigator_state")
