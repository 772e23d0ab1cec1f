"""``ControlPlaneClient``: one typed method per RPC of the control plane's public API.

Transport failures are translated once, here, into the errors below, each keeping its gRPC status::

    ControlPlaneClientError              (.status: grpc.StatusCode | None, .address)
    ├── ControlPlaneUnreachable           the control plane did not answer (nothing listens, or it timed out)
    ├── CodeLocationUnavailableError      the control plane answered UNAVAILABLE: a code location is down
    ├── NotFoundError                     NOT_FOUND: no such backfill, run, location or asset
    ├── InvalidArgumentError              INVALID_ARGUMENT: the request names something wrong
    ├── FailedPreconditionError           FAILED_PRECONDITION: e.g. resuming a backfill that is not paused
    ├── UnauthenticatedError              UNAUTHENTICATED: no token, or a bad, expired or revoked one
    └── PermissionDeniedError             PERMISSION_DENIED: beyond the token's role or code locations

The server names the error class behind a status in trailing metadata, which is how an UNAVAILABLE
from a down code location is told apart from a control plane that cannot be reached.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import TypeVar

import grpc

from code_server.asset_key import AssetKey
from code_server.client.retrying import RETRYABLE, call_with_retries
from code_server.errors import PartitaError
from code_server.partitions.keys import PartitionKeyRange
from code_server.tls import ClientTls, handshake_hint, open_channel
from code_server.wire.assets import asset_key_to_proto
from code_server.wire.automation import BackfillRequestSpec
from code_server.wire.partitions import key_range_to_proto
from control_plane.api.convert import launch_request_to_proto
from control_plane.api.enums import backfill_status_to_proto, run_status_to_proto
from control_plane.api.status import ERROR_METADATA_KEY
from control_plane.client_auth import resolve_token, with_token
from control_plane.records import BackfillStatus, RunStatus
from control_plane.views import LaunchOptions
from partita.common.v1 import automation_pb2
from partita.controlplane.v1 import (
    audit_pb2,
    auth_pb2,
    backfills_pb2,
    code_locations_pb2,
    control_plane_pb2_grpc,
    partition_status_pb2,
    runs_pb2,
)
from partita.controlplane.v1 import sensors_schedules_pb2 as automation

_T = TypeVar("_T")
DEFAULT_ADDRESS = "127.0.0.1:3000"
#: Transport codes worth retrying: the call most likely never reached the service.
_MAX_MESSAGE_BYTES = 64 * 1024 * 1024


class ControlPlaneClientError(PartitaError):
    def __init__(
        self,
        message: str,
        *,
        status: grpc.StatusCode | None = None,
        address: str | None = None,
        error_type: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.address = address
        #: The server-side error class named in the trailing metadata, if any.
        self.error_type = error_type


class ControlPlaneUnreachable(ControlPlaneClientError):
    """Nothing answered at the address, or it did not answer in time; retrying later may succeed."""


class CodeLocationUnavailableError(ControlPlaneClientError):
    """The control plane is up but cannot reach the code location the request needs."""


class NotFoundError(ControlPlaneClientError):
    pass


class InvalidArgumentError(ControlPlaneClientError):
    pass


class FailedPreconditionError(ControlPlaneClientError):
    pass


class UnauthenticatedError(ControlPlaneClientError):
    """The call carried no usable credential; the message says how to get a token."""


class PermissionDeniedError(ControlPlaneClientError):
    """The credential does not allow the call; the message names the role or location needed."""


_ERROR_BY_STATUS: dict[grpc.StatusCode, type[ControlPlaneClientError]] = {
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.UNAVAILABLE: CodeLocationUnavailableError,
}


@dataclass(frozen=True, slots=True)
class BackfillPage:
    backfills: list[backfills_pb2.Backfill]
    #: Pass to the next call; empty on the last page.
    next_page_token: str


@dataclass(frozen=True, slots=True)
class RunPage:
    runs: list[runs_pb2.Run]
    next_page_token: str


@dataclass(frozen=True, slots=True)
class AuditPage:
    events: list[audit_pb2.AuditEvent]
    next_page_token: str


@dataclass(frozen=True, slots=True)
class RetryResult:
    backfill: backfills_pb2.Backfill
    requeued_partition_count: int


@dataclass(frozen=True, slots=True)
class AssetPartitionStatus:
    """Every page of ``GetAssetPartitionStatus``, gathered."""

    counts: partition_status_pb2.PartitionStatusCounts
    ranges: list[partition_status_pb2.PartitionStatusRange]
    #: Set for an unpartitioned asset.
    unpartitioned_status: partition_status_pb2.PartitionStatus.ValueType


class ControlPlaneClient:
    """The control plane at ``address`` (HOST:PORT). Thread-safe; close it (or use ``with``) when done.

    ``tls`` verifies the control plane's certificate (and presents a client certificate for mutual
    TLS); without it the channel is plain text.
    """

    def __init__(
        self,
        address: str = DEFAULT_ADDRESS,
        *,
        timeout: float = 30.0,
        retries: int = 2,
        retry_backoff: float = 0.1,
        tls: ClientTls | None = None,
        token: str | None = None,
    ) -> None:
        """``token``: the API token to send; None finds one (``control_plane.client_auth``), "" sends none."""
        self.address = address
        self.tls = tls
        self._timeout = timeout
        self._retries = retries
        self._retry_backoff = retry_backoff
        self._channel = open_channel(
            address,
            tls,
            options=[
                ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
                ("grpc.initial_reconnect_backoff_ms", 100),
                ("grpc.max_reconnect_backoff_ms", 1000),
            ],
        )
        self._stub = control_plane_pb2_grpc.ControlPlaneStub(
            with_token(self._channel, resolve_token(address, token))
        )

    def __enter__(self) -> ControlPlaneClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    # --- backfills -------------------------------------------------------------------------------

    def launch_backfill(
        self, spec: BackfillRequestSpec, options: LaunchOptions
    ) -> backfills_pb2.Backfill | backfills_pb2.BackfillPlan:
        """The backfill as written, or its plan for a dry run.

        Without ``options.request_id`` a fresh one is chosen, so a retried launch never makes two backfills.
        """
        if options.request_id is None and not options.dry_run:
            options = replace(options, request_id=uuid.uuid4().hex)
        request = launch_request_to_proto(spec, options)
        response = self._call(lambda t: self._stub.LaunchBackfill(request, timeout=t))
        return response.plan if response.WhichOneof("result") == "plan" else response.backfill

    def get_backfill(self, backfill_id: str) -> backfills_pb2.Backfill:
        request = backfills_pb2.GetBackfillRequest(backfill_id=backfill_id)
        return self._call(lambda t: self._stub.GetBackfill(request, timeout=t)).backfill

    def list_backfills(
        self,
        *,
        statuses: Sequence[BackfillStatus] = (),
        tags: Mapping[str, str] | None = None,
        location: str | None = None,
        page_size: int = 0,
        page_token: str = "",
    ) -> BackfillPage:
        """One page, newest first."""
        request = backfills_pb2.ListBackfillsRequest(
            statuses=[backfill_status_to_proto(status) for status in statuses],
            tags=dict(tags or {}),
            page_size=page_size,
            page_token=page_token,
        )
        if location is not None:
            request.location_name = location
        response = self._call(lambda t: self._stub.ListBackfills(request, timeout=t))
        return BackfillPage(list(response.backfills), response.next_page_token)

    def cancel_backfill(self, backfill_id: str) -> backfills_pb2.Backfill:
        request = backfills_pb2.CancelBackfillRequest(backfill_id=backfill_id)
        return self._call(lambda t: self._stub.CancelBackfill(request, timeout=t)).backfill

    def retry_backfill(self, backfill_id: str) -> RetryResult:
        request = backfills_pb2.RetryBackfillRequest(backfill_id=backfill_id)
        response = self._call(lambda t: self._stub.RetryBackfill(request, timeout=t), retry=False)
        return RetryResult(response.backfill, response.requeued_partition_count)

    def pause_backfill(self, backfill_id: str) -> backfills_pb2.Backfill:
        request = backfills_pb2.PauseBackfillRequest(backfill_id=backfill_id)
        return self._call(lambda t: self._stub.PauseBackfill(request, timeout=t)).backfill

    def resume_backfill(self, backfill_id: str) -> backfills_pb2.Backfill:
        request = backfills_pb2.ResumeBackfillRequest(backfill_id=backfill_id)
        return self._call(lambda t: self._stub.ResumeBackfill(request, timeout=t), retry=False).backfill

    def update_backfill_limits(
        self, backfill_id: str, *, max_concurrent_runs: int | None = None, priority: int | None = None
    ) -> backfills_pb2.Backfill:
        """``max_concurrent_runs=0`` removes the per-backfill limit; ``None`` leaves a value unchanged."""
        request = backfills_pb2.UpdateBackfillLimitsRequest(backfill_id=backfill_id)
        if max_concurrent_runs is not None:
            request.max_concurrent_runs = max_concurrent_runs
        if priority is not None:
            request.priority = priority
        return self._call(lambda t: self._stub.UpdateBackfillLimits(request, timeout=t)).backfill

    def watch_backfill(self, backfill_id: str) -> Iterator[backfills_pb2.Backfill]:
        """The backfill now, then after every change; ends after it reaches a final status."""
        request = backfills_pb2.WatchBackfillRequest(backfill_id=backfill_id)
        for response in self._stream(self._stub.WatchBackfill(request)):
            yield response.backfill

    def watch_backfill_changes(self, backfill_id: str) -> Iterator[backfills_pb2.WatchBackfillResponse]:
        """Like ``watch_backfill``, each message also saying which partitions changed status since the
        previous one (the first message is the snapshot, with none)."""
        request = backfills_pb2.WatchBackfillRequest(backfill_id=backfill_id, include_partition_changes=True)
        yield from self._stream(self._stub.WatchBackfill(request))

    # --- runs ------------------------------------------------------------------------------------

    def list_runs(
        self,
        *,
        backfill_id: str | None = None,
        statuses: Sequence[RunStatus] = (),
        tags: Mapping[str, str] | None = None,
        include_backfill_runs: bool = True,
        location: str | None = None,
        page_size: int = 0,
        page_token: str = "",
    ) -> RunPage:
        """One page, newest first; by default runs of backfills are included."""
        request = runs_pb2.ListRunsRequest(
            statuses=[run_status_to_proto(status) for status in statuses],
            tags=dict(tags or {}),
            include_backfill_runs=include_backfill_runs,
            page_size=page_size,
            page_token=page_token,
        )
        if backfill_id is not None:
            request.backfill_id = backfill_id
        if location is not None:
            request.location_name = location
        response = self._call(lambda t: self._stub.ListRuns(request, timeout=t))
        return RunPage(list(response.runs), response.next_page_token)

    def list_audit_events(
        self,
        *,
        identity_name: str | None = None,
        rpc: str | None = None,
        target_kind: str | None = None,
        target_id: str | None = None,
        page_size: int = 0,
        page_token: str = "",
    ) -> AuditPage:
        """One page of the audit log, newest first (the control plane requires the admin role)."""
        request = audit_pb2.ListAuditEventsRequest(page_size=page_size, page_token=page_token)
        for name, value in (
            ("identity_name", identity_name),
            ("rpc", rpc),
            ("target_kind", target_kind),
            ("target_id", target_id),
        ):
            if value is not None:
                setattr(request, name, value)
        response = self._call(lambda t: self._stub.ListAuditEvents(request, timeout=t))
        return AuditPage(list(response.events), response.next_page_token)

    def get_run(self, run_id: str) -> runs_pb2.Run:
        request = runs_pb2.GetRunRequest(run_id=run_id)
        return self._call(lambda t: self._stub.GetRun(request, timeout=t)).run

    def terminate_run(self, run_id: str) -> runs_pb2.Run:
        request = runs_pb2.TerminateRunRequest(run_id=run_id)
        return self._call(lambda t: self._stub.TerminateRun(request, timeout=t), retry=False).run

    def run_logs(
        self, run_id: str, *, after_sequence: int = 0, follow: bool = False
    ) -> Iterator[runs_pb2.RunLogEntry]:
        """The run's log entries in order; with ``follow``, new ones until the run ends."""
        request = runs_pb2.GetRunLogsRequest(run_id=run_id, after_sequence=after_sequence, follow=follow)
        for response in self._stream(self._stub.GetRunLogs(request)):
            yield from response.entries

    # --- assets and locations --------------------------------------------------------------------

    def asset_partition_status(
        self, location: str, asset_key: AssetKey, partition_range: PartitionKeyRange | None = None
    ) -> AssetPartitionStatus:
        request = partition_status_pb2.GetAssetPartitionStatusRequest(
            location_name=location, asset_key=asset_key_to_proto(asset_key)
        )
        if partition_range is not None:
            request.range.CopyFrom(key_range_to_proto(partition_range))
        ranges: list[partition_status_pb2.PartitionStatusRange] = []
        while True:
            response = self._call(lambda t: self._stub.GetAssetPartitionStatus(request, timeout=t))
            ranges.extend(response.ranges)
            if not response.next_page_token:
                return AssetPartitionStatus(response.counts, ranges, response.unpartitioned_status)
            request.page_token = response.next_page_token

    def code_locations(self) -> list[code_locations_pb2.CodeLocation]:
        request = code_locations_pb2.ListCodeLocationsRequest()
        return list(self._call(lambda t: self._stub.ListCodeLocations(request, timeout=t)).locations)

    # --- transport ---------------------------------------------------------------------------------

    # --- sensors and schedules ------------------------------------------------------------------

    def list_sensors(self, location: str | None = None) -> list[automation.SensorState]:
        request = (
            automation.ListSensorsRequest(location_name=location)
            if location
            else automation.ListSensorsRequest()
        )
        return list(self._call(lambda t: self._stub.ListSensors(request, timeout=t)).sensors)

    def list_schedules(self, location: str | None = None) -> list[automation.ScheduleState]:
        request = (
            automation.ListSchedulesRequest(location_name=location)
            if location
            else automation.ListSchedulesRequest()
        )
        return list(self._call(lambda t: self._stub.ListSchedules(request, timeout=t)).schedules)

    def set_sensor_running(self, location: str, name: str, *, running: bool) -> automation.SensorState:
        """Start (running=True) or stop a sensor; returns its state."""
        if running:
            start = automation.StartSensorRequest(location_name=location, sensor_name=name)
            return self._call(lambda t: self._stub.StartSensor(start, timeout=t)).sensor
        stop = automation.StopSensorRequest(location_name=location, sensor_name=name)
        return self._call(lambda t: self._stub.StopSensor(stop, timeout=t)).sensor

    def set_schedule_running(self, location: str, name: str, *, running: bool) -> automation.ScheduleState:
        """Start (running=True) or stop a schedule; returns its state."""
        if running:
            start = automation.StartScheduleRequest(location_name=location, schedule_name=name)
            return self._call(lambda t: self._stub.StartSchedule(start, timeout=t)).schedule
        stop = automation.StopScheduleRequest(location_name=location, schedule_name=name)
        return self._call(lambda t: self._stub.StopSchedule(stop, timeout=t)).schedule

    def preview_sensor(self, location: str, name: str) -> automation.PreviewSensorResponse:
        """Evaluate the sensor now; nothing is launched."""
        request = automation.PreviewSensorRequest(location_name=location, sensor_name=name)
        return self._call(lambda t: self._stub.PreviewSensor(request, timeout=t))

    def preview_schedule(self, location: str, name: str) -> automation.PreviewScheduleResponse:
        """Evaluate the schedule for its next tick now; nothing is launched."""
        request = automation.PreviewScheduleRequest(location_name=location, schedule_name=name)
        return self._call(lambda t: self._stub.PreviewSchedule(request, timeout=t))

    def sensor_ticks(self, location: str, name: str, *, limit: int = 20) -> list[automation_pb2.SensorTick]:
        """The sensor's latest ticks, newest first."""
        request = automation.ListSensorTicksRequest(location_name=location, sensor_name=name, page_size=limit)
        return list(self._call(lambda t: self._stub.ListSensorTicks(request, timeout=t)).ticks)[:limit]

    def schedule_ticks(
        self, location: str, name: str, *, limit: int = 20
    ) -> list[automation_pb2.ScheduleTick]:
        """The schedule's latest ticks, newest first."""
        request = automation.ListScheduleTicksRequest(
            location_name=location, schedule_name=name, page_size=limit
        )
        return list(self._call(lambda t: self._stub.ListScheduleTicks(request, timeout=t)).ticks)[:limit]

    # --- tokens and identity ------------------------------------------------------------------------

    def create_api_token(
        self,
        name: str,
        role: auth_pb2.Role.ValueType,
        *,
        locations: Sequence[str] = (),
        expires_in: timedelta | None = None,
    ) -> auth_pb2.CreateApiTokenResponse:
        """A new token: ``.token`` holds its secret, shown this once."""
        request = auth_pb2.CreateApiTokenRequest(name=name, role=role, locations=list(locations))
        if expires_in is not None:
            request.expires_in.FromTimedelta(expires_in)
        return self._call(lambda t: self._stub.CreateApiToken(request, timeout=t), retry=False)

    def list_api_tokens(self) -> list[auth_pb2.ApiToken]:
        request = auth_pb2.ListApiTokensRequest()
        return list(self._call(lambda t: self._stub.ListApiTokens(request, timeout=t)).api_tokens)

    def revoke_api_token(self, name: str) -> auth_pb2.ApiToken:
        request = auth_pb2.RevokeApiTokenRequest(name=name)
        return self._call(lambda t: self._stub.RevokeApiToken(request, timeout=t)).api_token

    def whoami(self) -> auth_pb2.WhoAmIResponse:
        """The identity the control plane authenticated this client as."""
        return self._call(lambda t: self._stub.WhoAmI(auth_pb2.WhoAmIRequest(), timeout=t))

    def _call(self, invoke: Callable[[float], _T], *, retry: bool = True) -> _T:
        """Invoke with a deadline; retry what never reached the service; translate the rest."""
        return call_with_retries(
            lambda: invoke(self._timeout),
            retries=self._retries if retry else 0,
            backoff=self._retry_backoff,
            translate=self._translate,
            retryable=lambda _, translated: isinstance(translated, ControlPlaneUnreachable),
        )

    def _stream(self, responses: grpc.CallIterator[_T]) -> Iterator[_T]:
        """Yield a server stream's messages; stopping early cancels the call instead of leaking it."""
        try:
            yield from responses
        except grpc.RpcError as error:
            raise self._translate(error) from error
        finally:
            responses.cancel()  # type: ignore[no-untyped-call]  # grpc-stubs leaves it untyped

    def _translate(self, error: grpc.RpcError) -> ControlPlaneClientError:
        code = error.code()
        details = error.details() or code.name
        error_type = _error_type(error)
        if error_type is None and code in RETRYABLE:
            return ControlPlaneUnreachable(
                f"Cannot reach the control plane at {self.address} ({code.name}: {details}). Start it "
                "(`partita dev` or `partita control-plane`), or point --control-plane or "
                "PARTITA_CONTROL_PLANE at it." + handshake_hint(details, self.tls),
                status=code,
                address=self.address,
            )
        error_class = _ERROR_BY_STATUS.get(code, ControlPlaneClientError)
        message = details if error_class is not ControlPlaneClientError else f"{code.name}: {details}"
        return error_class(message, status=code, address=self.address, error_type=error_type)


def _error_type(error: grpc.RpcError) -> str | None:
    try:
        metadata = error.trailing_metadata() or ()
    except Exception:  # a transport failure may carry no call state at all
        return None
    for item in metadata:
        if item.key == ERROR_METADATA_KEY:
            value: str | bytes = item.value
            return value if isinstance(value, str) else value.decode()
    return None
