"""When sensors and schedules are due: pure functions of their definition, their state and the time.

Schedules read their cron expression in wall-clock time of their ``execution_timezone``. Cron times
are generated on the naive wall clock (so a daily 03:00 stays 03:00 across DST changes) and made
aware afterwards: a wall time skipped by a spring-forward runs when the clock would have shown it
(an hour later, what zoneinfo's ``fold=0`` gives); a wall time repeated by a fall-back runs once,
at its first occurrence, unless the cron matches every hour, in which case both occurrences run.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter

#: Schedule ticks missed while the control plane was down that are still run when it is back.
MAX_CATCH_UP_TICKS = 5

#: Slack around a window on the naive wall clock, wide enough for any UTC offset change.
_SLACK = timedelta(hours=3)


def sensor_is_due(last_tick_at: datetime | None, minimum_interval_seconds: int, now: datetime) -> bool:
    return last_tick_at is None or now >= last_tick_at + timedelta(seconds=max(1, minimum_interval_seconds))


def next_sensor_tick_at(last_tick_at: datetime | None, minimum_interval_seconds: int) -> datetime | None:
    if last_tick_at is None:
        return None
    return last_tick_at + timedelta(seconds=max(1, minimum_interval_seconds))


def due_schedule_times(
    cron_schedule: str,
    timezone: str,
    *,
    after: datetime,
    now: datetime,
    limit: int = MAX_CATCH_UP_TICKS,
) -> list[datetime]:
    """Cron times in ``(after, now]``, oldest first, at most the latest ``limit`` of them (in UTC)."""
    zone = ZoneInfo(timezone)
    found: list[datetime] = []
    for moment in _backwards(cron_schedule, zone, now):
        if moment <= after:
            break
        found.append(moment)
        if len(found) >= limit:
            break
    return sorted(found)


def next_schedule_time(cron_schedule: str, timezone: str, after: datetime) -> datetime:
    """The first cron time strictly after ``after`` (in UTC)."""
    zone = ZoneInfo(timezone)
    start = after.astimezone(zone).replace(tzinfo=None) - _SLACK
    iterator = croniter(cron_schedule, start)
    every_hour = _matches_every_hour(cron_schedule)
    while True:
        wall: datetime = iterator.get_next(datetime)
        for moment in _aware(wall, zone, every_hour):
            if moment > after:
                return moment


def _backwards(cron_schedule: str, zone: ZoneInfo, now: datetime) -> Iterator[datetime]:
    """Cron times at or before ``now``, newest first, each once."""
    start = now.astimezone(zone).replace(tzinfo=None) + _SLACK
    iterator = croniter(cron_schedule, start)
    every_hour = _matches_every_hour(cron_schedule)
    seen: set[datetime] = set()
    while True:
        wall: datetime = iterator.get_prev(datetime)
        for moment in sorted(_aware(wall, zone, every_hour), reverse=True):
            if moment > now or moment in seen:
                continue
            seen.add(moment)
            yield moment


def _aware(wall: datetime, zone: ZoneInfo, every_hour: bool) -> list[datetime]:
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    # Both folds differ only for a repeated (fall-back) wall time, or a skipped one (spring-forward),
    # where fold=1 would fall *before* the transition: only a repeated time keeps its second run.
    if every_hour and second > first:
        return [first, second]
    return [first]


def _matches_every_hour(cron_schedule: str) -> bool:
    fields = cron_schedule.split()
    return len(fields) >= 2 and fields[1] == "*"
