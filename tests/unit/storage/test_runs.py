"""RunStore: runs, their assets and tags, compare-and-set status changes and the launch queue."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from code_server.asset_key import AssetKey
from code_server.partitions.keys import PartitionKeyRange
from code_server.wire.automation import BackfillRequestSpec
from control_plane.records import BackfillRecord, PageCursor, RunRecord, RunStatus
from control_plane.storage import BackfillStore, Database, RunAlreadyExists, RunKeyAlreadyUsed, RunStore

MakeRun = Callable[..., RunRecord]
MakeBackfill = Callable[..., BackfillRecord]
S = RunStatus


@pytest.fixture
def store(database: Database) -> RunStore:
    return RunStore(database)


@pytest.fixture
def backfills(database: Database, make_backfill: MakeBackfill) -> BackfillStore:
    """Two backfills, bf1 and bf2, for runs to belong to."""
    store = BackfillStore(database)
    for backfill_id in ("bf1", "bf2"):
        store.create(make_backfill(backfill_id), [], request=BackfillRequestSpec(asset_keys=()))
    return store


def _ids(records: list[RunRecord]) -> list[str]:
    return [record.id for record in records]


def test_a_created_run_reads_back_as_written(
    store: RunStore, backfills: BackfillStore, make_run: MakeRun
) -> None:
    run = make_run(
        "r1",
        backfill_id="bf1",
        assets=("warehouse/b", "a"),
        tags={"partita/backfill_id": "bf1", "team": "data"},
        priority=3,
        partition_range=PartitionKeyRange("2024-01-01", "2024-01-31"),
        partition_count=31,
        launcher_kind="local",
        launcher_handle="pid:42",
        attempt=2,
        error="earlier failure",
    )
    store.create_many([run])
    assert store.get("r1") == run
    assert store.get("nope") is None


def test_an_unpartitioned_standalone_run_reads_back(store: RunStore, make_run: MakeRun) -> None:
    run = make_run("r1", run_key="file-1.csv")
    store.create_many([run])
    assert store.get("r1") == run
    assert store.find_by_run_key("loc", "file-1.csv") == run
    assert store.find_by_run_key("other", "file-1.csv") is None


def test_a_duplicate_run_id_is_refused_and_nothing_of_the_batch_is_written(
    database: Database, store: RunStore, make_run: MakeRun
) -> None:
    store.create_many([make_run("r1")])
    with pytest.raises(RunAlreadyExists, match="r1"), database.transaction() as connection:
        store.create_many([make_run("r0"), make_run("r1")], connection=connection)
    assert store.get("r0") is None


def test_a_run_key_is_used_once_per_location(store: RunStore, make_run: MakeRun) -> None:
    store.create_many([make_run("r1", run_key="k"), make_run("r2", run_key="k", location="other")])
    with pytest.raises(RunKeyAlreadyUsed, match="k"):
        store.create_many([make_run("r3", run_key="k")])
    assert store.get("r3") is None


def test_runs_without_a_run_key_never_collide(store: RunStore, make_run: MakeRun) -> None:
    store.create_many([make_run("r1"), make_run("r2")])
    assert {run.id for run in store.list()} == {"r1", "r2"}


def test_list_filters_and_orders_newest_first(
    store: RunStore, backfills: BackfillStore, make_run: MakeRun
) -> None:
    t0 = make_run("x").created_at
    store.create_many(
        [
            make_run("old", backfill_id="bf1", created_at=t0, status=S.SUCCESS),
            make_run("mid", backfill_id="bf2", created_at=t0 + timedelta(minutes=1)),
            make_run("new", created_at=t0 + timedelta(minutes=2), location="other"),
        ]
    )
    assert _ids(store.list()) == ["new", "mid", "old"]
    assert _ids(store.list(limit=1)) == ["new"]
    assert _ids(store.list(backfill_id="bf1")) == ["old"]
    assert _ids(store.list(include_backfill_runs=False)) == ["new"]
    assert _ids(store.list(statuses=[S.QUEUED])) == ["new", "mid"]
    assert _ids(store.list(location="other")) == ["new"]
    assert _ids(store.list(before=PageCursor(t0 + timedelta(minutes=2), "new"))) == ["mid", "old"]


def test_pages_of_runs_created_at_one_instant_hold_every_run_once(store: RunStore, make_run: MakeRun) -> None:
    """The runs of one launch share created_at: the page cursor must tell them apart by id."""
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    store.create_many([make_run(f"run-{index:03d}", created_at=t0) for index in range(25)])
    seen: list[str] = []
    before = None
    while True:
        page = store.list(limit=10, before=before)
        if not page:
            break
        seen += _ids(page)
        before = PageCursor(page[-1].created_at, page[-1].id)
    assert seen == [f"run-{index:03d}" for index in reversed(range(25))]


def test_list_filters_by_every_given_tag(store: RunStore, make_run: MakeRun) -> None:
    store.create_many(
        [
            make_run("both", tags={"team": "data", "env": "prod"}),
            make_run("team", tags={"team": "data"}),
            make_run("none"),
        ]
    )
    assert set(_ids(store.list(tags={"team": "data"}))) == {"both", "team"}
    assert _ids(store.list(tags={"team": "data", "env": "prod"})) == ["both"]
    assert store.list(tags={"env": "dev"}) == []


def test_update_status_is_a_compare_and_set(store: RunStore, make_run: MakeRun) -> None:
    run = make_run("r1")
    store.create_many([run])
    assert store.update_status(
        "r1", S.STARTING, launcher_kind="local", launcher_handle="pid:7", only_from=[S.QUEUED]
    )
    # A second launcher loses the race: the run is no longer queued.
    assert not store.update_status("r1", S.STARTING, launcher_handle="pid:8", only_from=[S.QUEUED])
    started = run.created_at + timedelta(seconds=5)
    assert store.update_status("r1", S.STARTED, started_at=started)
    updated = store.get("r1")
    assert updated is not None
    assert (updated.status, updated.launcher_kind, updated.launcher_handle, updated.started_at) == (
        S.STARTED,
        "local",
        "pid:7",
        started,
    )
    assert updated.updated_at > run.updated_at
    assert not store.update_status("nope", S.STARTED)


def test_queued_runs_come_by_priority_then_age_then_partition(
    store: RunStore, backfills: BackfillStore, make_run: MakeRun
) -> None:
    t0 = make_run("x").created_at
    day = [PartitionKeyRange(f"2024-01-0{n}", f"2024-01-0{n}") for n in range(1, 4)]
    store.create_many(
        [
            # Planned together: same created_at, ids in no particular order.
            make_run("zz", backfill_id="bf1", partition_range=day[0]),
            make_run("aa", backfill_id="bf1", partition_range=day[2]),
            make_run("mm", backfill_id="bf1", partition_range=day[1]),
            make_run("later", backfill_id="bf2", created_at=t0 + timedelta(minutes=1)),
            make_run("urgent", created_at=t0 + timedelta(minutes=2), priority=10),
            make_run("started", status=S.STARTED, priority=99),
        ]
    )
    assert _ids(store.queued_runs(limit=10)) == ["urgent", "zz", "mm", "aa", "later"]
    assert _ids(store.queued_runs(limit=2, backfill_id="bf1")) == ["zz", "mm"]
    assert _ids(store.queued_runs(limit=10, standalone_only=True)) == ["urgent"]


def test_active_counts_are_per_backfill_and_in_total(
    store: RunStore, backfills: BackfillStore, make_run: MakeRun
) -> None:
    store.create_many(
        [
            make_run("a1", backfill_id="bf1", status=S.STARTING),
            make_run("a2", backfill_id="bf1", status=S.STARTED),
            make_run("a3", backfill_id="bf1", status=S.CANCELING),
            make_run("b1", backfill_id="bf2", status=S.STARTED),
            make_run("s1", status=S.STARTED),
            make_run("q1", backfill_id="bf2"),
            make_run("d1", backfill_id="bf2", status=S.SUCCESS),
        ]
    )
    assert store.active_counts() == (5, {"bf1": 3, "bf2": 1})
    assert store.exists(backfill_id="bf2", statuses=[S.QUEUED, S.STARTED])
    assert not store.exists(backfill_id="bf2", statuses=[S.FAILURE])
    assert not store.exists(backfill_id="nope", statuses=[S.QUEUED])
    assert store.status_of("d1") is S.SUCCESS
    assert store.status_of("nope") is None


def test_canceling_queued_runs_leaves_launched_ones(
    store: RunStore, backfills: BackfillStore, make_run: MakeRun
) -> None:
    store.create_many(
        [
            make_run("q1", backfill_id="bf1"),
            make_run("q2", backfill_id="bf1"),
            make_run("s1", backfill_id="bf1", status=S.STARTED),
            make_run("q3", backfill_id="bf2"),
        ]
    )
    ended = make_run("x").created_at + timedelta(hours=1)
    assert store.cancel_queued("bf1", ended_at=ended) == 2
    statuses = {run.id: (run.status, run.ended_at) for run in store.list()}
    assert statuses == {
        "q1": (S.CANCELED, ended),
        "q2": (S.CANCELED, ended),
        "s1": (S.STARTED, None),
        "q3": (S.QUEUED, None),
    }


def test_priority_changes_reach_only_queued_runs(
    store: RunStore, backfills: BackfillStore, make_run: MakeRun
) -> None:
    store.create_many(
        [make_run("q1", backfill_id="bf1"), make_run("s1", backfill_id="bf1", status=S.STARTED)]
    )
    assert store.set_priority_of_queued("bf1", 5) == 1
    assert {run.id: run.priority for run in store.list()} == {"q1": 5, "s1": 0}


def test_creating_thousands_of_runs_with_assets_and_tags(
    store: RunStore, backfills: BackfillStore, make_run: MakeRun
) -> None:
    runs = [
        make_run(
            f"r{index:05d}",
            backfill_id="bf1",
            assets=("a", "b", "c"),
            tags={"partita/backfill_id": "bf1", "team": "data"},
            partition_range=PartitionKeyRange(f"k{index:05d}", f"k{index:05d}"),
            partition_count=1,
        )
        for index in range(3_653)
    ]
    store.create_many(runs)
    queued = store.queued_runs(limit=10_000, backfill_id="bf1")
    assert queued == runs
    assert queued[-1].asset_keys == (AssetKey("a"), AssetKey("b"), AssetKey("c"))
    assert len(store.list(tags={"team": "data"}, limit=10_000)) == 3_653
