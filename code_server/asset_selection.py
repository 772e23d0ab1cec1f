"""Selections of assets: by key, by group, all, up- and downstream, combined with ``|``, ``&``, ``-``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from code_server.asset_graph import AssetGraph
from code_server.asset_key import AssetKey, CoercibleToAssetKey
from code_server.assets import AssetsDefinition
from code_server.errors import DefinitionError


class AssetSelection(ABC):
    """A set of assets resolved against an asset graph."""

    @abstractmethod
    def resolve(self, graph: AssetGraph) -> set[AssetKey]:
        """The selected keys; unknown keys raise :class:`UnknownAssetError` naming them."""

    @staticmethod
    def all() -> AssetSelection:
        return _All()

    @staticmethod
    def assets(*assets: CoercibleToAssetKey | AssetsDefinition) -> AssetSelection:
        return _Keys(tuple(_key_of(value) for value in assets))

    @staticmethod
    def keys(*keys: CoercibleToAssetKey) -> AssetSelection:
        return _Keys(tuple(AssetKey.from_coercible(key) for key in keys))

    @staticmethod
    def groups(*group_names: str) -> AssetSelection:
        return _Groups(frozenset(group_names))

    def downstream(self) -> AssetSelection:
        return _Downstream(self)

    def upstream(self) -> AssetSelection:
        return _Upstream(self)

    def __or__(self, other: AssetSelection) -> AssetSelection:
        return _Union(self, other)

    def __and__(self, other: AssetSelection) -> AssetSelection:
        return _Intersection(self, other)

    def __sub__(self, other: AssetSelection) -> AssetSelection:
        return _Difference(self, other)


@dataclass(frozen=True)
class _All(AssetSelection):
    def resolve(self, graph: AssetGraph) -> set[AssetKey]:
        return {key for key, node in graph.nodes.items() if not node.is_external}


@dataclass(frozen=True)
class _Keys(AssetSelection):
    selected: tuple[AssetKey, ...]

    def resolve(self, graph: AssetGraph) -> set[AssetKey]:
        graph.validate_keys(self.selected)
        return set(self.selected)


@dataclass(frozen=True)
class _Groups(AssetSelection):
    group_names: frozenset[str]

    def resolve(self, graph: AssetGraph) -> set[AssetKey]:
        return {key for key, node in graph.nodes.items() if node.group_name in self.group_names}


@dataclass(frozen=True)
class _Downstream(AssetSelection):
    base: AssetSelection

    def resolve(self, graph: AssetGraph) -> set[AssetKey]:
        return graph.downstream(self.base.resolve(graph))


@dataclass(frozen=True)
class _Upstream(AssetSelection):
    base: AssetSelection

    def resolve(self, graph: AssetGraph) -> set[AssetKey]:
        return graph.upstream(self.base.resolve(graph))


@dataclass(frozen=True)
class _Union(AssetSelection):
    left: AssetSelection
    right: AssetSelection

    def resolve(self, graph: AssetGraph) -> set[AssetKey]:
        return self.left.resolve(graph) | self.right.resolve(graph)


@dataclass(frozen=True)
class _Intersection(AssetSelection):
    left: AssetSelection
    right: AssetSelection

    def resolve(self, graph: AssetGraph) -> set[AssetKey]:
        return self.left.resolve(graph) & self.right.resolve(graph)


@dataclass(frozen=True)
class _Difference(AssetSelection):
    left: AssetSelection
    right: AssetSelection

    def resolve(self, graph: AssetGraph) -> set[AssetKey]:
        return self.left.resolve(graph) - self.right.resolve(graph)


CoercibleToAssetSelection = (
    AssetSelection | CoercibleToAssetKey | AssetsDefinition | Sequence[AssetKey | str | AssetsDefinition]
)


def coerce_asset_selection(target: CoercibleToAssetSelection) -> AssetSelection:
    """Accept what Dagster's ``target=``/``asset_selection=`` accept: a selection, key(s) or asset(s)."""
    if isinstance(target, AssetSelection):
        return target
    if isinstance(target, AssetKey | str | AssetsDefinition):
        return AssetSelection.assets(target)
    if isinstance(target, Iterable):
        return AssetSelection.assets(*target)
    raise DefinitionError(
        f"Cannot select assets from {target!r}: pass asset keys, assets or an AssetSelection."
    )


def _key_of(value: CoercibleToAssetKey | AssetsDefinition) -> AssetKey:
    return value.key if isinstance(value, AssetsDefinition) else AssetKey.from_coercible(value)
