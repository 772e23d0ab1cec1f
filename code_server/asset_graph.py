"""The asset graph: parents, children, roots of a selection and topological order.

Built from :class:`AssetNode` values only, so the control plane builds the same graph from the
snapshots a code server sends as the code server builds from the user's module.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Mapping, Sequence

from code_server.asset_key import AssetKey
from code_server.assets import AssetDep, AssetNode
from code_server.errors import DefinitionError, UnknownAssetError
from code_server.mappings import PartitionMapping, infer_partition_mapping

_MAX_KEYS_IN_MESSAGE = 10
_Step = Callable[[AssetKey], Iterable[AssetKey]]


class AssetGraph:
    """An immutable DAG of assets; construction rejects unknown dependencies and cycles, naming them."""

    def __init__(self, nodes: Iterable[AssetNode]) -> None:
        self._nodes: dict[AssetKey, AssetNode] = {}
        for node in nodes:
            if node.key in self._nodes:
                raise DefinitionError(f"Asset {node.key.to_user_string()!r} is defined twice.")
            self._nodes[node.key] = node
        self._children: dict[AssetKey, list[AssetKey]] = {key: [] for key in self._nodes}
        for node in self._nodes.values():
            for dep in node.deps:
                if dep.asset_key not in self._nodes:
                    raise DefinitionError(
                        f"Asset {node.key.to_user_string()!r} depends on {dep.asset_key.to_user_string()!r}, "
                        "which is not defined; define it or list it as an external asset."
                    )
                self._children[dep.asset_key].append(node.key)
        self._topological_order = self._sort_topologically()
        self._position = {key: index for index, key in enumerate(self._topological_order)}

    @property
    def keys(self) -> Sequence[AssetKey]:
        """Every asset key, in topological order (parents first, ties broken by key)."""
        return self._topological_order

    @property
    def nodes(self) -> Mapping[AssetKey, AssetNode]:
        return self._nodes

    def __contains__(self, key: object) -> bool:
        return key in self._nodes

    def __len__(self) -> int:
        return len(self._nodes)

    def node(self, key: AssetKey) -> AssetNode:
        try:
            return self._nodes[key]
        except KeyError:
            raise UnknownAssetError(self._unknown_message([key])) from None

    def validate_keys(self, keys: Iterable[AssetKey]) -> None:
        """Raise :class:`UnknownAssetError` naming every key that is not in the graph."""
        unknown = sorted({key for key in keys if key not in self._nodes})
        if unknown:
            raise UnknownAssetError(self._unknown_message(unknown))

    def parents(self, key: AssetKey) -> tuple[AssetKey, ...]:
        return self.node(key).parent_keys

    def children(self, key: AssetKey) -> tuple[AssetKey, ...]:
        self.node(key)
        return tuple(self._children[key])

    def dependency(self, child: AssetKey, parent: AssetKey) -> AssetDep:
        for dep in self.node(child).deps:
            if dep.asset_key == parent:
                return dep
        raise DefinitionError(
            f"Asset {child.to_user_string()!r} does not depend on {parent.to_user_string()!r}."
        )

    def partition_mapping(self, child: AssetKey, parent: AssetKey) -> PartitionMapping:
        """The mapping from ``child``'s partitions to ``parent``'s: the declared one, or the inferred one."""
        dep = self.dependency(child, parent)
        return infer_partition_mapping(
            dep.partition_mapping, self.node(child).partitions_def, self.node(parent).partitions_def
        )

    def toposort(self, keys: Iterable[AssetKey]) -> list[AssetKey]:
        """``keys`` ordered parents first."""
        selected = set(keys)
        self.validate_keys(selected)
        return sorted(selected, key=self._position.__getitem__)

    def roots(self, keys: Iterable[AssetKey]) -> list[AssetKey]:
        """The most upstream assets of a selection: those with no parent inside the selection."""
        selected = set(keys)
        self.validate_keys(selected)
        return [
            key
            for key in self.toposort(selected)
            if not any(parent in selected for parent in self._nodes[key].parent_keys)
        ]

    def upstream(self, keys: Iterable[AssetKey]) -> set[AssetKey]:
        """``keys`` and all their ancestors."""
        return self._closure(keys, lambda key: self._nodes[key].parent_keys)

    def downstream(self, keys: Iterable[AssetKey]) -> set[AssetKey]:
        """``keys`` and all their descendants."""
        return self._closure(keys, lambda key: self._children[key])

    def _closure(self, keys: Iterable[AssetKey], step: _Step) -> set[AssetKey]:
        pending = list(keys)
        self.validate_keys(pending)
        seen = set(pending)
        while pending:
            for neighbour in step(pending.pop()):
                if neighbour not in seen:
                    seen.add(neighbour)
                    pending.append(neighbour)
        return seen

    def _sort_topologically(self) -> list[AssetKey]:
        waiting_on = {key: len(set(node.parent_keys)) for key, node in self._nodes.items()}
        ready = [key for key, count in waiting_on.items() if count == 0]
        heapq.heapify(ready)
        order: list[AssetKey] = []
        while ready:
            key = heapq.heappop(ready)
            order.append(key)
            for child in self._children[key]:
                waiting_on[child] -= 1
                if waiting_on[child] == 0:
                    heapq.heappush(ready, child)
        if len(order) < len(self._nodes):
            raise DefinitionError(f"Assets form a cycle: {self._describe_cycle(set(order))}.")
        return order

    def _describe_cycle(self, sorted_keys: set[AssetKey]) -> str:
        """Walk parents among the unsorted assets until a key repeats: that walk is a cycle."""
        start = min(key for key in self._nodes if key not in sorted_keys)
        path = [start]
        while True:
            parent = min(p for p in self._nodes[path[-1]].parent_keys if p not in sorted_keys)
            if parent in path:
                cycle = [*path[path.index(parent) :], parent]
                return " <- ".join(key.to_user_string() for key in cycle)
            path.append(parent)

    def _unknown_message(self, unknown: Sequence[AssetKey]) -> str:
        known = [key.to_user_string() for key in self._topological_order[:_MAX_KEYS_IN_MESSAGE]]
        more = " ..." if len(self._nodes) > _MAX_KEYS_IN_MESSAGE else ""
        names = ", ".join(repr(key.to_user_string()) for key in unknown)
        return f"Unknown asset {names}; known assets: {', '.join(known)}{more}."
