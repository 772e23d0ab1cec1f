"""Partita's SDK: define assets, partitions, backfill policies, schedules and sensors.

Dagster code ports by changing the import: ``from code_server import asset, DailyPartitionsDefinition``.
"""

from code_server.asset_graph import AssetGraph
from code_server.asset_key import AssetKey
from code_server.asset_selection import AssetSelection
from code_server.assets import AssetDep, AssetIn, AssetNode, AssetsDefinition, asset
from code_server.backfill_policy import BackfillPolicy, BackfillPolicyType
from code_server.context import AssetExecutionContext, OpExecutionContext
from code_server.definitions import Definitions
from code_server.errors import (
    ContextError,
    DefinitionError,
    PartitaError,
    PartitionKeyError,
    PartitionKeyRangeError,
    PartitionsMismatchError,
    UnknownAssetError,
    UnknownDefinitionError,
    UserCodeLoadError,
)
from code_server.mappings import (
    AllPartitionMapping,
    IdentityPartitionMapping,
    LastPartitionMapping,
    MultiToSingleDimensionPartitionMapping,
    PartitionMapping,
    SpecificPartitionsPartitionMapping,
    StaticPartitionMapping,
    TimeWindowPartitionMapping,
)
from code_server.partitions import (
    DailyPartitionsDefinition,
    DynamicPartitionsDefinition,
    HourlyPartitionsDefinition,
    MonthlyPartitionsDefinition,
    MultiPartitionKey,
    MultiPartitionsDefinition,
    PartitionKeyRange,
    PartitionsDefinition,
    StaticPartitionsDefinition,
    TimeWindow,
    TimeWindowPartitionsDefinition,
    WeeklyPartitionsDefinition,
)
from code_server.run_request import RunRequest, SensorResult, SkipReason
from code_server.schedules import (
    DefaultScheduleStatus,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    schedule,
)
from code_server.sensors import DefaultSensorStatus, SensorDefinition, SensorEvaluationContext, sensor
from code_server.version import __version__

__all__ = [
    "AllPartitionMapping",
    "AssetDep",
    "AssetExecutionContext",
    "AssetGraph",
    "AssetIn",
    "AssetKey",
    "AssetNode",
    "AssetSelection",
    "AssetsDefinition",
    "BackfillPolicy",
    "BackfillPolicyType",
    "ContextError",
    "DailyPartitionsDefinition",
    "DefaultScheduleStatus",
    "DefaultSensorStatus",
    "DefinitionError",
    "Definitions",
    "DynamicPartitionsDefinition",
    "HourlyPartitionsDefinition",
    "IdentityPartitionMapping",
    "LastPartitionMapping",
    "MonthlyPartitionsDefinition",
    "MultiPartitionKey",
    "MultiPartitionsDefinition",
    "MultiToSingleDimensionPartitionMapping",
    "OpExecutionContext",
    "PartitaError",
    "PartitionKeyError",
    "PartitionKeyRange",
    "PartitionKeyRangeError",
    "PartitionMapping",
    "PartitionsDefinition",
    "PartitionsMismatchError",
    "RunRequest",
    "ScheduleDefinition",
    "ScheduleEvaluationContext",
    "SensorDefinition",
    "SensorEvaluationContext",
    "SensorResult",
    "SkipReason",
    "SpecificPartitionsPartitionMapping",
    "StaticPartitionMapping",
    "StaticPartitionsDefinition",
    "TimeWindow",
    "TimeWindowPartitionMapping",
    "TimeWindowPartitionsDefinition",
    "UnknownAssetError",
    "UnknownDefinitionError",
    "UserCodeLoadError",
    "WeeklyPartitionsDefinition",
    "__version__",
    "asset",
    "schedule",
    "sensor",
]
