"""Backfills end to end: a real code server, the control plane, and run processes."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from code_server.asset_key import AssetKey
from code_server.partitions.keys import PartitionKeyRange
from code_server.server.spawn import SpawnedCodeServer, spawn_code_server
from code_server.wire.automation import BackfillRequestSpec
from control_plane.api.enums import backfill_status_from_proto, partition_status_from_proto
from control_plane.app import ControlPlane
from control_plane.client import ControlPlaneClient
from control_plane.errors import InvalidBackfillRequest
from control_plane.records import BackfillStatus, PartitionStatus, RunStatus
from control_plane.views import BackfillPlanView, BackfillView, LaunchOptions
from partita.controlplane.v1 import backfills_pb2
from tests.integration.conftest import ROOT, read_jsonl, wait_for_end

pytestmark = pytest.mark.integration
Factory = Callable[..., ControlPlane]


def launch(
    control_plane: ControlPlane, assets: list[str], start: str, end: str, **options: object
) -> BackfillView:
    spec = BackfillRequestSpec(
        asset_keys=tuple(AssetKey(a) for a in assets), partition_ranges=(PartitionKeyRange(start, end),)
    )
    view = control_plane.launch_backfill(spec, LaunchOptions(location="tests", **options))  # type: ignore[arg-type]
    assert isinstance(view, BackfillView)
    return view


def test_guide_single_run_asset_backfills_a_month_in_one_run(
    control_plane_factory: Factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PARTITA_EXAMPLE_DATA", str(tmp_path / "warehouse"))
    server = spawn_code_server(
        module_name="examples.single_run_backfill_asset", working_directory=str(ROOT), location_name="guide"
    )
    try:
        control_plane = control_plane_factory({"guide": server.address})
        spec = BackfillRequestSpec(
            asset_keys=(AssetKey("events"),),
            partition_ranges=(PartitionKeyRange("2024-01-01", "2024-01-31"),),
        )
        view = control_plane.launch_backfill(spec, LaunchOptions(location="guide"))
        assert isinstance(view, BackfillView)
        final = wait_for_end(control_plane, view.record.id)
    finally:
        server.stop()
    assert final.record.status is BackfillStatus.COMPLETED_SUCCESS
    (run,) = control_plane.list_runs(backfill_id=view.record.id)
    assert (
        run.partition_range == PartitionKeyRange("2024-01-01", "2024-01-31")
        and run.status is RunStatus.SUCCESS
    )
    assert final.counts == {AssetKey("events"): {PartitionStatus.MATERIALIZED: 31}}
    # The asset saw the whole month as one time window.
    assert [p.name for p in (tmp_path / "warehouse" / "events").iterdir()] == ["2024-01-01_2024-02-01.json"]


def test_chain_without_policy_runs_each_day_once_with_all_three_assets(
    control_plane_factory: Factory, backfill_code_server: SpawnedCodeServer, output_file: Path
) -> None:
    control_plane = control_plane_factory({"tests": backfill_code_server.address})
    view = launch(control_plane, ["a", "b", "c"], "2024-03-01", "2024-03-05")
    final = wait_for_end(control_plane, view.record.id)
    assert final.record.status is BackfillStatus.COMPLETED_SUCCESS
    runs = control_plane.list_runs(backfill_id=view.record.id)
    assert len(runs) == 5 and all(
        run.asset_keys == (AssetKey("a"), AssetKey("b"), AssetKey("c")) for run in runs
    )
    materialized = Counter((entry["asset"], tuple(entry["keys"])) for entry in read_jsonl(output_file))
    assert len(materialized) == 15 and set(materialized.values()) == {1}
    # Within each run, parents ran first.
    by_run: dict[str, list[str]] = {}
    for entry in read_jsonl(output_file):
        by_run.setdefault(entry["run"], []).append(entry["asset"])
    assert all(order == ["a", "b", "c"] for order in by_run.values())


def test_multi_run_chain_in_chunks(
    control_plane_factory: Factory, backfill_code_server: SpawnedCodeServer, output_file: Path
) -> None:
    control_plane = control_plane_factory({"tests": backfill_code_server.address})
    view = launch(control_plane, ["ma", "mb"], "2024-03-01", "2024-03-05")
    final = wait_for_end(control_plane, view.record.id)
    assert final.record.status is BackfillStatus.COMPLETED_SUCCESS
    ranges = sorted(str(run.partition_range) for run in control_plane.list_runs(backfill_id=view.record.id))
    assert ranges == ["2024-03-01...2024-03-02", "2024-03-03...2024-03-04", "2024-03-05...2024-03-05"]


def test_failure_fails_downstream_then_retry_fixes_only_what_failed(
    control_plane_factory: Factory,
    backfill_code_server: SpawnedCodeServer,
    output_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    failing = tmp_path / "failing.txt"
    failing.write_text("2024-03-02")
    monkeypatch.setenv("PARTITA_TEST_FAILING", str(failing))
    control_plane = control_plane_factory({"tests": backfill_code_server.address})
    view = launch(control_plane, ["flaky", "flaky_child"], "2024-03-01", "2024-03-03")
    final = wait_for_end(control_plane, view.record.id)
    assert final.record.status is BackfillStatus.COMPLETED_FAILED
    assert final.counts[AssetKey("flaky")] == {PartitionStatus.MATERIALIZED: 2, PartitionStatus.FAILED: 1}
    assert final.counts[AssetKey("flaky_child")] == {
        PartitionStatus.MATERIALIZED: 2,
        PartitionStatus.UPSTREAM_FAILED: 1,
    }
    failed_runs = control_plane.list_runs(backfill_id=view.record.id, statuses=[RunStatus.FAILURE])
    assert len(failed_runs) == 1
    assert "flaky: RuntimeError: source data for 2024-03-02 is corrupt" in (failed_runs[0].error or "")
    assert any("corrupt" in line.message for line in control_plane.run_logs(failed_runs[0].id))
    before = Counter((entry["asset"], tuple(entry["keys"])) for entry in read_jsonl(output_file))

    failing.write_text("")  # the data is fixed
    _, requeued = control_plane.retry_backfill(view.record.id)
    assert requeued == 2
    again = wait_for_end(control_plane, view.record.id)
    assert again.record.status is BackfillStatus.COMPLETED_SUCCESS
    after = Counter((entry["asset"], tuple(entry["keys"])) for entry in read_jsonl(output_file))
    new = after - before
    assert set(new) == {("flaky", ("2024-03-02",)), ("flaky_child", ("2024-03-02",))}  # nothing else re-ran


def test_cancel_stops_submission_and_terminates_active_runs(
    control_plane_factory: Factory,
    backfill_code_server: SpawnedCodeServer,
    output_file: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PARTITA_TEST_SLEEP", "60")
    control_plane = control_plane_factory({"tests": backfill_code_server.address}, max_concurrent_runs=2)
    view = launch(control_plane, ["slow"], "2024-03-01", "2024-03-10")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if len(control_plane.list_runs(backfill_id=view.record.id, statuses=[RunStatus.STARTED])) == 2:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("two runs never started")
    started = time.monotonic()
    canceled = control_plane.cancel_backfill(view.record.id)
    assert time.monotonic() - started < 15
    assert canceled.record.status is BackfillStatus.CANCELED
    statuses = Counter(run.status for run in control_plane.list_runs(backfill_id=view.record.id))
    assert statuses == {RunStatus.CANCELED: 10}
    assert canceled.counts[AssetKey("slow")] == {PartitionStatus.CANCELED: 10}
    assert read_jsonl(output_file) == []


def test_bad_requests_write_nothing(
    control_plane_factory: Factory, backfill_code_server: SpawnedCodeServer
) -> None:
    control_plane = control_plane_factory({"tests": backfill_code_server.address})
    with pytest.raises(InvalidBackfillRequest, match=r"Unknown asset.*'nope'"):
        launch(control_plane, ["nope"], "2024-03-01", "2024-03-02")
    with pytest.raises(InvalidBackfillRequest, match="'2030-01-01'"):
        launch(control_plane, ["a"], "2024-03-01", "2030-01-01")
    assert control_plane.list_backfills() == []
    plan = control_plane.launch_backfill(
        BackfillRequestSpec(
            asset_keys=(AssetKey("ma"),), partition_ranges=(PartitionKeyRange("2024-03-01", "2024-03-05"),)
        ),
        LaunchOptions(location="tests", dry_run=True),
    )
    assert isinstance(plan, BackfillPlanView) and plan.partition_count == 5 and plan.run_count == 3
    assert control_plane.list_backfills() == [] and control_plane.list_runs() == []


def test_watching_partition_changes_replays_the_backfill_partition_by_partition(
    control_plane_factory: Factory, backfill_code_server: SpawnedCodeServer
) -> None:
    plane = control_plane_factory({"tests": backfill_code_server.address})
    view = launch(plane, ["a", "b", "c"], "2024-03-01", "2024-03-04")
    with ControlPlaneClient(plane.address) as client:
        messages = list(client.watch_backfill_changes(view.record.id))
    assert backfill_status_from_proto(messages[-1].backfill.status) is BackfillStatus.COMPLETED_SUCCESS
    # Replaying every change over the launch state gives the final state of every partition.
    final: dict[tuple[str, str], PartitionStatus | None] = {}
    seen: dict[tuple[str, str], list[PartitionStatus | None]] = {}
    for message in messages[1:]:
        for change in message.changes:
            start = change.partition_key or change.partition_range.start
            end = change.partition_key or change.partition_range.end
            days = [f"2024-03-0{day}" for day in range(int(start[-1]), int(end[-1]) + 1)]
            for day in days:
                key = (change.asset_key.path[-1], day)
                final[key] = partition_status_from_proto(change.status)
                seen.setdefault(key, []).append(final[key])
    days = [f"2024-03-0{day}" for day in range(1, 5)]
    assert final == {(asset, day): PartitionStatus.MATERIALIZED for asset in "abc" for day in days}
    # And the stream followed them on their way: running (when a watch message fell between the
    # run's start and its outcome, which a fast run may not leave time for), then materialized.
    progression = {
        (PartitionStatus.MATERIALIZED,),
        (PartitionStatus.RUNNING, PartitionStatus.MATERIALIZED),
    }
    assert all(tuple(dict.fromkeys(statuses)) in progression for statuses in seen.values()), seen


def test_a_downstream_multi_run_policy_holds_with_per_partition_parents(
    control_plane_factory: Factory, backfill_code_server: SpawnedCodeServer, output_file: Path
) -> None:
    control_plane = control_plane_factory({"tests": backfill_code_server.address})
    spec = BackfillRequestSpec(
        asset_keys=(AssetKey("raw"), AssetKey("cleaned"), AssetKey("report")),
        partition_ranges=(PartitionKeyRange("2024-03-01", "2024-03-08"),),
    )
    with ControlPlaneClient(control_plane.address) as client:
        plan = client.launch_backfill(spec, LaunchOptions(location="tests", dry_run=True))
    assert isinstance(plan, backfills_pb2.BackfillPlan)
    assert plan.run_count == 11
    assert {entry.asset_key.path[-1]: entry.run_count for entry in plan.asset_run_counts} == {
        "raw": 8,
        "cleaned": 8,
        "report": 3,
    }
    view = control_plane.launch_backfill(spec, LaunchOptions(location="tests"))
    assert isinstance(view, BackfillView)
    final = wait_for_end(control_plane, view.record.id)
    assert final.record.status is BackfillStatus.COMPLETED_SUCCESS
    runs = control_plane.list_runs(backfill_id=view.record.id)
    assert len(runs) == plan.run_count
    assert sorted(str(run.partition_range) for run in runs if run.asset_keys == (AssetKey("report"),)) == [
        "2024-03-01...2024-03-03",
        "2024-03-04...2024-03-06",
        "2024-03-07...2024-03-08",
    ]
    reported = [tuple(entry["keys"]) for entry in read_jsonl(output_file) if entry["asset"] == "report"]
    assert sorted(len(keys) for keys in reported) == [2, 3, 3]


def test_the_guide_two_asset_dry_run_counts_both_runs(control_plane_factory: Factory) -> None:
    server = spawn_code_server(
        module_name="examples.backfill_asset_from_asset_partitions",
        working_directory=str(ROOT),
        location_name="guide",
    )
    try:
        control_plane = control_plane_factory({"guide": server.address})
        spec = BackfillRequestSpec(
            asset_keys=(AssetKey("asset_a"), AssetKey("asset_b")), partition_keys=("foo_a",)
        )
        with ControlPlaneClient(control_plane.address) as client:
            plan = client.launch_backfill(spec, LaunchOptions(location="guide", dry_run=True))
        assert isinstance(plan, backfills_pb2.BackfillPlan)
        assert plan.run_count == 2 and [run.partition_key for run in plan.runs] == ["foo_a", "foo_b"]
        view = control_plane.launch_backfill(spec, LaunchOptions(location="guide"))
        assert isinstance(view, BackfillView)
        final = wait_for_end(control_plane, view.record.id)
    finally:
        server.stop()
    assert final.record.status is BackfillStatus.COMPLETED_SUCCESS
    assert len(control_plane.list_runs(backfill_id=view.record.id)) == plan.run_count
