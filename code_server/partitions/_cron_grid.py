"""The wall-clock times at which a cron schedule fires, numbered by integers.

A *wall time* is a naive local time, counted in seconds since 1970-01-01 00:00 (so a day is
``wall // 86400`` and the time of day ``wall % 86400``). Cron schedules are defined on wall
times, so the grid of matching wall times does not depend on the time zone; the time zone only
decides which instant each wall time is (see ``_tick_timeline``).

The common shapes are arithmetic: schedules that repeat every hour, day or week
(:class:`PeriodicGrid`) and schedules on fixed days of the month (:class:`MonthGrid`). Anything
else (``L``, ``#``, days 29-31, a day of month *and* a day of week) walks with croniter.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from bisect import bisect_left
from datetime import date, datetime, timedelta

from croniter import croniter

SECONDS_PER_DAY = 86400
SECONDS_PER_WEEK = 7 * SECONDS_PER_DAY
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_EPOCH = datetime(1970, 1, 1)
#: 1970-01-04, the first Sunday after the epoch (cron weeks start on Sunday = 0).
_FIRST_SUNDAY = 3 * SECONDS_PER_DAY


def wall_of(moment: datetime) -> int:
    """The wall-clock fields of ``moment`` (its zone ignored) as a wall time."""
    return (
        (moment.toordinal() - EPOCH_ORDINAL) * SECONDS_PER_DAY
        + moment.hour * 3600
        + moment.minute * 60
        + moment.second
    )


class CronScheduleError(ValueError):
    """A cron schedule is malformed or never fires."""


class WallGrid(ABC):
    """The sorted wall times of a cron schedule; ``wall_at(g)`` for every int ``g``."""

    @abstractmethod
    def wall_at(self, index: int) -> int:
        """The wall time numbered ``index``."""

    @abstractmethod
    def index_at_or_after(self, wall: int) -> int:
        """The number of the first wall time at or after ``wall``."""

    def walls(self, first: int, stop: int) -> list[int]:
        """The wall times numbered ``first`` to ``stop - 1``."""
        wall_at = self.wall_at
        return [wall_at(index) for index in range(first, stop)]


class PeriodicGrid(WallGrid):
    """Wall times repeating every ``period`` seconds at ``offsets`` into each period.

    Hourly, daily and weekly schedules (``15 * * * *``, ``0 */6 * * *``, ``30 9 * * 1-5``): their
    wall times are ``phase + q * period + offsets[j]``, numbered ``q * len(offsets) + j``.
    """

    def __init__(self, period: int, offsets: list[int], phase: int = 0) -> None:
        self.period = period
        self.offsets = offsets
        self.phase = phase
        self.per_period = len(offsets)

    def wall_at(self, index: int) -> int:
        quotient, position = divmod(index, self.per_period)
        return self.phase + quotient * self.period + self.offsets[position]

    def index_at_or_after(self, wall: int) -> int:
        quotient, remainder = divmod(wall - self.phase, self.period)
        return quotient * self.per_period + bisect_left(self.offsets, remainder)

    def walls(self, first: int, stop: int) -> list[int]:
        if self.per_period == 1:
            start = self.wall_at(first)
            return list(range(start, start + (stop - first) * self.period, self.period))
        return super().walls(first, stop)

    def times_of_day(self) -> list[int] | None:
        """The seconds into the day of the wall times of each day, if every day has the same ones
        (then grid number ``g`` is day ``g // len(times)`` since 1970 at ``times[g % len(times)]``)."""
        if SECONDS_PER_DAY % self.period or self.phase:
            return None
        return [start + offset for start in range(0, SECONDS_PER_DAY, self.period) for offset in self.offsets]


class MonthGrid(WallGrid):
    """Wall times on fixed days (1-28) of chosen months at fixed times of day (``0 6 1 * *``).

    Every chosen month holds the same ``offsets`` (seconds after the month's first midnight), so
    wall time number ``(year * len(months) + m) * len(offsets) + j`` is ``offsets[j]`` into the
    month ``months[m]`` of ``year``.
    """

    def __init__(self, months: list[int], offsets: list[int]) -> None:
        self.months = months
        self.offsets = offsets
        self.per_month = len(offsets)

    def wall_at(self, index: int) -> int:
        month_number, position = divmod(index, self.per_month)
        year, month_position = divmod(month_number, len(self.months))
        first_of_month = date(year, self.months[month_position], 1).toordinal() - EPOCH_ORDINAL
        return first_of_month * SECONDS_PER_DAY + self.offsets[position]

    def index_at_or_after(self, wall: int) -> int:
        day, time_of_day = divmod(wall, SECONDS_PER_DAY)
        today = date.fromordinal(day + EPOCH_ORDINAL)
        into_month = (today.day - 1) * SECONDS_PER_DAY + time_of_day
        month_position = bisect_left(self.months, today.month)
        if month_position < len(self.months) and self.months[month_position] == today.month:
            position = bisect_left(self.offsets, into_month)
            if position < self.per_month:
                return (today.year * len(self.months) + month_position) * self.per_month + position
            month_position += 1
        return (today.year * len(self.months) + month_position) * self.per_month


class CroniterGrid(WallGrid):
    """Any cron schedule, walked with croniter and remembered; wall time 0 is the first at/after ``anchor``."""

    #: croniter costs about 0.1 ms a step, so walk in batches that start small and double.
    _FIRST_BATCH = 8
    _MAX_BATCH = 1024

    def __init__(self, cron_schedule: str, anchor: int) -> None:
        self.cron_schedule = cron_schedule
        self._after: list[int] = []  # wall times numbered 0, 1, 2, ...
        self._before: list[int] = []  # wall times numbered -1, -2, ...
        self._lock = threading.Lock()
        first = self._walk(anchor - 1, forward=True, count=1)
        if not first:
            raise CronScheduleError(f"cron schedule {cron_schedule!r} never fires")
        self._after.extend(first)

    def wall_at(self, index: int) -> int:
        if index >= 0:
            while index >= len(self._after):
                self._extend_after()
            return self._after[index]
        while -index > len(self._before):
            self._extend_before()
        return self._before[-index - 1]

    def index_at_or_after(self, wall: int) -> int:
        if wall > self._after[0]:
            while self._after[-1] < wall:
                self._extend_after()
            return bisect_left(self._after, wall)
        while self._earliest() >= wall:
            self._extend_before()
        # ``_before`` descends; count its entries at or after ``wall``.
        low, high = 0, len(self._before)
        while low < high:
            middle = (low + high) // 2
            if self._before[middle] >= wall:
                low = middle + 1
            else:
                high = middle
        return -low

    def _extend_after(self) -> None:
        with self._lock:
            count = min(max(len(self._after), self._FIRST_BATCH), self._MAX_BATCH)
            self._after.extend(self._walk(self._after[-1], forward=True, count=count))

    def _extend_before(self) -> None:
        with self._lock:
            count = min(max(len(self._before), self._FIRST_BATCH), self._MAX_BATCH)
            self._before.extend(self._walk(self._earliest(), forward=False, count=count))

    def _earliest(self) -> int:
        return self._before[-1] if self._before else self._after[0]

    def _walk(self, wall: int, *, forward: bool, count: int) -> list[int]:
        """Up to ``count`` wall times strictly after (or before) ``wall``, nearest first."""
        try:
            walker = croniter(self.cron_schedule, _EPOCH + timedelta(seconds=wall))
            step = walker.get_next if forward else walker.get_prev
            found: list[int] = []
            for _ in range(count):
                moment: datetime = step(datetime)
                found.append((moment - _EPOCH) // timedelta(seconds=1))
            return found
        except (ValueError, ArithmeticError) as exc:  # croniter's "no date" errors are ValueErrors
            direction = "after" if forward else "before"
            moment_text = f"{_EPOCH + timedelta(seconds=wall):%Y-%m-%d %H:%M}"
            raise CronScheduleError(
                f"cron schedule {self.cron_schedule!r} has no time {direction} {moment_text} ({exc})"
            ) from exc


class CronSchedule:
    """A validated five-field cron schedule and the grid of its wall times."""

    def __init__(self, cron_schedule: str) -> None:
        if not isinstance(cron_schedule, str):
            raise CronScheduleError(f"{cron_schedule!r} is not a cron schedule string")
        try:
            fields, nth_weekday = croniter.expand(cron_schedule)
        except (ValueError, KeyError, TypeError) as exc:  # croniter's parse errors derive from ValueError
            raise CronScheduleError(f"{cron_schedule!r} is not a valid cron schedule: {exc}") from exc
        if len(fields) != 5:
            raise CronScheduleError(
                f"{cron_schedule!r} is not a five-field cron schedule (minute hour day-of-month month day-of-week)"
            )
        self.cron_schedule = cron_schedule
        self._fields = fields
        self._nth_weekday = nth_weekday
        hours, days, months = fields[1], fields[2], fields[3]
        if months == [2] and all(isinstance(day, int) and day >= 30 for day in days):
            raise CronScheduleError(f"{cron_schedule!r} never fires: February has no day {days[0]}")
        #: Whether the hour field is ``*``: such schedules fire at every instant whose wall time
        #: matches (both 01:00s on a fall-back day, none in a skipped hour), as in Dagster.
        self.repeats_every_hour = hours == ["*"]

    def grid(self, anchor: int) -> WallGrid:
        """The grid of wall times; ``anchor`` (a wall time) numbers the croniter fallback."""
        minutes, hours, days, months, weekdays = self._fields
        arithmetic = not self._nth_weekday and all(
            value == "*" or isinstance(value, int) for field in self._fields for value in field
        )
        if arithmetic:
            minute_list = list(range(60)) if minutes == ["*"] else sorted(int(m) for m in minutes)
            hour_list = list(range(24)) if hours == ["*"] else sorted(int(h) for h in hours)
            times = sorted(hour * 3600 + minute * 60 for hour in hour_list for minute in minute_list)
            if days == ["*"] and months == ["*"]:
                if weekdays == ["*"]:
                    if hours == ["*"]:
                        return PeriodicGrid(3600, [minute * 60 for minute in minute_list])
                    return PeriodicGrid(SECONDS_PER_DAY, times)
                weekday_set = sorted({int(day) % 7 for day in weekdays})
                offsets = sorted(day * SECONDS_PER_DAY + time for day in weekday_set for time in times)
                return PeriodicGrid(SECONDS_PER_WEEK, offsets, phase=_FIRST_SUNDAY)
            if weekdays == ["*"] and days != ["*"] and all(int(day) <= 28 for day in days):
                month_list = list(range(1, 13)) if months == ["*"] else sorted(int(m) for m in months)
                offsets = sorted((int(day) - 1) * SECONDS_PER_DAY + time for day in days for time in times)
                return MonthGrid(month_list, offsets)
        return CroniterGrid(self.cron_schedule, anchor)
