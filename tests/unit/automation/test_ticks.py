"""The sensor and schedule daemon, one pass at a time with an injected clock, on real SQLite."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from code_server.partitions.keys import PartitionKeyRange
from code_server.wire.automation import RunRequestSpec
from control_plane.records import RunStatus
from control_plane.storage import BackfillStore, RunStore
from control_plane.storage.instigators import (
    InstigatorRef,
    InstigatorStatus,
    InstigatorType,
    TickRecord,
    TickStatus,
)
from tests.unit.automation.conftest import HarnessFactory

GUIDE_SENSOR = "examples.backfill_asset_from_partitions_by_assets"
SENSOR_NAME = "launch_backfill_with_single_run_backfill_policy"
FIXTURES = "tests.fixtures.sensors_location"
T0 = datetime(2024, 3, 8, 12, 0, tzinfo=UTC)


def _sensor(location: str, name: str) -> InstigatorRef:
    return InstigatorRef(location, InstigatorType.SENSOR, name)


def _schedule(location: str, name: str) -> InstigatorRef:
    return InstigatorRef(location, InstigatorType.SCHEDULE, name)


def test_a_running_sensor_ticks_at_most_once_per_interval(harness: HarnessFactory) -> None:
    h = harness({"guide": GUIDE_SENSOR}, T0)
    (first,) = h.daemon.tick()
    assert first.status is TickStatus.SUCCESS and len(first.backfill_ids) == 1
    h.clock.advance(seconds=4)
    assert h.daemon.tick() == []
    h.clock.advance(seconds=1)
    (second,) = h.daemon.tick()
    assert second.status is TickStatus.SUCCESS and second.id != first.id
    backfill = BackfillStore(h.database).get(first.backfill_ids[0])
    assert backfill is not None and backfill.origin == f"sensor:{SENSOR_NAME}"
    (run,) = RunStore(h.database).list(backfill_id=backfill.id)
    assert run.partition_range == PartitionKeyRange("2023-01-01", "2023-01-05")


def test_a_stopped_sensor_is_not_evaluated_until_started(harness: HarnessFactory) -> None:
    h = harness({"tests": FIXTURES}, T0)
    assert h.daemon.tick() == [] and h.servers["tests"].evaluations == 0
    h.daemon.service.set_sensor_running("tests", "cursor_sensor", True)
    (tick,) = h.daemon.tick()
    assert tick.ref == _sensor("tests", "cursor_sensor")


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        # Spring forward (Sunday 2024-03-10): 03:00 in Chicago is 09:00 UTC before, 08:00 UTC after.
        (
            datetime(2024, 3, 8, 12, tzinfo=UTC),
            [
                datetime(2024, 3, 9, 9, tzinfo=UTC),
                datetime(2024, 3, 10, 8, tzinfo=UTC),
                datetime(2024, 3, 11, 8, tzinfo=UTC),
            ],
        ),
        # Fall back (Sunday 2024-11-03): 08:00 UTC before, 09:00 UTC after.
        (
            datetime(2024, 11, 1, 12, tzinfo=UTC),
            [
                datetime(2024, 11, 2, 8, tzinfo=UTC),
                datetime(2024, 11, 3, 9, tzinfo=UTC),
                datetime(2024, 11, 4, 9, tzinfo=UTC),
            ],
        ),
    ],
)
def test_schedule_ticks_at_its_wall_clock_time_across_a_dst_change(
    harness: HarnessFactory, start: datetime, expected: list[datetime]
) -> None:
    h = harness({"tests": "tests.fixtures.schedules_location"}, start)
    h.daemon.service.set_schedule_running("tests", "chicago_nightly", True)
    h.clock.advance(days=3)
    ticks = h.daemon.tick()
    assert [t.scheduled_at for t in ticks] == expected
    assert all(t.status is TickStatus.SUCCESS for t in ticks)
    backfills = BackfillStore(h.database)
    keys = [backfills.get_request(t.backfill_ids[0]).partition_keys for t in ticks]
    # Each tick saw its own wall-clock date in Chicago.
    days = [
        (e.astimezone(ZoneInfo("America/Chicago")) - timedelta(days=1)).strftime("%Y-%m-%d") for e in expected
    ]
    assert keys == [(day,) for day in days]
    assert h.daemon.tick() == []  # nothing new is due


def test_schedule_catches_up_a_bounded_number_of_missed_ticks(harness: HarnessFactory) -> None:
    h = harness({"tests": "tests.fixtures.schedules_location"}, datetime(2024, 1, 1, 12, tzinfo=UTC))
    h.daemon.service.set_schedule_running("tests", "chicago_nightly", True)
    h.clock.advance(days=10)  # ten cron times were missed
    ticks = h.daemon.tick()
    assert [t.scheduled_at.day for t in ticks if t.scheduled_at] == [7, 8, 9, 10, 11]
    assert all(t.status is TickStatus.SUCCESS for t in ticks)


def test_the_cursor_advances_only_with_a_successful_tick(harness: HarnessFactory) -> None:
    h = harness({"tests": FIXTURES}, datetime(2024, 1, 1, tzinfo=UTC))
    h.daemon.service.set_sensor_running("tests", "cursor_sensor", True)
    ref = _sensor("tests", "cursor_sensor")
    (first,) = h.daemon.tick()
    assert first.status is TickStatus.SUCCESS and first.cursor_after == "1"
    (run,) = RunStore(h.database).list()
    assert run.run_key == "k0" and run.status is RunStatus.QUEUED
    assert run.partition_range == PartitionKeyRange("2024-01-01", "2024-01-01") and run.id in first.run_ids

    server = h.servers["tests"]
    evaluate = server.evaluate_sensor

    def failing(*args: Any, **kwargs: Any) -> Any:
        server.evaluate_sensor = evaluate  # type: ignore[method-assign]
        return h.servers["tests"].evaluate_sensor("raising_sensor")

    server.evaluate_sensor = failing  # type: ignore[method-assign]
    h.clock.advance(seconds=30)
    (failed,) = h.daemon.tick()
    assert failed.status is TickStatus.FAILURE
    state = h.daemon.store.get_state(ref)
    assert state is not None and state.cursor == "1"
    h.clock.advance(seconds=30)
    (third,) = h.daemon.tick()
    assert third.status is TickStatus.SUCCESS and third.cursor_before == "1" and third.cursor_after == "2"
    assert sorted(r.run_key or "" for r in RunStore(h.database).list()) == ["k0", "k1"]


def test_a_raising_sensor_records_a_failure_tick_and_the_others_go_on(harness: HarnessFactory) -> None:
    h = harness({"tests": FIXTURES}, T0)
    for name in ("raising_sensor", "cursor_sensor"):
        h.daemon.service.set_sensor_running("tests", name, True)
    ticks = {t.ref.name: t for t in h.daemon.tick()}
    failed = ticks["raising_sensor"]
    assert failed.status is TickStatus.FAILURE and failed.error is not None
    assert "the upstream API returned 500" in failed.error.message
    assert "RuntimeError" in failed.error.traceback and failed.error.kind == "raised"
    assert ticks["cursor_sensor"].status is TickStatus.SUCCESS
    # It is tried again at its next interval.
    h.clock.advance(seconds=30)
    assert "raising_sensor" in {t.ref.name for t in h.daemon.tick()}


def test_a_tick_cut_off_after_launching_resumes_without_launching_twice(harness: HarnessFactory) -> None:
    h = harness({"guide": GUIDE_SENSOR}, T0)
    store = h.daemon.store
    finish = store.finish_tick

    def crash(tick: TickRecord, outcome: Any) -> TickRecord:
        raise RuntimeError("control plane killed before the tick was finished")

    store.finish_tick = crash  # type: ignore[method-assign]
    assert h.daemon.tick() == []
    (cut_off,) = store.list_ticks(_sensor("guide", SENSOR_NAME))
    assert cut_off.status is TickStatus.STARTED
    assert len(BackfillStore(h.database).list()) == 1

    store.finish_tick = finish  # type: ignore[method-assign]
    (resumed,) = h.daemon.tick()  # before the interval: the started tick is finished first
    assert resumed.id == cut_off.id and resumed.status is TickStatus.SUCCESS
    (backfill,) = BackfillStore(h.database).list()
    assert resumed.backfill_ids == (backfill.id,)


def test_a_location_that_is_down_records_no_tick(harness: HarnessFactory) -> None:
    h = harness({"guide": GUIDE_SENSOR}, T0)
    h.servers["guide"].down = True
    h.locations.refresh()
    assert h.daemon.tick() == []
    assert h.daemon.store.list_ticks(_sensor("guide", SENSOR_NAME)) == []
    h.servers["guide"].down = False
    h.locations.refresh()
    assert [t.status for t in h.daemon.tick()] == [TickStatus.SUCCESS]


def test_a_used_run_key_makes_no_second_run(harness: HarnessFactory) -> None:
    h = harness({"tests": FIXTURES}, T0)
    submitter = h.daemon.runner.submitter
    from code_server.asset_key import AssetKey
    from code_server.wire.automation import EvaluationResult

    result = EvaluationResult(
        run_requests=(RunRequestSpec((AssetKey("numbers"),), "same", "2024-01-02", {}),),
        backfill_requests=(),
        skip_reason=None,
        cursor=None,
    )
    ref = _sensor("tests", "cursor_sensor")
    first = submitter.submit(TickRecord("t1", ref, TickStatus.STARTED, T0), (), result)
    second = submitter.submit(TickRecord("t2", ref, TickStatus.STARTED, T0), (), result)
    again = submitter.submit(TickRecord("t1", ref, TickStatus.STARTED, T0), (), result)
    assert first.run_ids == ("t1r0",) and second.run_ids == () and again.run_ids == ("t1r0",)
    assert len(RunStore(h.database).list()) == 1


@pytest.mark.parametrize("running", [True, False])
def test_start_and_stop_are_stored(harness: HarnessFactory, running: bool) -> None:
    h = harness({"guide": GUIDE_SENSOR}, T0)
    view = h.daemon.service.set_sensor_running(None, SENSOR_NAME, running)
    expected = InstigatorStatus.RUNNING if running else InstigatorStatus.STOPPED
    assert view.state.status is expected
    assert h.daemon.service.list_sensors()[0].state.status is expected
