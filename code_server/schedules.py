"""``@schedule``: user code the control plane evaluates at each cron time in a time zone."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from datetime import datetime
from enum import Enum
from typing import Any, overload

import pendulum
from croniter import croniter

from code_server.asset_selection import AssetSelection, CoercibleToAssetSelection, coerce_asset_selection
from code_server.errors import DefinitionError


class DefaultScheduleStatus(Enum):
    RUNNING = "RUNNING"
    STOPPED = "STOPPED"


class ScheduleEvaluationContext:
    """What a schedule sees: the tick time it is evaluated for, in its execution time zone."""

    def __init__(self, *, scheduled_execution_time: datetime, schedule_name: str | None = None) -> None:
        self._scheduled_execution_time = scheduled_execution_time
        self._schedule_name = schedule_name

    @property
    def scheduled_execution_time(self) -> datetime:
        return self._scheduled_execution_time

    @property
    def schedule_name(self) -> str | None:
        return self._schedule_name


class ScheduleDefinition:
    """A cron schedule over a target; with no function, each tick requests one run of the target."""

    def __init__(
        self,
        *,
        name: str,
        cron_schedule: str,
        target: AssetSelection | None,
        evaluation_fn: Callable[..., Any] | None = None,
        execution_timezone: str | None = None,
        default_status: DefaultScheduleStatus = DefaultScheduleStatus.STOPPED,
        description: str | None = None,
    ) -> None:
        if not croniter.is_valid(cron_schedule) or len(cron_schedule.split()) != 5:
            raise DefinitionError(
                f"Schedule {name!r}: {cron_schedule!r} is not a valid five-field cron schedule."
            )
        timezone = execution_timezone or "UTC"
        try:
            pendulum.timezone(timezone)
        except Exception as error:
            raise DefinitionError(f"Schedule {name!r}: unknown execution_timezone {timezone!r}.") from error
        self.name = name
        self.cron_schedule = cron_schedule
        self.target = target
        self.evaluation_fn = evaluation_fn
        self.execution_timezone = timezone
        self.default_status = default_status
        self.description = description
        self.takes_context = evaluation_fn is not None and bool(inspect.signature(evaluation_fn).parameters)

    def __repr__(self) -> str:
        return f"<ScheduleDefinition {self.name} {self.cron_schedule!r} {self.execution_timezone}>"


@overload
def schedule(
    *,
    cron_schedule: str,
    target: CoercibleToAssetSelection | None = None,
    execution_timezone: str | None = None,
    default_status: DefaultScheduleStatus = DefaultScheduleStatus.STOPPED,
    name: str | None = None,
    description: str | None = None,
) -> Callable[[Callable[..., Any]], ScheduleDefinition]: ...


@overload
def schedule(
    cron_schedule: str,
    /,
    *,
    target: CoercibleToAssetSelection | None = None,
    execution_timezone: str | None = None,
    default_status: DefaultScheduleStatus = DefaultScheduleStatus.STOPPED,
    name: str | None = None,
    description: str | None = None,
) -> Callable[[Callable[..., Any]], ScheduleDefinition]: ...


def schedule(
    cron_schedule: str | None = None,
    /,
    *,
    target: CoercibleToAssetSelection | None = None,
    execution_timezone: str | None = None,
    default_status: DefaultScheduleStatus = DefaultScheduleStatus.STOPPED,
    name: str | None = None,
    description: str | None = None,
    **kwargs: Any,
) -> Callable[[Callable[..., Any]], ScheduleDefinition]:
    """Declare a schedule with Dagster's arguments (``cron_schedule`` positional or by keyword)."""
    cron = cron_schedule or kwargs.pop("cron_schedule", None)
    if kwargs:
        raise DefinitionError(f"@schedule got unexpected arguments {sorted(kwargs)}.")
    if not cron:
        raise DefinitionError("@schedule needs a cron_schedule, e.g. @schedule(cron_schedule='0 0 * * *').")

    def build(evaluation_fn: Callable[..., Any]) -> ScheduleDefinition:
        return ScheduleDefinition(
            name=name or evaluation_fn.__name__,
            cron_schedule=cron,
            target=None if target is None else coerce_asset_selection(target),
            evaluation_fn=evaluation_fn,
            execution_timezone=execution_timezone,
            default_status=default_status,
            description=description if description is not None else inspect.getdoc(evaluation_fn),
        )

    return build
