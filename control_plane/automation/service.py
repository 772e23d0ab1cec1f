"""Sensors and schedules as operators see them: list with state, start, stop, preview, tick history.

A sensor or schedule is named by location and name; the location may be omitted when exactly one
location defines the name. Preview evaluates now and neither records a tick nor launches anything.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from code_server.client.errors import DefinitionNotFound
from code_server.wire.automation import EvaluationResult, ScheduleInfo, SensorInfo
from control_plane.automation.evaluation import InstigatorEvaluator
from control_plane.automation.timing import next_schedule_time, next_sensor_tick_at
from control_plane.errors import InvalidBackfillRequest, LocationUnavailable
from control_plane.locations import CodeLocations
from control_plane.records import PageCursor
from control_plane.storage import InstigatorStore
from control_plane.storage.instigators import (
    InstigatorRef,
    InstigatorState,
    InstigatorStatus,
    InstigatorType,
    TickRecord,
    TickStatus,
)

_T = TypeVar("_T")


class AmbiguousInstigator(InvalidBackfillRequest):
    """The name is defined in several locations and none was given (INVALID_ARGUMENT)."""


@dataclass(frozen=True, slots=True)
class SensorView:
    location: str
    definition: SensorInfo
    state: InstigatorState
    last_tick: TickRecord | None
    next_tick_at: datetime | None


@dataclass(frozen=True, slots=True)
class ScheduleView:
    location: str
    definition: ScheduleInfo
    state: InstigatorState
    last_tick: TickRecord | None
    next_tick_at: datetime | None


class AutomationService:
    def __init__(
        self,
        store: InstigatorStore,
        locations: CodeLocations,
        evaluator: InstigatorEvaluator,
        *,
        clock: Callable[[], datetime],
    ) -> None:
        self._store = store
        self._locations = locations
        self._evaluator = evaluator
        self._clock = clock

    # --- sensors -------------------------------------------------------------------------------------

    def list_sensors(self, location: str | None = None) -> list[SensorView]:
        return [
            self._sensor_view(name, sensor)
            for name in self._available(location)
            for sensor in self._locations.snapshot(name).sensors
        ]

    def get_sensor(self, location: str | None, name: str) -> SensorView:
        where, sensor = self._find_sensor(location, name)
        return self._sensor_view(where, sensor)

    def set_sensor_running(self, location: str | None, name: str, running: bool) -> SensorView:
        where, sensor = self._find_sensor(location, name)
        ref = InstigatorRef(where, InstigatorType.SENSOR, name)
        self._store.set_status(ref, _status(running), self._clock())
        return self._sensor_view(where, sensor)

    def preview_sensor(self, location: str | None, name: str, cursor: str | None = None) -> EvaluationResult:
        """Evaluate now with ``cursor`` (default: the saved one); raises ``UserCodeError`` if it fails."""
        where, _ = self._find_sensor(location, name)
        if cursor is None:
            state = self._store.get_state(InstigatorRef(where, InstigatorType.SENSOR, name))
            cursor = state.cursor if state else None
        return self._evaluator.evaluate_sensor(where, name, cursor=cursor, last_tick_completion_time=None)

    def sensor_ticks(
        self,
        location: str | None,
        name: str,
        *,
        statuses: Collection[TickStatus] = (),
        limit: int = 100,
        before: PageCursor | None = None,
    ) -> list[TickRecord]:
        where, _ = self._find_sensor(location, name)
        ref = InstigatorRef(where, InstigatorType.SENSOR, name)
        return self._store.list_ticks(ref, statuses=statuses, limit=limit, before=before)

    # --- schedules -----------------------------------------------------------------------------------

    def list_schedules(self, location: str | None = None) -> list[ScheduleView]:
        return [
            self._schedule_view(name, schedule)
            for name in self._available(location)
            for schedule in self._locations.snapshot(name).schedules
        ]

    def get_schedule(self, location: str | None, name: str) -> ScheduleView:
        where, schedule = self._find_schedule(location, name)
        return self._schedule_view(where, schedule)

    def set_schedule_running(self, location: str | None, name: str, running: bool) -> ScheduleView:
        where, schedule = self._find_schedule(location, name)
        ref = InstigatorRef(where, InstigatorType.SCHEDULE, name)
        self._store.set_status(ref, _status(running), self._clock())
        return self._schedule_view(where, schedule)

    def preview_schedule(
        self, location: str | None, name: str, scheduled_time: datetime | None = None
    ) -> tuple[datetime, EvaluationResult]:
        """Evaluate for ``scheduled_time`` (default: its next cron time from now)."""
        where, schedule = self._find_schedule(location, name)
        when = scheduled_time or next_schedule_time(
            schedule.cron_schedule, schedule.execution_timezone, self._clock()
        )
        return when, self._evaluator.evaluate_schedule(where, name, when)

    def schedule_ticks(
        self,
        location: str | None,
        name: str,
        *,
        statuses: Collection[TickStatus] = (),
        limit: int = 100,
        before: PageCursor | None = None,
    ) -> list[TickRecord]:
        where, _ = self._find_schedule(location, name)
        ref = InstigatorRef(where, InstigatorType.SCHEDULE, name)
        return self._store.list_ticks(ref, statuses=statuses, limit=limit, before=before)

    # --- lookups -------------------------------------------------------------------------------------

    def _sensor_view(self, location: str, sensor: SensorInfo) -> SensorView:
        state = self._state(
            InstigatorRef(location, InstigatorType.SENSOR, sensor.name), sensor.default_running
        )
        running = state.status is InstigatorStatus.RUNNING
        return SensorView(
            location=location,
            definition=sensor,
            state=state,
            last_tick=self._store.latest_tick(state.ref),
            next_tick_at=(
                next_sensor_tick_at(state.last_tick_at, sensor.minimum_interval_seconds) or self._clock()
                if running
                else None
            ),
        )

    def _schedule_view(self, location: str, schedule: ScheduleInfo) -> ScheduleView:
        ref = InstigatorRef(location, InstigatorType.SCHEDULE, schedule.name)
        state = self._state(ref, schedule.default_running)
        next_at = None
        if state.status is InstigatorStatus.RUNNING:
            marks = [mark for mark in (state.last_tick_at, state.started_at) if mark is not None]
            after = max([*marks, self._clock()])
            next_at = next_schedule_time(schedule.cron_schedule, schedule.execution_timezone, after)
        return ScheduleView(location, schedule, state, self._store.latest_tick(ref), next_at)

    def _state(self, ref: InstigatorRef, default_running: bool) -> InstigatorState:
        """The stored state, or what it will be when first ticked (its default status)."""
        return self._store.get_state(ref) or InstigatorState(ref, _status(default_running))

    def _available(self, location: str | None) -> list[str]:
        if location:
            self._locations.snapshot(location)  # unknown: NOT_FOUND; down: UNAVAILABLE
            return [location]
        return [name for name in self._locations.names if self._locations.is_available(name)]

    def _find_sensor(self, location: str | None, name: str) -> tuple[str, SensorInfo]:
        found = [
            (where, sensor)
            for where in self._candidates(location)
            for sensor in self._locations.snapshot(where).sensors
            if sensor.name == name
        ]
        return _one(found, "sensor", name, location)

    def _find_schedule(self, location: str | None, name: str) -> tuple[str, ScheduleInfo]:
        found = [
            (where, schedule)
            for where in self._candidates(location)
            for schedule in self._locations.snapshot(where).schedules
            if schedule.name == name
        ]
        return _one(found, "schedule", name, location)

    def _candidates(self, location: str | None) -> list[str]:
        if location:
            return [location]
        available = [name for name in self._locations.names if self._locations.is_available(name)]
        if not available:
            raise LocationUnavailable("No code location is loaded; check `partita locations list`.")
        return available


def _one(found: list[tuple[str, _T]], kind: str, name: str, location: str | None) -> tuple[str, _T]:
    if len(found) == 1:
        return found[0]
    if not found:
        where = f"code location {location!r}" if location else "any loaded code location"
        raise DefinitionNotFound(
            f"No {kind} named {name!r} in {where}; list them with `partita {kind} list`."
        )
    locations = sorted(where for where, _ in found)
    raise AmbiguousInstigator(
        f"Several code locations define a {kind} named {name!r} ({', '.join(locations)}): pass --location."
    )


def _status(running: bool) -> InstigatorStatus:
    return InstigatorStatus.RUNNING if running else InstigatorStatus.STOPPED
