"""MultiToSingleDimensionPartitionMapping, with the multi-partitioned asset on either side."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from code_server.errors import DefinitionError
from code_server.mappings import MultiToSingleDimensionPartitionMapping, UpstreamPartitionsResult
from code_server.partitions.multi import MultiPartitionsDefinition
from code_server.partitions.static import StaticPartitionsDefinition
from code_server.partitions.time_window import DailyPartitionsDefinition, HourlyPartitionsDefinition

DAYS = DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-01-04")
REGIONS = StaticPartitionsDefinition(["us", "eu"])
DATE_BY_REGION = MultiPartitionsDefinition({"date": DAYS, "region": REGIONS})


def test_single_downstream_reads_every_multi_key_with_its_key_in_the_dimension() -> None:
    result = MultiToSingleDimensionPartitionMapping().get_upstream_mapped_partitions_result_for_partitions(
        ["eu"], REGIONS, DATE_BY_REGION
    )

    assert result == UpstreamPartitionsResult(("2024-01-01|eu", "2024-01-02|eu", "2024-01-03|eu"), ())


def test_multi_downstream_reads_the_single_key_of_its_dimension() -> None:
    result = MultiToSingleDimensionPartitionMapping().get_upstream_mapped_partitions_result_for_partitions(
        ["2024-01-03|us", "2024-01-02|eu", "2024-01-02|us"], DATE_BY_REGION, DAYS
    )

    assert result == UpstreamPartitionsResult(("2024-01-02", "2024-01-03"), ())


def test_downstream_of_multi_keys_is_their_dimension_keys() -> None:
    keys = MultiToSingleDimensionPartitionMapping("region").get_downstream_partitions_for_partitions(
        ["2024-01-03|eu", "2024-01-01|eu"], DATE_BY_REGION, REGIONS
    )

    assert list(keys) == ["eu"]


def test_downstream_of_single_keys_is_every_multi_key_holding_them_in_order() -> None:
    keys = MultiToSingleDimensionPartitionMapping().get_downstream_partitions_for_partitions(
        ["2024-01-03", "2024-01-01"], DAYS, DATE_BY_REGION
    )

    assert list(keys) == ["2024-01-01|us", "2024-01-01|eu", "2024-01-03|us", "2024-01-03|eu"]


def test_dimension_keys_missing_upstream_are_required_but_nonexistent() -> None:
    later_days = DailyPartitionsDefinition(start_date="2024-01-02", end_date="2024-01-04")
    later_by_region = MultiPartitionsDefinition({"date": later_days, "region": REGIONS})
    mapping = MultiToSingleDimensionPartitionMapping("date")

    from_multi = mapping.get_upstream_mapped_partitions_result_for_partitions(
        ["2024-01-01|us", "2024-01-02|us"], DATE_BY_REGION, later_days
    )
    from_single = mapping.get_upstream_mapped_partitions_result_for_partitions(
        ["2024-01-01", "2024-01-02"], DAYS, later_by_region
    )

    assert from_multi == UpstreamPartitionsResult(("2024-01-02",), ("2024-01-01",))
    assert from_single == UpstreamPartitionsResult(
        ("2024-01-02|us", "2024-01-02|eu"), ("2024-01-01|us", "2024-01-01|eu")
    )


def test_a_time_window_single_side_maps_to_the_time_dimension_by_overlap() -> None:
    hours = HourlyPartitionsDefinition(start_date="2024-01-01-00:00")
    now = datetime(2024, 1, 10, tzinfo=UTC)

    result = MultiToSingleDimensionPartitionMapping().get_upstream_mapped_partitions_result_for_partitions(
        ["2024-01-02-05:00"], hours, DATE_BY_REGION, current_time=now
    )

    assert result == UpstreamPartitionsResult(("2024-01-02|us", "2024-01-02|eu"), ())


def test_dimension_must_be_named_when_both_dimensions_match() -> None:
    both = MultiPartitionsDefinition({"from": REGIONS, "to": REGIONS})

    with pytest.raises(DefinitionError, match="pass partition_dimension_name"):
        MultiToSingleDimensionPartitionMapping().get_upstream_mapped_partitions_result_for_partitions(
            ["us|eu"], both, REGIONS
        )
    named = MultiToSingleDimensionPartitionMapping("to").get_upstream_mapped_partitions_result_for_partitions(
        ["us|eu"], both, REGIONS
    )
    assert named.partition_keys == ("eu",)


def test_errors_name_the_mapping_and_the_definitions() -> None:
    colors = StaticPartitionsDefinition(["red"])

    with pytest.raises(DefinitionError, match=r"MultiToSingleDimensionPartitionMapping\(.*no dimension"):
        MultiToSingleDimensionPartitionMapping().get_upstream_mapped_partitions_result_for_partitions(
            ["red"], colors, DATE_BY_REGION
        )
    with pytest.raises(DefinitionError, match="names dimension 'color'"):
        MultiToSingleDimensionPartitionMapping("color").validate_partition_mapping(DATE_BY_REGION, colors)
    with pytest.raises(DefinitionError, match="one MultiPartitionsDefinition and one single-dimension"):
        MultiToSingleDimensionPartitionMapping().get_upstream_mapped_partitions_result_for_partitions(
            ["us"], REGIONS, REGIONS
        )
