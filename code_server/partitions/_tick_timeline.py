"""Numbering the instants at which a cron schedule fires in a time zone, by arithmetic.

The zone's timeline is cut at its UTC-offset transitions into *segments* of constant offset.
Inside a segment, wall time = instant + offset, so the ticks in it are a contiguous run of the
schedule's wall-time grid (``_cron_grid``) and everything (tick number <-> instant <-> wall time) is
integer arithmetic plus one bisect over the segments. Only the segment edges need care, with
Dagster's rules for daylight saving time:

* schedules whose hour field is ``*`` fire at every instant whose wall time matches: none in a
  skipped (spring-forward) hour, both instants of a repeated (fall-back) wall time;
* other schedules fire once per matching wall time: a skipped wall time fires at the end of the
  gap (the transition instant, e.g. 03:00 for 02:30), a repeated one at its second instant.

Tick numbers are partition indices: tick 0 is the first at or after the anchor (the definition's
start). The covered span grows geometrically on demand; numbers never change when it grows.
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from collections.abc import Callable
from datetime import datetime
from typing import NamedTuple

from code_server.partitions._cron_grid import SECONDS_PER_DAY, PeriodicGrid, WallGrid
from code_server.partitions._key_format import KeyFormat, offset_suffix
from code_server.partitions._zone_offsets import MAX_INSTANT, MIN_INSTANT, ZoneOffsets

#: Lookups stay this far inside the covered span, so that segment edges seen near a lookup are real
#: transitions (offsets and fall-back overlaps never exceed a day).
_MARGIN = 2 * SECONDS_PER_DAY
_NEVER = -(1 << 62)
#: The span first covered on each side of the anchor; a year costs a few segments.
_INITIAL_SPAN = 400 * SECONDS_PER_DAY


class OutOfRangeError(ValueError):
    """A tick or time is outside the years 1-9999 that datetimes can represent."""


class Tick(NamedTuple):
    """One firing of the schedule: its instant; its local wall time; its UTC offset; whether its
    wall time is the second of two equal ones (a fall-back repeat, ``fold=1``); and, for a firing
    at the end of a spring-forward gap, the first skipped wall time it stands for (else None)."""

    instant: int
    wall: int
    offset: int
    repeated: bool
    scheduled: int | None = None


class _Segment:
    """Instants ``[start, stop)`` at constant ``offset`` and the ticks that fall in them.

    The ticks are an optional *gap tick* at ``start`` (standing for wall times skipped just before
    it), then the *regular* ticks: grid numbers ``first_regular`` to ``stop_regular - 1``, each at
    its wall time minus ``offset``.
    """

    __slots__ = (
        "count",
        "first_number",
        "first_regular",
        "gap_tick",
        "gap_wall",
        "last_ordinary",
        "number_base",
        "offset",
        "repeated_until",
        "start",
        "stop",
        "stop_regular",
    )

    def __init__(
        self,
        start: int,
        stop: int,
        offset: int,
        gap_wall: int | None,
        first_regular: int,
        stop_regular: int,
        repeated_until: int,
    ) -> None:
        self.start = start
        self.stop = stop
        self.offset = offset
        self.gap_tick = gap_wall is not None
        #: The first wall time the gap tick stands for: its key when the key of its real start would
        #: repeat the next tick's (the gap's end can fall on another day, as when 23:00-00:00 is skipped).
        self.gap_wall = gap_wall or 0
        self.first_regular = first_regular
        self.stop_regular = stop_regular
        #: Grid numbers below this are regular ticks followed by a regular tick of this segment.
        self.last_ordinary = stop_regular - 1
        self.count = self.gap_tick + stop_regular - first_regular
        #: Wall times below this are the second instance of a repeated (fall-back) wall time.
        self.repeated_until = repeated_until
        self.first_number = 0  # the tick number of the segment's first tick
        self.number_base = 0  # tick number minus grid number, for the regular ticks

    def number_from(self, first_number: int) -> None:
        self.first_number = first_number
        self.number_base = first_number + self.gap_tick - self.first_regular


class _Coverage:
    """The segments covering the instants ``[low, high)``; replaced whole when the span grows, so
    that readers in other threads always see one consistent state."""

    __slots__ = ("high", "low", "numbers", "segments", "starts", "wall_high", "wall_low", "wall_starts")

    def __init__(self, low: int, high: int, segments: list[_Segment]) -> None:
        self.low = low
        self.high = high
        self.segments = segments
        self.starts = [segment.start for segment in segments]
        self.numbers = [segment.first_number for segment in segments]
        self.wall_starts = [segment.start + segment.offset for segment in segments]
        #: Wall times whose instants (within a day of them) lie well inside the span.
        self.wall_low = low + _MARGIN + SECONDS_PER_DAY
        self.wall_high = high - _MARGIN - SECONDS_PER_DAY

    def covers(self, low: int, high: int) -> bool:
        return self.low + _MARGIN <= low and high < self.high - _MARGIN


class TickTimeline:
    """The ticks of a cron grid in a time zone, numbered from the first at or after ``anchor``."""

    def __init__(self, grid: WallGrid, zone: ZoneOffsets, every_hour: bool, anchor: int) -> None:
        self.grid = grid
        self.zone = zone
        self.every_hour = every_hour
        self.anchor = anchor
        self._lock = threading.Lock()
        # Grids with one wall time per period (hourly, daily, weekly) are ``base + g * step``.
        simple = isinstance(grid, PeriodicGrid) and grid.per_period == 1
        #: Seconds between consecutive wall times of the grid if constant, else 0.
        self.step = grid.period if isinstance(grid, PeriodicGrid) and simple else 0
        self._base = grid.phase + grid.offsets[0] if isinstance(grid, PeriodicGrid) and simple else 0
        self._coverage = self._build(anchor - _INITIAL_SPAN, anchor + _INITIAL_SPAN)
        self._anchor_index = grid.index_at_or_after(anchor + zone.offset_at(anchor))

    # -- coverage -------------------------------------------------------------------------------

    def _ensure(self, low: int, high: int) -> _Coverage:
        """Cover the instants ``[low, high]`` with a margin, growing the span at least twofold."""
        with self._lock:
            coverage = self._coverage
            if coverage.covers(low, high):
                return coverage
            width = coverage.high - coverage.low
            new_low, new_high = coverage.low, coverage.high
            if low - _MARGIN < coverage.low:
                new_low = min(low - _MARGIN, coverage.low - width)
            if high + _MARGIN >= coverage.high:
                new_high = max(high + _MARGIN + 1, coverage.high + width)
            new_low, new_high = max(new_low, MIN_INSTANT), min(new_high, MAX_INSTANT)
            if low - _MARGIN < new_low or high + _MARGIN >= new_high:
                raise OutOfRangeError("the time is outside the years 1-9999")
            self._coverage = coverage = self._build(new_low, new_high)
            return coverage

    def _build(self, low: int, high: int) -> _Coverage:
        low, high = max(low, MIN_INSTANT), min(high, MAX_INSTANT)
        zone, grid = self.zone, self.grid
        transitions = [t for t in zone.transitions(low, high) if t.instant > low]
        starts = [low] + [t.instant for t in transitions]
        offsets = [zone.offset_at(low)] + [t.after for t in transitions]
        previous = [zone.offset_at(low - 1)] + [t.before for t in transitions]
        following = [*offsets[1:], zone.offset_at(high)]
        stops = [*starts[1:], high]
        segments: list[_Segment] = []
        number = 0
        for start, stop, offset, before, after in zip(
            starts, stops, offsets, previous, following, strict=True
        ):
            first_wall = start + offset
            repeated_until = start + before if before > offset else _NEVER
            gap_wall = None
            if self.every_hour:
                first_regular = grid.index_at_or_after(first_wall)
                stop_regular = grid.index_at_or_after(stop + offset)
            else:
                # Wall times skipped by a spring-forward fire at ``start``; repeated ones in the later
                # segment, so this one ends where the next one's wall times begin.
                first_any = grid.index_at_or_after(start + min(before, offset))
                first_regular = grid.index_at_or_after(first_wall)
                stop_regular = grid.index_at_or_after(stop + min(offset, after))
                if first_any < first_regular:
                    gap_wall = grid.wall_at(first_any)
                    if first_regular < stop_regular and grid.wall_at(first_regular) == first_wall:
                        first_regular += 1  # the wall time at the gap's end is the gap tick's instant
            segment = _Segment(
                start, stop, offset, gap_wall, first_regular, max(stop_regular, first_regular), repeated_until
            )
            segment.number_from(number)
            number += segment.count
            segments.append(segment)
        # Renumber so that tick 0 is the first at or after the anchor, whatever the span.
        anchor_number = self._first_in(_Coverage(low, high, segments), self.anchor)
        for segment in segments:
            segment.number_from(segment.first_number - anchor_number)
        return _Coverage(low, high, segments)

    # -- instants -> numbers ---------------------------------------------------------------------

    def first_at_or_after(self, instant: int) -> int:
        """The number of the first tick at or after ``instant``."""
        coverage = self._coverage
        if not coverage.covers(instant, instant):
            coverage = self._ensure(instant, instant)
        return self._first_in(coverage, instant)

    def _first_in(self, coverage: _Coverage, instant: int) -> int:
        segment = coverage.segments[bisect_right(coverage.starts, instant) - 1]
        if segment.gap_tick and instant <= segment.start:
            return segment.first_number
        index = self.grid.index_at_or_after(instant + segment.offset)
        position = max(index - segment.first_regular, 0) + segment.gap_tick
        return segment.first_number + min(position, segment.count)

    def last_at_or_before(self, instant: int) -> int:
        """The number of the last tick at or before ``instant``: the window containing it."""
        return self.first_at_or_after(instant + 1) - 1

    def instant_for_wall(self, wall: int, fold: int = 0) -> int:
        """The instant at which the zone's clocks show ``wall``.

        A repeated wall time gives its first instant (its second with ``fold=1``); a skipped one
        gives the end of the gap, as the schedules do.
        """
        coverage = self._coverage
        if not coverage.wall_low <= wall < coverage.wall_high:
            coverage = self._ensure(wall - SECONDS_PER_DAY, wall + SECONDS_PER_DAY)
        position = bisect_right(coverage.wall_starts, wall) - 1
        segment = coverage.segments[position]
        if position > 0:
            previous = coverage.segments[position - 1]
            if wall < previous.stop + previous.offset and (
                fold == 0 or wall >= segment.stop + segment.offset
            ):
                return wall - previous.offset
        if wall < segment.stop + segment.offset:
            return wall - segment.offset
        return segment.stop

    def ordinary_reader(
        self, exact_wall: Callable[[str], int | None], unit: int
    ) -> Callable[[str], tuple[int, int, int] | None]:
        """A function reading a key fast: ``(tick number, instant, seconds to the next tick)`` of its
        window, or None when the key needs the general methods.

        ``exact_wall`` parses a key exactly to its wall time; a key is the key of the first tick at or
        after that wall time if the tick's wall time truncated to ``unit`` seconds is that wall time.
        The answer is None near daylight-saving transitions: only where the tick and the next are
        ordinary ticks of one segment is a wall time one instant and the next tick the next wall time
        of the grid. That is almost every key, and there everything is a few integer operations, so
        the function is a closure over locals (reading keys is the hot path of planners and mappings).
        """
        step, base, grid = self.step, self._base, self.grid

        def read(key: str) -> tuple[int, int, int] | None:
            wall = exact_wall(key)
            if wall is None:
                return None
            coverage = self._coverage
            if not coverage.wall_low <= wall < coverage.wall_high:
                try:
                    coverage = self._ensure(wall - SECONDS_PER_DAY, wall + SECONDS_PER_DAY)
                except OutOfRangeError:
                    return None
            segment = coverage.segments[bisect_right(coverage.wall_starts, wall) - 1]
            if wall < segment.repeated_until:
                return None
            if step:
                index = -((base - wall) // step)
                tick_wall = base + index * step
                next_wall = tick_wall + step
            else:
                try:
                    index = grid.index_at_or_after(wall)
                    tick_wall, next_wall = grid.wall_at(index), grid.wall_at(index + 1)
                except (ValueError, OverflowError):  # beyond year 9999; the general path says so
                    return None
            if (
                tick_wall - tick_wall % unit != wall
                or not segment.first_regular <= index < segment.last_ordinary
            ):
                return None
            return segment.number_base + index, tick_wall - segment.offset, next_wall - tick_wall

        return read

    # -- numbers -> ticks ------------------------------------------------------------------------

    def _segment_for(self, number: int) -> _Segment:
        coverage = self._coverage
        while True:
            position = bisect_right(coverage.numbers, number) - 1
            if position >= 0:
                segment = coverage.segments[position]
                if number < segment.first_number + segment.count:
                    instant = self._instant_in(segment, number)
                    if coverage.covers(instant, instant):
                        return segment
                    coverage = self._ensure(instant, instant)
                    continue
            # Not covered yet. Tick numbers and grid numbers differ only by the few ticks that
            # daylight saving adds or removes, so the grid tells roughly where the tick is: cover
            # that (or refuse it at once if it is beyond year 9999), then grow until it is covered.
            estimate = self._estimated_instant(number)
            if coverage.covers(estimate, estimate):
                estimate = coverage.low - 1 if position < 0 else coverage.high
            coverage = self._ensure(estimate, estimate)

    def _estimated_instant(self, number: int) -> int:
        try:
            wall = self.grid.wall_at(self._anchor_index + number)
        except (ValueError, OverflowError) as exc:
            raise OutOfRangeError("the time is outside the years 1-9999") from exc
        if not MIN_INSTANT + _MARGIN < wall < MAX_INSTANT - _MARGIN:
            raise OutOfRangeError("the time is outside the years 1-9999")
        return wall - self.zone.offset_at(wall)

    def _instant_in(self, segment: _Segment, number: int) -> int:
        position = number - segment.first_number
        if segment.gap_tick:
            if position == 0:
                return segment.start
            position -= 1
        return self.grid.wall_at(segment.first_regular + position) - segment.offset

    def tick(self, number: int) -> Tick:
        """Tick number ``number``."""
        segment = self._segment_for(number)
        position = number - segment.first_number
        if segment.gap_tick:
            if position == 0:
                start = segment.start
                return Tick(start, start + segment.offset, segment.offset, False, segment.gap_wall)
            position -= 1
        wall = self.grid.wall_at(segment.first_regular + position)
        return Tick(wall - segment.offset, wall, segment.offset, wall < segment.repeated_until)

    def instant(self, number: int) -> int:
        """The instant of tick number ``number``."""
        return self._instant_in(self._segment_for(number), number)

    # -- keys ------------------------------------------------------------------------------------

    def key(self, number: int, key_format: KeyFormat) -> str:
        """The partition key of tick ``number``."""
        tick = self.tick(number)
        if key_format.uses_offset:
            return datetime.fromtimestamp(tick.instant, self.zone.tzinfo).strftime(key_format.fmt)
        key = key_format.format_wall(tick.wall)
        if tick.scheduled is not None:
            # Keyed by its real start, as in Dagster, unless that is the next tick's key too, which
            # Dagster would repeat; the skipped wall time it was scheduled for keeps keys unique.
            if key == self.key(number + 1, key_format):
                return key_format.format_wall(tick.scheduled)
        elif tick.repeated and self.every_hour:
            key += offset_suffix(tick.offset)
        return key

    def is_skipped(self, wall: int) -> bool:
        """Whether the zone's clocks never show ``wall`` (it falls in a spring-forward gap)."""
        instant = self.instant_for_wall(wall)
        return instant + self.zone.offset_at(instant) != wall

    def keys(self, first: int, stop: int, key_format: KeyFormat) -> list[str]:
        """The keys of ticks ``first`` to ``stop - 1``, formatted in bulk segment by segment."""
        if stop <= first:
            return []
        self._segment_for(first)
        self._segment_for(stop - 1)
        coverage = self._coverage
        keys: list[str] = []
        for segment in coverage.segments[bisect_right(coverage.numbers, first) - 1 :]:
            if segment.first_number >= stop:
                break
            low = max(first - segment.first_number, 0)
            high = min(stop - segment.first_number, segment.count)
            if low >= high:
                continue
            if key_format.uses_offset:
                keys.extend(self.key(segment.first_number + i, key_format) for i in range(low, high))
                continue
            if segment.gap_tick:
                if low == 0:
                    keys.append(self.key(segment.first_number, key_format))
                    low = 1
                low, high = low - 1, high - 1
            if low >= high:
                continue
            begin = len(keys)
            keys.extend(
                self._grid_keys(segment.first_regular + low, segment.first_regular + high, key_format)
            )
            if self.every_hour and segment.repeated_until != _NEVER:
                suffix = offset_suffix(segment.offset)
                wall_at = self.grid.wall_at
                for i in range(high - low):
                    if wall_at(segment.first_regular + low + i) >= segment.repeated_until:
                        break
                    keys[begin + i] += suffix
        return keys

    def _grid_keys(self, first: int, stop: int, key_format: KeyFormat) -> list[str]:
        """Keys of the grid wall times ``first`` to ``stop - 1`` (no suffixes)."""
        grid = self.grid
        if not key_format.splits:
            return [key_format.format_wall(wall) for wall in grid.walls(first, stop)]
        times = grid.times_of_day() if isinstance(grid, PeriodicGrid) else None
        if times is None:
            day_parts: dict[int, str] = {}
            keys = []
            for wall in grid.walls(first, stop):
                day, time_of_day = divmod(wall, SECONDS_PER_DAY)
                day_part = day_parts.get(day)
                if day_part is None:
                    day_part = day_parts[day] = key_format.day_part(day)
                time_part = key_format.time_part(time_of_day)
                keys.append(day_part + time_part if key_format.date_first else time_part + day_part)
            return keys
        per_day = len(times)
        time_parts = [key_format.time_part(time_of_day) for time_of_day in times]
        first_day, first_position = divmod(first, per_day)
        last_day, stop_position = divmod(stop, per_day)
        day_parts_list = key_format.day_parts(first_day, last_day + 1)
        if per_day == 1:
            only = time_parts[0]
            if not only:
                return day_parts_list[: stop - first]
            if key_format.date_first:
                return [day_part + only for day_part in day_parts_list[: stop - first]]
            return [only + day_part for day_part in day_parts_list[: stop - first]]
        keys = []
        date_first = key_format.date_first
        for offset, day_part in enumerate(day_parts_list):
            low = first_position if offset == 0 else 0
            high = stop_position if offset == last_day - first_day else per_day
            if date_first:
                keys.extend([day_part + time_part for time_part in time_parts[low:high]])
            else:
                keys.extend([time_part + day_part for time_part in time_parts[low:high]])
        return keys
