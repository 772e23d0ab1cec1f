"""StaticPartitionMapping: an explicit table from upstream keys to downstream keys."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from code_server.errors import DefinitionError
from code_server.mappings import StaticPartitionMapping, UpstreamPartitionsResult
from code_server.partitions.dynamic import DynamicPartitionsDefinition
from code_server.partitions.static import StaticPartitionsDefinition

UPSTREAM = StaticPartitionsDefinition(["a", "b", "c"])
DOWNSTREAM = StaticPartitionsDefinition(["x", "y", "z"])
TABLE = StaticPartitionMapping({"b": "x", "a": {"y", "z"}, "c": ["x"]})


class DictStore:
    def __init__(self, keys_by_name: dict[str, Sequence[str]]) -> None:
        self.keys_by_name = keys_by_name

    def get_dynamic_partitions(self, partitions_def_name: str) -> Sequence[str]:
        return self.keys_by_name.get(partitions_def_name, [])


def test_guide_example_maps_foo_a_to_foo_b_in_both_directions() -> None:
    partitions_a = StaticPartitionsDefinition(["foo_a"])
    partitions_b = StaticPartitionsDefinition(["foo_b"])
    mapping = StaticPartitionMapping({"foo_a": "foo_b"})

    upstream = mapping.get_upstream_mapped_partitions_result_for_partitions(
        ["foo_b"], partitions_b, partitions_a
    )
    downstream = mapping.get_downstream_partitions_for_partitions(["foo_a"], partitions_a, partitions_b)

    assert upstream == UpstreamPartitionsResult(("foo_a",), ())
    assert list(downstream) == ["foo_b"]


def test_upstream_of_keys_is_every_key_mapping_to_them_in_upstream_order() -> None:
    result = TABLE.get_upstream_mapped_partitions_result_for_partitions(["x", "z"], DOWNSTREAM, UPSTREAM)

    assert result == UpstreamPartitionsResult(("a", "b", "c"), ())


def test_downstream_of_keys_is_the_union_of_their_targets_in_downstream_order() -> None:
    assert list(TABLE.get_downstream_partitions_for_partitions(["a", "b"], UPSTREAM, DOWNSTREAM)) == [
        "x",
        "y",
        "z",
    ]
    assert list(TABLE.get_downstream_partitions_for_partitions(["a"], UPSTREAM, DOWNSTREAM)) == ["y", "z"]


def test_a_key_not_in_the_table_maps_to_nothing() -> None:
    mapping = StaticPartitionMapping({"a": "x"})

    upstream = mapping.get_upstream_mapped_partitions_result_for_partitions(["y"], DOWNSTREAM, UPSTREAM)
    downstream = mapping.get_downstream_partitions_for_partitions(["b"], UPSTREAM, DOWNSTREAM)

    assert upstream == UpstreamPartitionsResult((), ())
    assert list(downstream) == []


def test_a_table_naming_keys_outside_static_definitions_is_a_definition_error() -> None:
    mapping = StaticPartitionMapping({"a": "x", "typo": "y"})

    with pytest.raises(DefinitionError) as raised:
        mapping.get_upstream_mapped_partitions_result_for_partitions(["x"], DOWNSTREAM, UPSTREAM)
    message = str(raised.value)
    assert "StaticPartitionMapping(" in message
    assert "['typo']" in message
    assert "StaticPartitionsDefinition(['a', 'b', 'c'])" in message

    with pytest.raises(DefinitionError, match=r"downstream keys \['w'\]"):
        StaticPartitionMapping({"a": "w"}).get_downstream_partitions_for_partitions(
            ["a"], UPSTREAM, DOWNSTREAM
        )
    with pytest.raises(DefinitionError, match="typo"):
        mapping.validate_partition_mapping(UPSTREAM, DOWNSTREAM)


def test_with_dynamic_upstream_missing_keys_are_required_but_nonexistent() -> None:
    files = DynamicPartitionsDefinition("files")
    store = DictStore({"files": ["b"]})

    result = TABLE.get_upstream_mapped_partitions_result_for_partitions(
        ["x", "y"], DOWNSTREAM, files, dynamic_partitions_store=store
    )

    assert result == UpstreamPartitionsResult(("b",), ("a", "c"))


def test_an_unpartitioned_downstream_reads_nothing_as_in_dagster() -> None:
    result = TABLE.get_upstream_mapped_partitions_result_for_partitions(None, None, UPSTREAM)

    assert result == UpstreamPartitionsResult((), ())


@pytest.mark.parametrize(
    "table",
    [{"a": 1}, {1: "x"}, ["a", "x"]],
)
def test_malformed_tables_are_rejected(table: object) -> None:
    with pytest.raises(DefinitionError, match="StaticPartitionMapping"):
        StaticPartitionMapping(table)  # type: ignore[arg-type]


def test_identity_like_only_when_every_key_maps_to_itself() -> None:
    assert StaticPartitionMapping({"a": "a", "b": {"b"}}).is_identity_like
    assert not StaticPartitionMapping({"a": "a", "b": "c"}).is_identity_like
    assert not StaticPartitionMapping({"a": {"a", "b"}}).is_identity_like
