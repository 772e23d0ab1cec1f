"""Resolve a backfill request into the (asset, partition) pairs it covers, as of launch time."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from code_server.asset_graph import AssetGraph
from code_server.asset_key import AssetKey
from code_server.errors import PartitaError
from code_server.partitions import TimeWindowPartitionsDefinition
from code_server.partitions.base import PartitionsDefinition
from code_server.partitions.keys import PartitionKeyRange
from code_server.wire.automation import BackfillRequestSpec
from control_plane.errors import InvalidBackfillRequest
from control_plane.key_spaces import (
    ExplicitKeySpace,
    KeySpace,
    TimeWindowKeySpace,
    intervals,
    key_space_for,
    merged_intervals,
)

#: The partition key stored for an unpartitioned asset.
UNPARTITIONED = ""
_MAX_NAMED = 5


@dataclass(frozen=True, slots=True)
class AssetTarget:
    """One asset's partitions in the backfill: intervals of positions in its key space.

    A range of a time-window definition stays two numbers however long it is; only explicit keys,
    or mappings that are not identities, are expanded key by key.
    """

    key_space: KeySpace
    #: Sorted, disjoint (first, last) positions, both included.
    intervals: tuple[tuple[int, int], ...]

    @property
    def count(self) -> int:
        return sum(last - first + 1 for first, last in self.intervals)

    def positioned(self) -> Iterator[tuple[str, int]]:
        """(key, position) of every partition, in order."""
        for first, last in self.intervals:
            for position in range(first, last + 1):
                yield self.key_space.key_at(position), position

    def keys(self) -> list[str]:
        return [key for key, _ in self.positioned()]


@dataclass(frozen=True, slots=True)
class ResolvedTarget:
    """Every asset of the backfill (parents first) with its partitions."""

    asset_keys: tuple[AssetKey, ...]
    partitions: Mapping[AssetKey, AssetTarget]

    @property
    def partition_count(self) -> int:
        return sum(target.count for target in self.partitions.values())


def resolve_target(graph: AssetGraph, spec: BackfillRequestSpec, current_time: datetime) -> ResolvedTarget:
    """Validate ``spec`` against the graph and expand it; raise :class:`InvalidBackfillRequest` naming the problem."""
    if not spec.asset_keys:
        raise InvalidBackfillRequest("The backfill selects no assets; pass at least one asset key.")
    unknown = sorted({key for key in spec.asset_keys if key not in graph})
    if unknown:
        names = ", ".join(repr(key.to_user_string()) for key in unknown[:_MAX_NAMED])
        raise InvalidBackfillRequest(f"Unknown asset(s) {names} in this code location; check the asset keys.")
    external = sorted(key for key in spec.asset_keys if graph.node(key).is_external)
    if external:
        names = ", ".join(repr(key.to_user_string()) for key in external)
        raise InvalidBackfillRequest(
            f"Asset(s) {names} are external (defined in no code) and cannot be backfilled."
        )
    order = tuple(graph.toposort(spec.asset_keys))
    try:
        if spec.partitions_by_asset is not None:
            keys_by_asset = _keys_per_asset(graph, order, spec.partitions_by_asset)
            partitions = {
                key: _target_of_keys(graph.node(key).partitions_def, keys, current_time, key)
                for key, keys in keys_by_asset.items()
            }
        else:
            partitions = _targets_from_roots(graph, order, spec, current_time)
    except PartitaError as error:
        raise InvalidBackfillRequest(str(error)) from error
    kept = tuple(key for key in order if key in partitions and partitions[key].count)
    return ResolvedTarget(asset_keys=kept, partitions={key: partitions[key] for key in kept})


def _keys_per_asset(
    graph: AssetGraph, order: Sequence[AssetKey], partitions_by_asset: Mapping[AssetKey, Sequence[str]]
) -> dict[AssetKey, Sequence[str]]:
    missing = [key for key in order if key not in partitions_by_asset]
    if missing:
        raise InvalidBackfillRequest(
            f"partitions_by_asset names no partitions for {', '.join(k.to_user_string() for k in missing)}."
        )
    result: dict[AssetKey, Sequence[str]] = {}
    for key in order:
        definition = graph.node(key).partitions_def
        keys = list(dict.fromkeys(partitions_by_asset[key]))
        if definition is None:
            if keys and keys != [UNPARTITIONED]:
                raise InvalidBackfillRequest(
                    f"Asset {key.to_user_string()!r} is not partitioned, but partitions {keys[:_MAX_NAMED]} were given."
                )
            keys = [UNPARTITIONED]
        result[key] = keys
    return result


def _targets_from_roots(
    graph: AssetGraph, order: Sequence[AssetKey], spec: BackfillRequestSpec, current_time: datetime
) -> dict[AssetKey, AssetTarget]:
    roots = graph.roots(order)
    partitioned_roots = [root for root in roots if graph.node(root).partitions_def is not None]
    definitions = {graph.node(root).partitions_def for root in partitioned_roots}
    if len(definitions) > 1:
        described = "; ".join(
            f"{root.to_user_string()}: {graph.node(root).partitions_def!r}" for root in partitioned_roots
        )
        raise InvalidBackfillRequest(
            "The most upstream assets of the selection must share one partitions definition, but they differ "
            f"({described}). Backfill them separately, or give partitions per asset."
        )
    root_target: AssetTarget | None = None
    if definitions:
        root_def = next(iter(definitions))
        assert root_def is not None
        root_target = _root_target(root_def, spec, current_time, partitioned_roots[0])
    elif spec.partition_keys or spec.partition_ranges:
        raise InvalidBackfillRequest(
            "The selected assets are not partitioned; omit partition keys and ranges."
        )
    selected = set(order)
    targets: dict[AssetKey, AssetTarget] = {}
    for key in order:
        node = graph.node(key)
        parents = [parent for parent in node.parent_keys if parent in selected]
        if node.partitions_def is None:
            targets[key] = _UNPARTITIONED_TARGET
        elif not parents:
            assert root_target is not None
            targets[key] = root_target
        elif all(
            graph.node(parent).partitions_def == node.partitions_def
            and graph.partition_mapping(key, parent).is_identity_like
            for parent in parents
        ):
            # Partition k of the child reads partition k of each parent: the parents' positions.
            targets[key] = _union([targets[parent] for parent in parents])
        else:
            targets[key] = _target_of_keys(
                node.partitions_def,
                _mapped_keys(graph, key, parents, targets, current_time),
                current_time,
                key,
            )
    return targets


def _mapped_keys(
    graph: AssetGraph,
    key: AssetKey,
    parents: Sequence[AssetKey],
    targets: Mapping[AssetKey, AssetTarget],
    current_time: datetime,
) -> list[str]:
    """The child's keys that its parents' keys in the backfill map to, key by key."""
    definition = graph.node(key).partitions_def
    assert definition is not None
    mapped: set[str] = set()
    for parent in parents:
        parent_def = graph.node(parent).partitions_def
        if parent_def is None:
            mapped.update(definition.get_partition_keys(current_time))
            continue
        mapping = graph.partition_mapping(key, parent)
        mapped.update(
            mapping.get_downstream_partitions_for_partitions(
                targets[parent].keys(), parent_def, definition, current_time
            )
        )
    return sorted(mapped)  # re-ordered by position by _target_of_keys


def _union(targets: Sequence[AssetTarget]) -> AssetTarget:
    if len(targets) == 1:
        return targets[0]
    spans = (interval for target in targets for interval in target.intervals)
    return AssetTarget(targets[0].key_space, tuple(merged_intervals(spans)))


def _root_target(
    definition: PartitionsDefinition, spec: BackfillRequestSpec, current_time: datetime, asset_key: AssetKey
) -> AssetTarget:
    if isinstance(definition, TimeWindowPartitionsDefinition):
        fast = _time_window_target(definition, spec, current_time)
        if fast is not None:
            return fast
    return _target_of_keys(definition, _root_keys(definition, spec, current_time), current_time, asset_key)


def _time_window_target(
    definition: TimeWindowPartitionsDefinition, spec: BackfillRequestSpec, current_time: datetime
) -> AssetTarget | None:
    """All partitions, or ranges, as index intervals: no key list. None when a range needs the
    general path (a key that is not a partition, a reversed range, a window in the future), which
    explains what is wrong."""
    if not (spec.all_partitions or spec.partition_ranges):
        return None
    count = definition.num_partitions(current_time)
    if spec.all_partitions:
        return AssetTarget(TimeWindowKeySpace(definition), ((0, count - 1),) if count else ())
    spans: list[tuple[int, int]] = []
    for key_range in spec.partition_ranges or ():
        try:
            first, last = (
                definition.partition_key_index(key_range.start),
                definition.partition_key_index(key_range.end),
            )
        except PartitaError:
            return None
        if not 0 <= first <= last < count:
            return None
        spans.append((first, last))
    return AssetTarget(TimeWindowKeySpace(definition), tuple(merged_intervals(spans)))


def _target_of_keys(
    definition: PartitionsDefinition | None, keys: Sequence[str], current_time: datetime, asset_key: AssetKey
) -> AssetTarget:
    positioned = _with_positions(definition, keys, current_time, asset_key)
    positions = [position for _, position in positioned]
    space = key_space_for(definition, positions, [key for key, _ in positioned])
    return AssetTarget(space, tuple(intervals(positions)))


_UNPARTITIONED_TARGET = AssetTarget(ExplicitKeySpace([0], [UNPARTITIONED]), ((0, 0),))


def _root_keys(
    definition: PartitionsDefinition, spec: BackfillRequestSpec, current_time: datetime
) -> Sequence[str]:
    if spec.all_partitions:
        return definition.get_partition_keys(current_time)
    if spec.partition_ranges:
        keys: list[str] = []
        for key_range in spec.partition_ranges:
            keys.extend(definition.get_partition_keys_in_range(key_range))
        return list(dict.fromkeys(keys))
    if spec.partition_keys:
        return list(dict.fromkeys(spec.partition_keys))
    raise InvalidBackfillRequest(
        "Name the partitions to backfill: keys, ranges, all partitions, or partitions per asset."
    )


def _with_positions(
    definition: PartitionsDefinition | None, keys: Sequence[str], current_time: datetime, asset_key: AssetKey
) -> list[tuple[str, int]]:
    """Each key with its index in the definition; keys outside the definition are an error naming them."""
    if definition is None:
        return [(UNPARTITIONED, 0)]
    index_of = getattr(definition, "partition_key_index", None)
    positioned: list[tuple[str, int]] = []
    invalid: list[str] = []
    if index_of is not None and keys and _is_contiguous_range(definition, keys):
        first = index_of(keys[0])
        last = definition.get_last_partition_key(current_time)
        if first >= 0 and last is not None and first + len(keys) - 1 <= index_of(last):
            return [(key, first + offset) for offset, key in enumerate(keys)]
    if index_of is not None:
        for key in keys:
            try:
                positioned.append((key, index_of(key)))
            except PartitaError:
                invalid.append(key)
        last = definition.get_last_partition_key(current_time)
        last_index = index_of(last) if last is not None else -1
        invalid += [key for key, position in positioned if position < 0 or position > last_index]
        positioned = [(key, position) for key, position in positioned if 0 <= position <= last_index]
    else:
        positions = {key: index for index, key in enumerate(definition.get_partition_keys(current_time))}
        invalid = [key for key in keys if key not in positions]
        positioned = [(key, positions[key]) for key in keys if key in positions]
    if invalid:
        shown = ", ".join(repr(key) for key in invalid[:_MAX_NAMED])
        more = f" and {len(invalid) - _MAX_NAMED} more" if len(invalid) > _MAX_NAMED else ""
        raise InvalidBackfillRequest(
            f"Partition key(s) {shown}{more} are not partitions of asset {asset_key.to_user_string()!r} "
            f"({definition!r})."
        )
    positioned.sort(key=lambda pair: pair[1])
    return positioned


def _is_contiguous_range(definition: PartitionsDefinition, keys: Sequence[str]) -> bool:
    """True when ``keys`` are exactly the definition's keys from the first to the last, in order.

    The common case (a range, or all partitions) then needs two index lookups, not one per key.
    """
    try:
        expected = definition.get_partition_keys_in_range(PartitionKeyRange(keys[0], keys[-1]))
    except PartitaError:
        return False
    return len(expected) == len(keys) and list(expected) == list(keys)
