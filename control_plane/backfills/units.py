"""Execution units: assets of a backfill that run together, partition by partition, in one run.

A child joins its parents' unit when every parent it has in the backfill is in that one unit and
can share a run with it: same partitions definition, same backfill policy, and an identity-like
mapping, so partition k of the child reads exactly partition k of each parent. Because a child
joins only when *all* its backfill parents are in the unit, edges from other units enter a unit
only at its first asset, and units form a DAG.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from code_server.asset_graph import AssetGraph
from code_server.asset_key import AssetKey
from code_server.backfill_policy import BackfillPolicy
from code_server.partitions.base import PartitionsDefinition


@dataclass(frozen=True, slots=True)
class ExecutionUnit:
    #: Parents first; the first asset is where edges from other units enter.
    asset_keys: tuple[AssetKey, ...]
    partitions_def: PartitionsDefinition | None
    backfill_policy: BackfillPolicy | None


def execution_units(graph: AssetGraph, asset_keys: Sequence[AssetKey]) -> list[ExecutionUnit]:
    """Group the backfill's assets into units, in topological order of their first assets."""
    selected = set(asset_keys)
    unit_of: dict[AssetKey, int] = {}
    members: list[list[AssetKey]] = []
    for key in graph.toposort(asset_keys):
        parents = [parent for parent in graph.parents(key) if parent in selected]
        parent_units = {unit_of[parent] for parent in parents}
        if len(parent_units) == 1 and all(_can_share_run(graph, parent, key) for parent in parents):
            unit = parent_units.pop()
        else:
            unit = len(members)
            members.append([])
        unit_of[key] = unit
        members[unit].append(key)
    return [
        ExecutionUnit(
            asset_keys=tuple(keys),
            partitions_def=graph.node(keys[0]).partitions_def,
            backfill_policy=graph.node(keys[0]).backfill_policy,
        )
        for keys in members
    ]


def _can_share_run(graph: AssetGraph, parent: AssetKey, child: AssetKey) -> bool:
    parent_node, child_node = graph.node(parent), graph.node(child)
    if parent_node.backfill_policy != child_node.backfill_policy:
        return False
    if parent_node.partitions_def != child_node.partitions_def:
        return False
    if child_node.partitions_def is None:
        return True
    return graph.partition_mapping(child, parent).is_identity_like
