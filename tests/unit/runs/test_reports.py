"""Run reports applied to real storage: once each, forward only, with changes noted for the planner."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from code_server.asset_key import AssetKey
from code_server.partitions.keys import PartitionKeyRange
from code_server.wire.automation import BackfillRequestSpec
from control_plane.records import (
    BackfillPartition,
    BackfillRecord,
    BackfillStatus,
    PartitionStatus,
    RunRecord,
    RunStatus,
)
from control_plane.runs.reports import (
    AppliedReports,
    PartitionOutcomeReport,
    RunFinishedReport,
    RunReportHandler,
    RunStartedReport,
)
from control_plane.storage import AssetStatusStore, BackfillProgressStore, BackfillStore, Database, RunStore

NOW = datetime(2025, 1, 1, tzinfo=UTC)
A, B = AssetKey("a"), AssetKey("b")
KEYS = ["2024-01-01", "2024-01-02"]


@pytest.fixture
def database(tmp_path: Path) -> Database:
    database = Database.open(f"sqlite:///{tmp_path / 'reports.db'}")
    backfill = BackfillRecord("bf", BackfillStatus.RUNNING, "loc", (A, B), NOW, NOW)
    partitions = [
        BackfillPartition("bf", asset, key, position, PartitionStatus.QUEUED, "run1")
        for asset in (A, B)
        for position, key in enumerate(KEYS)
    ]
    BackfillStore(database).create(
        backfill, partitions, request=BackfillRequestSpec(asset_keys=(A, B), all_partitions=True)
    )
    RunStore(database).create_many(
        [
            RunRecord(
                "run1", "loc", (A, B), RunStatus.STARTING, NOW, NOW, backfill_id="bf",
                partition_range=PartitionKeyRange(*KEYS), partition_count=2,
            )
        ]
    )  # fmt: skip
    return database


def statuses(database: Database) -> dict[tuple[str, str], PartitionStatus]:
    rows = BackfillProgressStore(database).partitions("bf")
    return {(row.asset_key.to_user_string(), row.partition_key): row.status for row in rows}


def test_reports_move_run_and_partitions_and_note_changes(database: Database) -> None:
    noted: list[AppliedReports] = []
    handler = RunReportHandler(database, on_applied=noted.append)
    handler.apply([RunStartedReport("run1", "w:1", NOW)])
    assert RunStore(database).get("run1").status is RunStatus.STARTED  # type: ignore[union-attr]
    assert set(statuses(database).values()) == {PartitionStatus.RUNNING}
    applied = handler.apply(
        [
            PartitionOutcomeReport("run1", "w:2", NOW, A, materialized=True),
            PartitionOutcomeReport("run1", "w:3", NOW, B, materialized=False, error="ValueError: boom"),
            RunFinishedReport("run1", "w:4", NOW, success=False),
        ]
    )
    assert applied.accepted == 3 and applied.duplicates == 0
    assert applied.changes == {"bf": {A: KEYS, B: KEYS}}
    assert statuses(database) == {
        ("a", KEYS[0]): PartitionStatus.MATERIALIZED,
        ("a", KEYS[1]): PartitionStatus.MATERIALIZED,
        ("b", KEYS[0]): PartitionStatus.FAILED,
        ("b", KEYS[1]): PartitionStatus.FAILED,
    }
    run = RunStore(database).get("run1")
    assert run is not None and run.status is RunStatus.FAILURE and run.error == "b: ValueError: boom"
    latest = AssetStatusStore(database).get(A)
    assert latest == {key: (PartitionStatus.MATERIALIZED, "run1") for key in KEYS}


def test_duplicate_and_late_reports_change_nothing(database: Database) -> None:
    handler = RunReportHandler(database, on_applied=lambda applied: None)
    handler.apply(
        [
            RunStartedReport("run1", "w:1", NOW),
            PartitionOutcomeReport("run1", "w:2", NOW, A, materialized=True),
        ]
    )
    again = handler.apply([PartitionOutcomeReport("run1", "w:2", NOW, A, materialized=True)])
    assert (again.accepted, again.duplicates) == (0, 1)
    # A different event claiming failure after success cannot move a materialized partition back.
    handler.apply([PartitionOutcomeReport("run1", "w:9", NOW, A, materialized=False, error="late")])
    assert statuses(database)[("a", KEYS[0])] is PartitionStatus.MATERIALIZED


def test_a_run_that_vanished_fails_its_open_partitions(database: Database) -> None:
    handler = RunReportHandler(database, on_applied=lambda applied: None)
    handler.apply(
        [
            RunStartedReport("run1", "w:1", NOW),
            PartitionOutcomeReport("run1", "w:2", NOW, A, materialized=True),
        ]
    )
    run = RunStore(database).get("run1")
    assert run is not None
    applied = handler.fail_run(run, "Run process 4242 was killed by SIGKILL.", NOW)
    assert applied.changes == {"bf": {B: KEYS}}
    assert RunStore(database).get("run1").error == "Run process 4242 was killed by SIGKILL."  # type: ignore[union-attr]
    assert {s for (asset, _), s in statuses(database).items() if asset == "b"} == {PartitionStatus.FAILED}
    assert {s for (asset, _), s in statuses(database).items() if asset == "a"} == {
        PartitionStatus.MATERIALIZED
    }
