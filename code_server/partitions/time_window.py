"""Partitions that are windows of time cut by a cron schedule: hourly, daily, weekly, monthly, any cron.

Semantics follow Dagster's, so ported code keeps its keys:

* A partition's key is the wall-clock start of its window in the definition's time zone, formatted
  with ``fmt``. Window ``i`` runs from the ``i``-th tick of the schedule at or after ``start`` to the
  next tick (closed-open); index 0 is the first window, negative indices come before it.
* A partition exists once its window has ended (``end_offset`` adds partitions past that, or
  removes them when negative), and only if its window ends by ``end`` (exclusive).
* Daylight saving time is real. Schedules whose hour field is ``*`` fire at every instant whose
  wall time matches: a spring-forward day has no key for the skipped hour, and on a fall-back day
  the second of the two equal hours gets its UTC offset appended (``2024-11-03-01:00-0600`` in
  America/Chicago). Other schedules fire once per wall time: a repeated one at its second instance,
  a skipped one at the end of the gap (a daily window is then 23 or 25 hours, or 23.5 for 02:30),
  and that window's key is its real start (``2020-03-08-03:00`` for ``0 2 * * *`` in
  America/Chicago). A wall time the clocks skip is no key; reading one names the key to use.

One corner case differs from Dagster on purpose, to keep keys unique: a window starting at the end
of a gap whose real-start key would repeat the next window's is keyed by the wall time it was
scheduled for (Dagster repeats the key when the gap crosses midnight under a date-only format, as
23:00-00:00 in America/Nuuk: both the 30th's window and the 31st's would be ``2024-03-31``).

Everything is computed by index arithmetic over the schedule's wall-clock grid and the zone's
offset transitions (see ``_tick_timeline``), so a 30-year daily key list, a key's window, or a
range of keys costs about what formatting the keys costs; nothing is iterated from ``start``.
"""

from __future__ import annotations

from datetime import datetime

from code_server.errors import DefinitionError
from code_server.partitions._time_window_definition import (
    DEFAULT_DATE_FORMAT,
    DEFAULT_HOURLY_FORMAT,
    TimeWindowPartitionsDefinition,
)

__all__ = [
    "DEFAULT_DATE_FORMAT",
    "DEFAULT_HOURLY_FORMAT",
    "DailyPartitionsDefinition",
    "HourlyPartitionsDefinition",
    "MonthlyPartitionsDefinition",
    "TimeWindowPartitionsDefinition",
    "WeeklyPartitionsDefinition",
]


def _check_offset(owner: str, name: str, value: object, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise DefinitionError(f"{owner} {name} must be an int from {low} to {high}, got {value!r}.")
    return value


class _ShapedPartitionsDefinition(TimeWindowPartitionsDefinition):
    """A time-window definition built from Dagster's named arguments; shows them in its repr."""

    _default_fmt = DEFAULT_DATE_FORMAT

    def _init_shape(
        self,
        cron_schedule: str,
        start_date: datetime | str,
        end_date: datetime | str | None,
        timezone: str | None,
        fmt: str | None,
        end_offset: int,
        offsets: dict[str, int],
    ) -> None:
        self._offsets = offsets
        super().__init__(
            cron_schedule,
            start_date,
            fmt if fmt is not None else self._default_fmt,
            end=end_date,
            timezone=timezone,
            end_offset=end_offset,
        )

    def _repr_arguments(self) -> dict[str, object]:
        arguments: dict[str, object] = {"start_date": self._shown_time(self._start_ts)}
        if self._end_ts is not None:
            arguments["end_date"] = self._shown_time(self._end_ts)
        defaults = {"day_offset": 1} if isinstance(self, MonthlyPartitionsDefinition) else {}
        arguments.update(
            {name: value for name, value in self._offsets.items() if value != defaults.get(name, 0)}
        )
        if self._timezone != "UTC":
            arguments["timezone"] = self._timezone
        if self._fmt != self._default_fmt:
            arguments["fmt"] = self._fmt
        if self._end_offset:
            arguments["end_offset"] = self._end_offset
        return arguments


class HourlyPartitionsDefinition(_ShapedPartitionsDefinition):
    """One partition per hour, starting ``minute_offset`` minutes past the hour (keys ``2024-01-01-00:00``)."""

    _default_fmt = DEFAULT_HOURLY_FORMAT

    def __init__(
        self,
        start_date: datetime | str,
        end_date: datetime | str | None = None,
        minute_offset: int = 0,
        timezone: str | None = None,
        fmt: str | None = None,
        end_offset: int = 0,
    ) -> None:
        name = type(self).__name__
        minute = _check_offset(name, "minute_offset", minute_offset, 0, 59)
        self._init_shape(
            f"{minute} * * * *", start_date, end_date, timezone, fmt, end_offset, {"minute_offset": minute}
        )


class DailyPartitionsDefinition(_ShapedPartitionsDefinition):
    """One partition per day, starting at ``hour_offset:minute_offset`` (keys ``2024-01-01``)."""

    def __init__(
        self,
        start_date: datetime | str,
        end_date: datetime | str | None = None,
        minute_offset: int = 0,
        hour_offset: int = 0,
        timezone: str | None = None,
        fmt: str | None = None,
        end_offset: int = 0,
    ) -> None:
        name = type(self).__name__
        minute = _check_offset(name, "minute_offset", minute_offset, 0, 59)
        hour = _check_offset(name, "hour_offset", hour_offset, 0, 23)
        self._init_shape(
            f"{minute} {hour} * * *",
            start_date,
            end_date,
            timezone,
            fmt,
            end_offset,
            {"minute_offset": minute, "hour_offset": hour},
        )


class WeeklyPartitionsDefinition(_ShapedPartitionsDefinition):
    """One partition per week, starting on ``day_offset`` (0 = Sunday) at ``hour_offset:minute_offset``."""

    def __init__(
        self,
        start_date: datetime | str,
        end_date: datetime | str | None = None,
        minute_offset: int = 0,
        hour_offset: int = 0,
        day_offset: int = 0,
        timezone: str | None = None,
        fmt: str | None = None,
        end_offset: int = 0,
    ) -> None:
        name = type(self).__name__
        minute = _check_offset(name, "minute_offset", minute_offset, 0, 59)
        hour = _check_offset(name, "hour_offset", hour_offset, 0, 23)
        day = _check_offset(name, "day_offset", day_offset, 0, 6)
        self._init_shape(
            f"{minute} {hour} * * {day}",
            start_date,
            end_date,
            timezone,
            fmt,
            end_offset,
            {"minute_offset": minute, "hour_offset": hour, "day_offset": day},
        )


class MonthlyPartitionsDefinition(_ShapedPartitionsDefinition):
    """One partition per month, starting on day ``day_offset`` (1-31) at ``hour_offset:minute_offset``.

    With a ``day_offset`` of 29 or more, months without that day have no partition start, as in cron.
    """

    def __init__(
        self,
        start_date: datetime | str,
        end_date: datetime | str | None = None,
        minute_offset: int = 0,
        hour_offset: int = 0,
        day_offset: int = 1,
        timezone: str | None = None,
        fmt: str | None = None,
        end_offset: int = 0,
    ) -> None:
        name = type(self).__name__
        minute = _check_offset(name, "minute_offset", minute_offset, 0, 59)
        hour = _check_offset(name, "hour_offset", hour_offset, 0, 23)
        day = _check_offset(name, "day_offset", day_offset, 1, 31)
        self._init_shape(
            f"{minute} {hour} {day} * *",
            start_date,
            end_date,
            timezone,
            fmt,
            end_offset,
            {"minute_offset": minute, "hour_offset": hour, "day_offset": day},
        )
