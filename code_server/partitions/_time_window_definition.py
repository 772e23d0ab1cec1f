"""The time-window partitions definition (public in ``code_server.partitions.time_window``, whose
docstring describes the semantics): keys, windows and indices over a ``TickTimeline``."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from code_server.errors import DefinitionError, PartitionKeyError, PartitionKeyRangeError
from code_server.partitions._cron_grid import CronSchedule, CronScheduleError, WallGrid, wall_of
from code_server.partitions._key_format import KeyFormat
from code_server.partitions._tick_timeline import OutOfRangeError, TickTimeline
from code_server.partitions._zone_offsets import ZoneOffsets, zone_offsets
from code_server.partitions.base import DynamicPartitionsStore, PartitionsDefinition
from code_server.partitions.keys import PartitionKeyRange, TimeWindow

DEFAULT_DATE_FORMAT = "%Y-%m-%d"
DEFAULT_HOURLY_FORMAT = "%Y-%m-%d-%H:%M"

# Bound once: the key-reading fast path is a few microseconds, and lookups are a share of that.
_from_timestamp = datetime.fromtimestamp
_tuple_new = tuple.__new__
_SECOND = timedelta(seconds=1)
_EPOCH = datetime(1970, 1, 1)


def _sentence(exc: Exception) -> str:
    """An exception's message, to be quoted inside a sentence of ours."""
    return str(exc).rstrip(".")


def _read_nothing(partition_key: str) -> None:
    """The key reader of formats without an exact parser: every key takes the general path."""
    return None


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
            raise DefinitionError(
                f"{type(self).__name__} has an invalid cron_schedule: {_sentence(exc)}."
            ) from None

    def _setup(self) -> None:
        """Validate the arguments and build what is derived from them (also after unpickling)."""
        name = type(self).__name__
        try:
            self._zone: ZoneOffsets = zone_offsets(self._timezone)
        except ValueError as exc:
            raise DefinitionError(f"{name} has an invalid timezone: {_sentence(exc)}.") from None
        try:
            self._format = KeyFormat(self._fmt)
        except ValueError as exc:
            raise DefinitionError(f"{name} has an invalid fmt: {_sentence(exc)}.") from None
        try:
            self._schedule = CronSchedule(self._cron_schedule)
        except CronScheduleError as exc:
            raise DefinitionError(f"{name} has an invalid cron_schedule: {_sentence(exc)}.") from None
        self._tzinfo = self._zone.tzinfo
        self._grid = None
        self._timeline_cache: TickTimeline | None = None
        self._timeline_lock = threading.Lock()
        self._read_key: Callable[[str], tuple[int, int, int] | None] | None = None
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
                return zone.instant_of(wall_of(value), value.fold) + value.microsecond / 1e6
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
                return zone.instant_of(wall_of(moment), moment.fold) + moment.microsecond / 1e6
        except (OverflowError, OutOfRangeError) as exc:
            raise DefinitionError(
                f"{type(self).__name__} {name} {value!r} is out of range: {_sentence(exc)}."
            ) from None
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
            return self._timeline.instant_for_wall(wall_of(moment), moment.fold) + moment.microsecond / 1e6
        return moment.timestamp()

    def _window_containing(self, instant: float) -> int:
        try:
            return self._timeline.last_at_or_before(math.floor(instant))
        except OutOfRangeError as exc:
            raise PartitionKeyError(
                f"No partition of {self!r} contains that time: {_sentence(exc)}."
            ) from None

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
            raise PartitionKeyError(
                f"Partition index {index} of {self!r} is out of range: {_sentence(exc)}."
            ) from None

    def _key_reader(self) -> Callable[[str], tuple[int, int, int] | None]:
        """The fast path of reading a key (see ``TickTimeline.ordinary_reader``): it gives ``(index,
        instant, seconds to the next tick)`` of the key's window, or None if the key is unusual (an
        explicit offset, near a daylight-saving transition, a format without an exact parser) or
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
            if expected != partition_key and timeline.key(index + 1, self._format) == partition_key:
                # The window at ``index`` starts at the end of a gap and keeps its scheduled key,
                # so the key read here (of its real start) is the next window's.
                return index + 1
            skipped = offset is None and timeline.is_skipped(wall)
        except (ValueError, OverflowError) as exc:  # beyond the years datetimes (or croniter) reach
            raise PartitionKeyError(
                f"{partition_key!r} is not a partition of {self!r}: {_sentence(exc)}."
            ) from None
        if expected != partition_key:
            if skipped:
                shown = f"{_EPOCH + timedelta(seconds=wall):%Y-%m-%d %H:%M:%S}".removesuffix(":00")
                raise PartitionKeyError(
                    f"{partition_key!r} is not a partition of {self!r}: {shown} does not exist in "
                    f"{self._timezone} (the clocks spring forward over it), so no window starts then; "
                    f"the window that starts when the clocks resume has the key {expected!r}."
                )
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
            raise PartitionKeyError(
                f"Partition index {index} of {self!r} is out of range: {_sentence(exc)}."
            ) from None
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
            start = _from_timestamp(located[1], self._tzinfo)
            # Both ticks are ordinary ticks of one segment: the wall-clock difference is exact.
            return _tuple_new(TimeWindow, (start, start + (self._step or _SECOND * located[2])))
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
            raise PartitionKeyError(
                f"{time_window} is out of range for {self!r}: {_sentence(exc)}."
            ) from None
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
            text = self._format.format_wall(wall_of(moment))
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
