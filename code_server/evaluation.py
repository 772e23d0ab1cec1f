"""Run a sensor or schedule function and normalize whatever it returns into one result."""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from code_server.asset_graph import AssetGraph
from code_server.asset_key import AssetKey
from code_server.asset_selection import AssetSelection
from code_server.errors import DefinitionError
from code_server.run_request import RunRequest, SensorResult, SkipReason
from code_server.schedules import ScheduleDefinition, ScheduleEvaluationContext
from code_server.sensors import SensorDefinition, SensorEvaluationContext


@dataclass(frozen=True, slots=True)
class TickEvaluation:
    """One evaluation: run/backfill requests with explicit asset selections, or a skip, and a cursor."""

    run_requests: tuple[RunRequest, ...]
    skip_reason: str | None = None
    cursor: str | None = None

    @property
    def backfill_requests(self) -> tuple[RunRequest, ...]:
        return tuple(request for request in self.run_requests if request.requires_backfill)


def evaluate_sensor(
    sensor: SensorDefinition, context: SensorEvaluationContext, graph: AssetGraph
) -> TickEvaluation:
    """Call the sensor; user exceptions propagate to the caller, which records them on the tick."""
    returned = sensor.evaluation_fn(context) if sensor.takes_context else sensor.evaluation_fn()
    requests, skip_reason, cursor = _collect(returned, owner=f"sensor {sensor.name!r}")
    if cursor is not None:
        context.update_cursor(cursor)
    return TickEvaluation(
        run_requests=_with_targets(requests, sensor.target, graph, owner=f"sensor {sensor.name!r}"),
        skip_reason=skip_reason,
        cursor=context.cursor,
    )


def evaluate_schedule(
    schedule: ScheduleDefinition, context: ScheduleEvaluationContext, graph: AssetGraph
) -> TickEvaluation:
    """Call the schedule (or, without a function, request one run of its target)."""
    owner = f"schedule {schedule.name!r}"
    if schedule.evaluation_fn is None:
        returned: Any = RunRequest()
    elif schedule.takes_context:
        returned = schedule.evaluation_fn(context)
    else:
        returned = schedule.evaluation_fn()
    requests, skip_reason, _ = _collect(returned, owner=owner)
    return TickEvaluation(
        run_requests=_with_targets(requests, schedule.target, graph, owner=owner), skip_reason=skip_reason
    )


def _collect(returned: Any, *, owner: str) -> tuple[list[RunRequest], str | None, str | None]:
    """Accept what Dagster accepts: a request, a skip, a SensorResult, a list or a generator of them."""
    if returned is None:
        return [], None, None
    if isinstance(returned, SensorResult):
        requests = list(returned.run_requests or [])
        skip = returned.skip_reason
        skip_text = skip.skip_message if isinstance(skip, SkipReason) else skip
        _check_requests(requests, owner)
        return requests, skip_text, returned.cursor
    if isinstance(returned, RunRequest | SkipReason):
        items: list[Any] = [returned]
    elif (isinstance(returned, Iterable) and not isinstance(returned, str | bytes)) or inspect.isgenerator(
        returned
    ):
        items = list(returned)
    else:
        raise DefinitionError(
            f"{owner} returned {type(returned).__name__}; return or yield RunRequest, SkipReason or SensorResult."
        )
    skips = [item for item in items if isinstance(item, SkipReason)]
    requests = [item for item in items if not isinstance(item, SkipReason)]
    _check_requests(requests, owner)
    if skips and requests:
        raise DefinitionError(
            f"{owner} returned both run requests and a SkipReason; return one or the other."
        )
    return requests, (skips[0].skip_message if skips else None), None


def _check_requests(items: list[Any], owner: str) -> None:
    for item in items:
        if not isinstance(item, RunRequest):
            raise DefinitionError(
                f"{owner} produced {type(item).__name__}; only RunRequest and SkipReason may be returned."
            )


def _with_targets(
    requests: list[RunRequest], target: AssetSelection | None, graph: AssetGraph, *, owner: str
) -> tuple[RunRequest, ...]:
    """Give every request an explicit, known asset selection (the target's, when it named none)."""
    target_keys: list[AssetKey] | None = None
    resolved: list[RunRequest] = []
    for request in requests:
        if request.asset_selection is None:
            if target is None:
                raise DefinitionError(
                    f"{owner} returned a RunRequest without asset_selection and has no target; "
                    "set target=... on the decorator or asset_selection=... on the request."
                )
            if target_keys is None:
                target_keys = graph.toposort(target.resolve(graph))
            request = request.with_asset_selection(target_keys)
        else:
            graph.validate_keys(request.asset_selection)
        resolved.append(request)
    return tuple(resolved)
