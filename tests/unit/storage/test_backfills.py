"""BackfillStore and BackfillProgressStore: backfills, their requests, and their partition progress."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import timedelta

import pytest
import sqlalchemy as sa

from code_server.asset_key import AssetKey
from code_server.partitions import DailyPartitionsDefinition
from code_server.partitions.keys import PartitionKeyRange
from code_server.wire.automation import BackfillRequestSpec
from control_plane.key_spaces import TimeWindowKeySpace
from control_plane.records import (
    BackfillPartition,
    BackfillRecord,
    BackfillStatus,
    PageCursor,
    PartitionSpan,
    PartitionStatus,
)
from control_plane.storage import (
    BackfillAlreadyExists,
    BackfillProgressStore,
    BackfillStore,
    Database,
    NotFound,
)
from control_plane.storage.schema import backfill_partition_spans

A, B, C = AssetKey("a"), AssetKey(["warehouse", "b"]), AssetKey("c")
P = PartitionStatus
MakeBackfill = Callable[..., BackfillRecord]


def _keys(n: int) -> list[str]:
    return [f"k{i:05d}" for i in range(n)]


def _rows(backfill_id: str, asset: AssetKey, keys: list[str]) -> list[BackfillPartition]:
    return [BackfillPartition(backfill_id, asset, key, position) for position, key in enumerate(keys)]


def _queued(asset: AssetKey, first: int, last: int, run_id: str) -> PartitionSpan:
    return PartitionSpan(asset, first, last, P.QUEUED, run_id)


def _request(*assets: AssetKey) -> BackfillRequestSpec:
    return BackfillRequestSpec(asset_keys=assets, partition_keys=("k00000", "k00001"))


@pytest.fixture
def store(database: Database) -> BackfillStore:
    return BackfillStore(database)


@pytest.fixture
def progress(database: Database) -> BackfillProgressStore:
    return BackfillProgressStore(database)


@pytest.fixture
def launched(store: BackfillStore, make_backfill: MakeBackfill) -> BackfillRecord:
    """A backfill over a, warehouse/b and c with five partitions each."""
    record = make_backfill("bf", assets=("a", "warehouse/b", "c"), tags={"team": "data"})
    store.create(
        record,
        _rows("bf", A, _keys(5)) + _rows("bf", B, _keys(5)) + _rows("bf", C, _keys(5)),
        request=_request(A, B, C),
    )
    return record


# --- backfills ------------------------------------------------------------------------------------


def test_a_created_backfill_reads_back_as_written(store: BackfillStore, make_backfill: MakeBackfill) -> None:
    record = make_backfill(
        "bf",
        assets=("warehouse/b", "a"),
        tags={"team": "data", "owner": "ann"},
        title="Reload",
        description="Fix the 2023 data",
        max_concurrent_runs=4,
        priority=7,
        origin="sensor:new_files",
    )
    store.create(record, [], request=_request(B, A))
    assert store.get("bf") == record


def test_an_unknown_backfill_is_none(store: BackfillStore) -> None:
    assert store.get("nope") is None
    assert store.status_of("nope") is None


def test_status_of_reads_the_status_alone(store: BackfillStore, launched: BackfillRecord) -> None:
    assert store.status_of("bf") is launched.status
    store.update_status("bf", BackfillStatus.PAUSED)
    assert store.status_of("bf") is BackfillStatus.PAUSED


def test_a_duplicate_backfill_id_is_refused_and_writes_nothing_more(
    store: BackfillStore,
    progress: BackfillProgressStore,
    launched: BackfillRecord,
    make_backfill: MakeBackfill,
) -> None:
    with pytest.raises(BackfillAlreadyExists, match="bf"):
        store.create(
            make_backfill("bf", assets=("z",)), _rows("bf", AssetKey("z"), _keys(3)), request=_request()
        )
    assert store.get("bf") == launched
    assert progress.partitions("bf", asset_key=AssetKey("z")) == []


def test_a_request_id_launches_one_backfill_only(store: BackfillStore, make_backfill: MakeBackfill) -> None:
    store.create(make_backfill("bf1"), [], request=_request(), request_id="sensor:files:tick-7:0")
    with pytest.raises(BackfillAlreadyExists, match="tick-7"):
        store.create(make_backfill("bf2"), [], request=_request(), request_id="sensor:files:tick-7:0")
    found = store.find_by_request_id("sensor:files:tick-7:0")
    assert found is not None and found.id == "bf1"
    assert store.get("bf2") is None
    assert store.find_by_request_id("sensor:files:tick-8:0") is None


@pytest.mark.parametrize(
    "request_spec",
    [
        BackfillRequestSpec(asset_keys=(A, B), partition_keys=("2024-01-01", "2024-01-03")),
        BackfillRequestSpec(
            asset_keys=(A,),
            partition_ranges=(PartitionKeyRange("2024-01-01", "2024-01-31"), PartitionKeyRange("x", "y")),
        ),
        BackfillRequestSpec(asset_keys=(A, B), all_partitions=True),
        BackfillRequestSpec(asset_keys=(A, B), partitions_by_asset={A: ("foo",), B: ("bar", "baz")}),
    ],
    ids=["keys", "ranges", "all", "by_asset"],
)
def test_the_request_reads_back_as_launched(
    store: BackfillStore, make_backfill: MakeBackfill, request_spec: BackfillRequestSpec
) -> None:
    assets = tuple(key.to_user_string() for key in request_spec.asset_keys)
    store.create(make_backfill("bf", assets=assets), [], request=request_spec)
    assert store.get_request("bf") == BackfillRequestSpec(
        asset_keys=request_spec.asset_keys,
        partition_keys=request_spec.partition_keys,
        partition_ranges=request_spec.partition_ranges,
        all_partitions=request_spec.all_partitions,
        partitions_by_asset=request_spec.partitions_by_asset,
    )


def test_list_is_newest_first_and_filters_by_status_location_and_time(
    store: BackfillStore, make_backfill: MakeBackfill
) -> None:
    t0 = make_backfill().created_at
    for index, (status, location) in enumerate(
        [
            (BackfillStatus.RUNNING, "loc"),
            (BackfillStatus.COMPLETED_SUCCESS, "loc"),
            (BackfillStatus.RUNNING, "other"),
            (BackfillStatus.PAUSED, "loc"),
        ]
    ):
        store.create(
            make_backfill(
                f"bf{index}", status=status, location=location, created_at=t0 + timedelta(hours=index)
            ),
            [],
            request=_request(),
        )
    assert [r.id for r in store.list()] == ["bf3", "bf2", "bf1", "bf0"]
    assert [r.id for r in store.list(limit=2)] == ["bf3", "bf2"]
    assert [r.id for r in store.list(statuses=[BackfillStatus.RUNNING])] == ["bf2", "bf0"]
    assert [r.id for r in store.list(statuses=[BackfillStatus.RUNNING, BackfillStatus.PAUSED])] == [
        "bf3",
        "bf2",
        "bf0",
    ]
    assert [r.id for r in store.list(location="other")] == ["bf2"]
    assert [r.id for r in store.list(before=PageCursor(t0 + timedelta(hours=2), "bf2"))] == ["bf1", "bf0"]


def test_backfills_launched_at_one_instant_page_by_id(
    store: BackfillStore, make_backfill: MakeBackfill
) -> None:
    for index in range(5):
        store.create(make_backfill(f"bf{index}"), [], request=_request())
    first = store.list(limit=3)
    assert [r.id for r in first] == ["bf4", "bf3", "bf2"]
    assert [r.id for r in store.list(limit=3, before=PageCursor(first[-1].created_at, first[-1].id))] == [
        "bf1",
        "bf0",
    ]


def test_list_filters_by_every_given_tag(store: BackfillStore, make_backfill: MakeBackfill) -> None:
    store.create(make_backfill("both", tags={"team": "data", "env": "prod"}), [], request=_request())
    store.create(make_backfill("team", tags={"team": "data", "env": "dev"}), [], request=_request())
    store.create(make_backfill("none"), [], request=_request())
    assert {r.id for r in store.list(tags={"team": "data"})} == {"both", "team"}
    assert [r.id for r in store.list(tags={"team": "data", "env": "prod"})] == ["both"]
    assert store.list(tags={"team": "ops"}) == []


def test_update_status_records_the_end_and_a_retry_clears_it(
    store: BackfillStore, launched: BackfillRecord
) -> None:
    ended = launched.created_at + timedelta(hours=1)
    store.update_status("bf", BackfillStatus.FAILED, error="Location gone", ended_at=ended)
    failed = store.get("bf")
    assert failed is not None
    assert (failed.status, failed.error, failed.ended_at) == (BackfillStatus.FAILED, "Location gone", ended)
    assert failed.updated_at > launched.updated_at

    store.update_status("bf", BackfillStatus.RUNNING, clear_ended_at=True)
    running = store.get("bf")
    assert running is not None
    assert (running.status, running.error, running.ended_at) == (BackfillStatus.RUNNING, None, None)


def test_update_limits_changes_only_what_is_given(store: BackfillStore, launched: BackfillRecord) -> None:
    store.update_limits("bf", max_concurrent_runs=3)
    store.update_limits("bf", priority=5)
    record = store.get("bf")
    assert record is not None
    assert (record.max_concurrent_runs, record.priority) == (3, 5)
    store.update_limits("bf", max_concurrent_runs=0)
    record = store.get("bf")
    assert record is not None
    assert (record.max_concurrent_runs, record.priority) == (None, 5)


def test_updating_an_unknown_backfill_names_it(store: BackfillStore) -> None:
    with pytest.raises(NotFound, match="nope"):
        store.update_limits("nope", priority=1)
    with pytest.raises(NotFound, match="nope"):
        store.update_status("nope", BackfillStatus.CANCELED)


def test_active_ids_are_the_unfinished_backfills(store: BackfillStore, make_backfill: MakeBackfill) -> None:
    for status in BackfillStatus:
        store.create(make_backfill(status.value, status=status), [], request=_request())
    assert set(store.active_ids()) == {s.value for s in BackfillStatus if not s.is_terminal}


# --- partitions -------------------------------------------------------------------------------------


def test_partitions_are_ordered_by_asset_then_position(
    store: BackfillStore, progress: BackfillProgressStore, make_backfill: MakeBackfill
) -> None:
    keys = ["2024-01-03", "2024-01-01", "2024-01-02"]  # positions decide, not the key text
    store.create(
        make_backfill("bf", assets=("c", "a")),
        [BackfillPartition("bf", C, key, position) for position, key in enumerate(keys)]
        + [BackfillPartition("bf", A, key, position) for position, key in enumerate(keys)],
        request=_request(),
    )
    assert [(p.asset_key, p.partition_key) for p in progress.partitions("bf")] == [
        (A, "2024-01-03"),
        (A, "2024-01-01"),
        (A, "2024-01-02"),
        (C, "2024-01-03"),
        (C, "2024-01-01"),
        (C, "2024-01-02"),
    ]


def test_partitions_filter_by_asset_status_and_keys(
    store: BackfillStore, progress: BackfillProgressStore, launched: BackfillRecord
) -> None:
    progress.set_partition_status("bf", B, ["k00001", "k00003"], P.FAILED)
    assert [p.partition_key for p in progress.partitions("bf", asset_key=B, statuses=[P.FAILED])] == [
        "k00001",
        "k00003",
    ]
    assert [
        (p.asset_key, p.partition_key) for p in progress.partitions("bf", partition_keys=["k00004", "k00000"])
    ] == [
        (A, "k00000"),
        (A, "k00004"),
        (C, "k00000"),
        (C, "k00004"),
        (B, "k00000"),
        (B, "k00004"),
    ]
    assert progress.partitions("bf", asset_key=A, partition_keys=[]) == []


def test_partition_counts_group_by_asset_and_status(
    store: BackfillStore, progress: BackfillProgressStore, launched: BackfillRecord
) -> None:
    progress.set_partition_status("bf", A, ["k00000", "k00001"], P.MATERIALIZED)
    progress.set_partition_status("bf", A, ["k00002"], P.FAILED)
    progress.set_partition_status("bf", B, ["k00002"], P.UPSTREAM_FAILED)
    assert progress.partition_counts("bf") == {
        A: {P.MATERIALIZED: 2, P.FAILED: 1, P.PENDING: 2},
        B: {P.UPSTREAM_FAILED: 1, P.PENDING: 4},
        C: {P.PENDING: 5},
    }
    assert progress.has_partitions("bf", statuses=[P.PENDING, P.FAILED])
    assert not progress.has_partitions("bf", statuses=[P.RUNNING])
    assert progress.partition_counts("nope") == {}


def test_set_partition_status_only_from_keeps_a_finished_partition(
    store: BackfillStore, progress: BackfillProgressStore, launched: BackfillRecord
) -> None:
    progress.set_partition_status("bf", A, ["k00000"], P.MATERIALIZED)
    changed = progress.set_partition_status(
        "bf", A, ["k00000", "k00001"], P.FAILED, only_from=[P.PENDING, P.QUEUED, P.RUNNING]
    )
    assert changed == 1
    statuses = {p.partition_key: p.status for p in progress.partitions("bf", asset_key=A)}
    assert (statuses["k00000"], statuses["k00001"]) == (P.MATERIALIZED, P.FAILED)


def test_set_partition_status_without_keys_covers_the_asset_or_the_backfill(
    store: BackfillStore, progress: BackfillProgressStore, launched: BackfillRecord
) -> None:
    assert progress.set_partition_status("bf", C, None, P.QUEUED) == 5
    assert progress.set_partition_status("bf", None, None, P.CANCELED, only_from=[P.PENDING]) == 10
    assert progress.partition_counts("bf") == {A: {P.CANCELED: 5}, B: {P.CANCELED: 5}, C: {P.QUEUED: 5}}


def test_assign_runs_queues_each_partition_in_its_run(
    store: BackfillStore, progress: BackfillProgressStore, launched: BackfillRecord
) -> None:
    progress.assign_runs("bf", [_queued(A, 0, 0, "r1"), _queued(B, 0, 0, "r1"), _queued(A, 1, 1, "r2")])
    assert [(p.asset_key, p.partition_key, p.status) for p in progress.partitions_of_run("r1")] == [
        (A, "k00000", P.QUEUED),
        (B, "k00000", P.QUEUED),
    ]
    assert [p.partition_key for p in progress.partitions_of_run("r2")] == ["k00001"]
    assert progress.partitions_of_run("r3") == []
    progress.assign_runs("bf", [])


def test_set_status_for_run_moves_only_that_runs_partitions(
    store: BackfillStore, progress: BackfillProgressStore, launched: BackfillRecord
) -> None:
    progress.assign_runs("bf", [_queued(A, 0, 0, "r1"), _queued(B, 0, 0, "r1"), _queued(A, 1, 1, "r2")])
    assert progress.set_status_for_run("r1", P.RUNNING, only_from=[P.QUEUED]) == 2
    assert progress.set_status_for_run("r1", P.MATERIALIZED, asset_key=A) == 1
    # A late duplicate "started" report cannot move a materialized partition back.
    assert progress.set_status_for_run("r1", P.RUNNING, only_from=[P.QUEUED]) == 0
    assert [(p.asset_key, p.status) for p in progress.partitions_of_run("r1")] == [
        (A, P.MATERIALIZED),
        (B, P.RUNNING),
    ]
    assert [p.status for p in progress.partitions_of_run("r2")] == [P.QUEUED]


def test_reset_partitions_makes_failed_ones_pending_and_unassigned(
    store: BackfillStore, progress: BackfillProgressStore, launched: BackfillRecord
) -> None:
    progress.assign_runs("bf", [_queued(A, 0, 0, "r1"), _queued(A, 1, 1, "r2"), _queued(A, 2, 2, "r3")])
    progress.set_status_for_run("r1", P.MATERIALIZED)
    progress.set_status_for_run("r2", P.FAILED)
    progress.set_partition_status("bf", B, ["k00001"], P.UPSTREAM_FAILED)
    assert progress.reset_partitions("bf", from_statuses=[P.FAILED, P.UPSTREAM_FAILED]) == 2
    by_key = {(p.asset_key, p.partition_key): p for p in progress.partitions("bf")}
    assert (by_key[A, "k00001"].status, by_key[A, "k00001"].run_id) == (P.PENDING, None)
    assert by_key[B, "k00001"].status is P.PENDING
    assert (by_key[A, "k00000"].status, by_key[A, "k00000"].run_id) == (P.MATERIALIZED, "r1")
    assert (by_key[A, "k00002"].status, by_key[A, "k00002"].run_id) == (P.QUEUED, "r3")


def test_store_methods_grouped_in_one_transaction_roll_back_together(
    database: Database,
    store: BackfillStore,
    progress: BackfillProgressStore,
    launched: BackfillRecord,
    make_backfill: MakeBackfill,
) -> None:
    with pytest.raises(BackfillAlreadyExists), database.transaction() as connection:
        progress.set_partition_status("bf", A, None, P.CANCELED, connection=connection)
        store.create(make_backfill("bf"), [], request=_request(), connection=connection)
    assert progress.partition_counts("bf")[A] == {P.PENDING: 5}


# --- bulk ---------------------------------------------------------------------------------------------


def test_bulk_operations_over_ten_thousand_partitions(
    store: BackfillStore, progress: BackfillProgressStore, make_backfill: MakeBackfill
) -> None:
    keys = _keys(10_000)
    store.create(
        make_backfill("big", assets=("a", "c")),
        _rows("big", A, keys) + _rows("big", C, keys),
        request=_request(),
    )
    assert progress.partition_counts("big") == {A: {P.PENDING: 10_000}, C: {P.PENDING: 10_000}}

    progress.assign_runs("big", [_queued(A, 100 * run, 100 * run + 99, f"run-{run}") for run in range(100)])
    assert len(progress.partitions_of_run("run-7")) == 100
    assert progress.set_partition_status("big", A, keys[:2_500], P.MATERIALIZED) == 2_500
    assert progress.set_partition_status("big", A, keys, P.FAILED, only_from=[P.QUEUED]) == 7_500
    assert progress.partition_counts("big")[A] == {P.MATERIALIZED: 2_500, P.FAILED: 7_500}

    picked = progress.partitions("big", asset_key=C, partition_keys=keys[::-1])
    assert [p.position for p in picked] == list(range(10_000))
    assert progress.reset_partitions("big", from_statuses=[P.FAILED]) == 7_500
    assert progress.partition_counts("big") == {
        A: {P.MATERIALIZED: 2_500, P.PENDING: 7_500},
        C: {P.PENDING: 10_000},
    }


def test_partition_changes_are_the_rows_each_write_touched_after_a_sequence(
    store: BackfillStore, progress: BackfillProgressStore, launched: BackfillRecord
) -> None:
    start, nothing = progress.partition_changes("bf", after=None)
    assert nothing == []
    progress.assign_runs("bf", [_queued(A, 0, 0, "r1"), _queued(A, 1, 1, "r1")])
    assigned, changes = progress.partition_changes("bf", after=start)
    assert assigned > start
    assert [(s.asset_key, s.first_key, s.last_key, s.status, s.run_id) for s in changes] == [
        (A, "k00000", "k00001", P.QUEUED, "r1")
    ]
    progress.set_status_for_run("r1", P.MATERIALIZED, asset_key=A)
    progress.set_partition_status("bf", B, ["k00002"], P.UPSTREAM_FAILED)
    latest, changes = progress.partition_changes("bf", after=assigned)
    assert [(s.asset_key, s.first_key, s.last_key, s.status) for s in changes] == [
        (A, "k00000", "k00001", P.MATERIALIZED),
        (B, "k00002", "k00002", P.UPSTREAM_FAILED),
    ]
    assert progress.partition_changes("bf", after=latest) == (latest, [])
    with pytest.raises(NotFound):
        progress.partition_changes("nope", after=None)


# --- spans against a partition-by-partition model -------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_writes_read_back_as_the_same_writes_partition_by_partition(
    store: BackfillStore, progress: BackfillProgressStore, make_backfill: MakeBackfill, seed: int
) -> None:
    """Spans split and merge under writes; every read must still equal a model kept key by key."""
    rng = random.Random(seed)
    keys = _keys(40)
    # Scattered positions (gaps between some keys), as explicit keys or a mapping give.
    positions = sorted(rng.sample(range(60), len(keys)))
    store.create(
        make_backfill("bf", assets=("a", "c")),
        [
            BackfillPartition("bf", asset, key, pos)
            for asset in (A, C)
            for key, pos in zip(keys, positions, strict=True)
        ],
        request=_request(),
    )
    model = {(asset, key): (P.PENDING, None) for asset in (A, C) for key in keys}
    position_of = dict(zip(keys, positions, strict=True))
    statuses = list(P)
    for step in range(40):
        operation = rng.choice(["status", "assign", "run", "reset"])
        asset = rng.choice([A, C])
        if operation == "status":
            chosen = rng.sample(keys, rng.randint(1, 10))
            status, only = rng.choice(statuses), rng.sample(statuses, 3)
            changed = progress.set_partition_status("bf", asset, chosen, status, only_from=only)
            expected = 0
            for key in chosen:
                if model[asset, key][0] in only and model[asset, key][0] is not status:
                    model[asset, key] = (status, model[asset, key][1])
                    expected += 1
            assert changed == expected
        elif operation == "assign":
            first = rng.randrange(len(keys))
            last = min(len(keys) - 1, first + rng.randint(0, 5))
            run_id = f"run-{step}"
            span = _queued(asset, position_of[keys[first]], position_of[keys[last]], run_id)
            progress.assign_runs("bf", [span])
            for key in keys[first : last + 1]:
                model[asset, key] = (P.QUEUED, run_id)
        elif operation == "run":
            runs = sorted({run for _, run in model.values() if run})
            if not runs:
                continue
            run_id, status = rng.choice(runs), rng.choice([P.RUNNING, P.MATERIALIZED, P.FAILED])
            progress.set_status_for_run(run_id, status)
            for where, (_, run) in list(model.items()):
                if run == run_id:
                    model[where] = (status, run)
        else:
            progress.reset_partitions("bf", from_statuses=[P.FAILED, P.CANCELED])
            for where, (status, _run) in list(model.items()):
                if status in (P.FAILED, P.CANCELED):
                    model[where] = (P.PENDING, None)
        read = {(p.asset_key, p.partition_key): (p.status, p.run_id) for p in progress.partitions("bf")}
        assert read == model, f"after step {step} ({operation})"
    counts: dict[AssetKey, dict[PartitionStatus, int]] = {}
    for (asset, _), (status, _) in model.items():
        counts.setdefault(asset, {}).setdefault(status, 0)
        counts[asset][status] += 1
    assert progress.partition_counts("bf") == counts
    some = rng.sample(keys, 7)
    assert {(p.asset_key, p.partition_key) for p in progress.partitions("bf", partition_keys=some)} == {
        (asset, key) for asset in (A, C) for key in some
    }


def test_a_launch_of_ranges_stores_a_span_per_run_and_asset_not_per_partition(
    database: Database, store: BackfillStore, progress: BackfillProgressStore, make_backfill: MakeBackfill
) -> None:
    days = DailyPartitionsDefinition(start_date="2015-01-01")
    space = TimeWindowKeySpace(days)
    store.create(
        make_backfill("bf", assets=("a",)),
        request=_request(A),
        spans=[_queued(A, 0, 3652, "r1")],
        key_spaces={A: space},
    )
    with database.read() as connection:
        assert (
            connection.execute(sa.select(sa.func.count()).select_from(backfill_partition_spans)).scalar() == 1
        )
    assert progress.partition_counts("bf") == {A: {P.QUEUED: 3653}}
    assert [
        p.partition_key for p in progress.partitions("bf", partition_keys=["2024-12-31", "2015-01-01"])
    ] == [
        "2015-01-01",
        "2024-12-31",
    ]
    # A report for the run flips one row, whatever the run's length.
    assert progress.set_status_for_run("r1", P.MATERIALIZED) == 3653
    _, changes = progress.partition_changes("bf", after=0)
    assert [(c.first_key, c.last_key, c.status) for c in changes] == [
        ("2015-01-01", "2024-12-31", P.MATERIALIZED)
    ]
