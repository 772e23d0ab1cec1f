"""A downstream asset's backfill policy holds, on SQLite and PostgreSQL, across restarts.

``raw -> cleaned`` run one partition per run (no policy); ``report`` below them has a policy and
must get the runs the policy promises, however the parents' outcomes arrive, and a dry run must
count exactly the runs the real backfill makes.
"""

from __future__ import annotations

from collections import Counter

import pytest

from code_server import (
    AssetKey,
    BackfillPolicy,
    DailyPartitionsDefinition,
    Definitions,
    TimeWindowPartitionMapping,
    asset,
)
from code_server.assets import AssetIn
from code_server.loading import load_definitions
from code_server.partitions.keys import PartitionKeyRange
from code_server.wire.automation import BackfillRequestSpec
from control_plane.records import BackfillStatus, PartitionStatus, RunStatus
from control_plane.storage import BackfillProgressStore, BackfillStore
from tests.unit.backfills.conftest import Plane, PlaneFactory

DAILY = DailyPartitionsDefinition(start_date="2024-01-01")
REPORT = AssetKey("report")
EIGHT_DAYS = ("2024-01-01", "2024-01-08")


def pipeline(policy: BackfillPolicy | None) -> Definitions:
    @asset(partitions_def=DAILY)
    def raw():  # type: ignore[no-untyped-def]
        pass

    @asset(partitions_def=DAILY, deps=[raw])
    def cleaned():  # type: ignore[no-untyped-def]
        pass

    @asset(partitions_def=DAILY, deps=[cleaned], backfill_policy=policy)
    def report():  # type: ignore[no-untyped-def]
        pass

    return Definitions(assets=[raw, cleaned, report])


def report_ranges(plane: Plane, backfill_id: str) -> list[tuple[str, str]]:
    return sorted(
        (run.partition_range.start, run.partition_range.end)
        for run in plane.runs(backfill_id)
        if run.asset_keys == (REPORT,) and run.partition_range is not None
    )


def upstream_runs(plane: Plane, backfill_id: str) -> list[str]:
    """The ids of the queued raw+cleaned runs, in day order."""
    runs = [run for run in plane.runs(backfill_id, RunStatus.QUEUED) if run.asset_keys != (REPORT,)]
    return [run.id for run in sorted(runs, key=lambda run: str(run.partition_range))]


def finish_days(plane: Plane, backfill_id: str, days: list[int], *, fail: tuple[int, ...] = ()) -> None:
    """Finish the raw+cleaned runs of these days (1-based), planning after each."""
    by_day = {
        int(run.partition_range.start[-2:]): run
        for run in plane.runs(backfill_id, RunStatus.QUEUED)
        if run.asset_keys != (REPORT,) and run.partition_range is not None
    }
    for day in days:
        plane.finish(by_day[day], fail=day in fail)


def assert_each_partition_in_one_run(plane: Plane, backfill_id: str) -> None:
    covered: Counter[tuple[AssetKey, int]] = Counter()
    for run in plane.runs(backfill_id):
        assert run.partition_range is not None
        first, last = int(run.partition_range.start[-2:]), int(run.partition_range.end[-2:])
        for asset_key in run.asset_keys:
            covered.update((asset_key, day) for day in range(first, last + 1))
    assert set(covered.values()) == {1}, [key for key, count in covered.items() if count > 1]


def test_multi_run_child_runs_aligned_chunks_of_n_as_soon_as_they_are_ready(plane: PlaneFactory) -> None:
    control = plane(pipeline(BackfillPolicy.multi_run(3)))
    backfill_id = control.launch(control.spec("raw,cleaned,report", *EIGHT_DAYS))
    assert len(upstream_runs(control, backfill_id)) == 8

    # Out of order: days 2, 3 then 1 complete the first chunk; days 4 and 5 do not make a run.
    finish_days(control, backfill_id, [2, 3])
    assert report_ranges(control, backfill_id) == []
    finish_days(control, backfill_id, [1, 4, 5])
    assert report_ranges(control, backfill_id) == [("2024-01-01", "2024-01-03")]
    finish_days(control, backfill_id, [8, 7, 6])
    assert report_ranges(control, backfill_id) == [
        ("2024-01-01", "2024-01-03"),
        ("2024-01-04", "2024-01-06"),
        ("2024-01-07", "2024-01-08"),
    ]
    control.drain(backfill_id)
    assert BackfillStore(control.database).status_of(backfill_id) is BackfillStatus.COMPLETED_SUCCESS
    assert_each_partition_in_one_run(control, backfill_id)


def test_single_run_child_runs_once_after_every_parent_succeeded(plane: PlaneFactory) -> None:
    control = plane(pipeline(BackfillPolicy.single_run()))
    backfill_id = control.launch(control.spec("raw,cleaned,report", *EIGHT_DAYS))
    finish_days(control, backfill_id, [1, 2, 3, 4, 5, 6, 8])
    assert report_ranges(control, backfill_id) == []
    finish_days(control, backfill_id, [7])
    assert report_ranges(control, backfill_id) == [EIGHT_DAYS]
    control.drain(backfill_id)
    assert BackfillStore(control.database).status_of(backfill_id) is BackfillStatus.COMPLETED_SUCCESS
    assert len(control.runs(backfill_id)) == 9


def test_single_run_child_with_a_failed_parent_runs_the_other_ranges_once_settled(
    plane: PlaneFactory,
) -> None:
    control = plane(pipeline(BackfillPolicy.single_run()))
    backfill_id = control.launch(control.spec("raw,cleaned,report", *EIGHT_DAYS))
    finish_days(control, backfill_id, [4, 1, 2, 3], fail=(4,))
    progress = BackfillProgressStore(control.database)
    # The doomed partition is marked at once, as before; the others wait for days 5 to 8.
    doomed = progress.partitions(backfill_id, asset_key=REPORT, statuses=[PartitionStatus.UPSTREAM_FAILED])
    assert [row.partition_key for row in doomed] == ["2024-01-04"]
    assert report_ranges(control, backfill_id) == []
    finish_days(control, backfill_id, [5, 6, 7, 8])
    assert report_ranges(control, backfill_id) == [
        ("2024-01-01", "2024-01-03"),
        ("2024-01-05", "2024-01-08"),
    ]
    control.drain(backfill_id)
    assert BackfillStore(control.database).status_of(backfill_id) is BackfillStatus.COMPLETED_FAILED
    assert progress.partition_counts(backfill_id)[REPORT] == {
        PartitionStatus.MATERIALIZED: 7,
        PartitionStatus.UPSTREAM_FAILED: 1,
    }


def test_a_restarted_control_plane_plans_nothing_twice(plane: PlaneFactory) -> None:
    definitions = pipeline(BackfillPolicy.multi_run(3))
    first = plane(definitions)
    backfill_id = first.launch(first.spec("raw,cleaned,report", *EIGHT_DAYS))
    finish_days(first, backfill_id, [1, 2, 3, 4, 5])
    # Day 6's outcome is stored, but the control plane dies before planning it.
    run_six = next(
        run
        for run in first.runs(backfill_id, RunStatus.QUEUED)
        if run.partition_range and run.partition_range.start == "2024-01-06"
    )
    first.finish(run_six, tick=False)
    before = {run.id for run in first.runs(backfill_id)}

    restarted = plane(definitions)
    restarted.engine.note_all_running()
    restarted.engine.tick()
    restarted.engine.note_all_running()
    restarted.engine.tick()
    new = [run for run in restarted.runs(backfill_id) if run.id not in before]
    assert [(run.partition_range.start, run.partition_range.end) for run in new if run.partition_range] == [
        ("2024-01-04", "2024-01-06")
    ]
    restarted.drain(backfill_id)
    assert report_ranges(restarted, backfill_id) == [
        ("2024-01-01", "2024-01-03"),
        ("2024-01-04", "2024-01-06"),
        ("2024-01-07", "2024-01-08"),
    ]
    assert_each_partition_in_one_run(restarted, backfill_id)
    assert BackfillStore(restarted.database).status_of(backfill_id) is BackfillStatus.COMPLETED_SUCCESS


def test_a_single_run_child_is_planned_after_a_restart_that_lost_the_last_outcome(
    plane: PlaneFactory,
) -> None:
    definitions = pipeline(BackfillPolicy.single_run())
    first = plane(definitions)
    backfill_id = first.launch(first.spec("raw,cleaned,report", *EIGHT_DAYS))
    finish_days(first, backfill_id, [1, 2, 3, 4, 5, 6, 7])
    last = upstream_runs(first, backfill_id)
    (run,) = [r for r in first.runs(backfill_id, RunStatus.QUEUED) if r.id in last]
    first.finish(run, tick=False)

    restarted = plane(definitions)
    restarted.engine.note_all_running()
    restarted.engine.tick()
    assert report_ranges(restarted, backfill_id) == [EIGHT_DAYS]
    restarted.drain(backfill_id)
    assert len(restarted.runs(backfill_id)) == 9


def offset_and_unpartitioned() -> Definitions:
    """A multi_run(2) child reading yesterday's parent (not identity), and an unpartitioned summary."""

    @asset(partitions_def=DAILY)
    def raw():  # type: ignore[no-untyped-def]
        pass

    @asset(
        partitions_def=DAILY,
        ins={"raw": AssetIn(partition_mapping=TimeWindowPartitionMapping(-1, -1))},
        backfill_policy=BackfillPolicy.multi_run(2),
    )
    def shifted(raw):  # type: ignore[no-untyped-def]
        pass

    @asset(deps=[shifted], backfill_policy=BackfillPolicy.single_run())
    def summary():  # type: ignore[no-untyped-def]
        pass

    return Definitions(assets=[raw, shifted, summary])


def guide_spec(assets: tuple[str, ...], keys: tuple[str, ...]) -> BackfillRequestSpec:
    return BackfillRequestSpec(asset_keys=tuple(AssetKey(name) for name in assets), partition_keys=keys)


CASES = {
    "multi_run(3) child": (pipeline(BackfillPolicy.multi_run(3)), None),
    "single_run child": (pipeline(BackfillPolicy.single_run()), None),
    "no policy": (pipeline(None), None),
    "offset mapping and unpartitioned": (
        offset_and_unpartitioned(),
        BackfillRequestSpec(
            asset_keys=(AssetKey("raw"), AssetKey("shifted"), AssetKey("summary")),
            partition_ranges=(PartitionKeyRange(*EIGHT_DAYS),),
        ),
    ),
    "guide asset_a,asset_b": (
        load_definitions(module_name="examples.guide"),
        guide_spec(("asset_a", "asset_b"), ("foo_a",)),
    ),
    "guide single_run sensor": (
        load_definitions(module_name="examples.guide"),
        BackfillRequestSpec(
            asset_keys=(AssetKey("asset_with_single_run_backfill_policy"),),
            partition_ranges=(PartitionKeyRange("2023-01-01", "2023-01-05"),),
        ),
    ),
    "guide events": (
        load_definitions(module_name="examples.guide"),
        BackfillRequestSpec(
            asset_keys=(AssetKey("events"),),
            partition_ranges=(PartitionKeyRange("2024-01-01", "2024-01-31"),),
        ),
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_dry_run_counts_the_runs_the_real_backfill_makes(plane: PlaneFactory, case: str) -> None:
    definitions, spec = CASES[case]
    control = plane(definitions)
    spec = spec or control.spec("raw,cleaned,report", *EIGHT_DAYS)
    plan = control.dry_run(spec)
    assert BackfillStore(control.database).list(limit=10) == []
    backfill_id = control.launch(spec)
    control.drain(backfill_id)
    runs = control.runs(backfill_id)
    assert plan.run_count == len(runs)
    real_by_asset = Counter(asset_key for run in runs for asset_key in run.asset_keys)
    assert dict(plan.runs_by_asset) == {key: real_by_asset[key] for key in plan.runs_by_asset}
    listed = [(run.asset_keys, run.partition_range) for run in plan.runs]
    assert sorted(listed, key=str) == sorted(((run.asset_keys, run.partition_range) for run in runs), key=str)
