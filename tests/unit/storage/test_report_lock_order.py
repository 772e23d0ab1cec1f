"""Applying a batch of reports locks the run's backfill before the run: the order cancel and planning
lock them in, so a report and a cancel of one backfill never deadlock (PostgreSQL row locks)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from code_server.asset_key import AssetKey
from code_server.wire.automation import BackfillRequestSpec
from control_plane.records import BackfillPartition, BackfillRecord, PartitionStatus, RunRecord, RunStatus
from control_plane.runs.reports import RunReportHandler
from control_plane.storage import BackfillStore, Database, RunStore
from control_plane.storage.schema import backfills, runs
from launcher.base import WorkerIdentity

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def _lock_waiters(connection: sa.Connection) -> int:
    count = connection.execute(
        sa.text(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
    ).scalar_one()
    connection.rollback()  # pg_stat_activity is read once per transaction: end it to see changes
    return int(count)


def test_claims_wait_for_the_backfill_before_they_lock_the_run(
    database: Database,
    make_backfill: Callable[..., BackfillRecord],
    make_run: Callable[..., RunRecord],
) -> None:
    if database.dialect != "postgresql":
        pytest.skip("SQLite's writers take turns on the whole database: there are no row locks to order")
    a = AssetKey("a")
    BackfillStore(database).create(
        make_backfill("bf", assets=("a",)),
        [BackfillPartition("bf", a, "k", 0, PartitionStatus.QUEUED, "run1")],
        request=BackfillRequestSpec(asset_keys=(a,), all_partitions=True),
    )
    RunStore(database).create_many([make_run("run1", backfill_id="bf", status=RunStatus.STARTING)])
    handler = RunReportHandler(database, on_applied=lambda applied: None)
    failures: list[BaseException] = []

    def apply() -> None:
        try:
            handler.claim("run1", 1, WorkerIdentity("w1", "host", 1, None), handle=None, now=NOW)
        except BaseException as error:  # reported by the test thread
            failures.append(error)

    with database.engine.connect() as canceler, database.engine.connect() as observer:
        with canceler.begin():
            # What cancel does first: lock the backfill.
            canceler.execute(sa.select(backfills.c.id).where(backfills.c.id == "bf").with_for_update())
            thread = threading.Thread(target=apply)
            thread.start()
            deadline = time.monotonic() + 10
            while _lock_waiters(observer) == 0:
                assert time.monotonic() < deadline, (
                    f"the report never waited for the backfill's lock: {failures}"
                )
                time.sleep(0.02)
            # Then what cancel does next: update the backfill's runs. The report holds none of them.
            canceler.execute(sa.text("SET LOCAL lock_timeout = '2s'"))
            canceler.execute(sa.update(runs).where(runs.c.id == "run1").values(priority=1))
        thread.join(10)
    assert failures == []
    assert RunStore(database).status_of("run1") is RunStatus.STARTED
