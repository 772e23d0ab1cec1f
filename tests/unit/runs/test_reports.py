"""Run reports applied to real storage: once each, forward only, with changes noted for the planner."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from code_server.asset_key import AssetKey
from code_server.partitions.keys import PartitionKeyRange
from code_server.wire.automation import BackfillRequestSpec
from control_plane.errors import RunNotFound
from control_plane.records import (
    BackfillPartition,
    BackfillRecord,
    BackfillStatus,
    PartitionStatus,
    RunRecord,
    RunStatus,
)
from control_plane.runs.monitor import RunMonitor
from control_plane.runs.reports import (
    AppliedReports,
    PartitionOutcomeReport,
    RejectionKind,
    RunFinishedReport,
    RunReportHandler,
    RunStartedReport,
)
from control_plane.storage import (
    AssetStatusStore,
    BackfillProgressStore,
    BackfillStore,
    Database,
    RunEventStore,
    RunStore,
)
from launcher.base import WorkerIdentity
from launcher.local import LocalProcessLauncher

NOW = datetime(2025, 1, 1, tzinfo=UTC)
A, B = AssetKey("a"), AssetKey("b")
KEYS = ["2024-01-01", "2024-01-02"]
W1 = WorkerIdentity("w1", "host-a", 4242, 1000)
W2 = WorkerIdentity("w2", "host-b", 4343, 2000)


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
    assert handler.claim("run1", 1, W1, handle=None, now=NOW).granted
    handler.apply([RunStartedReport("run1", "w1", 1, NOW)])
    assert RunStore(database).get("run1").status is RunStatus.STARTED  # type: ignore[union-attr]
    assert set(statuses(database).values()) == {PartitionStatus.RUNNING}
    applied = handler.apply(
        [
            PartitionOutcomeReport("run1", "w1", 2, NOW, A, materialized=True),
            PartitionOutcomeReport("run1", "w1", 3, NOW, B, materialized=False, error="ValueError: boom"),
            RunFinishedReport("run1", "w1", 4, NOW, success=False),
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
    assert handler.claim("run1", 1, W1, handle=None, now=NOW).granted
    handler.apply(
        [
            RunStartedReport("run1", "w1", 1, NOW),
            PartitionOutcomeReport("run1", "w1", 2, NOW, A, materialized=True),
        ]
    )
    again = handler.apply([PartitionOutcomeReport("run1", "w1", 2, NOW, A, materialized=True)])
    assert (again.accepted, again.duplicates) == (0, 1)
    # A different event claiming failure after success cannot move a materialized partition back.
    handler.apply([PartitionOutcomeReport("run1", "w1", 9, NOW, A, materialized=False, error="late")])
    assert statuses(database)[("a", KEYS[0])] is PartitionStatus.MATERIALIZED


def test_a_run_that_vanished_fails_its_open_partitions(database: Database) -> None:
    handler = RunReportHandler(database, on_applied=lambda applied: None)
    assert handler.claim("run1", 1, W1, handle=None, now=NOW).granted
    handler.apply(
        [
            RunStartedReport("run1", "w1", 1, NOW),
            PartitionOutcomeReport("run1", "w1", 2, NOW, A, materialized=True),
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


def test_exactly_one_worker_is_granted_a_run_attempt(database: Database) -> None:
    handler = RunReportHandler(database, on_applied=lambda applied: None)
    first = handler.claim("run1", 1, W1, handle="4242:1000", now=NOW)
    second = handler.claim("run1", 1, W2, handle="4343:2000", now=NOW)
    assert first.granted and first.holder == W1 and first.run_status is RunStatus.STARTED
    assert not second.granted and second.holder == W1
    assert "held by worker w1 on host-a (pid 4242)" in second.refusal
    # The claimant asking again (its answer was lost) is granted again; nothing else changes.
    again = handler.claim("run1", 1, W1, handle=None, now=NOW)
    assert again.granted
    run = RunStore(database).get("run1")
    assert run is not None and run.worker == W1 and run.launcher_handle == "4242:1000"
    assert set(statuses(database).values()) == {PartitionStatus.RUNNING}
    claims = [e.message for e in RunEventStore(database).list("run1") if e.message.startswith("Claimed")]
    assert claims == ["Claimed by worker w1 on host-a (pid 4242)"]


def test_reports_of_a_worker_without_the_claim_change_nothing(database: Database) -> None:
    handler = RunReportHandler(database, on_applied=lambda applied: None)
    unclaimed = handler.apply([PartitionOutcomeReport("run1", "w2", 1, NOW, A, materialized=True)])
    assert unclaimed.accepted == 0 and [r.kind for r in unclaimed.rejected] == [RejectionKind.NOT_CLAIMANT]
    assert "has not been claimed" in unclaimed.rejected[0].reason
    handler.claim("run1", 1, W1, handle=None, now=NOW)
    applied = handler.apply(
        [
            PartitionOutcomeReport("run1", "w2", 2, NOW, A, materialized=False, error="impostor"),
            PartitionOutcomeReport("run1", "w1", 1, NOW, B, materialized=True),
            RunFinishedReport("no-such-run", "w1", 2, NOW, success=True),
        ]
    )
    assert applied.accepted == 1
    assert sorted(r.kind for r in applied.rejected) == [RejectionKind.NOT_CLAIMANT, RejectionKind.UNKNOWN_RUN]
    assert {s for (asset, _), s in statuses(database).items() if asset == "a"} == {PartitionStatus.RUNNING}
    assert {s for (asset, _), s in statuses(database).items() if asset == "b"} == {
        PartitionStatus.MATERIALIZED
    }


def test_a_claim_needs_the_run_being_launched_at_that_attempt(database: Database) -> None:
    handler = RunReportHandler(database, on_applied=lambda applied: None)
    wrong_attempt = handler.claim("run1", 2, W1, handle=None, now=NOW)
    assert not wrong_attempt.granted and "attempt 1, not 2" in wrong_attempt.refusal
    RunStore(database).update_status("run1", RunStatus.QUEUED, only_from=(RunStatus.STARTING,))
    queued = handler.claim("run1", 1, W1, handle=None, now=NOW)
    assert not queued.granted and "queued" in queued.refusal
    with pytest.raises(RunNotFound, match="no-such-run"):
        handler.claim("no-such-run", 1, W1, handle=None, now=NOW)
    run = RunStore(database).get("run1")
    assert run is not None and run.worker is None and run.status is RunStatus.QUEUED


def test_a_run_ends_with_its_open_partitions_or_not_at_all(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a control plane killed between a run's end and its partitions' would leave: nothing
    half done (a run ended with partitions still running keeps its backfill from ever ending)."""
    handler = RunReportHandler(database, on_applied=lambda applied: None)
    handler.claim("run1", 1, W1, handle=None, now=NOW)
    run = RunStore(database).get("run1")
    assert run is not None

    def killed(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the control plane was killed here")

    monkeypatch.setattr(handler, "_fail_open_partitions", killed)
    monkeypatch.setattr(handler, "cancel_open_partitions", killed)
    with pytest.raises(RuntimeError):
        handler.fail_run(run, "Run process 4242 was killed by SIGKILL.", NOW)
    with pytest.raises(RuntimeError):
        handler.end_canceled(run, NOW, only_from=(RunStatus.STARTED,))
    after = RunStore(database).get("run1")
    assert after is not None and after.status is RunStatus.STARTED and after.error is None
    assert set(statuses(database).values()) == {PartitionStatus.RUNNING}


@pytest.mark.parametrize(
    ("ended", "closed"),
    [(RunStatus.FAILURE, PartitionStatus.FAILED), (RunStatus.CANCELED, PartitionStatus.CANCELED)],
)
def test_a_restart_closes_partitions_left_open_under_an_ended_run(
    database: Database, tmp_path: Path, ended: RunStatus, closed: PartitionStatus
) -> None:
    """What older control planes, killed between a run's end and its partitions', left behind:
    repaired at start, so the backfill can end."""
    noted: list[AppliedReports] = []
    handler = RunReportHandler(database, on_applied=noted.append)
    handler.claim("run1", 1, W1, handle=None, now=NOW)
    RunStore(database).update_status("run1", ended, ended_at=NOW, only_from=(RunStatus.STARTED,))
    assert set(statuses(database).values()) == {PartitionStatus.RUNNING}
    monitor = RunMonitor(database, LocalProcessLauncher(log_directory=tmp_path), handler, clock=lambda: NOW)

    assert monitor.repair_ended_runs() == 1
    assert set(statuses(database).values()) == {closed}
    assert noted[-1].changes["bf"].keys() == {A, B}
    assert monitor.repair_ended_runs() == 0  # once
