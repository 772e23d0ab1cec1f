"""IdentityPartitionMapping: a child partition reads the parent partition with the same key."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from code_server.errors import DefinitionError
from code_server.mappings import IdentityPartitionMapping, UpstreamPartitionsResult
from code_server.partitions.static import StaticPartitionsDefinition
from code_server.partitions.time_window import DailyPartitionsDefinition

LETTERS = StaticPartitionsDefinition(["a", "b", "c", "d"])
FEWER_LETTERS = StaticPartitionsDefinition(["b", "d"])


def test_upstream_keys_are_the_same_keys_in_upstream_order_without_duplicates() -> None:
    result = IdentityPartitionMapping().get_upstream_mapped_partitions_result_for_partitions(
        ["c", "a", "c"], LETTERS, LETTERS
    )

    assert result == UpstreamPartitionsResult(("a", "c"), ())


def test_keys_missing_upstream_are_required_but_nonexistent() -> None:
    result = IdentityPartitionMapping().get_upstream_mapped_partitions_result_for_partitions(
        ["d", "a", "b", "c"], LETTERS, FEWER_LETTERS
    )

    assert result.partition_keys == ("b", "d")
    assert result.required_but_nonexistent_partition_keys == ("a", "c")


def test_downstream_keys_are_those_that_exist_downstream() -> None:
    keys = IdentityPartitionMapping().get_downstream_partitions_for_partitions(
        ["d", "c", "b", "a"], LETTERS, FEWER_LETTERS
    )

    assert list(keys) == ["b", "d"]


def test_time_window_keys_that_have_not_ended_do_not_exist_yet() -> None:
    days = DailyPartitionsDefinition(start_date="2024-01-01")
    now = datetime(2024, 1, 3, 12, tzinfo=UTC)  # 2024-01-03 has not ended

    result = IdentityPartitionMapping().get_upstream_mapped_partitions_result_for_partitions(
        ["2024-01-02", "2024-01-03"], days, days, current_time=now
    )
    downstream = IdentityPartitionMapping().get_downstream_partitions_for_partitions(
        ["2024-01-02", "2024-01-03"], days, days, current_time=now
    )

    assert result == UpstreamPartitionsResult(("2024-01-02",), ("2024-01-03",))
    assert list(downstream) == ["2024-01-02"]


def test_an_unpartitioned_downstream_asset_is_a_definition_error_naming_the_mapping() -> None:
    with pytest.raises(DefinitionError, match=r"IdentityPartitionMapping\(\).*AllPartitionMapping"):
        IdentityPartitionMapping().get_upstream_mapped_partitions_result_for_partitions(None, None, LETTERS)
    with pytest.raises(DefinitionError, match=r"IdentityPartitionMapping\(\)"):
        IdentityPartitionMapping().get_downstream_partitions_for_partitions(["a"], LETTERS, None)


def test_a_lone_string_is_not_taken_for_a_list_of_keys() -> None:
    with pytest.raises(TypeError, match="wrap it in a list"):
        IdentityPartitionMapping().get_upstream_mapped_partitions_result_for_partitions(
            "ab", LETTERS, LETTERS
        )
