"""The planner on in-memory partition rows: units, policies, readiness and failure propagation."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from code_server import (
    AssetKey,
    BackfillPolicy,
    DailyPartitionsDefinition,
    Definitions,
    StaticPartitionsDefinition,
    TimeWindowPartitionMapping,
    asset,
)
from code_server.assets import AssetIn
from code_server.loading import load_definitions
from code_server.partitions.keys import PartitionKeyRange
from code_server.wire.automation import BackfillRequestSpec
from control_plane.backfills.planning import BackfillPlanner
from control_plane.backfills.readiness import InMemoryPartitionRows
from control_plane.backfills.targets import ResolvedTarget, resolve_target
from control_plane.errors import InvalidBackfillRequest
from control_plane.records import PartitionStatus

NOW = datetime(2025, 1, 1, tzinfo=UTC)
DAILY = DailyPartitionsDefinition(start_date="2024-01-01")
A, B, C = AssetKey("a"), AssetKey("b"), AssetKey("c")


def chain(
    policy_a: BackfillPolicy | None, policy_b: BackfillPolicy | None, policy_c: BackfillPolicy | None
) -> Definitions:
    @asset(name="a", partitions_def=DAILY, backfill_policy=policy_a)
    def a():  # type: ignore[no-untyped-def]
        pass

    @asset(
        name="b",
        partitions_def=DAILY,
        deps=["a"],
        backfill_policy=policy_b,
    )
    def b():  # type: ignore[no-untyped-def]
        pass

    @asset(
        name="c",
        partitions_def=DAILY,
        deps=["b"],
        backfill_policy=policy_c,
    )
    def c():  # type: ignore[no-untyped-def]
        pass

    return Definitions(assets=[a, b, c])


def rows_of(
    target: ResolvedTarget, status: PartitionStatus = PartitionStatus.PENDING
) -> dict[AssetKey, dict[str, tuple[PartitionStatus, int]]]:
    return {
        key: {k: (status, p) for k, p in target.partitions[key].positioned()} for key in target.asset_keys
    }


def resolve(defs: Definitions, keys: Sequence[AssetKey], start: str, end: str) -> ResolvedTarget:
    spec = BackfillRequestSpec(asset_keys=tuple(keys), partition_ranges=(PartitionKeyRange(start, end),))
    return resolve_target(defs.asset_graph, spec, NOW)


def test_no_policy_chain_shares_one_run_per_partition() -> None:
    defs = chain(None, None, None)
    target = resolve(defs, [A, B, C], "2024-01-01", "2024-12-31")
    planner = BackfillPlanner(defs.asset_graph, target.asset_keys)
    assert len(planner.units) == 1
    plan = planner.plan_everything(InMemoryPartitionRows(rows_of(target)))
    assert len(plan.runs) == 366
    assert plan.runs[0].asset_keys == (A, B, C)
    assert plan.runs[0].partition_range == PartitionKeyRange("2024-01-01", "2024-01-01")


def test_single_run_is_one_run_per_contiguous_range() -> None:
    defs = chain(*[BackfillPolicy.single_run()] * 3)
    spec = BackfillRequestSpec(
        asset_keys=(A, B, C),
        partition_ranges=(
            PartitionKeyRange("2024-01-01", "2024-01-10"),
            PartitionKeyRange("2024-02-01", "2024-02-03"),
        ),
    )
    target = resolve_target(defs.asset_graph, spec, NOW)
    plan = BackfillPlanner(defs.asset_graph, target.asset_keys).plan_everything(
        InMemoryPartitionRows(rows_of(target))
    )
    assert [run.partition_range for run in plan.runs] == [
        PartitionKeyRange("2024-01-01", "2024-01-10"),
        PartitionKeyRange("2024-02-01", "2024-02-03"),
    ]
    assert all(run.asset_keys == (A, B, C) for run in plan.runs)


def test_multi_run_chunks() -> None:
    defs = chain(*[BackfillPolicy.multi_run(100)] * 3)
    target = resolve(defs, [A], "2024-01-01", "2024-12-31")
    plan = BackfillPlanner(defs.asset_graph, target.asset_keys).plan_everything(
        InMemoryPartitionRows(rows_of(target))
    )
    assert [run.partition_count for run in plan.runs] == [100, 100, 100, 66]
    assert plan.runs[1].partition_range == PartitionKeyRange("2024-04-10", "2024-07-18")


def test_different_policies_wait_for_parents() -> None:
    defs = chain(BackfillPolicy.single_run(), None, None)
    target = resolve(defs, [A, B, C], "2024-01-01", "2024-01-05")
    planner = BackfillPlanner(defs.asset_graph, target.asset_keys)
    assert [unit.asset_keys for unit in planner.units] == [(A,), (B, C)]
    rows = rows_of(target)
    first = planner.plan_everything(InMemoryPartitionRows(rows))
    assert [(run.asset_keys, run.partition_range) for run in first.runs] == [
        ((A,), PartitionKeyRange("2024-01-01", "2024-01-05"))
    ]
    # A materializes two days; only those days of b (and c with it) become ready.
    for key in ("2024-01-02", "2024-01-03"):
        rows[A][key] = (PartitionStatus.MATERIALIZED, rows[A][key][1])
    second = planner.plan_changes({A: ["2024-01-02", "2024-01-03"]}, InMemoryPartitionRows(rows))
    assert [(run.asset_keys, run.partition_range) for run in second.runs] == [
        ((B, C), PartitionKeyRange("2024-01-02", "2024-01-02")),
        ((B, C), PartitionKeyRange("2024-01-03", "2024-01-03")),
    ]


def test_failure_marks_downstream_upstream_failed_and_the_rest_goes_on() -> None:
    defs = chain(BackfillPolicy.single_run(), None, None)
    target = resolve(defs, [A, B, C], "2024-01-01", "2024-01-03")
    rows = rows_of(target)
    rows[A]["2024-01-01"] = (PartitionStatus.MATERIALIZED, 0)
    rows[A]["2024-01-02"] = (PartitionStatus.FAILED, 1)
    rows[A]["2024-01-03"] = (PartitionStatus.MATERIALIZED, 2)
    plan = BackfillPlanner(defs.asset_graph, target.asset_keys).plan_changes(
        {A: ["2024-01-01", "2024-01-02", "2024-01-03"]}, InMemoryPartitionRows(rows)
    )
    assert plan.upstream_failed == {B: ["2024-01-02"], C: ["2024-01-02"]}
    assert [run.partition_range for run in plan.runs] == [
        PartitionKeyRange("2024-01-01", "2024-01-01"),
        PartitionKeyRange("2024-01-03", "2024-01-03"),
    ]


def test_offset_mapping_keeps_assets_in_separate_units() -> None:
    @asset(partitions_def=DAILY)
    def today():  # type: ignore[no-untyped-def]
        pass

    @asset(partitions_def=DAILY, ins={"today": AssetIn(partition_mapping=TimeWindowPartitionMapping(-1, -1))})
    def yesterday_based(today):  # type: ignore[no-untyped-def]
        pass

    defs = Definitions(assets=[today, yesterday_based])
    target = resolve(defs, [today.key, yesterday_based.key], "2024-01-01", "2024-01-03")
    planner = BackfillPlanner(defs.asset_graph, target.asset_keys)
    assert len(planner.units) == 2
    # The child's keys are the parent's keys shifted by one day.
    assert target.partitions[yesterday_based.key].keys() == [
        "2024-01-02",
        "2024-01-03",
        "2024-01-04",
    ]
    rows = rows_of(target)
    rows[today.key]["2024-01-01"] = (PartitionStatus.MATERIALIZED, 0)
    plan = planner.plan_changes({today.key: ["2024-01-01"]}, InMemoryPartitionRows(rows))
    assert [run.partition_range for run in plan.runs] == [PartitionKeyRange("2024-01-02", "2024-01-02")]


def test_guide_examples_resolve_as_the_guide_says() -> None:
    sensor_defs = load_definitions(module_name="examples.backfill_asset_from_partitions_by_assets")
    key = AssetKey("asset_with_single_run_backfill_policy")
    spec = BackfillRequestSpec(
        asset_keys=(key,),
        partitions_by_asset={key: ("2023-01-01", "2023-01-02", "2023-01-03", "2023-01-04", "2023-01-05")},
    )
    target = resolve_target(sensor_defs.asset_graph, spec, NOW)
    plan = BackfillPlanner(sensor_defs.asset_graph, target.asset_keys).plan_everything(
        InMemoryPartitionRows(rows_of(target))
    )
    assert [(run.asset_keys, run.partition_range) for run in plan.runs] == [
        ((key,), PartitionKeyRange("2023-01-01", "2023-01-05"))
    ]

    schedule_defs = load_definitions(module_name="examples.backfill_asset_from_asset_partitions")
    spec = BackfillRequestSpec(
        asset_keys=(AssetKey("asset_a"), AssetKey("asset_b")), partition_keys=("foo_a",)
    )
    target = resolve_target(schedule_defs.asset_graph, spec, NOW)
    assert {k: v.keys() for k, v in target.partitions.items()} == {
        AssetKey("asset_a"): ["foo_a"],
        AssetKey("asset_b"): ["foo_b"],
    }
    planner = BackfillPlanner(schedule_defs.asset_graph, target.asset_keys)
    rows = rows_of(target)
    first = planner.plan_everything(InMemoryPartitionRows(rows))
    assert [(run.asset_keys, run.partition_range) for run in first.runs] == [
        ((AssetKey("asset_a"),), PartitionKeyRange("foo_a", "foo_a"))
    ]
    rows[AssetKey("asset_a")]["foo_a"] = (PartitionStatus.MATERIALIZED, 0)
    second = planner.plan_changes({AssetKey("asset_a"): ["foo_a"]}, InMemoryPartitionRows(rows))
    assert [(run.asset_keys, run.partition_range) for run in second.runs] == [
        ((AssetKey("asset_b"),), PartitionKeyRange("foo_b", "foo_b"))
    ]


def test_invalid_requests_name_the_problem() -> None:
    defs = chain(None, None, None)
    graph = defs.asset_graph
    with pytest.raises(InvalidBackfillRequest, match=r"Unknown asset.*'zzz'"):
        resolve_target(graph, BackfillRequestSpec(asset_keys=(AssetKey("zzz"),), all_partitions=True), NOW)
    with pytest.raises(InvalidBackfillRequest, match=r"'2030-01-01'.*not partitions of asset 'a'"):
        resolve_target(graph, BackfillRequestSpec(asset_keys=(A,), partition_keys=("2030-01-01",)), NOW)
    with pytest.raises(InvalidBackfillRequest, match=r"'nonsense'"):
        resolve_target(graph, BackfillRequestSpec(asset_keys=(A,), partition_keys=("nonsense",)), NOW)
    static = StaticPartitionsDefinition(["x"])

    @asset(partitions_def=static)
    def other():  # type: ignore[no-untyped-def]
        pass

    mixed = Definitions(assets=[*defs.assets.values(), other])
    with pytest.raises(InvalidBackfillRequest, match=r"must share one partitions definition.*other"):
        resolve_target(
            mixed.asset_graph, BackfillRequestSpec(asset_keys=(A, other.key), all_partitions=True), NOW
        )


@pytest.mark.parametrize(
    "policies",
    [
        (None, None, None),
        (BackfillPolicy.single_run(),) * 3,
        (BackfillPolicy.multi_run(7),) * 3,
        (BackfillPolicy.single_run(), None, None),
        (None, BackfillPolicy.multi_run(3), BackfillPolicy.multi_run(3)),
    ],
)
def test_launch_fast_path_plans_exactly_what_full_planning_plans(
    policies: tuple[BackfillPolicy | None, ...],
) -> None:
    defs = chain(*policies)
    spec = BackfillRequestSpec(
        asset_keys=(A, B, C),
        partition_ranges=(
            PartitionKeyRange("2024-01-01", "2024-01-20"),
            PartitionKeyRange("2024-02-03", "2024-02-09"),
        ),
    )
    target = resolve_target(defs.asset_graph, spec, NOW)
    planner = BackfillPlanner(defs.asset_graph, target.asset_keys)
    assert (
        planner.plan_launch(target.partitions).runs
        == planner.plan_everything(InMemoryPartitionRows(rows_of(target))).runs
    )
    # What the launch writes as queued spans: each partition of a ready asset in exactly one run.
    covered: dict[AssetKey, list[int]] = {}
    for run in planner.launch_runs(target.partitions):
        for asset_key in run.asset_keys:
            covered.setdefault(asset_key, []).extend(range(run.first_position, run.last_position + 1))
    assert set(covered) == planner.launch_ready_assets()
    for asset_key, positions in covered.items():
        assert sorted(positions) == [p for _, p in target.partitions[asset_key].positioned()]


def test_positions_follow_the_definition_for_ranges_and_scattered_keys() -> None:
    defs = chain(None, None, None)
    contiguous = resolve(defs, [A], "2024-01-30", "2024-02-02")
    assert contiguous.partitions[A].intervals == ((29, 32),)
    assert list(contiguous.partitions[A].positioned()) == [
        ("2024-01-30", 29),
        ("2024-01-31", 30),
        ("2024-02-01", 31),
        ("2024-02-02", 32),
    ]
    scattered = resolve_target(
        defs.asset_graph,
        BackfillRequestSpec(asset_keys=(A,), partition_keys=("2024-03-01", "2024-01-02")),
        NOW,
    )
    assert list(scattered.partitions[A].positioned()) == [("2024-01-02", 1), ("2024-03-01", 60)]


def test_unpartitioned_child_waits_for_every_parent_partition() -> None:
    @asset(partitions_def=DAILY)
    def daily_rows():  # type: ignore[no-untyped-def]
        pass

    @asset(deps=[daily_rows])
    def summary():  # type: ignore[no-untyped-def]
        pass

    defs = Definitions(assets=[daily_rows, summary])
    target = resolve(defs, [daily_rows.key, summary.key], "2024-01-01", "2024-01-03")
    assert list(target.partitions[summary.key].positioned()) == [("", 0)]
    planner = BackfillPlanner(defs.asset_graph, target.asset_keys)
    rows = rows_of(target)
    assert [run.asset_keys for run in planner.plan_launch(target.partitions).runs] == [(daily_rows.key,)] * 3
    rows[daily_rows.key]["2024-01-01"] = (PartitionStatus.MATERIALIZED, 0)
    rows[daily_rows.key]["2024-01-02"] = (PartitionStatus.MATERIALIZED, 1)
    waiting = planner.plan_changes(
        {daily_rows.key: ["2024-01-01", "2024-01-02"]}, InMemoryPartitionRows(rows)
    )
    assert waiting.runs == []
    rows[daily_rows.key]["2024-01-03"] = (PartitionStatus.MATERIALIZED, 2)
    ready = planner.plan_changes({daily_rows.key: ["2024-01-03"]}, InMemoryPartitionRows(rows))
    assert [(run.asset_keys, run.partition_range) for run in ready.runs] == [((summary.key,), None)]


def test_a_held_multi_run_child_runs_chunks_aligned_like_a_root_over_two_ranges() -> None:
    defs = chain(None, BackfillPolicy.multi_run(2), BackfillPolicy.multi_run(2))
    spec = BackfillRequestSpec(
        asset_keys=(A, B, C),
        partition_ranges=(
            PartitionKeyRange("2024-01-01", "2024-01-03"),
            PartitionKeyRange("2024-01-10", "2024-01-12"),
        ),
    )
    target = resolve_target(defs.asset_graph, spec, NOW)
    planner = BackfillPlanner(defs.asset_graph, target.asset_keys)
    rows = rows_of(target)

    def materialize(*keys: str) -> list[tuple[str, str]]:
        for key in keys:
            rows[A][key] = (PartitionStatus.MATERIALIZED, rows[A][key][1])
        plan = planner.plan_changes({A: list(keys)}, InMemoryPartitionRows(rows))
        for run in plan.runs:
            for asset_key in run.asset_keys:
                for key, (_, position) in rows[asset_key].items():
                    if run.first_position <= position <= run.last_position:
                        rows[asset_key][key] = (PartitionStatus.QUEUED, position)
        return [
            (run.partition_range.start, run.partition_range.end) for run in plan.runs if run.partition_range
        ]

    # Chunks start at each range's first day: 01-02, 03; 10-11, 12. Ready 02 and 03 make no run
    # of two, because they straddle a chunk boundary; 03 alone is its whole chunk.
    assert materialize("2024-01-02") == []
    assert materialize("2024-01-03") == [("2024-01-03", "2024-01-03")]
    assert materialize("2024-01-11", "2024-01-12") == [("2024-01-12", "2024-01-12")]
    assert materialize("2024-01-01") == [("2024-01-01", "2024-01-02")]
    assert materialize("2024-01-10") == [("2024-01-10", "2024-01-11")]
    assert [
        (run.partition_range.start, run.partition_range.end)
        for run in planner.every_run(target.partitions)
        if run.asset_keys == (B, C) and run.partition_range
    ] == [
        ("2024-01-01", "2024-01-02"),
        ("2024-01-03", "2024-01-03"),
        ("2024-01-10", "2024-01-11"),
        ("2024-01-12", "2024-01-12"),
    ]
