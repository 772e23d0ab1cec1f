"""The partitions library: pure, importable without any user module (the control plane uses it too)."""

from code_server.partitions.base import DynamicPartitionsStore, PartitionsDefinition
from code_server.partitions.dynamic import DynamicPartitionsDefinition
from code_server.partitions.keys import PartitionKeyRange, TimeWindow, validate_partition_key
from code_server.partitions.multi import MultiPartitionKey, MultiPartitionsDefinition
from code_server.partitions.static import StaticPartitionsDefinition
from code_server.partitions.time_window import (
    DailyPartitionsDefinition,
    HourlyPartitionsDefinition,
    MonthlyPartitionsDefinition,
    TimeWindowPartitionsDefinition,
    WeeklyPartitionsDefinition,
)

__all__ = [
    "DailyPartitionsDefinition",
    "DynamicPartitionsDefinition",
    "DynamicPartitionsStore",
    "HourlyPartitionsDefinition",
    "MonthlyPartitionsDefinition",
    "MultiPartitionKey",
    "MultiPartitionsDefinition",
    "PartitionKeyRange",
    "PartitionsDefinition",
    "StaticPartitionsDefinition",
    "TimeWindow",
    "TimeWindowPartitionsDefinition",
    "WeeklyPartitionsDefinition",
    "validate_partition_key",
]
