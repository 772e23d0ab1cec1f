"""The run queue end to end: limits, priority, fairness, pause/resume and terminating one run.

Runs are real ``partita execute-run`` processes. Most run the ``gated`` asset, which waits for a gate
file: a test holds runs active while it looks at the queue, then opens the gate. "The queue had
its chance" is measured in daemon ticks (each tick plans, then launches what the limits allow),
never in wall time.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from code_server.asset_key import AssetKey
from code_server.partitions.keys import PartitionKeyRange
from code_server.server.spawn import SpawnedCodeServer, spawn_code_server
from code_server.wire.automation import BackfillRequestSpec
from control_plane.app import ControlPlane
from control_plane.records import BackfillStatus, PartitionStatus, RunRecord, RunStatus
from control_plane.views import BackfillView, LaunchOptions
from tests.integration.conftest import ROOT, read_jsonl, wait_for_end, wait_until

pytestmark = pytest.mark.integration
Factory = Callable[..., ControlPlane]

ACTIVE = [RunStatus.STARTING, RunStatus.STARTED, RunStatus.CANCELING]


@pytest.fixture(scope="module")
def paced_code_server() -> Iterator[SpawnedCodeServer]:
    """One code server for the module: it only serves definitions (runs read the test's environment)."""
    server = spawn_code_server(
        module_name="tests.fixtures.paced_location", working_directory=str(ROOT), location_name="tests"
    )
    yield server
    server.stop()


@pytest.fixture
def gate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Closed until the test creates the file; run processes inherit its name from this process.

    Opened at teardown, so that a failed test leaves no run process waiting.
    """
    path = tmp_path / "gate"
    monkeypatch.setenv("PARTITA_TEST_GATE", str(path))
    yield path
    path.touch()


@pytest.fixture
def start_control_plane(
    control_plane_factory: Factory, paced_code_server: SpawnedCodeServer, output_file: Path, gate: Path
) -> Callable[..., ControlPlane]:
    def start(**options: object) -> ControlPlane:
        return control_plane_factory({"tests": paced_code_server.address}, **options)

    return start


def launch(control_plane: ControlPlane, assets: list[str], start: str, end: str, **options: object) -> str:
    spec = BackfillRequestSpec(
        asset_keys=tuple(AssetKey(a) for a in assets), partition_ranges=(PartitionKeyRange(start, end),)
    )
    view = control_plane.launch_backfill(spec, LaunchOptions(location="tests", **options))  # type: ignore[arg-type]
    assert isinstance(view, BackfillView)
    return view.record.id


def let_queue_tick(control_plane: ControlPlane, ticks: int = 3) -> None:
    """Wait until the daemon has planned and launched ``ticks`` more times."""
    target = control_plane.daemon.ticks + ticks
    wait_until(lambda: control_plane.daemon.ticks >= target, f"the daemon ticked {ticks} times", timeout=30)


def runs(
    control_plane: ControlPlane, backfill_id: str, statuses: list[RunStatus] | None = None
) -> list[RunRecord]:
    return control_plane.list_runs(backfill_id=backfill_id, statuses=statuses or [], limit=1000)


def started(control_plane: ControlPlane, backfill_id: str) -> int:
    return len(runs(control_plane, backfill_id, [RunStatus.STARTED]))


def key_order(output_file: Path, control_plane: ControlPlane, backfill_ids: dict[str, str]) -> list[str]:
    """Materializations in the order they happened, as ``NAME:KEY`` with the backfill's name."""
    name_of_run = {
        run.id: name for name, backfill_id in backfill_ids.items() for run in runs(control_plane, backfill_id)
    }
    return [f"{name_of_run[entry['run']]}:{entry['keys'][0]}" for entry in read_jsonl(output_file)]


class ActiveRunSampler:
    """Samples the number of active runs from storage, in a thread, until stopped."""

    def __init__(self, control_plane: ControlPlane) -> None:
        self._control_plane = control_plane
        self._stop = threading.Event()
        self.samples: list[int] = []
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> ActiveRunSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.samples.append(len(self._control_plane.list_runs(statuses=ACTIVE, limit=1000)))
            time.sleep(0.01)


def test_global_limit_is_never_exceeded_across_backfills(
    start_control_plane: Callable[..., ControlPlane], output_file: Path, gate: Path
) -> None:
    control_plane = start_control_plane(max_concurrent_runs=2)
    with ActiveRunSampler(control_plane) as sampler:
        first = launch(control_plane, ["gated"], "2024-03-01", "2024-03-03")
        second = launch(control_plane, ["gated"], "2024-03-01", "2024-03-03")
        wait_until(lambda: len(control_plane.list_runs(statuses=[RunStatus.STARTED])) == 2, "2 runs started")
        let_queue_tick(control_plane)
        assert len(control_plane.list_runs(statuses=ACTIVE)) == 2
        assert len(control_plane.list_runs(statuses=[RunStatus.QUEUED])) == 4
        gate.touch()
        finals = [wait_for_end(control_plane, backfill_id) for backfill_id in (first, second)]
    assert [final.record.status for final in finals] == [BackfillStatus.COMPLETED_SUCCESS] * 2
    assert max(sampler.samples) == 2
    assert len(read_jsonl(output_file)) == 6


def test_per_backfill_limit_holds_until_raised_while_running(
    start_control_plane: Callable[..., ControlPlane], output_file: Path, gate: Path
) -> None:
    control_plane = start_control_plane(max_concurrent_runs=10)
    limited = launch(control_plane, ["gated"], "2024-03-01", "2024-03-03", max_concurrent_runs=1)
    unlimited = launch(control_plane, ["gated"], "2024-03-01", "2024-03-02")
    wait_until(
        lambda: started(control_plane, limited) == 1 and started(control_plane, unlimited) == 2,
        "the limited backfill has 1 run started and the other 2",
    )
    let_queue_tick(control_plane)
    assert len(runs(control_plane, limited, ACTIVE)) == 1
    assert len(runs(control_plane, limited, [RunStatus.QUEUED])) == 2

    view = control_plane.update_backfill_limits(limited, max_concurrent_runs=3)
    assert view.record.max_concurrent_runs == 3
    wait_until(lambda: started(control_plane, limited) == 3, "the raised limit let all 3 runs start")
    gate.touch()
    assert wait_for_end(control_plane, limited).record.status is BackfillStatus.COMPLETED_SUCCESS
    assert wait_for_end(control_plane, unlimited).record.status is BackfillStatus.COMPLETED_SUCCESS
    assert len(read_jsonl(output_file)) == 5


def test_higher_priority_backfill_launched_later_goes_first(
    start_control_plane: Callable[..., ControlPlane], output_file: Path, gate: Path
) -> None:
    control_plane = start_control_plane(max_concurrent_runs=1)
    low = launch(control_plane, ["gated"], "2024-03-01", "2024-03-02")
    wait_until(lambda: started(control_plane, low) == 1, "the low-priority backfill's first run started")
    high = launch(control_plane, ["gated"], "2024-03-01", "2024-03-02", priority=5)
    let_queue_tick(control_plane)
    assert len(runs(control_plane, high, [RunStatus.QUEUED])) == 2  # the one slot is taken
    gate.touch()
    wait_for_end(control_plane, low)
    wait_for_end(control_plane, high)
    # One slot: runs happen one after another, in launch order.
    assert key_order(output_file, control_plane, {"low": low, "high": high}) == [
        "low:2024-03-01",
        "high:2024-03-01",
        "high:2024-03-02",
        "low:2024-03-02",
    ]


def test_backfills_of_equal_priority_take_turns(
    start_control_plane: Callable[..., ControlPlane], output_file: Path, gate: Path
) -> None:
    control_plane = start_control_plane(max_concurrent_runs=1)
    first = launch(control_plane, ["gated"], "2024-03-01", "2024-03-03")
    wait_until(lambda: started(control_plane, first) == 1, "the first backfill's first run started")
    second = launch(control_plane, ["gated"], "2024-03-01", "2024-03-02")
    gate.touch()
    wait_for_end(control_plane, first)
    wait_for_end(control_plane, second)
    assert key_order(output_file, control_plane, {"first": first, "second": second}) == [
        "first:2024-03-01",
        "second:2024-03-01",
        "first:2024-03-02",
        "second:2024-03-02",
        "first:2024-03-03",
    ]


def test_pause_stops_new_launches_and_resume_continues(
    start_control_plane: Callable[..., ControlPlane], output_file: Path, gate: Path
) -> None:
    control_plane = start_control_plane(max_concurrent_runs=10)
    backfill_id = launch(control_plane, ["gated"], "2024-03-01", "2024-03-03", max_concurrent_runs=1)
    wait_until(lambda: started(control_plane, backfill_id) == 1, "the first run started")
    assert control_plane.pause_backfill(backfill_id).record.status is BackfillStatus.PAUSED

    gate.touch()  # the active run finishes while paused; nothing new starts
    wait_until(
        lambda: len(runs(control_plane, backfill_id, [RunStatus.SUCCESS])) == 1, "the active run ended"
    )
    let_queue_tick(control_plane)
    paused = control_plane.get_backfill(backfill_id)
    assert paused.record.status is BackfillStatus.PAUSED
    assert Counter(run.status for run in runs(control_plane, backfill_id)) == {
        RunStatus.SUCCESS: 1,
        RunStatus.QUEUED: 2,
    }
    assert paused.counts == {AssetKey("gated"): {PartitionStatus.MATERIALIZED: 1, PartitionStatus.QUEUED: 2}}

    assert control_plane.resume_backfill(backfill_id).record.status is BackfillStatus.RUNNING
    final = wait_for_end(control_plane, backfill_id)
    assert final.record.status is BackfillStatus.COMPLETED_SUCCESS
    assert sorted(entry["keys"][0] for entry in read_jsonl(output_file)) == [
        "2024-03-01",
        "2024-03-02",
        "2024-03-03",
    ]


def test_terminating_one_run_cancels_its_partitions_and_dooms_their_children(
    start_control_plane: Callable[..., ControlPlane], output_file: Path, gate: Path
) -> None:
    control_plane = start_control_plane(max_concurrent_runs=10)
    backfill_id = launch(control_plane, ["gated", "gated_child"], "2024-03-01", "2024-03-03")
    wait_until(lambda: started(control_plane, backfill_id) == 3, "the 3 runs of `gated` started")
    (victim,) = [
        run
        for run in runs(control_plane, backfill_id)
        if run.partition_range == PartitionKeyRange("2024-03-02", "2024-03-02")
    ]

    terminated = control_plane.terminate_run(victim.id)
    assert terminated.status is RunStatus.CANCELED
    assert victim.launcher_handle is not None
    with pytest.raises(ProcessLookupError):
        os.kill(int(victim.launcher_handle.partition(":")[0]), 0)  # the process is gone, not just marked
    gate.touch()

    final = wait_for_end(control_plane, backfill_id)
    assert final.record.status is BackfillStatus.COMPLETED_FAILED
    assert final.counts == {
        AssetKey("gated"): {PartitionStatus.MATERIALIZED: 2, PartitionStatus.CANCELED: 1},
        AssetKey("gated_child"): {PartitionStatus.MATERIALIZED: 2, PartitionStatus.UPSTREAM_FAILED: 1},
    }
    materialized = Counter(
        (entry["asset"], key) for entry in read_jsonl(output_file) for key in entry["keys"]
    )
    assert materialized == Counter(
        {(asset, key): 1 for asset in ("gated", "gated_child") for key in ("2024-03-01", "2024-03-03")}
    )
    # Only the terminated run was canceled; the others (and the children's runs) succeeded.
    statuses = Counter(run.status for run in runs(control_plane, backfill_id))
    assert statuses[RunStatus.CANCELED] == 1 and set(statuses) == {RunStatus.CANCELED, RunStatus.SUCCESS}
