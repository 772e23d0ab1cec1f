"""Group ready partitions of an execution unit into runs, following the unit's backfill policy.

No policy: one run per partition. ``single_run()``: one run per contiguous stretch of positions.
``multi_run(n)``: contiguous stretches cut into chunks of at most n. A run covers one set of assets
for all its partitions, so a stretch also breaks where that set changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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
class PlannedRun:
    asset_keys: tuple[AssetKey, ...]
    #: None for unpartitioned assets.
    partition_range: PartitionKeyRange | None
    partition_keys: tuple[str, ...]


def plan_runs(
    ready: Sequence[ReadyPartition], policy: BackfillPolicy | None, *, partitioned: bool
) -> list[PlannedRun]:
    """Runs for ``ready`` (any order); deterministic for the same input."""
    ordered = sorted(ready, key=lambda partition: partition.position)
    if not partitioned:
        return [PlannedRun(partition.asset_keys, None, (partition.key,)) for partition in ordered]
    if policy is None:
        limit = 1
    elif policy.max_partitions_per_run is None:
        limit = len(ordered) or 1
    else:
        limit = policy.max_partitions_per_run
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


def _run_of(stretch: list[ReadyPartition]) -> PlannedRun:
    return PlannedRun(
        asset_keys=stretch[0].asset_keys,
        partition_range=PartitionKeyRange(stretch[0].key, stretch[-1].key),
        partition_keys=tuple(partition.key for partition in stretch),
    )
