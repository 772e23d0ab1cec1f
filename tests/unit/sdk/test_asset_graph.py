import pytest

from code_server.asset_graph import AssetGraph
from code_server.asset_key import AssetKey
from code_server.asset_selection import AssetSelection, coerce_asset_selection
from code_server.assets import AssetDep, AssetNode
from code_server.errors import DefinitionError, UnknownAssetError
from code_server.mappings import (
    AllPartitionMapping,
    IdentityPartitionMapping,
    StaticPartitionMapping,
    TimeWindowPartitionMapping,
)
from code_server.partitions.static import StaticPartitionsDefinition
from code_server.partitions.time_window import DailyPartitionsDefinition

A, B, C, D = (AssetKey(name) for name in "abcd")


def node(key: AssetKey, *parents: AssetKey, **kwargs: object) -> AssetNode:
    return AssetNode(key, deps=tuple(AssetDep(parent) for parent in parents), **kwargs)  # type: ignore[arg-type]


def diamond() -> AssetGraph:
    # a -> b -> d, a -> c -> d; given out of order to prove the sort does not rely on input order
    return AssetGraph([node(D, B, C), node(C, A, group_name="g"), node(B, A, group_name="g"), node(A)])


def test_parents_children_and_topological_order() -> None:
    graph = diamond()
    assert graph.keys == [A, B, C, D]
    assert graph.parents(D) == (B, C)
    assert set(graph.children(A)) == {B, C}
    assert graph.toposort([D, A, C]) == [A, C, D]
    assert graph.upstream([C]) == {A, C}
    assert graph.downstream([B]) == {B, D}


def test_roots_of_a_selection() -> None:
    graph = diamond()
    assert graph.roots([B, C, D]) == [B, C]
    assert graph.roots([A, D]) == [A, D]  # only parents inside the selection count
    assert graph.roots([D]) == [D]


def test_unknown_dependency_and_unknown_key_are_named() -> None:
    with pytest.raises(DefinitionError, match="'b' depends on 'missing', which is not defined"):
        AssetGraph([node(B, AssetKey("missing"))])
    with pytest.raises(UnknownAssetError, match="Unknown asset 'zzz'; known assets: a, b, c, d"):
        diamond().node(AssetKey("zzz"))


def test_cycle_is_named() -> None:
    with pytest.raises(DefinitionError, match=r"cycle: (a <- c <- b <- a|b <- a <- c <- b|c <- b <- a <- c)"):
        AssetGraph([node(A, C), node(B, A), node(C, B), node(D)])


def test_duplicate_asset_rejected() -> None:
    with pytest.raises(DefinitionError, match="'a' is defined twice"):
        AssetGraph([node(A), node(A)])


def test_partition_mapping_is_declared_or_inferred() -> None:
    daily = DailyPartitionsDefinition(start_date="2024-01-01")
    static_a = StaticPartitionsDefinition(["x"])
    static_b = StaticPartitionsDefinition(["y"])
    declared = StaticPartitionMapping({"x": "y"})
    graph = AssetGraph(
        [
            AssetNode(A, partitions_def=daily),
            AssetNode(B, deps=(AssetDep(A),), partitions_def=daily),
            AssetNode(C, deps=(AssetDep(A),)),
            AssetNode(AssetKey("s"), partitions_def=static_a),
            AssetNode(
                D, deps=(AssetDep(AssetKey("s"), partition_mapping=declared),), partitions_def=static_b
            ),
        ]
    )
    assert graph.partition_mapping(B, A) == TimeWindowPartitionMapping()
    assert graph.partition_mapping(C, A) == AllPartitionMapping()
    assert graph.partition_mapping(D, AssetKey("s")) == declared
    assert not isinstance(graph.partition_mapping(D, AssetKey("s")), IdentityPartitionMapping)
    with pytest.raises(DefinitionError, match="'a' does not depend on 'b'"):
        graph.partition_mapping(A, B)


def test_selections() -> None:
    graph = diamond()
    assert AssetSelection.all().resolve(graph) == {A, B, C, D}
    assert AssetSelection.groups("g").resolve(graph) == {B, C}
    assert AssetSelection.assets("b").downstream().resolve(graph) == {B, D}
    assert AssetSelection.keys("c").upstream().resolve(graph) == {A, C}
    assert (AssetSelection.all() - AssetSelection.groups("g")).resolve(graph) == {A, D}
    assert (AssetSelection.groups("g") & AssetSelection.keys("b", "d")).resolve(graph) == {B}
    assert (AssetSelection.keys("a") | AssetSelection.keys("d")).resolve(graph) == {A, D}
    assert coerce_asset_selection([A, "b"]).resolve(graph) == {A, B}
    assert coerce_asset_selection(D).resolve(graph) == {D}
    with pytest.raises(UnknownAssetError, match="'nope'"):
        AssetSelection.keys("nope").resolve(graph)


def test_all_selection_leaves_external_assets_out() -> None:
    graph = AssetGraph([AssetNode(A, is_external=True), node(B, A)])
    assert AssetSelection.all().resolve(graph) == {B}
