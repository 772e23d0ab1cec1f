"""The run monitor: what a launcher reports becomes the run's failure, kind included, and what the
control plane gives up on is stopped. The launcher here is scripted through the RunLauncher seam."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from code_server.asset_key import AssetKey
from control_plane.records import RunFailureKind, RunRecord, RunStatus
from control_plane.runs.monitor import MAX_RUNTIME_TAG, RunMonitor
from control_plane.runs.reports import RunReportHandler
from control_plane.storage import Database, RunStore
from launcher.base import FailureKind, LaunchRequest, RunHealth, RunLauncher, RunState

#: Storage stamps updated_at with the real clock, so the monitor's clock starts from now.
NOW = datetime.now(UTC)


class ScriptedLauncher(RunLauncher):
    kind = "k8s"

    def __init__(self) -> None:
        self.health: dict[str, RunHealth] = {}
        self.terminated: list[str] = []

    def launch(self, request: LaunchRequest) -> str:
        raise AssertionError("the monitor never launches")

    def terminate(self, run_id: str, handle: str) -> bool:
        self.terminated.append(run_id)
        return True

    def check(self, run_id: str, handle: str) -> RunHealth:
        return self.health.get(run_id, RunHealth(RunState.RUNNING))


@pytest.fixture
def database(tmp_path: Path) -> Database:
    return Database.open(f"sqlite:///{tmp_path / 'monitor.db'}")


def launched(database: Database, run_id: str, status: RunStatus, **values: object) -> None:
    record = RunRecord(run_id, "loc", (AssetKey("a"),), status, NOW, NOW, **values)  # type: ignore[arg-type]
    RunStore(database).create_many([record])
    RunStore(database).update_status(
        run_id, status, launcher_kind="k8s", launcher_handle=f"ns/partita-run-{run_id}"
    )


def monitor(database: Database, launcher: RunLauncher, now: datetime) -> RunMonitor:
    reports = RunReportHandler(database, on_applied=lambda applied: None)
    return RunMonitor(database, launcher, reports, clock=lambda: now, start_timeout=timedelta(minutes=5))


def test_a_launcher_failure_fails_the_run_with_its_kind_and_stops_what_is_left(database: Database) -> None:
    launched(database, "pull", RunStatus.STARTING)
    launched(database, "gone", RunStatus.STARTED)
    launched(database, "fine", RunStatus.STARTED)
    launcher = ScriptedLauncher()
    launcher.health["pull"] = RunHealth(
        RunState.FAILED, "cannot pull image 'x'", FailureKind.IMAGE_PULL_FAILED
    )
    launcher.health["gone"] = RunHealth(
        RunState.NOT_FOUND, "Job ns/partita-run-gone was deleted", FailureKind.WORKER_LOST
    )

    assert monitor(database, launcher, NOW).check() == 2

    runs = RunStore(database)
    pull, gone, fine = runs.get("pull"), runs.get("gone"), runs.get("fine")
    assert pull and gone and fine
    assert (pull.status, pull.failure_kind, pull.error) == (
        RunStatus.FAILURE, RunFailureKind.IMAGE_PULL_FAILED, "cannot pull image 'x'",
    )  # fmt: skip
    assert (gone.status, gone.failure_kind) == (RunStatus.FAILURE, RunFailureKind.WORKER_LOST)
    assert fine.status is RunStatus.STARTED
    # The pod waiting on its image is stopped; the deleted Job has nothing left to stop.
    assert launcher.terminated == ["pull"]


def test_start_timeout_says_what_the_launcher_last_saw(database: Database) -> None:
    launched(database, "stuck", RunStatus.STARTING)
    launcher = ScriptedLauncher()
    launcher.health["stuck"] = RunHealth(RunState.PENDING, "Pod x is not scheduled: 0/3 nodes are available")

    assert monitor(database, launcher, NOW + timedelta(minutes=1)).check() == 0
    assert monitor(database, launcher, NOW + timedelta(minutes=10)).check() == 1

    stuck = RunStore(database).get("stuck")
    assert stuck is not None and stuck.failure_kind is RunFailureKind.START_TIMEOUT
    assert "did not start within 0:05:00" in (stuck.error or "")
    assert "0/3 nodes are available" in (stuck.error or "")
    assert launcher.terminated == ["stuck"]


def test_max_runtime_stops_the_run(database: Database) -> None:
    launched(database, "long", RunStatus.STARTED, tags={MAX_RUNTIME_TAG: "60"}, started_at=NOW)
    launcher = ScriptedLauncher()
    assert monitor(database, launcher, NOW + timedelta(seconds=30)).check() == 0
    assert monitor(database, launcher, NOW + timedelta(seconds=90)).check() == 1
    long = RunStore(database).get("long")
    assert long is not None and long.failure_kind is RunFailureKind.MAX_RUNTIME_EXCEEDED
    assert launcher.terminated == ["long"]
