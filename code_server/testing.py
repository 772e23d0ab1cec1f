"""Unit-test helpers: contexts for assets, sensors and schedules, evaluated in process, no servers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from code_server.asset_key import AssetKey, CoercibleToAssetKey
from code_server.assets import AssetsDefinition
from code_server.context import AssetExecutionContext
from code_server.definitions import Definitions
from code_server.errors import ContextError
from code_server.evaluation import TickEvaluation
from code_server.evaluation import evaluate_schedule as _evaluate_schedule
from code_server.evaluation import evaluate_sensor as _evaluate_sensor
from code_server.partitions.base import PartitionsDefinition
from code_server.partitions.keys import PartitionKeyRange
from code_server.schedules import ScheduleDefinition, ScheduleEvaluationContext
from code_server.sensors import SensorDefinition, SensorEvaluationContext


def build_asset_context(
    asset: AssetsDefinition | CoercibleToAssetKey = "test_asset",
    *,
    partition_key: str | None = None,
    partition_key_range: PartitionKeyRange | None = None,
    partitions_def: PartitionsDefinition | None = None,
    run_id: str | None = None,
) -> AssetExecutionContext:
    """A context for one partition key, or for a range as a backfill policy would give."""
    if partition_key is not None and partition_key_range is not None:
        raise ContextError("Pass partition_key or partition_key_range, not both.")
    if isinstance(asset, AssetsDefinition):
        asset_key = asset.key
        partitions_def = partitions_def or asset.partitions_def
    else:
        asset_key = AssetKey.from_coercible(asset)
    key_range = PartitionKeyRange(partition_key, partition_key) if partition_key else partition_key_range
    if key_range is not None and partitions_def is not None:
        # Fail here, as a run would, rather than in the middle of the asset's code.
        partitions_def.get_partition_keys_in_range(key_range)
    return AssetExecutionContext(
        asset_key=asset_key,
        run_id=run_id or f"test-{uuid.uuid4().hex[:8]}",
        partitions_def=partitions_def,
        partition_key_range=key_range,
    )


def build_sensor_context(
    cursor: str | None = None, last_tick_completion_time: datetime | None = None
) -> SensorEvaluationContext:
    return SensorEvaluationContext(cursor=cursor, last_tick_completion_time=last_tick_completion_time)


def build_schedule_context(scheduled_execution_time: datetime | None = None) -> ScheduleEvaluationContext:
    return ScheduleEvaluationContext(scheduled_execution_time=scheduled_execution_time or datetime.now(UTC))


def evaluate_sensor(
    sensor: SensorDefinition, definitions: Definitions, context: SensorEvaluationContext | None = None
) -> TickEvaluation:
    """Evaluate a sensor as the code server would: requests come back with explicit asset selections."""
    return _evaluate_sensor(sensor, context or build_sensor_context(), definitions.asset_graph)


def evaluate_schedule(
    schedule: ScheduleDefinition, definitions: Definitions, context: ScheduleEvaluationContext | None = None
) -> TickEvaluation:
    return _evaluate_schedule(schedule, context or build_schedule_context(), definitions.asset_graph)
