"""UTC offsets of an IANA time zone and the instants at which they change.

Time-window partitions need to know, for a span of years, where a zone's UTC offset changes
(daylight saving time, or a change of standard time), so that everything between two changes can
be computed with integer arithmetic instead of per-key time-zone math. ``zoneinfo`` does not
expose its transition table, so transitions are found by probing the offset every six days and
bisecting to the second where it changes. The result is cached per zone and per chunk of about a
year, shared by every definition in the process: it is a fact about the zone, like ``zoneinfo``'s
own cache.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

#: Instants (seconds since the epoch) that ``datetime`` can represent in any zone, with a day to spare.
MIN_INSTANT = int((datetime(1, 1, 3, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds())
MAX_INSTANT = int((datetime(9999, 12, 29, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds())

#: Transitions are searched and cached in chunks of this many seconds (about 388 days).
_CHUNK = 1 << 25
#: The offset is probed this often; two changes closer together than this that cancel out would be
#: missed (since 1970 the closest in the IANA database are 6.9 days apart: Brazil 2000, Gaza 2040s).
_PROBE = 6 * 86400
_ONE_SECOND = timedelta(seconds=1)
_UTC_NAMES = frozenset({"UTC", "utc"})


class Transition:
    """The UTC offset changes from ``before`` to ``after`` (seconds east of UTC) at ``instant``."""

    __slots__ = ("after", "before", "instant")

    def __init__(self, instant: int, before: int, after: int) -> None:
        self.instant = instant
        self.before = before
        self.after = after

    def __repr__(self) -> str:
        return f"Transition({self.instant}, {self.before}, {self.after})"


class ZoneOffsets:
    """The UTC offsets of one time zone, with its transitions found lazily and cached."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.is_utc = name in _UTC_NAMES
        self.tzinfo: tzinfo = UTC if self.is_utc else ZoneInfo(name)
        self._chunks: dict[int, tuple[Transition, ...]] = {}

    def offset_at(self, instant: int) -> int:
        """The UTC offset in seconds in force at ``instant``."""
        if self.is_utc:
            return 0
        offset = datetime.fromtimestamp(instant, self.tzinfo).utcoffset()
        assert offset is not None
        return offset // _ONE_SECOND

    def transitions(self, low: int, high: int) -> list[Transition]:
        """Every transition at an instant in ``[low, high)``, in order."""
        if self.is_utc or low >= high:
            return []
        found: list[Transition] = []
        for chunk in range(low // _CHUNK, (high - 1) // _CHUNK + 1):
            cached = self._chunks.get(chunk)
            if cached is None:
                cached = self._chunks[chunk] = self._scan(chunk)
            found.extend(t for t in cached if low <= t.instant < high)
        return found

    def instant_of(self, wall: int, fold: int = 0) -> int:
        """The instant at which clocks in the zone show ``wall`` (naive seconds since 1970).

        A repeated wall time gives its first instant (its second with ``fold=1``); a skipped one gives
        the instant at the end of the gap.
        """
        if self.is_utc:
            return wall
        low, high = max(wall - 2 * 86400, MIN_INSTANT), min(wall + 2 * 86400, MAX_INSTANT)
        transitions = self.transitions(low, high)
        starts = [low] + [t.instant for t in transitions]
        offsets = [self.offset_at(low)] + [t.after for t in transitions]
        stops = [*starts[1:], high]
        candidates = [
            wall - offset
            for start, stop, offset in zip(starts, stops, offsets, strict=True)
            if start <= wall - offset < stop
        ]
        if candidates:
            return candidates[0] if fold == 0 else candidates[-1]
        for transition in transitions:
            if transition.instant + transition.before <= wall < transition.instant + transition.after:
                return transition.instant
        return wall - offsets[0]

    def _scan(self, chunk: int) -> tuple[Transition, ...]:
        low = max(chunk * _CHUNK, MIN_INSTANT)
        high = min((chunk + 1) * _CHUNK, MAX_INSTANT)
        if low >= high:
            return ()
        found: list[Transition] = []
        previous = low - 1
        previous_offset = self.offset_at(previous)
        probe = previous
        while probe < high - 1:
            probe = min(probe + _PROBE, high - 1)
            offset = self.offset_at(probe)
            if offset != previous_offset:
                found.extend(self._bisect(previous, previous_offset, probe, offset))
            previous, previous_offset = probe, offset
        return tuple(found)

    def _bisect(self, low: int, low_offset: int, high: int, high_offset: int) -> list[Transition]:
        """Transitions in ``(low, high]`` given the offsets at both ends differ."""
        found: list[Transition] = []
        while low_offset != high_offset:
            a, b = low, high
            while b - a > 1:
                middle = (a + b) // 2
                if self.offset_at(middle) == low_offset:
                    a = middle
                else:
                    b = middle
            after = self.offset_at(b)
            found.append(Transition(b, low_offset, after))
            low, low_offset = b, after
        return found


_ZONES: dict[str, ZoneOffsets] = {}
_ZONES_LOCK = threading.Lock()


def zone_offsets(name: str) -> ZoneOffsets:
    """The shared :class:`ZoneOffsets` of the IANA zone ``name``.

    Raises:
        ValueError: ``name`` is not a known IANA time zone.
    """
    zone = _ZONES.get(name)
    if zone is not None:
        return zone
    try:
        created = ZoneOffsets(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise ValueError(
            f"unknown time zone {name!r} (expected an IANA name such as 'America/Chicago')"
        ) from exc
    with _ZONES_LOCK:
        return _ZONES.setdefault(name, created)
