"""Turn readiness into runs and status changes for one backfill: the planner's core, free of I/O.

``plan_backfill`` walks a worklist: changed partitions make their children candidates; candidates
become ready (grouped into runs by policy) or upstream-failed, and upstream-failed partitions make
their own children candidates in turn. The caller supplies statuses and writes the outcome.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from code_server.asset_graph import AssetGraph
from code_server.asset_key import AssetKey
from control_plane.backfills.readiness import PartitionRows, downstream_candidates, evaluate_unit
from control_plane.backfills.run_planning import PlannedRun, ReadyPartition, plan_runs
from control_plane.backfills.units import ExecutionUnit, execution_units
from control_plane.records import PartitionStatus


@dataclass
class BackfillPlan:
    runs: list[PlannedRun] = field(default_factory=list)
    upstream_failed: dict[AssetKey, list[str]] = field(default_factory=dict)


class BackfillPlanner:
    """Plans one backfill over a fixed graph and asset set (build one per tick)."""

    def __init__(self, graph: AssetGraph, asset_keys: Sequence[AssetKey]) -> None:
        self._graph = graph
        self._assets = frozenset(asset_keys)
        self._units = execution_units(graph, asset_keys)
        self._unit_of = {key: index for index, unit in enumerate(self._units) for key in unit.asset_keys}

    @property
    def units(self) -> Sequence[ExecutionUnit]:
        return self._units

    def plan_launch(self, positions: Mapping[AssetKey, Sequence[tuple[str, int]]]) -> BackfillPlan:
        """The first runs of a new backfill, where every partition is still pending.

        Equivalent to ``plan_everything`` on all-pending rows, without per-key readiness checks:
        a unit whose first asset has no parent in the backfill is ready at every key (its own
        assets run together), and any other unit waits for its parents.
        """
        plan = BackfillPlan()
        for unit in self._units:
            founder_parents = [p for p in self._graph.parents(unit.asset_keys[0]) if p in self._assets]
            if founder_parents:
                continue
            assets_at: dict[str, list[AssetKey]] = {}
            position_of: dict[str, int] = {}
            for asset_key in unit.asset_keys:
                for key, position in positions.get(asset_key, ()):
                    assets_at.setdefault(key, []).append(asset_key)
                    position_of[key] = position
            ready = [
                ReadyPartition(key, position_of[key], tuple(assets)) for key, assets in assets_at.items()
            ]
            plan.runs.extend(
                plan_runs(ready, unit.backfill_policy, partitioned=unit.partitions_def is not None)
            )
        return plan

    def plan_everything(self, partitions: PartitionRows) -> BackfillPlan:
        """Consider every pending partition (at launch, on retry or resume, after a restart)."""
        return self._plan({index: None for index in range(len(self._units))}, partitions)

    def plan_changes(
        self, changed: Mapping[AssetKey, Collection[str]], partitions: PartitionRows
    ) -> BackfillPlan:
        """Consider only the children of partitions whose status just became final."""
        return self._plan(self._candidates(changed), partitions)

    def _plan(self, candidates: dict[int, set[str] | None], partitions: PartitionRows) -> BackfillPlan:
        plan = BackfillPlan()
        doomed = _DoomedOverlay(partitions)
        while candidates:
            newly_failed: dict[AssetKey, list[str]] = {}
            for index in sorted(candidates):
                unit = self._units[index]
                readiness = evaluate_unit(self._graph, unit, self._assets, candidates[index], doomed)
                partitioned = unit.partitions_def is not None
                plan.runs.extend(plan_runs(readiness.ready, unit.backfill_policy, partitioned=partitioned))
                for asset_key, keys in readiness.upstream_failed.items():
                    newly_failed.setdefault(asset_key, []).extend(keys)
            for asset_key, keys in newly_failed.items():
                plan.upstream_failed.setdefault(asset_key, []).extend(keys)
                doomed.mark(asset_key, keys)
            candidates = self._candidates(newly_failed)
        return plan

    def _candidates(self, changed: Mapping[AssetKey, Collection[str]]) -> dict[int, set[str] | None]:
        candidates: dict[int, set[str] | None] = {}
        for parent, keys in changed.items():
            if parent not in self._graph:
                continue
            for child in self._graph.children(parent):
                if child not in self._assets:
                    continue
                index = self._unit_of[child]
                child_keys = downstream_candidates(self._graph, parent, keys, child)
                if child_keys is None or candidates.get(index, set()) is None:
                    candidates[index] = None
                else:
                    existing = candidates.setdefault(index, set())
                    assert existing is not None
                    existing.update(child_keys)
        return candidates


class _DoomedOverlay:
    """Statuses from the caller, with the partitions this plan marks upstream-failed laid over them."""

    def __init__(self, partitions: PartitionRows) -> None:
        self._partitions = partitions
        self._doomed: dict[AssetKey, set[str]] = {}

    def mark(self, asset_key: AssetKey, keys: Collection[str]) -> None:
        self._doomed.setdefault(asset_key, set()).update(keys)

    def rows(
        self, asset_key: AssetKey, partition_keys: Collection[str] | None
    ) -> Mapping[str, tuple[PartitionStatus, int]]:
        rows = self._partitions.rows(asset_key, partition_keys)
        doomed = self._doomed.get(asset_key)
        if not doomed:
            return rows
        return {
            key: (PartitionStatus.UPSTREAM_FAILED, position) if key in doomed else (status, position)
            for key, (status, position) in rows.items()
        }
