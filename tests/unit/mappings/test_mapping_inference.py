"""infer_partition_mapping: the declared mapping, else the one Dagster would infer."""

from __future__ import annotations

import pytest

from code_server.mappings import (
    AllPartitionMapping,
    IdentityPartitionMapping,
    MultiToSingleDimensionPartitionMapping,
    PartitionMapping,
    StaticPartitionMapping,
    TimeWindowPartitionMapping,
    infer_partition_mapping,
)
from code_server.partitions.base import PartitionsDefinition
from code_server.partitions.multi import MultiPartitionsDefinition
from code_server.partitions.static import StaticPartitionsDefinition
from code_server.partitions.time_window import DailyPartitionsDefinition, HourlyPartitionsDefinition

DAYS = DailyPartitionsDefinition(start_date="2024-01-01")
HOURS = HourlyPartitionsDefinition(start_date="2024-01-01-00:00")
REGIONS = StaticPartitionsDefinition(["us", "eu"])
COLORS = StaticPartitionsDefinition(["red"])
DATE_BY_REGION = MultiPartitionsDefinition({"date": DAYS, "region": REGIONS})


def test_a_declared_mapping_wins() -> None:
    declared = StaticPartitionMapping({"us": "red"})

    assert infer_partition_mapping(declared, COLORS, REGIONS) is declared


@pytest.mark.parametrize(
    ("downstream", "upstream", "expected"),
    [
        (None, DAYS, AllPartitionMapping()),
        (DAYS, None, AllPartitionMapping()),
        (None, None, AllPartitionMapping()),
        (DAYS, DAYS, TimeWindowPartitionMapping()),
        (HOURS, DAYS, TimeWindowPartitionMapping()),
        (REGIONS, REGIONS, IdentityPartitionMapping()),
        (COLORS, REGIONS, IdentityPartitionMapping()),
        (DATE_BY_REGION, DATE_BY_REGION, IdentityPartitionMapping()),
        (DATE_BY_REGION, REGIONS, MultiToSingleDimensionPartitionMapping()),
        (DAYS, DATE_BY_REGION, MultiToSingleDimensionPartitionMapping()),
        (HOURS, DATE_BY_REGION, MultiToSingleDimensionPartitionMapping()),
        (COLORS, DATE_BY_REGION, IdentityPartitionMapping()),
    ],
)
def test_inferred_mapping(
    downstream: PartitionsDefinition | None, upstream: PartitionsDefinition | None, expected: PartitionMapping
) -> None:
    assert infer_partition_mapping(None, downstream, upstream) == expected
