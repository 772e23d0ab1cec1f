"""Properties of time-window partitions across time zones with daylight saving time.

Definitions are drawn near DST transitions on purpose (most starts fall in March, April, October or
November), in zones that shift by an hour in either hemisphere, by half an hour (Lord Howe), at
midnight (Santiago), or from 23:00 to midnight (Nuuk since 2024), besides fixed ones. Spans are kept short so the whole module runs in seconds.
"""

from __future__ import annotations

import bisect
import functools
import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from croniter import croniter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from code_server.partitions.keys import PartitionKeyRange
from code_server.partitions.time_window import (
    DailyPartitionsDefinition,
    HourlyPartitionsDefinition,
    MonthlyPartitionsDefinition,
    TimeWindowPartitionsDefinition,
    WeeklyPartitionsDefinition,
)

ZONES = [
    "UTC",
    "America/Chicago",
    "Europe/Berlin",
    "Australia/Lord_Howe",
    "America/Santiago",
    "Asia/Kolkata",
    "Pacific/Chatham",
    "America/St_Johns",
    "America/Nuuk",
]
CRONS = [
    ("*/15 * * * *", "%Y-%m-%d %H:%M", timedelta(hours=30)),
    ("0 */6 * * *", "%Y-%m-%d-%H:%M", timedelta(days=12)),
    ("30 9 * * 1-5", "%Y-%m-%d", timedelta(days=40)),
    ("0 0 L * *", "%Y-%m-%d", timedelta(days=400)),
    ("0 12 1,15 * *", "%Y-%m-%d", timedelta(days=200)),
    ("30 2 * * *", "%Y-%m-%d %H:%M", timedelta(days=60)),
    ("0 23 * * *", "%d %b %Y", timedelta(days=60)),  # read back with strptime, not the fast path
]
PROPERTY_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@dataclass
class Case:
    definition: TimeWindowPartitionsDefinition
    now: datetime

    def __repr__(self) -> str:
        return f"Case({self.definition!r}, now={self.now.isoformat()})"


#: How far before a DST transition a definition may start, and how far after it ``now`` may be.
LEAD_AND_EXTRA = {
    "hourly": timedelta(hours=30),
    "daily": timedelta(days=6),
    "weekly": timedelta(weeks=3),
    "monthly": timedelta(days=70),
}


@functools.cache
def transitions(zone_name: str, year: int) -> tuple[int, ...]:
    """Instants at which the zone's UTC offset changes during ``year`` (found independently of the
    code under test: daily probes, then bisection)."""
    zone = _zone(zone_name)
    probe = int(datetime(year, 1, 1, tzinfo=UTC).timestamp())
    found: list[int] = []
    for _ in range(366):
        if (
            datetime.fromtimestamp(probe, zone).utcoffset()
            != datetime.fromtimestamp(probe + 86400, zone).utcoffset()
        ):
            found.append(_gap_end(zone, probe, probe + 86400))
        probe += 86400
    return tuple(found)


@st.composite
def cases(draw: st.DrawFn) -> Case:
    """A definition starting shortly before a DST transition (mostly), and a current time after it."""
    zone = draw(st.sampled_from(ZONES))
    kind = draw(st.sampled_from(["hourly", "daily", "weekly", "monthly", "cron"]))
    cron_schedule, fmt, longest = draw(st.sampled_from(CRONS))
    reach = longest / 2 if kind == "cron" else LEAD_AND_EXTRA[kind]
    year = draw(st.integers(1975, 2045))
    near = transitions(zone, year)
    if near and draw(st.sampled_from([True, True, True, False])):
        pivot = draw(st.sampled_from(near))
    else:
        pivot = int(
            datetime(year, draw(st.integers(1, 12)), draw(st.integers(1, 28)), tzinfo=UTC).timestamp()
        )
    lead = reach * draw(st.floats(0, 1))
    start = datetime.fromtimestamp(pivot - lead.total_seconds(), _zone(zone)).replace(tzinfo=None, second=0)
    start = start.replace(minute=start.minute - start.minute % draw(st.sampled_from([1, 15, 60])))
    minute = draw(st.sampled_from([0, 0, 30, 45]))
    hour = draw(st.sampled_from([0, 1, 2, 3, 12, 23]))
    definition: TimeWindowPartitionsDefinition
    if kind == "hourly":
        definition = HourlyPartitionsDefinition(start, minute_offset=minute, timezone=zone)
    elif kind == "daily":
        definition = DailyPartitionsDefinition(start, minute_offset=minute, hour_offset=hour, timezone=zone)
    elif kind == "weekly":
        day = draw(st.integers(0, 6))
        definition = WeeklyPartitionsDefinition(start, hour_offset=hour, day_offset=day, timezone=zone)
    elif kind == "monthly":
        day = draw(st.sampled_from([1, 5, 28, 30, 31]))
        definition = MonthlyPartitionsDefinition(start, hour_offset=hour, day_offset=day, timezone=zone)
    else:
        definition = TimeWindowPartitionsDefinition(cron_schedule, start, fmt, timezone=zone)
    now = datetime.fromtimestamp(pivot, UTC) + reach * draw(st.floats(0, 1))
    return Case(definition, now)


# -- a slow, obviously correct reference of Dagster's rules -------------------------------------------


def _zone(name: str) -> tzinfo:
    return UTC if name == "UTC" else ZoneInfo(name)


def _gap_end(zone: tzinfo, low: float, high: float) -> int:
    """The instant in ``[low, high]`` at which the zone's offset changes."""
    a, b = int(low), int(high)
    offset = datetime.fromtimestamp(a, zone).utcoffset()
    while b - a > 1:
        middle = (a + b) // 2
        if datetime.fromtimestamp(middle, zone).utcoffset() == offset:
            a = middle
        else:
            b = middle
    return b


def reference_keys(definition: TimeWindowPartitionsDefinition, now: datetime) -> list[str]:
    """Keys by brute force: every matching instant (schedules repeating every hour) or every matching
    wall time mapped to one instant (others), then the windows that have ended by ``now``.

    A key shows the local time of its window's start (as Dagster's do, also for a window starting at
    the end of a spring-forward gap), with the offset appended to the second of two equal hours; but
    a window starting at the end of a gap whose key would repeat the next window's (a gap crossing
    midnight under a date-only format) is keyed by the skipped wall time it was scheduled for."""
    zone, cron = _zone(definition.timezone), definition.cron_schedule
    low, high = definition.start.timestamp(), now.timestamp()
    fields = cron.split()
    instants: list[int] = []
    keys_by_instant: dict[int, str] = {}
    if fields[1] == "*":  # repeats every hour: only minute fields vary in these tests
        minutes = set(croniter.expand(cron)[0][0])
        first = int(low) - int(low) % 60
        instants = [
            moment
            for moment in range(first, int(high) + 60, 60)
            if moment >= low and datetime.fromtimestamp(moment, zone).minute in minutes
        ]
    else:
        wall = datetime.fromtimestamp(low, zone).replace(tzinfo=None) - timedelta(days=2)
        walker = croniter(cron, wall)
        walls_by_instant: dict[int, datetime] = {}
        while wall < datetime.fromtimestamp(high, zone).replace(tzinfo=None) + timedelta(days=40):
            wall = walker.get_next(datetime)
            early = wall.replace(tzinfo=zone, fold=0).timestamp()
            late = wall.replace(tzinfo=zone, fold=1).timestamp()
            if early == late:
                moment = int(early)
            elif datetime.fromtimestamp(early, zone).replace(tzinfo=None) == wall:
                moment = int(max(early, late))  # repeated wall time: its second instant
            else:
                moment = _gap_end(zone, min(early, late), max(early, late))  # skipped: end of the gap
            if moment >= low:
                walls_by_instant.setdefault(moment, wall)  # the first wall time firing then
        instants = sorted(walls_by_instant)
        following = None
        for moment in reversed(instants):
            key = _reference_key(definition, moment)
            scheduled = walls_by_instant[moment]
            at_gap_end = datetime.fromtimestamp(moment, zone).replace(tzinfo=None) != scheduled
            if "%z" not in definition.fmt and at_gap_end and key == following:
                key = scheduled.strftime(definition.fmt)
            keys_by_instant[moment] = following = key
    ended = [start for start, end in itertools.pairwise(instants) if end <= high]
    return [keys_by_instant.get(moment) or _reference_key(definition, moment) for moment in ended]


def _reference_key(definition: TimeWindowPartitionsDefinition, moment: int) -> str:
    local = datetime.fromtimestamp(moment, _zone(definition.timezone))
    key = local.strftime(definition.fmt)
    repeats_every_hour = definition.cron_schedule.split()[1] == "*"
    if repeats_every_hour and local.fold == 1 and local.replace(fold=0).utcoffset() != local.utcoffset():
        key += local.strftime("%z")
    return key


# -- properties ------------------------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(cases())
def test_keys_are_what_the_reference_finds(case: Case) -> None:
    assert case.definition.get_partition_keys(current_time=case.now) == reference_keys(
        case.definition, case.now
    )


@PROPERTY_SETTINGS
@given(cases())
def test_every_key_round_trips_through_its_window_and_index(case: Case) -> None:
    definition = case.definition
    keys = definition.get_partition_keys(current_time=case.now)
    assert definition.num_partitions(current_time=case.now) == len(keys)
    for index, key in enumerate(keys):
        window = definition.time_window_for_partition_key(key)
        assert definition.get_partition_key_for_timestamp(window.start) == key
        assert definition.partition_key_index(key) == index
        assert definition.partition_key_at_index(index) == key
        at_index = definition.time_window_at_index(index)
        assert (at_index.start.timestamp(), at_index.end.timestamp()) == (
            window.start.timestamp(),
            window.end.timestamp(),
        )
        assert window.start.utcoffset() == at_index.start.utcoffset()
        assert definition.has_partition_key(key, current_time=case.now)


@PROPERTY_SETTINGS
@given(cases())
def test_windows_are_contiguous_increasing_and_in_key_order(case: Case) -> None:
    definition = case.definition
    keys = definition.get_partition_keys(current_time=case.now)
    windows = [definition.time_window_for_partition_key(key) for key in keys]
    assert len(set(keys)) == len(keys)
    for window in windows:
        assert window.start.timestamp() < window.end.timestamp()
        assert str(window.start.tzinfo) == definition.timezone or definition.timezone == "UTC"
    for before, after in itertools.pairwise(windows):
        assert before.end.timestamp() == after.start.timestamp()
        assert (before.end.utcoffset(), before.end.fold) == (after.start.utcoffset(), after.start.fold)
    if windows:
        assert windows[0].start.timestamp() >= definition.start.timestamp()
        assert definition.time_window_at_index(-1).start.timestamp() < definition.start.timestamp()
        assert windows[-1].end.timestamp() <= case.now.timestamp()
    assert definition.time_window_at_index(len(keys)).end.timestamp() > case.now.timestamp()


@PROPERTY_SETTINGS
@given(cases(), st.data())
def test_ranges_and_timestamps_agree_with_the_key_list(case: Case, data: st.DataObject) -> None:
    definition = case.definition
    keys = list(definition.get_partition_keys(current_time=case.now))
    if not keys:
        return
    first = data.draw(st.integers(0, len(keys) - 1))
    last = data.draw(st.integers(first, len(keys) - 1))
    key_range = PartitionKeyRange(keys[first], keys[last])
    assert definition.get_partition_keys_in_range(key_range) == keys[first : last + 1]
    span = definition.time_window_for_partition_key_range(key_range)
    assert definition.get_partition_keys_in_time_window(span) == keys[first : last + 1]

    window = definition.time_window_for_partition_key(keys[first])
    length = int(window.end.timestamp() - window.start.timestamp())
    inside = (
        window.start.timestamp()
        + data.draw(st.integers(0, length - 1))
        + data.draw(st.sampled_from([0, 0.5]))
    )
    moment = datetime.fromtimestamp(inside, UTC)
    assert definition.get_partition_key_for_timestamp(moment) == keys[first]
    starts = [definition.time_window_for_partition_key(key).start.timestamp() for key in keys]
    assert definition.index_of_time(moment) == bisect.bisect_right(starts, inside) - 1


@PROPERTY_SETTINGS
@given(cases())
def test_every_key_shows_its_window_s_real_start(case: Case) -> None:
    """Dagster's keys: the local time of the window's start, never a wall time the clocks skip;
    only a key that would repeat the next one keeps the wall time its window was scheduled for."""
    definition = case.definition
    zone = _zone(definition.timezone)
    for index, key in enumerate(definition.get_partition_keys(current_time=case.now)):
        start = definition.time_window_for_partition_key(key).start
        shown = start.strftime(definition.fmt)
        if key != shown:
            assert key == shown + start.strftime("%z") or shown == definition.partition_key_at_index(
                index + 1
            )
        if "%H" in definition.fmt and "%z" not in definition.fmt:
            wall = datetime.strptime(key[: len(shown)], definition.fmt)
            assert (
                datetime.fromtimestamp(wall.replace(tzinfo=zone).timestamp(), zone).replace(tzinfo=None)
                == wall
            )
