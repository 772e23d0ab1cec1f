"""Partitions that are windows of time cut by a cron schedule: hourly, daily, weekly, monthly, any cron.

Semantics follow Dagster's, so ported code keeps its keys:

* A partition's key is the wall-clock start of its window in the definition's time zone, formatted
  with ``fmt``. Window ``i`` runs from the ``i``-th tick of the schedule at or after ``start`` to the
  next tick (closed-open).
* A partition exists once its window has ended (``end_offset`` adds partitions past that, or
  removes them when negative), and only if its window ends by ``end`` (exclusive).
* Daylight saving time is real: on a spring-forward day an hourly schedule has no key for the
  skipped hour and a daily window lasts 23 hours; on a fall-back day it lasts 25 hours and the
  second of the two equal hours gets its UTC offset appended (``2024-11-03-01:00-0600`` in
  America/Chicago). Schedules that are not hourly fire at the end of a skipped time and at the
  second instance of a repeated one.

Everything is computed by index arithmetic over the schedule's wall-clock grid and the zone's
offset transitions (see ``_tick_timeline``), so a 30-year daily key list, a key's window, or a
range of keys costs what formatting the keys costs, and nothing is iterated from ``start``.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from code_server.errors import DefinitionError, PartitionKeyError, PartitionKeyRangeError
from code_server.partitions._cron_grid import (
    EPOCH_ORDINAL,
    SECONDS_PER_DAY,
    CronSchedule,
    CronScheduleError,
    WallGrid,
)
from code_server.partitions._key_format import KeyFormat
from code_server.partitions._tick_timeline import OutOfRangeError, TickTimeline
from code_server.partitions._zone_offsets import ZoneOffsets, zone_offsets
from code_server.partitions.base import DynamicPartitionsStore, PartitionsDefinition
from code_server.partitions.keys import PartitionKeyRange, TimeWindow

DEFAULT_DATE_FORMAT = "%Y-%m-%d"
_tuple_new = tuple.__new__


def _read_nothing(partition_key: str) -> None:
    return None


_from_timestamp = datetime.fromtimestamp
_SECOND = timedelta(seconds=1)
DEFAULT_HOURLY_FORMAT = "%Y-%m-%d-%H:%M"


def _wall_of(moment: datetime) -> int:
    """The naive wall-clock fields of ``moment`` as seconds since 1970-01-01 00:00."""
    return (
        (moment.toordinal() - EPOCH_ORDINAL) * SECONDS_PER_DAY
        + moment.hour * 3600
        + moment.minute * 60
        + moment.second
    )


class TimeWindowPartitionsDefinition(PartitionsDefinition):
    """Partitions whose windows are cut by ``cron_schedule`` in ``timezone``, from ``start``.

    Args:
        cron_schedule: Any five-field cron schedule; the window boundaries are its ticks.
        start: The first window starts at the first tick at or after this. A string is parsed with
            ``fmt`` (or as ISO 8601); a datetime's wall-clock fields are read in ``timezone``, as
            in Dagster.
        fmt: The strftime format of the keys.
        end: Windows must end by this time (exclusive); None for no end.
        timezone: An IANA time zone name; None means UTC.
        end_offset: Partitions past (positive) or before (negative) the last window that has ended.
    """

    def __init__(
        self,
        cron_schedule: str,
        start: datetime | str,
        fmt: str,
        end: datetime | str | None = None,
        timezone: str | None = None,
        end_offset: int = 0,
    ) -> None:
        timezone = "UTC" if timezone is None else timezone
        name = type(self).__name__
        if not isinstance(timezone, str):
            raise DefinitionError(f"{name} timezone must be a string, got {timezone!r}.")
        if not isinstance(fmt, str):
            raise DefinitionError(f"{name} fmt must be a strftime format string, got {fmt!r}.")
        if not isinstance(end_offset, int) or isinstance(end_offset, bool):
            raise DefinitionError(f"{name} end_offset must be an int, got {end_offset!r}.")
        self._cron_schedule = cron_schedule
        self._fmt = fmt
        self._timezone = timezone
        self._end_offset = end_offset
        self._start_ts = 0.0
        self._end_ts: float | None = None
        self._setup()
        self._start_ts = self._resolve(start, "start")
        self._end_ts = None if end is None or end == "" else self._resolve(end, "end")
        self._grid: WallGrid | None = (
            self._make_grid()
        )  # fails now, not at first use, if the schedule never fires

    def _make_grid(self) -> WallGrid:
        anchor = math.ceil(self._start_ts)
        try:
            return self._schedule.grid(anchor + self._zone.offset_at(anchor))
        except CronScheduleError as exc:
            raise DefinitionError(f"{type(self).__name__} has an invalid cron_schedule: {exc}.") from None

    def _setup(self) -> None:
        """Validate the arguments and build what is derived from them (also after unpickling)."""
        name = type(self).__name__
        try:
            self._zone: ZoneOffsets = zone_offsets(self._timezone)
        except ValueError as exc:
            raise DefinitionError(f"{name} has an invalid timezone: {exc}.") from None
        try:
            self._format = KeyFormat(self._fmt)
        except ValueError as exc:
            raise DefinitionError(f"{name} has an invalid fmt: {exc}.") from None
        try:
            self._schedule = CronSchedule(self._cron_schedule)
        except CronScheduleError as exc:
            raise DefinitionError(f"{name} has an invalid cron_schedule: {exc}.") from None
        self._tzinfo = self._zone.tzinfo
        self._grid = None
        self._timeline_cache: TickTimeline | None = None
        self._timeline_lock = threading.Lock()
        self._read_key: Callable[[str], tuple[int, int, int, int] | None] | None = None
        self._step: timedelta | None = None
        self._end_count: int | None = None

    _DERIVED = frozenset(
        {
            "_zone",
            "_format",
            "_schedule",
            "_tzinfo",
            "_grid",
            "_timeline_cache",
            "_timeline_lock",
            "_read_key",
            "_step",
            "_end_count",
        }
    )

    def __getstate__(self) -> dict[str, Any]:
        return {name: value for name, value in self.__dict__.items() if name not in self._DERIVED}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._setup()

    # -- construction helpers -------------------------------------------------------------------

    def _resolve(self, value: datetime | str, name: str) -> float:
        """The instant (seconds since the epoch) that ``value`` names in this definition's zone."""
        zone = self._zone
        try:
            if isinstance(value, datetime):
                return zone.instant_of(_wall_of(value), value.fold) + value.microsecond / 1e6
            if isinstance(value, str):
                parsed = self._format.parse(value)
                if parsed is not None:
                    wall, offset = parsed
                    return wall - offset if offset is not None else zone.instant_of(wall)
                try:
                    moment = datetime.fromisoformat(value)
                except ValueError:
                    raise DefinitionError(
                        f"{type(self).__name__} {name} {value!r} matches neither the format {self._fmt!r} "
                        "nor ISO 8601 (e.g. '2024-01-01' or '2024-01-01T06:00:00')."
                    ) from None
                if moment.tzinfo is not None:
                    return moment.timestamp()
                return zone.instant_of(_wall_of(moment), moment.fold) + moment.microsecond / 1e6
        except (OverflowError, OutOfRangeError) as exc:
            raise DefinitionError(f"{type(self).__name__} {name} {value!r} is out of range: {exc}.") from None
        raise DefinitionError(f"{type(self).__name__} {name} must be a datetime or a string, got {value!r}.")

    @property
    def _timeline(self) -> TickTimeline:
        timeline = self._timeline_cache
        if timeline is None:
            with self._timeline_lock:
                timeline = self._timeline_cache
                if timeline is None:
                    if self._grid is None:
                        self._grid = self._make_grid()
                    anchor = math.ceil(self._start_ts)
                    timeline = TickTimeline(self._grid, self._zone, self._schedule.repeats_every_hour, anchor)
                    self._step = timedelta(seconds=timeline.step) if timeline.step else None
                    self._timeline_cache = timeline
        return timeline

    # -- properties -----------------------------------------------------------------------------

    @property
    def cron_schedule(self) -> str:
        return self._cron_schedule

    @property
    def start(self) -> datetime:
        """The start given at construction, as an aware datetime in the definition's zone."""
        return datetime.fromtimestamp(self._start_ts, self._zone.tzinfo)

    @property
    def end(self) -> datetime | None:
        """The exclusive end given at construction, or None."""
        return None if self._end_ts is None else datetime.fromtimestamp(self._end_ts, self._zone.tzinfo)

    @property
    def fmt(self) -> str:
        return self._fmt

    @property
    def timezone(self) -> str:
        return self._timezone

    @property
    def end_offset(self) -> int:
        return self._end_offset

    # -- counting -------------------------------------------------------------------------------

    def _instant(self, moment: datetime) -> float:
        """Seconds since the epoch of ``moment``; a naive datetime is read in the definition's zone."""
        if moment.tzinfo is None or moment.utcoffset() is None:
            return self._timeline.instant_for_wall(_wall_of(moment), moment.fold) + moment.microsecond / 1e6
        return moment.timestamp()

    def _window_containing(self, instant: float) -> int:
        try:
            return self._timeline.last_at_or_before(math.floor(instant))
        except OutOfRangeError as exc:
            raise PartitionKeyError(f"No partition of {self!r} contains that time: {exc}.") from None

    def num_partitions(self, current_time: datetime | None = None) -> int:
        """How many partitions exist at ``current_time`` (default: now)."""
        now = time.time() if current_time is None else self._instant(current_time)
        count = self._window_containing(now) + self._end_offset
        if self._end_ts is not None:
            if self._end_count is None:
                self._end_count = self._window_containing(self._end_ts)
            count = min(count, self._end_count)
        return max(count, 0)

    # -- keys and indices -----------------------------------------------------------------------

    def partition_key_at_index(self, index: int) -> str:
        """The key of window ``index`` (0 is the first at/after start); any int, even out of bounds."""
        try:
            return self._timeline.key(index, self._format)
        except (OutOfRangeError, ValueError, OverflowError) as exc:
            raise PartitionKeyError(f"Partition index {index} of {self!r} is out of range: {exc}.") from None

    def _key_reader(self) -> Callable[[str], tuple[int, int, int, int] | None]:
        """The fast path of reading a key (see ``TickTimeline.ordinary_reader``): it gives ``(index,
        UTC offset, wall time, next wall time)`` of the key's window, or None if the key is unusual
        (an explicit offset, near a daylight-saving transition, a format without an exact parser) or
        invalid, and then the general path decides."""
        read = self._read_key
        if read is None:
            exact_wall = self._format.exact_wall
            if exact_wall is None:
                read = _read_nothing
            else:
                read = self._timeline.ordinary_reader(exact_wall, self._format.exact_unit)
            self._read_key = read
        return read

    def partition_key_index(self, partition_key: str) -> int:
        """The index of ``partition_key``'s window; it may be before start or after the last partition.

        Raises:
            PartitionKeyError: the key does not parse with ``fmt`` or is not the key of a window.
        """
        located = self._key_reader()(partition_key) if type(partition_key) is str else None
        if located is not None:
            return located[0]
        if not isinstance(partition_key, str):
            raise PartitionKeyError(
                f"Partition key {partition_key!r} of {self!r} must be a string, not {type(partition_key).__name__}."
            )
        parsed = self._format.parse(partition_key)
        if parsed is None:
            raise PartitionKeyError(
                f"{partition_key!r} is not a partition of {self!r}: it does not match the format {self._fmt!r}."
            )
        wall, offset = parsed
        timeline = self._timeline
        try:
            instant = wall - offset if offset is not None else timeline.instant_for_wall(wall)
            index = timeline.first_at_or_after(instant)
            expected = timeline.key(index, self._format)
        except OutOfRangeError as exc:
            raise PartitionKeyError(f"{partition_key!r} is not a partition of {self!r}: {exc}.") from None
        if expected != partition_key:
            raise PartitionKeyError(
                f"{partition_key!r} is not a partition of {self!r}: no window starts there "
                f"(the next one is {expected!r})."
            )
        return index

    def time_window_at_index(self, index: int) -> TimeWindow:
        """The window with index ``index``; any int, even out of bounds."""
        timeline, tzinfo = self._timeline, self._zone.tzinfo
        try:
            start, end = timeline.instant(index), timeline.instant(index + 1)
        except (OutOfRangeError, ValueError, OverflowError) as exc:
            raise PartitionKeyError(f"Partition index {index} of {self!r} is out of range: {exc}.") from None
        return TimeWindow(datetime.fromtimestamp(start, tzinfo), datetime.fromtimestamp(end, tzinfo))

    def index_of_time(self, ts: datetime) -> int:
        """The index of the window containing ``ts`` (negative before the first window)."""
        return self._window_containing(self._instant(ts))

    def get_partition_keys(
        self,
        current_time: datetime | None = None,
        dynamic_partitions_store: DynamicPartitionsStore | None = None,
    ) -> Sequence[str]:
        return self._timeline.keys(0, self.num_partitions(current_time), self._format)

    def get_partition_keys_in_range(
        self,
        partition_key_range: PartitionKeyRange,
        dynamic_partitions_store: DynamicPartitionsStore | None = None,
    ) -> Sequence[str]:
        """The keys from ``partition_key_range.start`` to ``.end`` inclusive.

        As in Dagster, both ends must lie within ``start`` and ``end``, but not necessarily before
        now: a backfill may name a range reaching into the future.
        """
        first, last = self._range_indices(partition_key_range)
        return self._timeline.keys(first, last + 1, self._format)

    def _range_indices(self, partition_key_range: PartitionKeyRange) -> tuple[int, int]:
        first = self.partition_key_index(partition_key_range.start)
        last = self.partition_key_index(partition_key_range.end)
        if first > last:
            raise PartitionKeyRangeError(
                f"Partition range {partition_key_range} of {self!r} is reversed: "
                f"{partition_key_range.start!r} comes after {partition_key_range.end!r}."
            )
        if first < 0:
            raise PartitionKeyError(
                f"{partition_key_range.start!r} is not a partition of {self!r}: it is before the first "
                f"partition {self.partition_key_at_index(0)!r}."
            )
        if self._end_ts is not None:
            if self._end_count is None:
                self._end_count = self._window_containing(self._end_ts)
            if last >= self._end_count:
                raise PartitionKeyError(
                    f"{partition_key_range.end!r} is not a partition of {self!r}: its window does not end by "
                    f"end_date {self.end}."
                )
        return first, last

    def has_partition_key(
        self,
        partition_key: str,
        current_time: datetime | None = None,
        dynamic_partitions_store: DynamicPartitionsStore | None = None,
    ) -> bool:
        try:
            index = self.partition_key_index(partition_key)
        except PartitionKeyError:
            return False
        return 0 <= index < self.num_partitions(current_time)

    def get_first_partition_key(
        self,
        current_time: datetime | None = None,
        dynamic_partitions_store: DynamicPartitionsStore | None = None,
    ) -> str | None:
        return self.partition_key_at_index(0) if self.num_partitions(current_time) > 0 else None

    def get_last_partition_key(
        self,
        current_time: datetime | None = None,
        dynamic_partitions_store: DynamicPartitionsStore | None = None,
    ) -> str | None:
        count = self.num_partitions(current_time)
        return self.partition_key_at_index(count - 1) if count > 0 else None

    def _index_of(self, keys: Sequence[str], key: str) -> int:
        return self.partition_key_index(key)

    # -- time windows ---------------------------------------------------------------------------

    def time_window_for_partition_key(self, partition_key: str) -> TimeWindow:
        """The window of ``partition_key``, whether or not the partition exists yet.

        Raises:
            PartitionKeyError: the key does not parse with ``fmt`` or no window starts there.
        """
        located = (
            (self._read_key or self._key_reader())(partition_key) if type(partition_key) is str else None
        )
        if located is not None:
            _, offset, wall, next_wall = located
            start = _from_timestamp(wall - offset, self._tzinfo)
            # Both ticks are ordinary ticks of one segment: the wall-clock difference is exact.
            step = self._step or _SECOND * (next_wall - wall)
            return _tuple_new(TimeWindow, (start, start + step))
        return self.time_window_at_index(self.partition_key_index(partition_key))

    def time_window_for_partition_key_range(self, partition_key_range: PartitionKeyRange) -> TimeWindow:
        """From the start of the range's first window to the end of its last."""
        first = self.partition_key_index(partition_key_range.start)
        last = self.partition_key_index(partition_key_range.end)
        if first > last:
            raise PartitionKeyRangeError(
                f"Partition range {partition_key_range} of {self!r} is reversed: "
                f"{partition_key_range.start!r} comes after {partition_key_range.end!r}."
            )
        return TimeWindow(self.time_window_at_index(first).start, self.time_window_at_index(last).end)

    def get_partition_keys_in_time_window(self, time_window: TimeWindow) -> Sequence[str]:
        """The keys of the windows that overlap ``time_window``, whether or not those partitions exist."""
        start, end = self._instant(time_window.start), self._instant(time_window.end)
        if end <= start:
            return []
        first = self._window_containing(start)
        try:
            stop = self._timeline.first_at_or_after(math.ceil(end))
        except OutOfRangeError as exc:
            raise PartitionKeyError(f"{time_window} is out of range for {self!r}: {exc}.") from None
        return self._timeline.keys(first, stop, self._format)

    def get_partition_key_for_timestamp(self, ts: datetime) -> str:
        """The key of the window containing ``ts``, whether or not that partition exists yet."""
        return self.partition_key_at_index(self.index_of_time(ts))

    # -- identity -------------------------------------------------------------------------------

    def _identity(self) -> tuple[Any, ...]:
        return (
            self._cron_schedule,
            self._start_ts,
            self._end_ts,
            self._fmt,
            self._timezone,
            self._end_offset,
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TimeWindowPartitionsDefinition) and self._identity() == other._identity()

    def __hash__(self) -> int:
        return hash(self._identity())

    def _shown_time(self, instant: float) -> str:
        """``instant`` as a key if that reads back exactly, else as ISO 8601."""
        moment = datetime.fromtimestamp(instant, self._zone.tzinfo)
        if instant == int(instant) and not self._format.uses_offset:
            text = self._format.format_wall(_wall_of(moment))
            parsed = self._format.parse(text)
            if parsed is not None and parsed[1] is None and self._zone.instant_of(parsed[0]) == instant:
                return text
        return moment.isoformat()

    def _repr_arguments(self) -> dict[str, object]:
        end = None if self._end_ts is None else self._shown_time(self._end_ts)
        return {
            "cron_schedule": self._cron_schedule,
            "start": self._shown_time(self._start_ts),
            "end": end,
            "fmt": self._fmt,
            "timezone": self._timezone,
            "end_offset": self._end_offset,
        }

    def __repr__(self) -> str:
        arguments = ", ".join(f"{name}={value!r}" for name, value in self._repr_arguments().items())
        return f"{type(self).__name__}({arguments})"


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
