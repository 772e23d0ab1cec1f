"""The control plane killed with SIGKILL mid-backfill and restarted: nothing lost, nothing run twice.

Everything is real: the control plane is a ``partita control-plane`` process on SQLite, the code
server a process, each run a ``partita execute-run`` process. Runs that were active at the kill keep
running (they are in sessions of their own) and report to the restarted control plane on the same
port, retrying while it is away. While the control plane is down, the test also leaves one run in
the state a kill in the middle of a launch leaves (starting, no launcher handle), which the kill
itself hits only by chance.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import make_url

from code_server.asset_key import AssetKey
from code_server.partitions.keys import PartitionKeyRange
from code_server.server.spawn import SpawnedCodeServer, spawn_code_server
from code_server.wire.automation import BackfillRequestSpec
from control_plane.api.enums import backfill_status_from_proto, run_status_from_proto
from control_plane.client import ControlPlaneClient
from control_plane.records import BackfillStatus, RunStatus
from control_plane.storage import Database, RunEventStore, RunStore
from control_plane.views import LaunchOptions
from partita.controlplane.v1 import backfills_pb2, runs_pb2
from tests.fixtures.processes import (
    ControlPlaneProcess,
    create_admin_token,
    free_port,
    kill_run_workers_of,
)
from tests.integration.conftest import ROOT, read_jsonl, wait_until

pytestmark = pytest.mark.integration

DAYS = [f"2024-03-{day:02d}" for day in range(1, 13)]
CHAIN = ("paced_a", "paced_b", "paced_c")


@pytest.fixture
def paced_code_server(output_file: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SpawnedCodeServer]:
    # Inherited by the control plane and, through it, by every run process.
    monkeypatch.setenv("PARTITA_TEST_PACE", "0.2")
    server = spawn_code_server(
        module_name="tests.fixtures.paced_location", working_directory=str(ROOT), location_name="tests"
    )
    yield server
    server.stop()


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'partita.db'}"


@pytest.fixture
def control_plane_process(
    paced_code_server: SpawnedCodeServer, database_url: str, tmp_path: Path
) -> Iterator[tuple[ControlPlaneProcess, ControlPlaneClient]]:
    port = free_port()
    arguments = [
        "--db", database_url,
        "--code-server", f"tests={paced_code_server.address}",
        "--port", str(port),
        "--max-concurrent-runs", "2",
    ]  # fmt: skip
    process = ControlPlaneProcess(arguments, tmp_path / "control-plane.log")
    token = create_admin_token(database_url)
    client = ControlPlaneClient(f"127.0.0.1:{port}", timeout=10.0, retries=5, retry_backoff=0.2, token=token)
    yield process, client
    client.close()
    process.stop()
    kill_run_workers_of(f"127.0.0.1:{port}")


def runs_of(client: ControlPlaneClient, backfill_id: str) -> list[runs_pb2.Run]:
    page = client.list_runs(backfill_id=backfill_id, page_size=1000)
    assert page.next_page_token == ""
    return page.runs


def count_runs(client: ControlPlaneClient, backfill_id: str, status: RunStatus) -> int:
    return sum(run_status_from_proto(run.status) is status for run in runs_of(client, backfill_id))


def test_control_plane_killed_mid_backfill_completes_after_restart_without_loss_or_duplicates(
    control_plane_process: tuple[ControlPlaneProcess, ControlPlaneClient],
    output_file: Path,
    database_url: str,
) -> None:
    process, client = control_plane_process
    process.start(client)
    spec = BackfillRequestSpec(
        asset_keys=tuple(AssetKey(name) for name in CHAIN),
        partition_ranges=(PartitionKeyRange(DAYS[0], DAYS[-1]),),
    )
    launched = client.launch_backfill(spec, LaunchOptions(location="tests"))
    assert isinstance(launched, backfills_pb2.Backfill)
    backfill_id = launched.backfill_id
    planned_runs = runs_of(client, backfill_id)
    assert len(planned_runs) == len(DAYS)  # no policy: one run per day, all planned at launch

    # Mid-way: some runs done, two running (the global limit), the rest queued.
    wait_until(
        lambda: (
            count_runs(client, backfill_id, RunStatus.SUCCESS) >= 2
            and count_runs(client, backfill_id, RunStatus.STARTED) == 2
        ),
        "2 runs succeeded and 2 are running",
    )
    process.kill()
    assert len(read_jsonl(output_file)) < len(DAYS) * len(CHAIN)
    database = Database.open(database_url)
    try:
        store = RunStore(database)
        at_kill = Counter(run.status for run in store.list(backfill_id=backfill_id, limit=1000))
        assert at_kill[RunStatus.STARTED] + at_kill[RunStatus.STARTING] >= 1, at_kill  # orphans to adopt
        assert at_kill[RunStatus.QUEUED] >= 2, at_kill
        # Also leave what a kill in the middle of a launch leaves: a run starting, with no handle.
        interrupted = store.queued_runs(limit=1, backfill_id=backfill_id)[0]
        assert store.update_status(interrupted.id, RunStatus.STARTING, only_from=(RunStatus.QUEUED,))
    finally:
        database.dispose()

    process.start(client)
    wait_until(
        lambda: backfill_status_from_proto(client.get_backfill(backfill_id).status).is_terminal,
        "the backfill ended",
        timeout=120.0,
    )

    final = client.get_backfill(backfill_id)
    assert backfill_status_from_proto(final.status) is BackfillStatus.COMPLETED_SUCCESS, process.log()
    runs = runs_of(client, backfill_id)
    # The runs are the ones planned at launch: none added, none lost, every one succeeded.
    assert {run.run_id for run in runs} == {run.run_id for run in planned_runs}
    assert Counter(run_status_from_proto(run.status) for run in runs) == {RunStatus.SUCCESS: len(DAYS)}
    assert sorted(run.partition_key for run in runs) == DAYS
    # Every partition of every asset was materialized exactly once, by the run it was planned in.
    materialized = read_jsonl(output_file)
    run_of_day = {run.partition_key: run.run_id for run in runs}
    assert Counter((entry["asset"], tuple(entry["keys"])) for entry in materialized) == Counter(
        {(asset, (day,)): 1 for asset in CHAIN for day in DAYS}
    )
    assert all(entry["run"] == run_of_day[entry["keys"][0]] for entry in materialized)
    # Nothing anywhere is left queued, starting or running.
    every_run = client.list_runs(page_size=1000).runs
    assert all(run_status_from_proto(run.status).is_terminal for run in every_run)
    # And every run's output is stored exactly as the run printed it, runs alive across the kill
    # included: what they printed while no control plane copied it is there once, nothing twice.
    database = Database.open(database_url)
    try:
        events = RunEventStore(database)
        log_directory = Path(make_url(database_url).database or "").parent / "run-logs"

        def stored_as_printed(run_id: str) -> bool:
            printed = (log_directory / f"{run_id}.log").read_text().splitlines()
            stored = [e.message for e in events.list(run_id, limit=100_000) if e.kind == "stdout"]
            assert stored == printed[: len(stored)], f"run {run_id} stored {stored}, printed {printed}"
            return stored == printed

        for run in runs:  # the last lines may still be on their way (copied every 0.1 s)
            wait_until(
                lambda run_id=run.run_id: stored_as_printed(run_id), f"run {run.run_id}'s output stored"
            )
    finally:
        database.dispose()
