"""Turn readiness into runs and status changes for one backfill: the planner's core, free of I/O.

``plan_backfill`` walks a worklist: changed partitions make their children candidates; candidates
become ready (grouped into runs by policy) or upstream-failed, and upstream-failed partitions make
their own children candidates in turn. The caller supplies statuses and writes the outcome.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise

from code_server.asset_graph import AssetGraph
from code_server.asset_key import AssetKey
from control_plane.backfills.readiness import PartitionRows, downstream_candidates, evaluate_unit
from control_plane.backfills.run_planning import PlannedRun, ReadySegment, plan_runs, segment_runs
from control_plane.backfills.targets import AssetTarget
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

    def plan_launch(self, targets: Mapping[AssetKey, AssetTarget]) -> BackfillPlan:
        """The first runs of a new backfill, where every partition is still pending (see ``launch_runs``)."""
        return BackfillPlan(runs=list(self.launch_runs(targets)))

    def launch_runs(self, targets: Mapping[AssetKey, AssetTarget]) -> Iterator[PlannedRun]:
        """The first runs of a new backfill, one at a time, so a caller can write them in batches.

        Equivalent to ``plan_everything`` on all-pending partitions, without per-key readiness
        checks: a unit whose first asset has no parent in the backfill is ready at every position
        (its own assets run together), and any other unit waits for its parents. It works on
        position intervals, so its cost is the runs it plans, not the partitions. Every partition
        of an asset in ``launch_ready_assets`` is in exactly one of these runs.
        """
        for unit in self._units:
            if not self._ready_at_launch(unit):
                continue
            present = [key for key in unit.asset_keys if key in targets]
            for segment in _segments({key: targets[key].intervals for key in present}):
                key_space = targets[segment.asset_keys[0]].key_space
                yield from segment_runs(
                    segment,
                    unit.backfill_policy,
                    partitioned=unit.partitions_def is not None,
                    key_at=key_space.key_at,
                )

    def launch_ready_assets(self) -> frozenset[AssetKey]:
        """The assets ``launch_runs`` queues; the others wait for their parents."""
        return frozenset(
            key for unit in self._units if self._ready_at_launch(unit) for key in unit.asset_keys
        )

    def _ready_at_launch(self, unit: ExecutionUnit) -> bool:
        return not any(parent in self._assets for parent in self._graph.parents(unit.asset_keys[0]))

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


def _segments(intervals_by_asset: Mapping[AssetKey, Sequence[tuple[int, int]]]) -> list[ReadySegment]:
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
