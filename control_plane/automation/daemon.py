"""The sensor and schedule daemon step: tick every running sensor and schedule of every loaded location.

A location that is down or failed to load is skipped for this pass (no tick is recorded); a sensor
or schedule whose tick fails for any reason is logged and the pass goes on with the others, except
for a database fault, which ends the pass (every tick would fail alike) for the daemon loop to wait out.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from code_server.wire.automation import ScheduleInfo, SensorInfo
from control_plane.automation.evaluation import (
    DEFAULT_EVALUATION_TIMEOUT,
    CodeLocationEvaluator,
    InstigatorEvaluator,
)
from control_plane.automation.service import AutomationService
from control_plane.automation.submission import RequestSubmitter
from control_plane.automation.ticks import TickRunner
from control_plane.automation.timing import MAX_CATCH_UP_TICKS
from control_plane.backfills.engine import BackfillEngine
from control_plane.errors import LocationUnavailable
from control_plane.locations import CodeLocations
from control_plane.storage import Database, InstigatorStore, StorageFault
from control_plane.storage.instigators import InstigatorRef, InstigatorStatus, InstigatorType, TickRecord

logger = logging.getLogger("partita.control_plane.automation")


class AutomationDaemon:
    """``tick()`` is the daemon step; ``service`` answers the API (list, start, stop, preview, ticks)."""

    def __init__(
        self,
        database: Database,
        locations: CodeLocations,
        engine: BackfillEngine,
        *,
        clock: Callable[[], datetime],
        wake: Callable[[], None],
        evaluator: InstigatorEvaluator | None = None,
        evaluation_timeout: float = DEFAULT_EVALUATION_TIMEOUT,
        max_catch_up_ticks: int = MAX_CATCH_UP_TICKS,
    ) -> None:
        self._locations = locations
        self._clock = clock
        self.store = InstigatorStore(database)
        evaluator = evaluator or CodeLocationEvaluator(locations, timeout=evaluation_timeout)
        self.runner = TickRunner(
            store=self.store,
            evaluator=evaluator,
            submitter=RequestSubmitter(database, engine, locations, clock=clock, wake=wake),
            clock=clock,
            max_catch_up_ticks=max_catch_up_ticks,
        )
        self.service = AutomationService(self.store, locations, evaluator, clock=clock)
        #: One pass at a time: the daemon thread and a test (or an operator action) may both tick.
        self._lock = threading.Lock()

    def tick(self) -> list[TickRecord]:
        """One pass over every location; returns the ticks that finished in it."""
        finished: list[TickRecord] = []
        with self._lock:
            for location in self._locations.names:
                if not self._locations.is_available(location):
                    continue
                try:
                    snapshot = self._locations.snapshot(location)
                except LocationUnavailable:
                    continue
                for sensor in snapshot.sensors:
                    finished.extend(self._guarded(location, sensor))
                for schedule in snapshot.schedules:
                    finished.extend(self._guarded(location, schedule))
        return finished

    def _guarded(self, location: str, instigator: SensorInfo | ScheduleInfo) -> list[TickRecord]:
        kind = InstigatorType.SENSOR if isinstance(instigator, SensorInfo) else InstigatorType.SCHEDULE
        ref = InstigatorRef(location, kind, instigator.name)
        default = InstigatorStatus.RUNNING if instigator.default_running else InstigatorStatus.STOPPED
        try:
            state = self.store.ensure_state(ref, default, self._clock())
            if state.status is not InstigatorStatus.RUNNING:
                return []
            if isinstance(instigator, SensorInfo):
                tick = self.runner.sensor_tick(location, instigator, state)
                return [tick] if tick is not None else []
            return self.runner.schedule_ticks(location, instigator, state)
        except StorageFault:
            raise  # every instigator fails alike: the daemon loop logs the episode once and retries
        except Exception:
            logger.exception("Ticking %s failed; it is tried again on the next pass", ref)
            return []
