"""One tick of one sensor or schedule: write it, evaluate, submit its requests, finish it.

The tick is written ``started`` before the user code runs, and its requests get ids derived from
it (see ``submission``), so a crash anywhere leaves a ``started`` tick that the next pass resumes:
it is evaluated again with the same cursor or cron time and finds what it already created. The
sensor's cursor is saved only in the transaction that finishes the tick.

A location that cannot be reached mid-tick, or a database fault while submitting, leaves the tick
``started``, to be resumed when it is back.
"""

from __future__ import annotations

import logging
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from code_server.asset_key import AssetKey
from code_server.client.errors import CodeServerUnavailable, UserCodeError
from code_server.wire.automation import EvaluationResult, ScheduleInfo, SensorInfo
from control_plane.automation.evaluation import InstigatorEvaluator
from control_plane.automation.submission import RequestSubmitter
from control_plane.automation.timing import MAX_CATCH_UP_TICKS, due_schedule_times, sensor_is_due
from control_plane.errors import LocationUnavailable
from control_plane.storage.errors import StorageFault
from control_plane.storage.instigators import (
    InstigatorRef,
    InstigatorState,
    InstigatorStore,
    InstigatorType,
    TickError,
    TickOutcome,
    TickRecord,
    TickStatus,
)

logger = logging.getLogger("partita.control_plane.automation")


def new_tick_id() -> str:
    return uuid.uuid4().hex[:20]


class _LocationDown(Exception):
    """The code location went away during the tick: leave the tick started and resume it later."""


@dataclass
class TickRunner:
    store: InstigatorStore
    evaluator: InstigatorEvaluator
    submitter: RequestSubmitter
    clock: Callable[[], datetime]
    max_catch_up_ticks: int = MAX_CATCH_UP_TICKS

    def sensor_tick(self, location: str, sensor: SensorInfo, state: InstigatorState) -> TickRecord | None:
        """Resume the sensor's unfinished tick, or run a new one if the interval has passed."""
        ref = InstigatorRef(location, InstigatorType.SENSOR, sensor.name)
        now = self.clock()
        tick = self.store.unfinished_tick(ref)
        if tick is None:
            if not sensor_is_due(state.last_tick_at, sensor.minimum_interval_seconds, now):
                return None
            tick = TickRecord(
                id=new_tick_id(),
                ref=ref,
                status=TickStatus.STARTED,
                started_at=now,
                cursor_before=state.cursor,
            )
            self.store.create_tick(tick)
        previous = self.store.list_ticks(ref, limit=2)
        completed = next((t.ended_at for t in previous if t.id != tick.id and t.ended_at), None)
        started = tick
        return self._run(
            tick,
            sensor.asset_keys,
            lambda: self.evaluator.evaluate_sensor(
                location, sensor.name, cursor=started.cursor_before, last_tick_completion_time=completed
            ),
            is_sensor=True,
        )

    def schedule_ticks(
        self, location: str, schedule: ScheduleInfo, state: InstigatorState
    ) -> list[TickRecord]:
        """Resume the unfinished tick, then run each due cron time (at most ``max_catch_up_ticks``)."""
        ref = InstigatorRef(location, InstigatorType.SCHEDULE, schedule.name)
        finished: list[TickRecord] = []
        resumed = self.store.unfinished_tick(ref)
        # Cron times after the last tick, and never before it was (last) started.
        marks = [mark for mark in (state.last_tick_at, state.started_at) if mark is not None]
        after = max(marks) if marks else self.clock()
        if resumed is not None:
            result = self._schedule_tick(resumed, schedule)
            if result is None:
                return finished
            finished.append(result)
            assert resumed.scheduled_at is not None
            after = max(after, resumed.scheduled_at)
        now = self.clock()
        for scheduled_at in due_schedule_times(
            schedule.cron_schedule,
            schedule.execution_timezone,
            after=after,
            now=now,
            limit=self.max_catch_up_ticks,
        ):
            tick = TickRecord(
                id=new_tick_id(),
                ref=ref,
                status=TickStatus.STARTED,
                started_at=self.clock(),
                scheduled_at=scheduled_at,
            )
            self.store.create_tick(tick)
            result = self._schedule_tick(tick, schedule)
            if result is None:
                break
            finished.append(result)
        return finished

    def _schedule_tick(self, tick: TickRecord, schedule: ScheduleInfo) -> TickRecord | None:
        scheduled_at = tick.scheduled_at
        assert scheduled_at is not None
        return self._run(
            tick,
            schedule.asset_keys,
            lambda: self.evaluator.evaluate_schedule(tick.ref.location, schedule.name, scheduled_at),
            is_sensor=False,
        )

    def _run(
        self,
        tick: TickRecord,
        targets: tuple[AssetKey, ...],
        evaluate: Callable[[], EvaluationResult],
        *,
        is_sensor: bool,
    ) -> TickRecord | None:
        """Evaluate and submit; None when the location went down (the tick stays started)."""
        last_tick_at = tick.started_at if is_sensor else tick.scheduled_at
        try:
            try:
                result = evaluate()
            except (CodeServerUnavailable, LocationUnavailable) as down:
                raise _LocationDown(str(down)) from down
            except UserCodeError as error:
                return self._finish(
                    tick,
                    TickStatus.FAILURE,
                    last_tick_at,
                    error=TickError(
                        message=str(error),
                        kind="timed_out" if error.timed_out else "raised",
                        class_name=error.error.class_name,
                        traceback=error.traceback,
                    ),
                )
            if not result.run_requests and not result.backfill_requests:
                return self._finish(
                    tick,
                    TickStatus.SKIPPED,
                    last_tick_at,
                    skip_reason=result.skip_reason,
                    cursor=result.cursor,
                    save_cursor=is_sensor,
                )
            try:
                submitted = self.submitter.submit(tick, targets, result)
            except (CodeServerUnavailable, LocationUnavailable) as down:
                raise _LocationDown(str(down)) from down
            except StorageFault:
                raise  # the tick stays started, and is resumed once the database is back
            except Exception as error:
                logger.warning("Tick %s of %s could not submit its requests: %s", tick.id, tick.ref, error)
                return self._finish(
                    tick,
                    TickStatus.FAILURE,
                    last_tick_at,
                    error=TickError(
                        message=f"Could not submit the requests of {tick.ref}: {error}",
                        kind="launch_failed",
                        class_name=type(error).__name__,
                        traceback="".join(traceback.format_exception(error)),
                    ),
                )
            return self._finish(
                tick,
                TickStatus.SUCCESS,
                last_tick_at,
                cursor=result.cursor,
                save_cursor=is_sensor,
                backfill_ids=submitted.backfill_ids,
                run_ids=submitted.run_ids,
            )
        except _LocationDown as down:
            logger.warning("Tick %s of %s waits for its code location: %s", tick.id, tick.ref, down)
            return None

    def _finish(
        self,
        tick: TickRecord,
        status: TickStatus,
        last_tick_at: datetime | None,
        *,
        error: TickError | None = None,
        skip_reason: str | None = None,
        cursor: str | None = None,
        save_cursor: bool = False,
        backfill_ids: tuple[str, ...] = (),
        run_ids: tuple[str, ...] = (),
    ) -> TickRecord:
        outcome = TickOutcome(
            status=status,
            ended_at=self.clock(),
            cursor_after=cursor if save_cursor else None,
            skip_reason=skip_reason,
            error=error,
            backfill_ids=backfill_ids,
            run_ids=run_ids,
            save_cursor=save_cursor,
            last_tick_at=last_tick_at,
        )
        if status is TickStatus.FAILURE:
            logger.warning("Tick %s of %s failed: %s", tick.id, tick.ref, error.message if error else "")
        return self.store.finish_tick(tick, outcome)
