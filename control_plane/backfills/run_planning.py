"""Group ready partitions of an execution unit into runs, following the unit's backfill policy.

No policy: one run per partition. ``single_run()``: one run per contiguous stretch of positions.
``multi_run(n)``: contiguous stretches cut into chunks of at most n. A run covers one set of assets
for all its partitions, so a stretch also breaks where that set changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise

from code_server.asset_key import AssetKey
from code_server.backfill_policy import BackfillPolicy
from code_server.partitions.keys import PartitionKeyRange


@dataclass(frozen=True, slots=True)
class ReadyPartition:
    """Partition ``key`` (at ``position``) is ready for these assets of the unit."""

    key: str
    position: int
    asset_keys: tuple[AssetKey, ...]


@dataclass(frozen=True, slots=True)
class ReadySegment:
    """Positions ``first`` .. ``last`` (contiguous) are ready for these assets of the unit."""

    first: int
    last: int
    asset_keys: tuple[AssetKey, ...]


@dataclass(frozen=True, slots=True)
class PlannedRun:
    """A run over one contiguous stretch of positions (the same for each of its assets)."""

    asset_keys: tuple[AssetKey, ...]
    #: None for unpartitioned assets.
    partition_range: PartitionKeyRange | None
    first_position: int
    last_position: int

    @property
    def partition_count(self) -> int:
        return self.last_position - self.first_position + 1


def plan_runs(
    ready: Sequence[ReadyPartition], policy: BackfillPolicy | None, *, partitioned: bool
) -> list[PlannedRun]:
    """Runs for ``ready`` (any order); deterministic for the same input."""
    ordered = sorted(ready, key=lambda partition: partition.position)
    if not partitioned:
        return [
            PlannedRun(partition.asset_keys, None, partition.position, partition.position)
            for partition in ordered
        ]
    limit = _limit(policy, len(ordered))
    runs: list[PlannedRun] = []
    stretch: list[ReadyPartition] = []
    for partition in ordered:
        if stretch and (
            len(stretch) == limit
            or partition.position != stretch[-1].position + 1
            or partition.asset_keys != stretch[0].asset_keys
        ):
            runs.append(_run_of(stretch))
            stretch = []
        stretch.append(partition)
    if stretch:
        runs.append(_run_of(stretch))
    return runs


def segment_runs(
    segment: ReadySegment,
    policy: BackfillPolicy | None,
    *,
    partitioned: bool,
    key_at: Callable[[int], str],
) -> Iterator[PlannedRun]:
    """``plan_runs`` for ready positions given as a segment, one run at a time: the cost is the runs
    planned, not the partitions, so one run over ten years is one step."""
    if not partitioned:
        for position in range(segment.first, segment.last + 1):
            yield PlannedRun(segment.asset_keys, None, position, position)
        return
    limit = _limit(policy, segment.last - segment.first + 1)
    for first in range(segment.first, segment.last + 1, limit):
        last = min(first + limit - 1, segment.last)
        yield PlannedRun(segment.asset_keys, PartitionKeyRange(key_at(first), key_at(last)), first, last)


def _limit(policy: BackfillPolicy | None, available: int) -> int:
    """Partitions per run: one with no policy, all with single_run, at most n with multi_run(n)."""
    if policy is None:
        return 1
    if policy.max_partitions_per_run is None:
        return available or 1
    return policy.max_partitions_per_run


def _run_of(stretch: list[ReadyPartition]) -> PlannedRun:
    return PlannedRun(
        asset_keys=stretch[0].asset_keys,
        partition_range=PartitionKeyRange(stretch[0].key, stretch[-1].key),
        first_position=stretch[0].position,
        last_position=stretch[-1].position,
    )


def unit_segments(intervals_by_asset: Mapping[AssetKey, Sequence[tuple[int, int]]]) -> list[ReadySegment]:
    """Cut the assets' intervals where the set of assets present changes: maximal stretches of
    positions with one set of assets (in the given order), in position order."""
    boundaries = sorted(
        {first for spans in intervals_by_asset.values() for first, _ in spans}
        | {last + 1 for spans in intervals_by_asset.values() for _, last in spans}
    )
    segments: list[ReadySegment] = []
    cursors = dict.fromkeys(intervals_by_asset, 0)
    for start, stop in pairwise(boundaries):
        present = []
        for asset_key, spans in intervals_by_asset.items():
            index = cursors[asset_key]
            while index < len(spans) and spans[index][1] < start:
                index += 1
            cursors[asset_key] = index
            if index < len(spans) and spans[index][0] <= start:
                present.append(asset_key)
        if not present:
            continue
        previous = segments[-1] if segments else None
        if previous is not None and previous.last == start - 1 and previous.asset_keys == tuple(present):
            segments[-1] = ReadySegment(previous.first, stop - 1, previous.asset_keys)
        else:
            segments.append(ReadySegment(start, stop - 1, tuple(present)))
    return segments
