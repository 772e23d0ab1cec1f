"""Migration 0005: a database of per-partition rows becomes spans and key spaces, losing nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from code_server.asset_key import AssetKey
from control_plane.records import PartitionStatus
from control_plane.storage import BackfillProgressStore, Database
from control_plane.storage.database import MIGRATIONS_DIRECTORY

T0 = datetime(2024, 1, 1, tzinfo=UTC)
P = PartitionStatus


def _upgrade(url: str, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIRECTORY))
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    engine.dispose()


def test_rows_of_revision_0004_read_back_the_same_after_the_upgrade(database_url: str) -> None:
    _upgrade(database_url, "0004")
    rows = [
        # a: two days in run r1 (materialized), a failed day, a gap, then two pending days.
        ("a", "2024-01-01", 0, "materialized", "r1", 3),
        ("a", "2024-01-02", 1, "materialized", "r1", 4),
        ("a", "2024-01-03", 2, "failed", "r2", 5),
        ("a", "2024-01-05", 4, "pending", None, 0),
        ("a", "2024-01-06", 5, "pending", None, 0),
        ("warehouse/b", "", 0, "upstream_failed", None, 6),
    ]
    engine = sa.create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO backfills (id, status, location, priority, origin, created_at, updated_at, "
                "partition_change_seq) VALUES ('bf', 'running', 'loc', 0, 'api', :t, :t, 6)"
            ),
            {"t": T0},
        )
        connection.execute(
            sa.text(
                "INSERT INTO backfill_partitions (backfill_id, asset_key, partition_key, position, status, "
                "run_id, change_seq) VALUES ('bf', :asset, :key, :position, :status, :run, :seq)"
            ),
            [
                {"asset": a, "key": k, "position": p, "status": s, "run": r, "seq": q}
                for a, k, p, s, r, q in rows
            ],
        )
    engine.dispose()

    database = Database.open(database_url)  # migrates to the head
    store = BackfillProgressStore(database)
    assert [
        (p.asset_key.to_user_string(), p.partition_key, p.position, p.status.value, p.run_id)
        for p in store.partitions("bf")
    ] == [(a, k, p, s, r) for a, k, p, s, r, _ in rows]
    a = AssetKey("a")
    assert store.partition_counts("bf")[a] == {P.MATERIALIZED: 2, P.FAILED: 1, P.PENDING: 2}
    # Change sequences survive: a watcher that had seen up to 4 is told of what came after.
    _, changes = store.partition_changes("bf", after=4)
    assert [(c.asset_key.to_user_string(), c.first_key, c.status) for c in changes] == [
        ("a", "2024-01-03", P.FAILED),
        ("warehouse/b", "", P.UPSTREAM_FAILED),
    ]
    # And the backfill goes on: new writes split the migrated spans.
    assert store.set_partition_status("bf", a, ["2024-01-06"], P.CANCELED) == 1
    assert [
        p.status for p in store.partitions("bf", asset_key=a, partition_keys=["2024-01-05", "2024-01-06"])
    ] == [
        P.PENDING,
        P.CANCELED,
    ]
    database.dispose()
