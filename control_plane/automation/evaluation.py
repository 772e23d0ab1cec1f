"""The seam to user code: evaluate a sensor or a schedule of a code location, now.

``CodeLocationEvaluator`` calls the location's code server; tests plug in an in-process evaluator.
Both raise ``UserCodeError`` when the user's code raised or timed out, and ``CodeServerUnavailable``
(or ``LocationUnavailable``) when the location cannot be reached.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from code_server.client import CodeServerClient
from code_server.wire.automation import EvaluationResult
from control_plane.locations import CodeLocations

#: How long a sensor or schedule may run before it is cut off and its tick fails.
DEFAULT_EVALUATION_TIMEOUT = 60.0


class InstigatorEvaluator(Protocol):
    def evaluate_sensor(
        self, location: str, name: str, *, cursor: str | None, last_tick_completion_time: datetime | None
    ) -> EvaluationResult: ...

    def evaluate_schedule(self, location: str, name: str, scheduled_time: datetime) -> EvaluationResult: ...


class CodeLocationEvaluator:
    """Evaluates on the location's code server, with a deadline."""

    def __init__(self, locations: CodeLocations, *, timeout: float = DEFAULT_EVALUATION_TIMEOUT) -> None:
        self._locations = locations
        self._timeout = timeout

    def evaluate_sensor(
        self, location: str, name: str, *, cursor: str | None, last_tick_completion_time: datetime | None
    ) -> EvaluationResult:
        return self._client(location).evaluate_sensor(
            name, cursor=cursor, last_tick_completion_time=last_tick_completion_time, timeout=self._timeout
        )

    def evaluate_schedule(self, location: str, name: str, scheduled_time: datetime) -> EvaluationResult:
        return self._client(location).evaluate_schedule(name, scheduled_time, timeout=self._timeout)

    def _client(self, location: str) -> CodeServerClient:
        # CodeLocations has no public accessor for a location's client yet (reported to the lead).
        return self._locations.client(location)
