import pytest

from code_server.asset_key import AssetKey
from code_server.context import AssetExecutionContext
from code_server.errors import ContextError, PartitionKeyError
from code_server.partitions.keys import PartitionKeyRange
from code_server.partitions.static import StaticPartitionsDefinition
from code_server.partitions.time_window import DailyPartitionsDefinition
from code_server.testing import build_asset_context

DAILY = DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-03-01")


def test_single_key_context() -> None:
    context = build_asset_context("events", partition_key="2024-01-05", partitions_def=DAILY)
    assert context.has_partition_key
    assert context.partition_key == "2024-01-05"
    assert context.partition_key_range == PartitionKeyRange("2024-01-05", "2024-01-05")
    assert list(context.partition_keys) == ["2024-01-05"]
    start, end = context.partition_time_window
    assert (start.isoformat(), end.isoformat()) == ("2024-01-05T00:00:00+00:00", "2024-01-06T00:00:00+00:00")
    assert context.asset_key == AssetKey("events")


def test_range_context_refuses_partition_key_and_points_to_range() -> None:
    context = build_asset_context(
        "events", partition_key_range=PartitionKeyRange("2024-01-30", "2024-02-02"), partitions_def=DAILY
    )
    assert not context.has_partition_key
    with pytest.raises(ContextError, match=r"2024-01-30\.\.\.2024-02-02\. Use context.partition_key_range"):
        _ = context.partition_key
    assert list(context.partition_keys) == ["2024-01-30", "2024-01-31", "2024-02-01", "2024-02-02"]
    window = context.partition_time_window
    assert (window.start.day, window.end.month, window.end.day) == (30, 2, 3)


def test_unpartitioned_context_explains() -> None:
    context = AssetExecutionContext(asset_key=AssetKey("plain"), run_id="r1")
    assert not context.has_partition_key and not context.has_partition_key_range
    with pytest.raises(ContextError, match="'plain' runs without partitions"):
        _ = context.partition_keys


def test_time_window_needs_time_partitions() -> None:
    static = StaticPartitionsDefinition(["us", "eu"])
    context = build_asset_context("regions", partition_key="eu", partitions_def=static)
    assert context.partition_keys == ["eu"]
    with pytest.raises(ContextError, match="needs time-window partitions"):
        _ = context.partition_time_window


def test_build_context_rejects_key_outside_definition() -> None:
    with pytest.raises(PartitionKeyError, match="2023-12-31"):
        build_asset_context("events", partition_key="2023-12-31", partitions_def=DAILY)
