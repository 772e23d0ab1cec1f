"""AllPartitionMapping, LastPartitionMapping and SpecificPartitionsPartitionMapping."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from code_server.errors import DefinitionError
from code_server.mappings import (
    AllPartitionMapping,
    LastPartitionMapping,
    SpecificPartitionsPartitionMapping,
    UpstreamPartitionsResult,
)
from code_server.partitions.static import StaticPartitionsDefinition
from code_server.partitions.time_window import DailyPartitionsDefinition

LETTERS = StaticPartitionsDefinition(["a", "b", "c"])
REGIONS = StaticPartitionsDefinition(["us", "eu"])
DAYS = DailyPartitionsDefinition(start_date="2024-01-01")
NOW = datetime(2024, 1, 4, 6, tzinfo=UTC)  # 2024-01-01 .. 2024-01-03 exist


def test_all_reads_every_existing_upstream_partition() -> None:
    result = AllPartitionMapping().get_upstream_mapped_partitions_result_for_partitions(
        ["us"], REGIONS, DAYS, current_time=NOW
    )

    assert result == UpstreamPartitionsResult(("2024-01-01", "2024-01-02", "2024-01-03"), ())


def test_all_from_an_unpartitioned_downstream_reads_every_upstream_partition() -> None:
    result = AllPartitionMapping().get_upstream_mapped_partitions_result_for_partitions(None, None, LETTERS)

    assert result.partition_keys == ("a", "b", "c")


def test_all_maps_no_keys_to_nothing() -> None:
    mapping = AllPartitionMapping()

    assert (
        mapping.get_upstream_mapped_partitions_result_for_partitions([], REGIONS, LETTERS).partition_keys
        == ()
    )
    assert list(mapping.get_downstream_partitions_for_partitions([], LETTERS, REGIONS)) == []


def test_all_maps_any_upstream_key_to_every_downstream_partition() -> None:
    keys = AllPartitionMapping().get_downstream_partitions_for_partitions(
        ["b"], LETTERS, DAYS, current_time=NOW
    )

    assert list(keys) == ["2024-01-01", "2024-01-02", "2024-01-03"]
    assert list(AllPartitionMapping().get_downstream_partitions_for_partitions(["b"], LETTERS, None)) == []


def test_last_reads_the_last_partition_existing_at_current_time() -> None:
    result = LastPartitionMapping().get_upstream_mapped_partitions_result_for_partitions(
        ["us", "eu"], REGIONS, DAYS, current_time=NOW
    )

    assert result == UpstreamPartitionsResult(("2024-01-03",), ())


def test_last_of_a_definition_without_partitions_is_nothing() -> None:
    before_start = datetime(2023, 12, 31, tzinfo=UTC)

    result = LastPartitionMapping().get_upstream_mapped_partitions_result_for_partitions(
        ["us"], REGIONS, DAYS, current_time=before_start
    )

    assert result == UpstreamPartitionsResult((), ())


def test_only_the_last_upstream_partition_maps_downstream() -> None:
    mapping = LastPartitionMapping()

    from_last = mapping.get_downstream_partitions_for_partitions(
        ["2024-01-02", "2024-01-03"], DAYS, REGIONS, current_time=NOW
    )
    from_earlier = mapping.get_downstream_partitions_for_partitions(
        ["2024-01-02"], DAYS, REGIONS, current_time=NOW
    )

    assert list(from_last) == ["us", "eu"]
    assert list(from_earlier) == []


def test_specific_reads_the_listed_keys_in_upstream_order() -> None:
    mapping = SpecificPartitionsPartitionMapping(["c", "a", "c"])

    result = mapping.get_upstream_mapped_partitions_result_for_partitions(["us"], REGIONS, LETTERS)

    assert result == UpstreamPartitionsResult(("a", "c"), ())


def test_specific_reports_listed_keys_that_do_not_exist() -> None:
    mapping = SpecificPartitionsPartitionMapping(["2024-01-02", "2024-01-09"])

    result = mapping.get_upstream_mapped_partitions_result_for_partitions(
        ["us"], REGIONS, DAYS, current_time=NOW
    )

    assert result == UpstreamPartitionsResult(("2024-01-02",), ("2024-01-09",))


def test_specific_maps_a_listed_key_to_every_downstream_partition_and_others_to_none() -> None:
    mapping = SpecificPartitionsPartitionMapping(["a"])

    assert list(mapping.get_downstream_partitions_for_partitions(["b", "a"], LETTERS, REGIONS)) == [
        "us",
        "eu",
    ]
    assert list(mapping.get_downstream_partitions_for_partitions(["b", "c"], LETTERS, REGIONS)) == []


def test_specific_needs_a_list_not_a_string() -> None:
    with pytest.raises(DefinitionError, match="list of partition keys"):
        SpecificPartitionsPartitionMapping("abc")
