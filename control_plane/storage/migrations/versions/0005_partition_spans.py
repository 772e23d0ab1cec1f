"""Backfill progress as spans of positions, with each asset's key space, instead of a row per partition.

Existing backfills keep every partition: each (backfill, asset) gets a key space of its stored keys
(kind "keys"), and runs of neighbouring partitions with one status and run become one span, which
keeps the latest change sequence among them.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_ID = sa.String(length=40)
_KEY = sa.String(length=512)
_STATUS = sa.String(length=32)


def upgrade() -> None:
    key_spaces = op.create_table(
        "backfill_key_spaces",
        sa.Column("backfill_id", _ID, nullable=False),
        sa.Column("asset_key", _KEY, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("definition", sa.LargeBinary(), nullable=True),
        sa.Column("keys", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["backfill_id"],
            ["backfills.id"],
            name=op.f("fk_backfill_key_spaces_backfill_id_backfills"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("backfill_id", "asset_key", name=op.f("pk_backfill_key_spaces")),
    )
    spans = op.create_table(
        "backfill_partition_spans",
        sa.Column("backfill_id", _ID, nullable=False),
        sa.Column("asset_key", _KEY, nullable=False),
        sa.Column("first_position", sa.Integer(), nullable=False),
        sa.Column("last_position", sa.Integer(), nullable=False),
        sa.Column("status", _STATUS, nullable=False),
        sa.Column("run_id", _ID, nullable=True),
        sa.Column("change_seq", sa.Integer(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["backfill_id"],
            ["backfills.id"],
            name=op.f("fk_backfill_partition_spans_backfill_id_backfills"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "backfill_id", "asset_key", "first_position", name=op.f("pk_backfill_partition_spans")
        ),
    )
    op.create_index(
        "ix_backfill_partition_spans_backfill_id_status",
        "backfill_partition_spans",
        ["backfill_id", "status"],
    )
    op.create_index(
        "ix_backfill_partition_spans_backfill_id_change_seq",
        "backfill_partition_spans",
        ["backfill_id", "change_seq"],
    )
    op.create_index("ix_backfill_partition_spans_run_id", "backfill_partition_spans", ["run_id"])
    _copy_partition_rows(op.get_bind(), key_spaces, spans)
    op.drop_table("backfill_partitions")


def _copy_partition_rows(connection: sa.Connection, key_spaces: sa.Table, spans: sa.Table) -> None:
    """One backfill at a time, so memory follows the largest backfill, not the database."""
    old = sa.table(
        "backfill_partitions",
        *(sa.column(name) for name in ("backfill_id", "asset_key", "partition_key", "position")),
        *(sa.column(name) for name in ("status", "run_id", "change_seq")),
    )
    backfill_ids = connection.execute(sa.select(old.c.backfill_id).distinct()).scalars().all()
    for backfill_id in backfill_ids:
        rows = connection.execute(
            sa.select(old).where(old.c.backfill_id == backfill_id).order_by(old.c.asset_key, old.c.position)
        ).all()
        by_asset: dict[str, list[Any]] = {}
        for row in rows:
            by_asset.setdefault(row.asset_key, []).append(row)
        space_rows, span_rows = [], []
        for asset_key, asset_rows in by_asset.items():
            positions = [row.position for row in asset_rows]
            keys = [row.partition_key for row in asset_rows]
            space_rows.append(
                {
                    "backfill_id": backfill_id,
                    "asset_key": asset_key,
                    "kind": "keys",
                    "keys": json.dumps([positions, keys]),
                }
            )
            for first, last, status, run_id, change_seq in _spans(asset_rows):
                span_rows.append(
                    {
                        "backfill_id": backfill_id,
                        "asset_key": asset_key,
                        "first_position": first,
                        "last_position": last,
                        "status": status,
                        "run_id": run_id,
                        "change_seq": change_seq,
                    }
                )
        connection.execute(sa.insert(key_spaces), space_rows)
        connection.execute(sa.insert(spans), span_rows)


def _spans(rows: list[Any]) -> list[tuple[int, int, str, str | None, int]]:
    spans: list[tuple[int, int, str, str | None, int]] = []
    for row in rows:
        if spans:
            first, last, status, run_id, change_seq = spans[-1]
            if row.position == last + 1 and (row.status, row.run_id) == (status, run_id):
                spans[-1] = (first, row.position, status, run_id, max(change_seq, row.change_seq))
                continue
        spans.append((row.position, row.position, row.status, row.run_id, row.change_seq))
    return spans


def downgrade() -> None:
    raise NotImplementedError(
        "Partition spans do not turn back into per-partition rows; restore the database from a backup "
        "taken before upgrading to revision 0005."
    )
