"""Sensor and schedule views, ticks and evaluations <-> ``partita.controlplane.v1`` messages."""

from __future__ import annotations

from code_server.wire.assets import asset_key_to_proto
from code_server.wire.automation import BackfillRequestSpec, EvaluationResult, RunRequestSpec
from control_plane.api.convert import backfill_target_to_proto
from control_plane.api.status import BadRequest
from control_plane.automation.service import ScheduleView, SensorView
from control_plane.storage.instigators import InstigatorStatus, TickError, TickRecord, TickStatus
from partita.common.v1 import automation_pb2, errors_pb2, requests_pb2
from partita.controlplane.v1 import sensors_schedules_pb2

_TICK_STATUS = {
    TickStatus.STARTED: automation_pb2.TICK_STATUS_STARTED,
    TickStatus.SKIPPED: automation_pb2.TICK_STATUS_SKIPPED,
    TickStatus.SUCCESS: automation_pb2.TICK_STATUS_SUCCESS,
    TickStatus.FAILURE: automation_pb2.TICK_STATUS_FAILURE,
}
_ERROR_KIND = {
    "raised": errors_pb2.USER_CODE_ERROR_KIND_RAISED,
    "timed_out": errors_pb2.USER_CODE_ERROR_KIND_TIMED_OUT,
}


def _status(status: InstigatorStatus) -> automation_pb2.InstigatorStatus.ValueType:
    if status is InstigatorStatus.RUNNING:
        return automation_pb2.INSTIGATOR_STATUS_RUNNING
    return automation_pb2.INSTIGATOR_STATUS_STOPPED


def tick_status_to_proto(status: TickStatus) -> automation_pb2.TickStatus.ValueType:
    return _TICK_STATUS[status]


def tick_status_from_proto(value: automation_pb2.TickStatus.ValueType) -> TickStatus:
    for status, proto in _TICK_STATUS.items():
        if proto == value:
            return status
    raise BadRequest(f"Unknown tick status {value}; use STARTED, SKIPPED, SUCCESS or FAILURE.")


def tick_error_to_proto(error: TickError) -> errors_pb2.UserCodeError:
    return errors_pb2.UserCodeError(
        kind=_ERROR_KIND.get(error.kind, errors_pb2.USER_CODE_ERROR_KIND_UNSPECIFIED),
        message=error.message,
        class_name=error.class_name,
        traceback=error.traceback,
    )


def sensor_tick_to_proto(tick: TickRecord) -> automation_pb2.SensorTick:
    message = automation_pb2.SensorTick(
        tick_id=tick.id,
        location_name=tick.ref.location,
        sensor_name=tick.ref.name,
        status=tick_status_to_proto(tick.status),
        run_ids=tick.run_ids,
        backfill_ids=tick.backfill_ids,
    )
    message.started_at.FromDatetime(tick.started_at)
    if tick.ended_at is not None:
        message.ended_at.FromDatetime(tick.ended_at)
    if tick.cursor_before is not None:
        message.cursor_before = tick.cursor_before
    if tick.cursor_after is not None:
        message.cursor_after = tick.cursor_after
    if tick.skip_reason is not None:
        message.skip_reason = tick.skip_reason
    if tick.error is not None:
        message.error.CopyFrom(tick_error_to_proto(tick.error))
    return message


def schedule_tick_to_proto(tick: TickRecord) -> automation_pb2.ScheduleTick:
    message = automation_pb2.ScheduleTick(
        tick_id=tick.id,
        location_name=tick.ref.location,
        schedule_name=tick.ref.name,
        status=tick_status_to_proto(tick.status),
        run_ids=tick.run_ids,
        backfill_ids=tick.backfill_ids,
    )
    if tick.scheduled_at is not None:
        message.scheduled_execution_time.FromDatetime(tick.scheduled_at)
    message.started_at.FromDatetime(tick.started_at)
    if tick.ended_at is not None:
        message.ended_at.FromDatetime(tick.ended_at)
    if tick.skip_reason is not None:
        message.skip_reason = tick.skip_reason
    if tick.error is not None:
        message.error.CopyFrom(tick_error_to_proto(tick.error))
    return message


def sensor_view_to_proto(view: SensorView) -> sensors_schedules_pb2.SensorState:
    sensor = view.definition
    definition = automation_pb2.SensorDefinition(
        name=sensor.name,
        asset_selection=[asset_key_to_proto(key) for key in sensor.asset_keys],
        minimum_interval_seconds=sensor.minimum_interval_seconds,
        default_status=_status(
            InstigatorStatus.RUNNING if sensor.default_running else InstigatorStatus.STOPPED
        ),
    )
    if sensor.description is not None:
        definition.description = sensor.description
    message = sensors_schedules_pb2.SensorState(
        location_name=view.location, definition=definition, status=_status(view.state.status)
    )
    if view.state.cursor is not None:
        message.cursor = view.state.cursor
    if view.last_tick is not None:
        message.last_tick.CopyFrom(sensor_tick_to_proto(view.last_tick))
    if view.next_tick_at is not None:
        message.next_tick_at.FromDatetime(view.next_tick_at)
    return message


def schedule_view_to_proto(view: ScheduleView) -> sensors_schedules_pb2.ScheduleState:
    schedule = view.definition
    definition = automation_pb2.ScheduleDefinition(
        name=schedule.name,
        cron_schedule=schedule.cron_schedule,
        execution_timezone=schedule.execution_timezone,
        asset_selection=[asset_key_to_proto(key) for key in schedule.asset_keys],
        default_status=_status(
            InstigatorStatus.RUNNING if schedule.default_running else InstigatorStatus.STOPPED
        ),
    )
    if schedule.description is not None:
        definition.description = schedule.description
    message = sensors_schedules_pb2.ScheduleState(
        location_name=view.location, definition=definition, status=_status(view.state.status)
    )
    if view.last_tick is not None:
        message.last_tick.CopyFrom(schedule_tick_to_proto(view.last_tick))
    if view.next_tick_at is not None:
        message.next_tick_at.FromDatetime(view.next_tick_at)
    return message


def _run_request_to_proto(request: RunRequestSpec) -> requests_pb2.RunRequest:
    message = requests_pb2.RunRequest(
        asset_selection=[asset_key_to_proto(key) for key in request.asset_keys], tags=dict(request.tags)
    )
    if request.run_key is not None:
        message.run_key = request.run_key
    if request.partition_key is not None:
        message.partition_key = request.partition_key
    return message


def _backfill_request_to_proto(request: BackfillRequestSpec) -> requests_pb2.BackfillRequest:
    message = requests_pb2.BackfillRequest(target=backfill_target_to_proto(request), tags=dict(request.tags))
    if request.title is not None:
        message.title = request.title
    if request.description is not None:
        message.description = request.description
    return message


def sensor_result_to_proto(result: EvaluationResult) -> automation_pb2.SensorResult:
    message = automation_pb2.SensorResult(
        run_requests=[_run_request_to_proto(r) for r in result.run_requests],
        backfill_requests=[_backfill_request_to_proto(r) for r in result.backfill_requests],
    )
    if result.skip_reason is not None:
        message.skip_reason = result.skip_reason
    if result.cursor is not None:
        message.cursor = result.cursor
    return message


def schedule_result_to_proto(result: EvaluationResult) -> automation_pb2.ScheduleResult:
    message = automation_pb2.ScheduleResult(
        run_requests=[_run_request_to_proto(r) for r in result.run_requests],
        backfill_requests=[_backfill_request_to_proto(r) for r in result.backfill_requests],
    )
    if result.skip_reason is not None:
        message.skip_reason = result.skip_reason
    return message
