"""Keep a downstream unit's backfill policy: hold its ready partitions until its chunk is settled.

A unit that waits for parents in other units and has a backfill policy does not run whatever
happens to be ready, or ``single_run()`` would become one run per parent outcome. Its positions
are cut into *chunks*: the whole unit for ``single_run()``; for ``multi_run(n)``, runs of n from
the start of each stretch of positions, aligned as a root unit's launch runs are. A chunk is
*settled* when none of its partitions waits for a parent that has not finished; then its ready
partitions run, one run per contiguous range, and its doomed ones are upstream-failed.

Nothing is held in memory between ticks: held partitions are simply pending in storage, so a
restarted control plane finds the same chunks settled or not, and a queued partition is never
ready again (no partition is planned twice).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator, Sequence

from code_server.asset_graph import AssetGraph
from code_server.asset_key import AssetKey
from control_plane.backfills.readiness import PartitionRows
from control_plane.backfills.run_planning import ReadySegment, unit_segments
from control_plane.backfills.units import ExecutionUnit

Chunk = tuple[int, int]


class UnitChunks:
    """The chunks of one held unit: which positions run together at the earliest."""

    def __init__(self, segments: Sequence[ReadySegment], limit: int | None) -> None:
        if limit is None and segments:
            self._chunks: list[Chunk] | None = [(segments[0].first, segments[-1].last)]
        else:
            self._chunks = None
        self._segments = list(segments)
        self._firsts = [segment.first for segment in segments]
        self._limit = limit

    @classmethod
    def of(cls, unit: ExecutionUnit, partitions: PartitionRows) -> UnitChunks:
        assert unit.backfill_policy is not None
        segments = unit_segments({key: partitions.intervals(key) for key in unit.asset_keys})
        return cls(segments, unit.backfill_policy.max_partitions_per_run)

    def containing(self, position: int) -> Chunk | None:
        """The chunk of ``position``, or None when the unit has no partition there."""
        if self._chunks is not None:
            first, last = self._chunks[0]
            return self._chunks[0] if first <= position <= last else None
        index = bisect_right(self._firsts, position) - 1
        if index < 0 or position > self._segments[index].last:
            return None
        segment = self._segments[index]
        assert self._limit is not None
        first = segment.first + (position - segment.first) // self._limit * self._limit
        return first, min(first + self._limit - 1, segment.last)

    def __iter__(self) -> Iterator[Chunk]:
        if self._chunks is not None:
            yield from self._chunks
            return
        assert self._limit is not None
        for segment in self._segments:
            for first in range(segment.first, segment.last + 1, self._limit):
                yield first, min(first + self._limit - 1, segment.last)


def parents_unfinished(
    graph: AssetGraph,
    unit: ExecutionUnit,
    backfill_assets: frozenset[AssetKey],
    chunk: Chunk,
    partitions: PartitionRows,
) -> bool:
    """A cheap first test of a chunk: True when a parent in another unit surely has an unfinished
    partition the chunk reads, so it cannot be settled yet; one probe per parent.

    An identity-like parent is probed over the chunk's positions. A ``single_run()`` unit reads, in
    general, all of a parent's partitions, so others are probed anywhere. Otherwise False, and the
    caller evaluates the chunk's keys (at most n).
    """
    founder = unit.asset_keys[0]
    founder_def = graph.node(founder).partitions_def
    whole_unit = unit.backfill_policy is not None and unit.backfill_policy.max_partitions_per_run is None
    for parent in graph.parents(founder):
        if parent not in backfill_assets:
            continue
        same_positions = (
            graph.node(parent).partitions_def == founder_def
            and graph.partition_mapping(founder, parent).is_identity_like
        )
        if same_positions:
            if partitions.unfinished(parent, chunk[0], chunk[1]):
                return True
        elif whole_unit and partitions.unfinished(parent, None, None):
            return True
    return False


def chunk_keys(unit: ExecutionUnit, chunk: Chunk, partitions: PartitionRows) -> list[str]:
    """The keys of any of the unit's assets at the chunk's positions."""
    keys: dict[str, None] = {}
    for asset_key in unit.asset_keys:
        keys.update(dict.fromkeys(partitions.keys_between(asset_key, chunk[0], chunk[1])))
    return list(keys)
