"""Which pending partitions of a backfill can run now, and which can never run (upstream failed).

Pure: statuses come from a lookup, so the same code plans from storage (incremental ticks, restarts)
and from memory (launch, dry runs). Only parents *in the backfill* are waited for; a parent
partition outside it is assumed to exist already.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from code_server.asset_graph import AssetGraph
from code_server.asset_key import AssetKey
from control_plane.backfills.run_planning import ReadyPartition
from control_plane.backfills.targets import UNPARTITIONED
from control_plane.backfills.units import ExecutionUnit
from control_plane.key_spaces import intervals
from control_plane.records import PartitionStatus

#: Parent states that doom a child partition.
_FAILED = frozenset({PartitionStatus.FAILED, PartitionStatus.UPSTREAM_FAILED, PartitionStatus.CANCELED})
#: States a partition leaves: while a parent partition is in one, its children may still become ready.
UNFINISHED = (PartitionStatus.PENDING, PartitionStatus.QUEUED, PartitionStatus.RUNNING)


class PartitionRows(Protocol):
    """Status and position of an asset's partitions in the backfill (absent keys are not in it)."""

    def rows(
        self, asset_key: AssetKey, partition_keys: Collection[str] | None
    ) -> Mapping[str, tuple[PartitionStatus, int]]:
        """``None`` asks for every partition of the asset in the backfill."""

    def intervals(self, asset_key: AssetKey) -> Sequence[tuple[int, int]]:
        """The asset's positions in the backfill (fixed at launch), as sorted disjoint intervals."""

    def keys_between(self, asset_key: AssetKey, first: int, last: int) -> list[str]:
        """The keys of the asset's partitions in the backfill at positions ``first`` .. ``last``."""

    def unfinished(self, asset_key: AssetKey, first: int | None, last: int | None) -> bool:
        """Whether a partition of the asset at ``first`` .. ``last`` (None: anywhere) is pending,
        queued or running: one probe, whatever the number of partitions."""


@dataclass
class Readiness:
    """What ``evaluate_unit`` found: what can run, what never can, and what may later."""

    ready: list[ReadyPartition] = field(default_factory=list)
    upstream_failed: dict[AssetKey, list[str]] = field(default_factory=dict)
    #: Positions of every evaluated key.
    positions: dict[str, int] = field(default_factory=dict)
    #: Positions where a pending asset of the unit waits for a parent that has not finished.
    waiting: list[int] = field(default_factory=list)


def evaluate_unit(
    graph: AssetGraph,
    unit: ExecutionUnit,
    backfill_assets: Collection[AssetKey],
    candidate_keys: Collection[str] | None,
    partitions: PartitionRows,
) -> Readiness:
    """Decide for each candidate key of ``unit`` (None: all its keys) which of its assets can run."""
    rows_by_asset = {key: partitions.rows(key, candidate_keys) for key in unit.asset_keys}
    founder = unit.asset_keys[0]
    keys, positions = _ordered_keys(rows_by_asset, candidate_keys)
    blocked, doomed = _external_parent_states(graph, founder, backfill_assets, keys, partitions)
    result = Readiness(positions=positions)
    unit_members = set(unit.asset_keys)
    for key in keys:
        # Effective state of each unit asset at this key: ok (materialized or running in this run),
        # wait, or failed.
        state: dict[AssetKey, str] = {}
        assets_in_run: list[AssetKey] = []
        position = -1
        for asset_key in unit.asset_keys:
            row = rows_by_asset[asset_key].get(key)
            if row is None:
                state[asset_key] = "ok"  # not in the backfill at this key: nothing to wait for
                continue
            status, position = row
            if status is not PartitionStatus.PENDING:
                state[asset_key] = (
                    "ok"
                    if status is PartitionStatus.MATERIALIZED
                    else "failed"
                    if status in _FAILED
                    else "wait"
                )
                continue
            if asset_key == founder:
                parent_state = "failed" if key in doomed else "wait" if key in blocked else "ok"
            else:
                parents = [parent for parent in graph.parents(asset_key) if parent in unit_members]
                parent_states = {state.get(parent, "ok") for parent in parents}
                parent_state = (
                    "failed" if "failed" in parent_states else "wait" if "wait" in parent_states else "ok"
                )
            state[asset_key] = parent_state
            if parent_state == "ok":
                assets_in_run.append(asset_key)
            elif parent_state == "failed":
                result.upstream_failed.setdefault(asset_key, []).append(key)
            elif not result.waiting or result.waiting[-1] != positions[key]:
                result.waiting.append(positions[key])
        if assets_in_run:
            result.ready.append(ReadyPartition(key, position, tuple(assets_in_run)))
    return result


def _ordered_keys(
    rows_by_asset: Mapping[AssetKey, Mapping[str, tuple[PartitionStatus, int]]],
    candidates: Collection[str] | None,
) -> tuple[list[str], dict[str, int]]:
    positions: dict[str, int] = {}
    for rows in rows_by_asset.values():
        for key, (_, position) in rows.items():
            positions.setdefault(key, position)
    keys = positions if candidates is None else [key for key in candidates if key in positions]
    return sorted(keys, key=positions.__getitem__), positions


def _external_parent_states(
    graph: AssetGraph,
    founder: AssetKey,
    backfill_assets: Collection[AssetKey],
    keys: Sequence[str],
    partitions: PartitionRows,
) -> tuple[set[str], set[str]]:
    """Keys of the founder that must wait for, or can never get, their parents in other units."""
    blocked: set[str] = set()
    doomed: set[str] = set()
    founder_def = graph.node(founder).partitions_def
    for parent in graph.parents(founder):
        if parent not in backfill_assets:
            continue
        parent_def = graph.node(parent).partitions_def
        needed: dict[str, Sequence[str]] = {}
        if founder_def is None or parent_def is None:
            # Unpartitioned on either side: every partition of the parent in the backfill counts.
            parent_rows = partitions.rows(parent, None)
            needed = {key: list(parent_rows) for key in keys}
        else:
            mapping = graph.partition_mapping(founder, parent)
            for key in keys:
                result = mapping.get_upstream_mapped_partitions_result_for_partitions(
                    [key], founder_def, parent_def
                )
                needed[key] = result.partition_keys
            parent_rows = partitions.rows(parent, {k for ks in needed.values() for k in ks})
        for key in keys:
            statuses = [parent_rows[k][0] for k in needed[key] if k in parent_rows]
            if any(status in _FAILED for status in statuses):
                doomed.add(key)
            elif any(status is not PartitionStatus.MATERIALIZED for status in statuses):
                blocked.add(key)
    return blocked, doomed


def downstream_candidates(
    graph: AssetGraph,
    parent: AssetKey,
    parent_keys: Iterable[str],
    child: AssetKey,
) -> list[str] | None:
    """Keys of ``child`` that may have become ready or doomed when ``parent_keys`` changed (None: all)."""
    parent_def, child_def = graph.node(parent).partitions_def, graph.node(child).partitions_def
    if child_def is None:
        return [UNPARTITIONED]
    if parent_def is None:
        return None
    mapping = graph.partition_mapping(child, parent)
    return list(
        mapping.get_downstream_partitions_for_partitions(
            [key for key in parent_keys if key != UNPARTITIONED], parent_def, child_def
        )
    )


class InMemoryPartitionRows:
    """Partition rows held in memory, for tests of the planner: a dict of statuses per asset."""

    def __init__(self, rows: Mapping[AssetKey, Mapping[str, tuple[PartitionStatus, int]]]) -> None:
        self._rows = rows

    def intervals(self, asset_key: AssetKey) -> Sequence[tuple[int, int]]:
        return intervals(position for _, position in self._rows.get(asset_key, {}).values())

    def keys_between(self, asset_key: AssetKey, first: int, last: int) -> list[str]:
        rows = self._rows.get(asset_key, {})
        return sorted(
            (key for key, (_, position) in rows.items() if first <= position <= last),
            key=lambda key: rows[key][1],
        )

    def unfinished(self, asset_key: AssetKey, first: int | None, last: int | None) -> bool:
        return any(
            status in UNFINISHED
            and (first is None or first <= position)
            and (last is None or position <= last)
            for status, position in self._rows.get(asset_key, {}).values()
        )

    def rows(
        self, asset_key: AssetKey, partition_keys: Collection[str] | None
    ) -> Mapping[str, tuple[PartitionStatus, int]]:
        asset_rows = self._rows.get(asset_key, {})
        if partition_keys is None:
            return asset_rows
        return {key: asset_rows[key] for key in partition_keys if key in asset_rows}
