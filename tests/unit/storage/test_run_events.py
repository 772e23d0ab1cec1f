"""RunEventStore: each run's ordered event log, and recognizing a report already applied."""

from __future__ import annotations

import threading

from code_server.asset_key import AssetKey
from control_plane.storage import Database, RunEventStore


def test_events_get_consecutive_sequences_per_run(database: Database) -> None:
    store = RunEventStore(database)
    store.append("r1", [("run_started", "Run started", None)])
    store.append("r2", [("stdout", "other run", None)])
    store.append(
        "r1", [("partition_materialized", "a 2024-01-01", AssetKey(["wh", "a"])), ("stdout", "done", None)]
    )
    events = store.list("r1")
    assert [(e.sequence, e.kind, e.message, e.asset_key) for e in events] == [
        (1, "run_started", "Run started", None),
        (2, "partition_materialized", "a 2024-01-01", AssetKey(["wh", "a"])),
        (3, "stdout", "done", None),
    ]
    assert all(e.run_id == "r1" and e.timestamp.tzinfo is not None for e in events)
    assert [e.sequence for e in store.list("r2")] == [1]
    store.append("r1", [])
    assert len(store.list("r1")) == 3
    # What a restarted control plane asks before it copies a run's output again.
    assert (store.count("r1", kind="stdout"), store.count("r2", kind="stdout")) == (1, 1)
    assert store.count("nope", kind="stdout") == 0


def test_list_pages_after_a_sequence(database: Database) -> None:
    store = RunEventStore(database)
    store.append("r1", [("stdout", f"line {n}", None) for n in range(1, 11)])
    assert [e.message for e in store.list("r1", after_sequence=7)] == ["line 8", "line 9", "line 10"]
    assert [e.sequence for e in store.list("r1", after_sequence=2, limit=3)] == [3, 4, 5]
    assert store.list("r1", after_sequence=10) == []
    assert store.list("unknown") == []


def test_two_threads_appending_to_one_run_never_share_a_sequence(database: Database) -> None:
    store = RunEventStore(database)
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def write(name: str) -> None:
        try:
            start.wait()
            for n in range(40):
                store.append("r1", [(name, f"{name} {n}", None), (name, f"{name} {n} again", None)])
        except BaseException as error:  # reported to the test below
            errors.append(error)

    threads = [threading.Thread(target=write, args=(name,)) for name in ("stdout", "stderr")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    events = store.list("r1", limit=1000)
    assert [e.sequence for e in events] == list(range(1, 161))
    for name in ("stdout", "stderr"):
        # Each writer's own events stay in its order, and each batch stays together.
        mine = [e for e in events if e.kind == name]
        assert [e.message for e in mine] == [
            m for n in range(40) for m in (f"{name} {n}", f"{name} {n} again")
        ]
        assert all(
            second.sequence == first.sequence + 1 for first, second in zip(mine[::2], mine[1::2], strict=True)
        )


def test_a_report_is_recognized_the_second_time(database: Database) -> None:
    store = RunEventStore(database)
    assert store.mark_reported("r1", "worker-1:1")
    assert not store.mark_reported("r1", "worker-1:1")
    assert store.mark_reported("r1", "worker-1:2")
    assert store.mark_reported("r2", "worker-1:1")
