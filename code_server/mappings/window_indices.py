"""Index arithmetic over time-window partitions, in runs of consecutive indices.

A backfill maps ranges of thousands of partitions at once; working on ``(first, last)`` runs
instead of single indices keeps that cost close to formatting the resulting keys.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from code_server.errors import PartitionKeyError
from code_server.partitions.keys import PartitionKeyRange
from code_server.partitions.time_window import TimeWindowPartitionsDefinition

#: Consecutive indices ``first`` to ``last``, both included.
Run = tuple[int, int]


def index_runs(
    partitions_def: TimeWindowPartitionsDefinition, keys: Sequence[str], context: str
) -> list[Run]:
    """The indices of ``keys`` as sorted, disjoint runs.

    Raises:
        PartitionKeyError: a key is not a key of ``partitions_def``; the message starts with ``context``.
    """
    contiguous = _as_one_run(partitions_def, keys)
    if contiguous is not None:
        return [contiguous]
    indices = set()
    for key in keys:
        try:
            indices.add(partitions_def.partition_key_index(key))
        except ValueError as exc:
            raise PartitionKeyError(f"{context} {key!r}: {exc}") from exc
    return merge_runs((index, index) for index in indices)


def merge_runs(runs: Iterable[Run]) -> list[Run]:
    """Sorted, disjoint runs covering the same indices; touching runs are joined."""
    merged: list[Run] = []
    for first, last in sorted(runs):
        if first > last:
            continue
        if merged and first <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return merged


def clip_runs(runs: Iterable[Run], low: int, high: int) -> list[Run]:
    """The parts of ``runs`` within ``low`` to ``high`` (both included)."""
    return [(max(first, low), min(last, high)) for first, last in runs if first <= high and last >= low]


def indices_overlapping(
    partitions_def: TimeWindowPartitionsDefinition, start: datetime, end: datetime
) -> Run:
    """First and last indices of the windows of ``partitions_def`` that overlap ``[start, end)``."""
    low = partitions_def.index_of_time(start)
    high = partitions_def.index_of_time(end)
    # Timestamps, not datetimes: aware datetimes sharing a tzinfo compare by wall clock, which
    # cannot tell the two 01:30s of a fall-back night apart.
    if partitions_def.time_window_at_index(high).start.timestamp() >= end.timestamp():
        high -= 1
    return low, high


def keys_of_runs(partitions_def: TimeWindowPartitionsDefinition, runs: Iterable[Run]) -> tuple[str, ...]:
    """The keys of the windows in ``runs``, in order, without duplicates.

    Runs may reach outside the definition's bounds (nonexistent partitions), so keys are formatted
    index by index there, and in bulk inside.
    """
    keys: list[str] = []
    for first, last in runs:
        try:
            keys.extend(
                partitions_def.get_partition_keys_in_range(
                    PartitionKeyRange(
                        partitions_def.partition_key_at_index(first),
                        partitions_def.partition_key_at_index(last),
                    )
                )
            )
        except PartitionKeyError:  # out of start/end bounds: no bulk formatting there
            keys.extend(partitions_def.partition_key_at_index(index) for index in range(first, last + 1))
    # A format that cannot tell two windows apart must not list one key twice.
    return tuple(dict.fromkeys(keys))


def _as_one_run(partitions_def: TimeWindowPartitionsDefinition, keys: Sequence[str]) -> Run | None:
    """Fast path for the usual input, a whole range in order: check it against the range's keys."""
    if len(keys) < 2:
        return None
    try:
        expected = partitions_def.get_partition_keys_in_range(PartitionKeyRange(keys[0], keys[-1]))
        if len(expected) != len(keys) or list(expected) != list(keys):
            return None
        first = partitions_def.partition_key_index(keys[0])
    except ValueError:  # malformed or out of bounds: the slow path says which key
        return None
    return first, first + len(keys) - 1
