"""Mappings are values: equality, hash, a readable repr, and constructor arguments read back."""

from __future__ import annotations

import pytest

import code_server.mappings as mappings
from code_server.errors import DefinitionError
from code_server.mappings import (
    AllPartitionMapping,
    IdentityPartitionMapping,
    LastPartitionMapping,
    MultiToSingleDimensionPartitionMapping,
    PartitionMapping,
    SpecificPartitionsPartitionMapping,
    StaticPartitionMapping,
    TimeWindowPartitionMapping,
    UpstreamPartitionsResult,
)


def test_public_names_are_pinned() -> None:
    assert sorted(mappings.__all__) == [
        "AllPartitionMapping",
        "IdentityPartitionMapping",
        "LastPartitionMapping",
        "MultiToSingleDimensionPartitionMapping",
        "PartitionMapping",
        "SpecificPartitionsPartitionMapping",
        "StaticPartitionMapping",
        "TimeWindowPartitionMapping",
        "UpstreamPartitionsResult",
        "infer_partition_mapping",
    ]


@pytest.mark.parametrize(
    ("make", "text"),
    [
        (IdentityPartitionMapping, "IdentityPartitionMapping()"),
        (AllPartitionMapping, "AllPartitionMapping()"),
        (LastPartitionMapping, "LastPartitionMapping()"),
        (
            lambda: TimeWindowPartitionMapping(start_offset=-1, end_offset=-1),
            "TimeWindowPartitionMapping(start_offset=-1, end_offset=-1, "
            "allow_nonexistent_upstream_partitions=False)",
        ),
        (
            lambda: StaticPartitionMapping({"b": {"z", "y"}, "a": "x"}),
            "StaticPartitionMapping({'a': 'x', 'b': {'y', 'z'}})",
        ),
        (
            lambda: SpecificPartitionsPartitionMapping(["k1"]),
            "SpecificPartitionsPartitionMapping(partition_keys=('k1',))",
        ),
        (
            lambda: MultiToSingleDimensionPartitionMapping("date"),
            "MultiToSingleDimensionPartitionMapping(partition_dimension_name='date')",
        ),
    ],
)
def test_equal_values_hash_alike_and_show_their_arguments(make: type[PartitionMapping], text: str) -> None:
    first, second = make(), make()

    assert first == second
    assert hash(first) == hash(second)
    assert repr(first) == text


@pytest.mark.parametrize(
    ("one", "other"),
    [
        (IdentityPartitionMapping(), AllPartitionMapping()),
        (AllPartitionMapping(), LastPartitionMapping()),
        (TimeWindowPartitionMapping(), TimeWindowPartitionMapping(start_offset=-1)),
        (
            TimeWindowPartitionMapping(),
            TimeWindowPartitionMapping(allow_nonexistent_upstream_partitions=True),
        ),
        (StaticPartitionMapping({"a": "x"}), StaticPartitionMapping({"a": {"x", "y"}})),
        (SpecificPartitionsPartitionMapping(["a"]), SpecificPartitionsPartitionMapping(["b"])),
        (MultiToSingleDimensionPartitionMapping(), MultiToSingleDimensionPartitionMapping("date")),
    ],
)
def test_different_values_differ(one: PartitionMapping, other: PartitionMapping) -> None:
    assert one != other


def test_constructor_arguments_read_back_under_their_names() -> None:
    time_window = TimeWindowPartitionMapping(
        start_offset=-2, end_offset=1, allow_nonexistent_upstream_partitions=True
    )
    static = StaticPartitionMapping({"a": "x", "b": {"y", "z"}})

    assert (time_window.start_offset, time_window.end_offset) == (-2, 1)
    assert time_window.allow_nonexistent_upstream_partitions is True
    assert dict(static.downstream_partition_keys_by_upstream_partition_key) == {
        "a": frozenset({"x"}),
        "b": frozenset({"y", "z"}),
    }
    assert SpecificPartitionsPartitionMapping(["k1", "k2"]).partition_keys == ("k1", "k2")
    assert (
        MultiToSingleDimensionPartitionMapping(partition_dimension_name="region").partition_dimension_name
        == "region"
    )
    assert MultiToSingleDimensionPartitionMapping().partition_dimension_name is None


def test_arguments_are_read_only() -> None:
    time_window = TimeWindowPartitionMapping()
    static = StaticPartitionMapping({"a": "x"})

    with pytest.raises(AttributeError):
        time_window.start_offset = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        static.downstream_partition_keys_by_upstream_partition_key["b"] = frozenset({"y"})  # type: ignore[index]


def test_only_same_key_mappings_are_identity_like() -> None:
    assert IdentityPartitionMapping().is_identity_like
    assert TimeWindowPartitionMapping().is_identity_like
    assert not TimeWindowPartitionMapping(start_offset=-1, end_offset=-1).is_identity_like
    assert not AllPartitionMapping().is_identity_like
    assert not LastPartitionMapping().is_identity_like
    assert not SpecificPartitionsPartitionMapping(["a"]).is_identity_like
    assert not MultiToSingleDimensionPartitionMapping().is_identity_like


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start_offset": 1}, "start_offset must not exceed end_offset"),
        ({"start_offset": "1"}, "start_offset must be an int"),
        ({"end_offset": 1.5}, "end_offset must be an int"),
        ({"allow_nonexistent_upstream_partitions": "yes"}, "must be a bool"),
    ],
)
def test_time_window_mapping_rejects_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        TimeWindowPartitionMapping(**kwargs)  # type: ignore[arg-type]


def test_upstream_result_is_a_frozen_value() -> None:
    result = UpstreamPartitionsResult(("a",), ("b",))

    assert result == UpstreamPartitionsResult(("a",), ("b",))
    with pytest.raises(AttributeError):
        result.partition_keys = ()  # type: ignore[misc]
