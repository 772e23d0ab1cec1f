"""Sensors, schedules, their evaluations and user-code errors <-> ``partita.common.v1`` messages."""

from __future__ import annotations

import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from code_server.asset_graph import AssetGraph
from code_server.asset_key import AssetKey
from code_server.evaluation import TickEvaluation
from code_server.partitions.keys import PartitionKeyRange
from code_server.run_request import AssetPartitionsTarget, PartitionsByAssetsTarget, RunRequest
from code_server.schedules import DefaultScheduleStatus, ScheduleDefinition
from code_server.sensors import DefaultSensorStatus, SensorDefinition
from code_server.wire.assets import asset_key_from_proto, asset_key_to_proto
from partita.common.v1 import assets_pb2, automation_pb2, errors_pb2, partitions_pb2, requests_pb2

_RUNNING = automation_pb2.INSTIGATOR_STATUS_RUNNING
_STOPPED = automation_pb2.INSTIGATOR_STATUS_STOPPED


def sensor_to_proto(sensor: SensorDefinition, graph: AssetGraph) -> automation_pb2.SensorDefinition:
    message = automation_pb2.SensorDefinition(
        name=sensor.name,
        asset_selection=_selection(sensor.target.resolve(graph) if sensor.target else (), graph),
        minimum_interval_seconds=sensor.minimum_interval_seconds,
        default_status=_RUNNING if sensor.default_status is DefaultSensorStatus.RUNNING else _STOPPED,
    )
    if sensor.description is not None:
        message.description = sensor.description
    return message


def schedule_to_proto(schedule: ScheduleDefinition, graph: AssetGraph) -> automation_pb2.ScheduleDefinition:
    message = automation_pb2.ScheduleDefinition(
        name=schedule.name,
        cron_schedule=schedule.cron_schedule,
        execution_timezone=schedule.execution_timezone,
        asset_selection=_selection(schedule.target.resolve(graph) if schedule.target else (), graph),
        default_status=_RUNNING if schedule.default_status is DefaultScheduleStatus.RUNNING else _STOPPED,
    )
    if schedule.description is not None:
        message.description = schedule.description
    return message


def _selection(keys: Sequence[AssetKey] | set[AssetKey], graph: AssetGraph) -> list[assets_pb2.AssetKey]:
    return [asset_key_to_proto(key) for key in graph.toposort(keys)]


def run_request_to_proto(request: RunRequest) -> requests_pb2.RunRequest:
    message = requests_pb2.RunRequest(
        asset_selection=[asset_key_to_proto(key) for key in request.asset_selection or ()],
        tags=dict(request.tags),
    )
    if request.run_key is not None:
        message.run_key = request.run_key
    if request.partition_key is not None:
        message.partition_key = request.partition_key
    return message


def backfill_request_to_proto(request: RunRequest) -> requests_pb2.BackfillRequest:
    target = requests_pb2.BackfillTarget(
        asset_selection=[asset_key_to_proto(key) for key in request.asset_selection or ()]
    )
    backfill = request.backfill
    if isinstance(backfill, PartitionsByAssetsTarget):
        target.partitions_by_asset.CopyFrom(
            requests_pb2.PartitionsByAsset(
                assets=[
                    assets_pb2.AssetPartitions(
                        asset_key=asset_key_to_proto(key),
                        partitions=partitions_pb2.PartitionSubset(
                            keys=partitions_pb2.PartitionKeys(keys=keys)
                        ),
                    )
                    for key, keys in backfill.partitions_by_assets.items()
                ]
            )
        )
    elif isinstance(backfill, AssetPartitionsTarget) and backfill.all_partitions:
        target.all_partitions.CopyFrom(partitions_pb2.AllPartitions())
    elif isinstance(backfill, AssetPartitionsTarget):
        target.keys.CopyFrom(partitions_pb2.PartitionKeys(keys=backfill.partition_names or ()))
    else:
        raise ValueError(f"{request!r} is not a backfill request.")
    message = requests_pb2.BackfillRequest(target=target, tags=dict(request.tags))
    if request.title is not None:
        message.title = request.title
    if request.description is not None:
        message.description = request.description
    return message


def sensor_result_to_proto(evaluation: TickEvaluation) -> automation_pb2.SensorResult:
    message = automation_pb2.SensorResult(
        run_requests=[run_request_to_proto(r) for r in evaluation.run_requests if not r.requires_backfill],
        backfill_requests=[backfill_request_to_proto(r) for r in evaluation.backfill_requests],
    )
    if evaluation.skip_reason is not None:
        message.skip_reason = evaluation.skip_reason
    if evaluation.cursor is not None:
        message.cursor = evaluation.cursor
    return message


def schedule_result_to_proto(evaluation: TickEvaluation) -> automation_pb2.ScheduleResult:
    message = automation_pb2.ScheduleResult(
        run_requests=[run_request_to_proto(r) for r in evaluation.run_requests if not r.requires_backfill],
        backfill_requests=[backfill_request_to_proto(r) for r in evaluation.backfill_requests],
    )
    if evaluation.skip_reason is not None:
        message.skip_reason = evaluation.skip_reason
    return message


@dataclass(frozen=True, slots=True)
class RunRequestSpec:
    """A plain run request as the control plane receives it."""

    asset_keys: tuple[AssetKey, ...]
    run_key: str | None
    partition_key: str | None
    tags: dict[str, str]


def run_request_from_proto(message: requests_pb2.RunRequest) -> RunRequestSpec:
    return RunRequestSpec(
        asset_keys=tuple(asset_key_from_proto(key) for key in message.asset_selection),
        run_key=message.run_key if message.HasField("run_key") else None,
        partition_key=message.partition_key if message.HasField("partition_key") else None,
        tags=dict(message.tags),
    )


def user_code_error_to_proto(
    error: BaseException,
    kind: errors_pb2.UserCodeErrorKind.ValueType = errors_pb2.USER_CODE_ERROR_KIND_RAISED,
) -> errors_pb2.UserCodeError:
    """The error with its traceback and frames, and its cause chain, for display by the control plane."""
    frames = [
        errors_pb2.StackFrame(
            filename=frame.filename, lineno=frame.lineno or 0, function=frame.name, line=frame.line or ""
        )
        for frame in traceback.extract_tb(error.__traceback__)
    ]
    message = errors_pb2.UserCodeError(
        kind=kind,
        message=str(error) or type(error).__name__,
        class_name=type(error).__name__,
        traceback="".join(traceback.format_exception(error)),
        frames=frames,
    )
    cause = error.__cause__ or error.__context__
    if cause is not None and cause is not error:
        message.cause.CopyFrom(user_code_error_to_proto(cause, kind))
    return message


@dataclass(frozen=True, slots=True)
class SensorInfo:
    name: str
    asset_keys: tuple[AssetKey, ...]
    minimum_interval_seconds: int
    default_running: bool
    description: str | None


@dataclass(frozen=True, slots=True)
class ScheduleInfo:
    name: str
    cron_schedule: str
    execution_timezone: str
    asset_keys: tuple[AssetKey, ...]
    default_running: bool
    description: str | None


def sensor_from_proto(message: automation_pb2.SensorDefinition) -> SensorInfo:
    return SensorInfo(
        name=message.name,
        asset_keys=tuple(asset_key_from_proto(key) for key in message.asset_selection),
        minimum_interval_seconds=message.minimum_interval_seconds,
        default_running=message.default_status == _RUNNING,
        description=message.description if message.HasField("description") else None,
    )


def schedule_from_proto(message: automation_pb2.ScheduleDefinition) -> ScheduleInfo:
    return ScheduleInfo(
        name=message.name,
        cron_schedule=message.cron_schedule,
        execution_timezone=message.execution_timezone,
        asset_keys=tuple(asset_key_from_proto(key) for key in message.asset_selection),
        default_running=message.default_status == _RUNNING,
        description=message.description if message.HasField("description") else None,
    )


@dataclass(frozen=True, slots=True)
class BackfillRequestSpec:
    """A backfill to launch, as a sensor, a schedule or an API client asks for it.

    Exactly one way of naming partitions is set: ``partition_keys`` or ``partition_ranges`` (keys of
    the selection's most upstream assets), ``all_partitions``, or ``partitions_by_asset``.
    """

    asset_keys: tuple[AssetKey, ...]
    partition_keys: tuple[str, ...] | None = None
    partition_ranges: tuple[PartitionKeyRange, ...] | None = None
    all_partitions: bool = False
    partitions_by_asset: Mapping[AssetKey, tuple[str, ...]] | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    title: str | None = None
    description: str | None = None


def backfill_target_from_proto(
    message: requests_pb2.BackfillTarget,
) -> tuple[tuple[AssetKey, ...], dict[str, object]]:
    """The selection and the partition arguments of a ``BackfillTarget`` (shared with the control plane's API)."""
    asset_keys = tuple(asset_key_from_proto(key) for key in message.asset_selection)
    kind = message.WhichOneof("partitions")
    arguments: dict[str, object] = {}
    if kind == "keys":
        arguments["partition_keys"] = tuple(message.keys.keys)
    elif kind == "ranges":
        arguments["partition_ranges"] = tuple(
            PartitionKeyRange(key_range.start, key_range.end) for key_range in message.ranges.ranges
        )
    elif kind == "all_partitions":
        arguments["all_partitions"] = True
    elif kind == "partitions_by_asset":
        by_asset: dict[AssetKey, tuple[str, ...]] = {}
        for entry in message.partitions_by_asset.assets:
            subset = entry.partitions
            if subset.WhichOneof("kind") != "keys":
                raise ValueError("partitions_by_asset takes explicit keys for each asset.")
            by_asset[asset_key_from_proto(entry.asset_key)] = tuple(subset.keys.keys)
        arguments["partitions_by_asset"] = by_asset
        if not asset_keys:
            asset_keys = tuple(by_asset)
    return asset_keys, arguments


def backfill_request_from_proto(message: requests_pb2.BackfillRequest) -> BackfillRequestSpec:
    asset_keys, arguments = backfill_target_from_proto(message.target)
    return BackfillRequestSpec(
        asset_keys=asset_keys,
        tags=dict(message.tags),
        title=message.title if message.HasField("title") else None,
        description=message.description if message.HasField("description") else None,
        **arguments,  # type: ignore[arg-type]
    )


@dataclass(frozen=True, slots=True)
class EvaluationResult:
    """A sensor's or schedule's answer as the control plane receives it."""

    run_requests: tuple[RunRequestSpec, ...]
    backfill_requests: tuple[BackfillRequestSpec, ...]
    skip_reason: str | None
    cursor: str | None


def evaluation_from_proto(
    message: automation_pb2.SensorResult | automation_pb2.ScheduleResult,
) -> EvaluationResult:
    has_cursor = isinstance(message, automation_pb2.SensorResult) and message.HasField("cursor")
    cursor = message.cursor if has_cursor else None  # type: ignore[union-attr]
    return EvaluationResult(
        run_requests=tuple(run_request_from_proto(request) for request in message.run_requests),
        backfill_requests=tuple(
            backfill_request_from_proto(request) for request in message.backfill_requests
        ),
        skip_reason=message.skip_reason if message.HasField("skip_reason") else None,
        cursor=cursor,
    )
