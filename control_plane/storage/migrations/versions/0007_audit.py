"""The audit log: one row per mutating API call.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("identity_name", sa.String(length=255), nullable=False),
        sa.Column("identity_kind", sa.String(length=32), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("peer", sa.String(length=255), nullable=False),
        sa.Column("rpc", sa.String(length=64), nullable=False),
        sa.Column("target_kind", sa.String(length=16), nullable=True),
        sa.Column("target_id", sa.String(length=255), nullable=True),
        sa.Column("location", sa.String(length=255), nullable=True),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    with op.batch_alter_table("audit_events") as batch:
        batch.create_index("ix_audit_events_at_id", ["at", "id"], unique=False)
        batch.create_index("ix_audit_events_target_at", ["target_kind", "target_id", "at"], unique=False)
        batch.create_index("ix_audit_events_identity_name_at", ["identity_name", "at"], unique=False)
        batch.create_index("ix_audit_events_rpc_at", ["rpc", "at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("audit_events") as batch:
        for index in (
            "ix_audit_events_rpc_at",
            "ix_audit_events_identity_name_at",
            "ix_audit_events_target_at",
            "ix_audit_events_at_id",
        ):
            batch.drop_index(index)
    op.drop_table("audit_events")
