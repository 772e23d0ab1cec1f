"""``@sensor``: user code the control plane evaluates every ``minimum_interval_seconds``."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from datetime import datetime
from enum import Enum
from typing import Any, overload

from code_server.asset_selection import AssetSelection, CoercibleToAssetSelection, coerce_asset_selection
from code_server.errors import DefinitionError

DEFAULT_SENSOR_INTERVAL_SECONDS = 30


class DefaultSensorStatus(Enum):
    RUNNING = "RUNNING"
    STOPPED = "STOPPED"


class SensorEvaluationContext:
    """What a sensor sees: its cursor and when its last tick completed."""

    def __init__(
        self,
        *,
        cursor: str | None = None,
        last_tick_completion_time: datetime | None = None,
        sensor_name: str | None = None,
    ) -> None:
        self._cursor = cursor
        self._last_tick_completion_time = last_tick_completion_time
        self._sensor_name = sensor_name

    @property
    def cursor(self) -> str | None:
        return self._cursor

    def update_cursor(self, cursor: str | None) -> None:
        """Set the cursor the next tick sees; it is saved only if this tick succeeds."""
        self._cursor = cursor

    @property
    def last_tick_completion_time(self) -> float | None:
        """Seconds since the epoch, as in Dagster (None before the first tick)."""
        if self._last_tick_completion_time is None:
            return None
        return self._last_tick_completion_time.timestamp()

    @property
    def last_tick_completion_datetime(self) -> datetime | None:
        return self._last_tick_completion_time

    @property
    def sensor_name(self) -> str | None:
        return self._sensor_name


class SensorDefinition:
    """A sensor: a function, the assets it targets, how often it runs and whether it starts running."""

    def __init__(
        self,
        *,
        name: str,
        evaluation_fn: Callable[..., Any],
        target: AssetSelection | None,
        minimum_interval_seconds: int = DEFAULT_SENSOR_INTERVAL_SECONDS,
        default_status: DefaultSensorStatus = DefaultSensorStatus.STOPPED,
        description: str | None = None,
    ) -> None:
        if minimum_interval_seconds < 1:
            raise DefinitionError(f"Sensor {name!r}: minimum_interval_seconds must be at least 1.")
        self.name = name
        self.evaluation_fn = evaluation_fn
        self.target = target
        self.minimum_interval_seconds = minimum_interval_seconds
        self.default_status = default_status
        self.description = description
        self.takes_context = bool(inspect.signature(evaluation_fn).parameters)

    def __repr__(self) -> str:
        return f"<SensorDefinition {self.name}>"


@overload
def sensor(fn: Callable[..., Any], /) -> SensorDefinition: ...


@overload
def sensor(
    *,
    target: CoercibleToAssetSelection | None = None,
    asset_selection: CoercibleToAssetSelection | None = None,
    minimum_interval_seconds: int | None = None,
    default_status: DefaultSensorStatus = DefaultSensorStatus.STOPPED,
    name: str | None = None,
    description: str | None = None,
) -> Callable[[Callable[..., Any]], SensorDefinition]: ...


def sensor(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    target: CoercibleToAssetSelection | None = None,
    asset_selection: CoercibleToAssetSelection | None = None,
    minimum_interval_seconds: int | None = None,
    default_status: DefaultSensorStatus = DefaultSensorStatus.STOPPED,
    name: str | None = None,
    description: str | None = None,
) -> SensorDefinition | Callable[[Callable[..., Any]], SensorDefinition]:
    """Declare a sensor with Dagster's arguments; ``target`` and ``asset_selection`` are synonyms."""
    if target is not None and asset_selection is not None:
        raise DefinitionError("@sensor: pass target or asset_selection, not both.")
    selected = target if target is not None else asset_selection

    def build(evaluation_fn: Callable[..., Any]) -> SensorDefinition:
        return SensorDefinition(
            name=name or evaluation_fn.__name__,
            evaluation_fn=evaluation_fn,
            target=None if selected is None else coerce_asset_selection(selected),
            minimum_interval_seconds=minimum_interval_seconds or DEFAULT_SENSOR_INTERVAL_SECONDS,
            default_status=default_status,
            description=description if description is not None else inspect.getdoc(evaluation_fn),
        )

    return build(fn) if fn is not None else build
