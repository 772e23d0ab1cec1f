"""``partita.controlplane.v1.ControlPlane``: the public API, a thin translation over ``ControlPlaneService``.

Each RPC checks its request (``control_plane.api.validation``: bad input is INVALID_ARGUMENT naming
the field, before anything is read or written), converts it, calls one service method and converts the
answer; errors become status codes through ``control_plane.api.status``, and list RPCs page through
``control_plane.api.paging``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import Executor
from typing import Any, NoReturn

import grpc
from grpc import aio

from code_server.client.errors import UserCodeError
from code_server.wire.assets import asset_key_from_proto
from code_server.wire.partitions import key_range_from_proto, key_range_to_proto
from code_server.wire.timestamps import timestamp_from_proto, timestamp_to_proto
from control_plane.api.audit import list_audit_events
from control_plane.api.automation import (
    schedule_result_to_proto,
    schedule_tick_to_proto,
    schedule_view_to_proto,
    sensor_result_to_proto,
    sensor_tick_to_proto,
    sensor_view_to_proto,
    tick_status_from_proto,
)
from control_plane.api.convert import (
    backfill_plan_to_proto,
    backfill_to_proto,
    code_location_to_proto,
    launch_request_from_proto,
    partition_changes_to_proto,
    partition_counts_to_proto,
    run_log_entry_to_proto,
    run_to_proto,
)
from control_plane.api.enums import (
    backfill_status_from_proto,
    partition_status_to_proto,
    run_status_from_proto,
)
from control_plane.api.paging import (
    DEFAULT_RANGE_PAGE_SIZE,
    MAX_RANGE_PAGE_SIZE,
    decode_offset_token,
    decode_page_token,
    encode_offset_token,
    page_size,
    paged,
)
from control_plane.api.status import BadRequest, StatusOnError, abort_with_error, parsed, required
from control_plane.api.stream_hubs import (
    DEFAULT_MAX_OPEN_STREAMS,
    BackfillWatchHub,
    ChangeSignal,
    OpenStreams,
    RunLogHub,
)
from control_plane.api.validation import check_request
from control_plane.auth.token_rpcs import ApiTokenRpcs
from control_plane.automation import AutomationDaemon, AutomationService
from control_plane.records import PartitionSpan
from control_plane.service import ControlPlaneService
from control_plane.storage.instigators import TickRecord
from control_plane.views import BackfillPlanView, BackfillView
from partita.controlplane.v1 import (
    audit_pb2,
    backfills_pb2,
    code_locations_pb2,
    control_plane_pb2_grpc,
    partition_status_pb2,
    runs_pb2,
    sensors_schedules_pb2,
)


class RenderedBackfills:
    """The watch message of each backfill's latest view, built once however many streams watch it
    (the watch hub hands every watcher the same view object); streams that asked for partition
    changes add theirs to a copy."""

    def __init__(self, capacity: int = 1024) -> None:
        self._capacity = capacity
        self._latest: OrderedDict[str, tuple[BackfillView, backfills_pb2.WatchBackfillResponse]] = (
            OrderedDict()
        )

    def response(
        self, view: BackfillView, changes: Sequence[PartitionSpan]
    ) -> backfills_pb2.WatchBackfillResponse:
        backfill_id = view.record.id
        cached = self._latest.get(backfill_id)
        if cached is None or cached[0] is not view:
            cached = (view, backfills_pb2.WatchBackfillResponse(backfill=backfill_to_proto(view)))
            self._latest[backfill_id] = cached
        self._latest.move_to_end(backfill_id)
        while len(self._latest) > self._capacity:
            self._latest.popitem(last=False)
        if not changes:
            return cached[1]
        response = backfills_pb2.WatchBackfillResponse()
        response.CopyFrom(cached[1])
        response.changes.extend(partition_changes_to_proto(changes))
        return response


class ControlPlaneServicer(ApiTokenRpcs, control_plane_pb2_grpc.ControlPlaneServicer):
    """Serves ``ControlPlaneService``, and its sensors and schedules when it has an ``automation`` daemon."""

    def __init__(
        self,
        service: ControlPlaneService,
        *,
        stream_executor: Executor,
        changes: ChangeSignal | None = None,
        max_open_streams: int = DEFAULT_MAX_OPEN_STREAMS,
        watch_poll_seconds: float = 5.0,
        log_poll_seconds: float = 0.5,
        log_page_size: int = 1000,
    ) -> None:
        self._service = service
        signal = changes or ChangeSignal()
        self._streams = OpenStreams(max_open_streams)
        self._rendered = RenderedBackfills()
        self._watch_hub = BackfillWatchHub(service, stream_executor, signal, poll_seconds=watch_poll_seconds)
        self._log_hub = RunLogHub(
            service, stream_executor, signal, poll_seconds=log_poll_seconds, page_size=log_page_size
        )

    # --- backfills -------------------------------------------------------------------------------

    def LaunchBackfill(
        self, request: backfills_pb2.LaunchBackfillRequest, context: grpc.ServicerContext
    ) -> backfills_pb2.LaunchBackfillResponse:
        with StatusOnError(context, "LaunchBackfill"):
            check_request(request)
            spec, options = parsed(lambda: launch_request_from_proto(request))
            launched = self._service.launch_backfill(spec, options)
            if isinstance(launched, BackfillPlanView):
                return backfills_pb2.LaunchBackfillResponse(plan=backfill_plan_to_proto(launched))
            return backfills_pb2.LaunchBackfillResponse(backfill=backfill_to_proto(launched))

    def GetBackfill(
        self, request: backfills_pb2.GetBackfillRequest, context: grpc.ServicerContext
    ) -> backfills_pb2.GetBackfillResponse:
        with StatusOnError(context, "GetBackfill"):
            check_request(request)
            view = self._service.get_backfill(required(request.backfill_id, "backfill_id"))
            return backfills_pb2.GetBackfillResponse(backfill=backfill_to_proto(view))

    def ListBackfills(
        self, request: backfills_pb2.ListBackfillsRequest, context: grpc.ServicerContext
    ) -> backfills_pb2.ListBackfillsResponse:
        with StatusOnError(context, "ListBackfills"):
            check_request(request)
            size = page_size(request.page_size)
            statuses = parsed(lambda: [backfill_status_from_proto(s) for s in request.statuses])
            views = self._service.list_backfills(
                statuses=statuses,
                tags=dict(request.tags) or None,
                location=request.location_name if request.HasField("location_name") else None,
                limit=size + 1,
                before=decode_page_token(request.page_token),
            )
            page, token = paged(views, size, lambda view: (view.record.created_at, view.record.id))
            return backfills_pb2.ListBackfillsResponse(
                backfills=[backfill_to_proto(view) for view in page], next_page_token=token
            )

    def CancelBackfill(
        self, request: backfills_pb2.CancelBackfillRequest, context: grpc.ServicerContext
    ) -> backfills_pb2.CancelBackfillResponse:
        with StatusOnError(context, "CancelBackfill"):
            check_request(request)
            view = self._service.cancel_backfill(required(request.backfill_id, "backfill_id"))
            return backfills_pb2.CancelBackfillResponse(backfill=backfill_to_proto(view))

    def RetryBackfill(
        self, request: backfills_pb2.RetryBackfillRequest, context: grpc.ServicerContext
    ) -> backfills_pb2.RetryBackfillResponse:
        with StatusOnError(context, "RetryBackfill"):
            check_request(request)
            view, requeued = self._service.retry_backfill(required(request.backfill_id, "backfill_id"))
            return backfills_pb2.RetryBackfillResponse(
                backfill=backfill_to_proto(view), requeued_partition_count=requeued
            )

    def PauseBackfill(
        self, request: backfills_pb2.PauseBackfillRequest, context: grpc.ServicerContext
    ) -> backfills_pb2.PauseBackfillResponse:
        with StatusOnError(context, "PauseBackfill"):
            check_request(request)
            view = self._service.pause_backfill(required(request.backfill_id, "backfill_id"))
            return backfills_pb2.PauseBackfillResponse(backfill=backfill_to_proto(view))

    def ResumeBackfill(
        self, request: backfills_pb2.ResumeBackfillRequest, context: grpc.ServicerContext
    ) -> backfills_pb2.ResumeBackfillResponse:
        with StatusOnError(context, "ResumeBackfill"):
            check_request(request)
            view = self._service.resume_backfill(required(request.backfill_id, "backfill_id"))
            return backfills_pb2.ResumeBackfillResponse(backfill=backfill_to_proto(view))

    def UpdateBackfillLimits(
        self, request: backfills_pb2.UpdateBackfillLimitsRequest, context: grpc.ServicerContext
    ) -> backfills_pb2.UpdateBackfillLimitsResponse:
        with StatusOnError(context, "UpdateBackfillLimits"):
            check_request(request)
            backfill_id = required(request.backfill_id, "backfill_id")
            limit = request.max_concurrent_runs if request.HasField("max_concurrent_runs") else None
            if limit is not None and limit < 0:
                raise BadRequest(f"max_concurrent_runs must be 0 (no limit) or more, not {limit}.")
            view = self._service.update_backfill_limits(
                backfill_id,
                max_concurrent_runs=limit,
                priority=request.priority if request.HasField("priority") else None,
            )
            return backfills_pb2.UpdateBackfillLimitsResponse(backfill=backfill_to_proto(view))

    async def WatchBackfill(
        self, request: backfills_pb2.WatchBackfillRequest, context: aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[backfills_pb2.WatchBackfillResponse]:
        with self._streams.held() as admitted:
            try:
                if not admitted:
                    raise self._streams.exhausted()
                check_request(request)
                backfill_id = required(request.backfill_id, "backfill_id")
                updates = self._watch_hub.watch(backfill_id, with_changes=request.include_partition_changes)
                async for update in updates:
                    yield self._rendered.response(update.view, update.changes)
            except Exception as error:
                await abort_with_error(context, "WatchBackfill", error)

    # --- runs ------------------------------------------------------------------------------------

    def ListRuns(
        self, request: runs_pb2.ListRunsRequest, context: grpc.ServicerContext
    ) -> runs_pb2.ListRunsResponse:
        with StatusOnError(context, "ListRuns"):
            check_request(request)
            size = page_size(request.page_size)
            backfill_id = request.backfill_id if request.HasField("backfill_id") else None
            runs = self._service.list_runs(
                backfill_id=backfill_id,
                statuses=parsed(lambda: [run_status_from_proto(s) for s in request.statuses]),
                tags=dict(request.tags) or None,
                include_backfill_runs=backfill_id is not None or request.include_backfill_runs,
                location=request.location_name if request.HasField("location_name") else None,
                limit=size + 1,
                before=decode_page_token(request.page_token),
            )
            page, token = paged(runs, size, lambda run: (run.created_at, run.id))
            return runs_pb2.ListRunsResponse(runs=[run_to_proto(run) for run in page], next_page_token=token)

    def GetRun(
        self, request: runs_pb2.GetRunRequest, context: grpc.ServicerContext
    ) -> runs_pb2.GetRunResponse:
        with StatusOnError(context, "GetRun"):
            check_request(request)
            run = self._service.get_run(required(request.run_id, "run_id"))
            return runs_pb2.GetRunResponse(run=run_to_proto(run))

    def TerminateRun(
        self, request: runs_pb2.TerminateRunRequest, context: grpc.ServicerContext
    ) -> runs_pb2.TerminateRunResponse:
        with StatusOnError(context, "TerminateRun"):
            check_request(request)
            run = self._service.terminate_run(required(request.run_id, "run_id"))
            return runs_pb2.TerminateRunResponse(run=run_to_proto(run))

    async def GetRunLogs(
        self, request: runs_pb2.GetRunLogsRequest, context: aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[runs_pb2.GetRunLogsResponse]:
        with self._streams.held() as admitted:
            try:
                if not admitted:
                    raise self._streams.exhausted()
                check_request(request)
                run_id = required(request.run_id, "run_id")
                if request.after_sequence < 0:
                    raise BadRequest(f"after_sequence must be 0 or more, not {request.after_sequence}.")
                pages = self._log_hub.pages(run_id, after=request.after_sequence, follow=request.follow)
                async for entries in pages:
                    yield runs_pb2.GetRunLogsResponse(entries=[run_log_entry_to_proto(e) for e in entries])
            except Exception as error:
                await abort_with_error(context, "GetRunLogs", error)

    # --- assets and locations --------------------------------------------------------------------

    def GetAssetPartitionStatus(
        self, request: partition_status_pb2.GetAssetPartitionStatusRequest, context: grpc.ServicerContext
    ) -> partition_status_pb2.GetAssetPartitionStatusResponse:
        with StatusOnError(context, "GetAssetPartitionStatus"):
            check_request(request)
            if not request.HasField("asset_key") or not request.asset_key.path:
                raise BadRequest("asset_key is required.")
            asset_key = parsed(lambda: asset_key_from_proto(request.asset_key))
            key_range = key_range_from_proto(request.range) if request.HasField("range") else None
            size = page_size(request.page_size, DEFAULT_RANGE_PAGE_SIZE, MAX_RANGE_PAGE_SIZE)
            offset = decode_offset_token(request.page_token)
            location = request.location_name or self._only_location()
            view = self._service.asset_partition_status(location, asset_key, key_range)
            page = view.ranges[offset : offset + size]
            response = partition_status_pb2.GetAssetPartitionStatusResponse(
                counts=partition_counts_to_proto(view.counts),
                ranges=[
                    partition_status_pb2.PartitionStatusRange(
                        range=key_range_to_proto(r.partition_range),
                        status=partition_status_to_proto(r.status),
                        partition_count=r.partition_count,
                    )
                    for r in page
                ],
                next_page_token=encode_offset_token(offset + size)
                if offset + size < len(view.ranges)
                else "",
            )
            # No ranges but a count: the asset is unpartitioned, and its one status is reported instead.
            if not view.ranges and sum(view.counts.values()) > 0:
                response.unpartitioned_status = partition_status_to_proto(view.unpartitioned_status)
            return response

    def _only_location(self) -> str:
        names = [location.name for location in self._service.code_locations()]
        if len(names) == 1:
            return names[0]
        raise BadRequest(f"location_name is required: the control plane has code locations {sorted(names)}.")

    def ListCodeLocations(
        self, request: code_locations_pb2.ListCodeLocationsRequest, context: grpc.ServicerContext
    ) -> code_locations_pb2.ListCodeLocationsResponse:
        with StatusOnError(context, "ListCodeLocations"):
            check_request(request)
            views = sorted(self._service.code_locations(), key=lambda view: view.name)
            return code_locations_pb2.ListCodeLocationsResponse(
                locations=[code_location_to_proto(view) for view in views]
            )

    # --- sensors and schedules --------------------------------------------------------------------

    def ListSensors(
        self, request: sensors_schedules_pb2.ListSensorsRequest, context: grpc.ServicerContext
    ) -> sensors_schedules_pb2.ListSensorsResponse:
        automation = self._automation(context)
        with StatusOnError(context, "ListSensors"):
            check_request(request)
            location = request.location_name if request.HasField("location_name") else None
            views = automation.list_sensors(location)
            return sensors_schedules_pb2.ListSensorsResponse(sensors=[sensor_view_to_proto(v) for v in views])

    def StartSensor(
        self, request: sensors_schedules_pb2.StartSensorRequest, context: grpc.ServicerContext
    ) -> sensors_schedules_pb2.StartSensorResponse:
        automation = self._automation(context)
        with StatusOnError(context, "StartSensor"):
            check_request(request)
            name = required(request.sensor_name, "sensor_name")
            view = automation.set_sensor_running(request.location_name, name, True)
            return sensors_schedules_pb2.StartSensorResponse(sensor=sensor_view_to_proto(view))

    def StopSensor(
        self, request: sensors_schedules_pb2.StopSensorRequest, context: grpc.ServicerContext
    ) -> sensors_schedules_pb2.StopSensorResponse:
        automation = self._automation(context)
        with StatusOnError(context, "StopSensor"):
            check_request(request)
            name = required(request.sensor_name, "sensor_name")
            view = automation.set_sensor_running(request.location_name, name, False)
            return sensors_schedules_pb2.StopSensorResponse(sensor=sensor_view_to_proto(view))

    def PreviewSensor(
        self, request: sensors_schedules_pb2.PreviewSensorRequest, context: grpc.ServicerContext
    ) -> sensors_schedules_pb2.PreviewSensorResponse:
        automation = self._automation(context)
        with StatusOnError(context, "PreviewSensor"):
            check_request(request)
            name = required(request.sensor_name, "sensor_name")
            cursor = request.cursor if request.HasField("cursor") else None
            try:
                result = automation.preview_sensor(request.location_name, name, cursor)
            except UserCodeError as error:
                return sensors_schedules_pb2.PreviewSensorResponse(error=error.error)
            return sensors_schedules_pb2.PreviewSensorResponse(ok=sensor_result_to_proto(result))

    def ListSensorTicks(
        self, request: sensors_schedules_pb2.ListSensorTicksRequest, context: grpc.ServicerContext
    ) -> sensors_schedules_pb2.ListSensorTicksResponse:
        automation = self._automation(context)
        with StatusOnError(context, "ListSensorTicks"):
            check_request(request)
            name = required(request.sensor_name, "sensor_name")
            page, token = _tick_page(
                request, lambda **query: automation.sensor_ticks(request.location_name, name, **query)
            )
            return sensors_schedules_pb2.ListSensorTicksResponse(
                ticks=[sensor_tick_to_proto(tick) for tick in page], next_page_token=token
            )

    def ListSchedules(
        self, request: sensors_schedules_pb2.ListSchedulesRequest, context: grpc.ServicerContext
    ) -> sensors_schedules_pb2.ListSchedulesResponse:
        automation = self._automation(context)
        with StatusOnError(context, "ListSchedules"):
            check_request(request)
            location = request.location_name if request.HasField("location_name") else None
            views = automation.list_schedules(location)
            return sensors_schedules_pb2.ListSchedulesResponse(
                schedules=[schedule_view_to_proto(v) for v in views]
            )

    def StartSchedule(
        self, request: sensors_schedules_pb2.StartScheduleRequest, context: grpc.ServicerContext
    ) -> sensors_schedules_pb2.StartScheduleResponse:
        automation = self._automation(context)
        with StatusOnError(context, "StartSchedule"):
            check_request(request)
            name = required(request.schedule_name, "schedule_name")
            view = automation.set_schedule_running(request.location_name, name, True)
            return sensors_schedules_pb2.StartScheduleResponse(schedule=schedule_view_to_proto(view))

    def StopSchedule(
        self, request: sensors_schedules_pb2.StopScheduleRequest, context: grpc.ServicerContext
    ) -> sensors_schedules_pb2.StopScheduleResponse:
        automation = self._automation(context)
        with StatusOnError(context, "StopSchedule"):
            check_request(request)
            name = required(request.schedule_name, "schedule_name")
            view = automation.set_schedule_running(request.location_name, name, False)
            return sensors_schedules_pb2.StopScheduleResponse(schedule=schedule_view_to_proto(view))

    def PreviewSchedule(
        self, request: sensors_schedules_pb2.PreviewScheduleRequest, context: grpc.ServicerContext
    ) -> sensors_schedules_pb2.PreviewScheduleResponse:
        automation = self._automation(context)
        with StatusOnError(context, "PreviewSchedule"):
            check_request(request)
            name = required(request.schedule_name, "schedule_name")
            when = (
                timestamp_from_proto(request.scheduled_execution_time)
                if request.HasField("scheduled_execution_time")
                else None
            )
            try:
                scheduled, result = automation.preview_schedule(request.location_name, name, when)
            except UserCodeError as error:
                response = sensors_schedules_pb2.PreviewScheduleResponse(error=error.error)
                if when is not None:
                    response.scheduled_execution_time.CopyFrom(timestamp_to_proto(when))
                return response
            return sensors_schedules_pb2.PreviewScheduleResponse(
                scheduled_execution_time=timestamp_to_proto(scheduled), ok=schedule_result_to_proto(result)
            )

    def ListScheduleTicks(
        self, request: sensors_schedules_pb2.ListScheduleTicksRequest, context: grpc.ServicerContext
    ) -> sensors_schedules_pb2.ListScheduleTicksResponse:
        automation = self._automation(context)
        with StatusOnError(context, "ListScheduleTicks"):
            check_request(request)
            name = required(request.schedule_name, "schedule_name")
            page, token = _tick_page(
                request, lambda **query: automation.schedule_ticks(request.location_name, name, **query)
            )
            return sensors_schedules_pb2.ListScheduleTicksResponse(
                ticks=[schedule_tick_to_proto(tick) for tick in page], next_page_token=token
            )

    # --- audit log ---------------------------------------------------------------------------------

    def ListAuditEvents(
        self, request: audit_pb2.ListAuditEventsRequest, context: grpc.ServicerContext
    ) -> audit_pb2.ListAuditEventsResponse:
        with StatusOnError(context, "ListAuditEvents"):
            check_request(request)
            return list_audit_events(self._service, request)

    def _automation(self, context: grpc.ServicerContext) -> AutomationService:
        """The service's sensors and schedules; a service without them answers UNIMPLEMENTED."""
        daemon = getattr(self._service, "automation", None)
        if not isinstance(daemon, AutomationDaemon):
            _unimplemented(context, "Sensors and schedules")
        return daemon.service


def _tick_page(
    request: sensors_schedules_pb2.ListSensorTicksRequest | sensors_schedules_pb2.ListScheduleTicksRequest,
    list_ticks: Callable[..., Sequence[TickRecord]],
) -> tuple[Sequence[TickRecord], str]:
    """One page of a sensor's or schedule's ticks, newest first, and the next page's token."""
    size = page_size(request.page_size)
    ticks = list_ticks(
        statuses=parsed(lambda: [tick_status_from_proto(s) for s in request.statuses]),
        limit=size + 1,
        before=decode_page_token(request.page_token),
    )
    return paged(ticks, size, lambda tick: (tick.started_at, tick.id))


def _unimplemented(context: grpc.ServicerContext, rpc: str) -> NoReturn:
    context.abort(
        grpc.StatusCode.UNIMPLEMENTED,
        f"{rpc}: sensors and schedules arrive with the sensor and schedule daemon, which this control "
        "plane service does not run.",
    )
    raise AssertionError("unreachable: context.abort raises")
