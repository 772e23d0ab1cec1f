"""Turn readiness into runs and status changes for one backfill: the planner's core, free of I/O.

``BackfillPlanner`` walks a worklist: changed partitions make their children candidates; candidates
become ready (grouped into runs by policy) or upstream-failed, and upstream-failed partitions make
their own children candidates in turn. A unit downstream of other units with a backfill policy
holds its ready partitions until their chunk is settled (``batching``). The caller supplies
statuses and writes the outcome.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from code_server.asset_graph import AssetGraph
from code_server.asset_key import AssetKey
from control_plane.backfills.batching import Chunk, UnitChunks, chunk_keys, parents_unfinished
from control_plane.backfills.readiness import PartitionRows, downstream_candidates, evaluate_unit
from control_plane.backfills.run_planning import (
    PlannedRun,
    ReadyPartition,
    plan_runs,
    segment_runs,
    unit_segments,
)
from control_plane.backfills.targets import AssetTarget
from control_plane.backfills.units import ExecutionUnit, execution_units
from control_plane.records import PartitionStatus


@dataclass
class BackfillPlan:
    """Runs to queue and partitions to mark upstream-failed, from one planning pass."""

    runs: list[PlannedRun] = field(default_factory=list)
    upstream_failed: dict[AssetKey, list[str]] = field(default_factory=dict)


class BackfillPlanner:
    """Plans one backfill over a fixed graph and asset set (build one per tick)."""

    def __init__(self, graph: AssetGraph, asset_keys: Sequence[AssetKey]) -> None:
        self._graph = graph
        self._assets = frozenset(asset_keys)
        self._units = execution_units(graph, asset_keys)
        self._unit_of = {key: index for index, unit in enumerate(self._units) for key in unit.asset_keys}
        #: Units that hold ready partitions until their chunk is settled (see ``batching``).
        self._held = frozenset(
            index
            for index, unit in enumerate(self._units)
            if unit.backfill_policy is not None
            and unit.partitions_def is not None
            and not self._ready_at_launch(unit)
        )

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
            if self._ready_at_launch(unit):
                yield from _unit_runs(unit, targets)

    def every_run(self, targets: Mapping[AssetKey, AssetTarget]) -> Iterator[PlannedRun]:
        """Every run the backfill makes if every partition succeeds, parents before children: what a
        dry run shows. Once its parents succeed, a unit's ready positions are all its positions, and
        planning cuts them as a launch cuts a root's (``batching``), so these are the same runs."""
        for unit in self._units:
            yield from _unit_runs(unit, targets)

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
        overlay = _PlanOverlay(partitions)
        while candidates:
            newly_failed: dict[AssetKey, dict[str, None]] = {}
            for index in sorted(candidates):
                if index in self._held:
                    runs, failed = self._plan_held(self._units[index], candidates[index], overlay)
                else:
                    runs, failed = self._plan_unit(self._units[index], candidates[index], overlay)
                plan.runs.extend(runs)
                overlay.mark_planned(runs)
                for asset_key, keys in failed.items():
                    newly_failed.setdefault(asset_key, {}).update(dict.fromkeys(keys))
            for asset_key, keyset in newly_failed.items():
                plan.upstream_failed.setdefault(asset_key, []).extend(keyset)
                overlay.mark_doomed(asset_key, keyset)
            candidates = self._candidates({key: list(keys) for key, keys in newly_failed.items()})
        return plan

    def _plan_unit(
        self, unit: ExecutionUnit, keys: set[str] | None, partitions: PartitionRows
    ) -> tuple[list[PlannedRun], dict[AssetKey, list[str]]]:
        """Whatever is ready runs now."""
        readiness = evaluate_unit(self._graph, unit, self._assets, keys, partitions)
        partitioned = unit.partitions_def is not None
        runs = plan_runs(readiness.ready, unit.backfill_policy, partitioned=partitioned)
        return runs, readiness.upstream_failed

    def _plan_held(
        self, unit: ExecutionUnit, keys: set[str] | None, partitions: PartitionRows
    ) -> tuple[list[PlannedRun], dict[AssetKey, list[str]]]:
        """Doomed partitions fail now; ready ones run when their chunk is settled.

        The cost follows the change: the changed keys are evaluated, and a chunk they touch is
        evaluated in full only once its parents have nothing unfinished under it.
        """
        chunks = UnitChunks.of(unit, partitions)
        readiness = evaluate_unit(self._graph, unit, self._assets, keys, partitions)
        failed = {key: dict.fromkeys(found) for key, found in readiness.upstream_failed.items()}
        unsettled = {chunks.containing(position) for position in readiness.waiting}
        ready_by_chunk: dict[Chunk, list[ReadyPartition]] = {}
        if keys is None:
            # Every key was evaluated: a chunk without a waiting partition is settled.
            for partition in readiness.ready:
                chunk = chunks.containing(partition.position)
                if chunk is not None and chunk not in unsettled:
                    ready_by_chunk.setdefault(chunk, []).append(partition)
        else:
            touched = {chunks.containing(position) for position in readiness.positions.values()}
            for chunk in sorted(chunk for chunk in touched - unsettled if chunk is not None):
                first, last = chunk
                if last - first + 1 <= len(readiness.positions):
                    keys_of_chunk = chunk_keys(unit, chunk, partitions)
                    if all(key in readiness.positions for key in keys_of_chunk):
                        # The changed keys are the whole chunk (multi_run(1), say): already evaluated.
                        ready_by_chunk[chunk] = [p for p in readiness.ready if first <= p.position <= last]
                        continue
                if parents_unfinished(self._graph, unit, self._assets, chunk, partitions):
                    continue
                whole = evaluate_unit(
                    self._graph, unit, self._assets, chunk_keys(unit, chunk, partitions), partitions
                )
                if whole.waiting:
                    continue
                ready_by_chunk[chunk] = whole.ready
                for key, found in whole.upstream_failed.items():
                    failed.setdefault(key, {}).update(dict.fromkeys(found))
        runs = [
            run
            for chunk in sorted(ready_by_chunk)
            for run in plan_runs(ready_by_chunk[chunk], unit.backfill_policy, partitioned=True)
        ]
        return runs, {key: list(found) for key, found in failed.items()}

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


class _PlanOverlay:
    """Statuses from the caller, with what this plan decided laid over them: partitions it marks
    upstream-failed, and partitions it has put in runs (queued), so no later round plans them again."""

    def __init__(self, partitions: PartitionRows) -> None:
        self._partitions = partitions
        self._doomed: dict[AssetKey, set[str]] = {}
        self._planned: dict[AssetKey, list[tuple[int, int]]] = {}

    def mark_doomed(self, asset_key: AssetKey, keys: Collection[str]) -> None:
        self._doomed.setdefault(asset_key, set()).update(keys)

    def mark_planned(self, runs: Collection[PlannedRun]) -> None:
        for run in runs:
            for asset_key in run.asset_keys:
                self._planned.setdefault(asset_key, []).append((run.first_position, run.last_position))

    def rows(
        self, asset_key: AssetKey, partition_keys: Collection[str] | None
    ) -> Mapping[str, tuple[PartitionStatus, int]]:
        rows = self._partitions.rows(asset_key, partition_keys)
        doomed = self._doomed.get(asset_key, set())
        planned = self._planned.get(asset_key, [])
        if not doomed and not planned:
            return rows
        return {key: self._status(key, row, doomed, planned) for key, row in rows.items()}

    @staticmethod
    def _status(
        key: str, row: tuple[PartitionStatus, int], doomed: set[str], planned: list[tuple[int, int]]
    ) -> tuple[PartitionStatus, int]:
        status, position = row
        if key in doomed:
            return PartitionStatus.UPSTREAM_FAILED, position
        if any(first <= position <= last for first, last in planned):
            return PartitionStatus.QUEUED, position
        return status, position

    def intervals(self, asset_key: AssetKey) -> Sequence[tuple[int, int]]:
        return self._partitions.intervals(asset_key)

    def keys_between(self, asset_key: AssetKey, first: int, last: int) -> list[str]:
        return self._partitions.keys_between(asset_key, first, last)

    def unfinished(self, asset_key: AssetKey, first: int | None, last: int | None) -> bool:
        # Doomed partitions are still pending below: a chunk over them waits for the next pass,
        # which follows the writing of their upstream failure.
        return self._partitions.unfinished(asset_key, first, last)


def _unit_runs(unit: ExecutionUnit, targets: Mapping[AssetKey, AssetTarget]) -> Iterator[PlannedRun]:
    """The runs of all of a unit's partitions, cut by its policy: one step per run."""
    present = [key for key in unit.asset_keys if key in targets]
    for segment in unit_segments({key: targets[key].intervals for key in present}):
        key_space = targets[segment.asset_keys[0]].key_space
        yield from segment_runs(
            segment,
            unit.backfill_policy,
            partitioned=unit.partitions_def is not None,
            key_at=key_space.key_at,
        )
