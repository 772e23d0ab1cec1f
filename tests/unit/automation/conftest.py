"""An in-process code location (the real SDK evaluation and wire conversion, no gRPC) and a daemon on SQLite."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pendulum
import pytest

from code_server.client import CodeServerUnavailable, DefinitionsSnapshot, ServerInfo, UserCodeError
from code_server.definitions import Definitions
from code_server.evaluation import evaluate_schedule, evaluate_sensor
from code_server.loading import load_definitions
from code_server.schedules import ScheduleEvaluationContext
from code_server.sensors import SensorEvaluationContext
from code_server.wire.automation import (
    EvaluationResult,
    evaluation_from_proto,
    schedule_from_proto,
    schedule_result_to_proto,
    schedule_to_proto,
    sensor_from_proto,
    sensor_result_to_proto,
    sensor_to_proto,
    user_code_error_to_proto,
)
from control_plane.automation import AutomationDaemon
from control_plane.backfills.engine import BackfillEngine
from control_plane.locations import CodeLocations
from control_plane.storage import Database

ROOT = Path(__file__).resolve().parents[3]


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class InProcessCodeServer:
    """Answers like ``CodeServerClient`` from a module loaded here; ``down`` makes it unreachable."""

    def __init__(self, module_name: str, location: str) -> None:
        self.definitions: Definitions = load_definitions(module_name=module_name, working_directory=ROOT)
        self.location = location
        self.address = f"in-process:{module_name}"
        self.down = False
        self.evaluations = 0

    def server_info(self, timeout: float | None = None) -> ServerInfo:
        self._check()
        return ServerInfo(
            "server-1", self.location, "", "test", "f1", datetime.now(UTC), None, None, None, None
        )

    def list_definitions(self, timeout: float | None = None) -> DefinitionsSnapshot:
        self._check()
        graph = self.definitions.asset_graph
        return DefinitionsSnapshot(
            fingerprint="f1",
            assets=tuple(graph.nodes.values()),
            sensors=tuple(
                sensor_from_proto(sensor_to_proto(s, graph)) for s in self.definitions.sensors.values()
            ),
            schedules=tuple(
                schedule_from_proto(schedule_to_proto(s, graph)) for s in self.definitions.schedules.values()
            ),
        )

    def evaluate_sensor(
        self,
        name: str,
        *,
        cursor: str | None = None,
        last_tick_completion_time: datetime | None = None,
        timeout: float | None = None,
    ) -> EvaluationResult:
        self._check()
        self.evaluations += 1
        sensor = self.definitions.get_sensor(name)
        context = SensorEvaluationContext(cursor=cursor, last_tick_completion_time=last_tick_completion_time)
        try:
            evaluation = evaluate_sensor(sensor, context, self.definitions.asset_graph)
        except Exception as error:
            raise UserCodeError(user_code_error_to_proto(error), location=self.location) from error
        return evaluation_from_proto(sensor_result_to_proto(evaluation))

    def evaluate_schedule(
        self, name: str, scheduled_execution_time: datetime, *, timeout: float | None = None
    ) -> EvaluationResult:
        self._check()
        self.evaluations += 1
        schedule = self.definitions.get_schedule(name)
        local = scheduled_execution_time.astimezone(pendulum.timezone(schedule.execution_timezone))
        context = ScheduleEvaluationContext(scheduled_execution_time=local, schedule_name=name)
        try:
            evaluation = evaluate_schedule(schedule, context, self.definitions.asset_graph)
        except Exception as error:
            raise UserCodeError(user_code_error_to_proto(error), location=self.location) from error
        return evaluation_from_proto(schedule_result_to_proto(evaluation))

    def close(self) -> None:
        pass

    def _check(self) -> None:
        if self.down:
            raise CodeServerUnavailable(f"code location {self.location!r} is down", location=self.location)


class Harness:
    def __init__(self, tmp_path: Path, modules: dict[str, str], now: datetime) -> None:
        self.clock = Clock(now)
        self.servers = {name: InProcessCodeServer(module, name) for name, module in modules.items()}
        self.database = Database.open(f"sqlite:///{tmp_path / 'automation.db'}", clock=self.clock)
        self.locations = CodeLocations(
            dict.fromkeys(modules, "unused"),
            client_factory=lambda name, _address: self.servers[name],  # type: ignore[arg-type,return-value]
            clock=self.clock,
        )
        self.locations.refresh()
        self.wakes = 0
        self.engine = BackfillEngine(self.database, self.locations, clock=self.clock, wake=self._wake)
        self.daemon = AutomationDaemon(
            self.database, self.locations, self.engine, clock=self.clock, wake=self._wake
        )
        self._lock = threading.Lock()

    def _wake(self) -> None:
        self.wakes += 1


HarnessFactory = Callable[..., Harness]


@pytest.fixture
def harness(tmp_path: Path) -> HarnessFactory:
    def make(modules: dict[str, str], now: datetime, **_: Any) -> Harness:
        return Harness(tmp_path, modules, now)

    return make
