"""``partita.controlplane.v1.RunReporter``: where run workers send their events."""

from __future__ import annotations

from collections.abc import Callable

import grpc

from code_server.wire.assets import asset_key_from_proto
from code_server.wire.timestamps import timestamp_from_proto
from control_plane.records import RunStatus
from control_plane.runs.reports import (
    AppliedReports,
    PartitionOutcomeReport,
    RunFinishedReport,
    RunReport,
    RunStartedReport,
)
from partita.common.v1 import errors_pb2
from partita.controlplane.v1 import run_events_pb2, run_reporter_pb2, run_reporter_pb2_grpc, runs_pb2

_RUN_STATUS_TO_PROTO = {
    RunStatus.QUEUED: runs_pb2.RUN_STATUS_QUEUED,
    RunStatus.STARTING: runs_pb2.RUN_STATUS_STARTING,
    RunStatus.STARTED: runs_pb2.RUN_STATUS_STARTED,
    RunStatus.SUCCESS: runs_pb2.RUN_STATUS_SUCCESS,
    RunStatus.FAILURE: runs_pb2.RUN_STATUS_FAILURE,
    RunStatus.CANCELING: runs_pb2.RUN_STATUS_CANCELING,
    RunStatus.CANCELED: runs_pb2.RUN_STATUS_CANCELED,
}


class RunReporterServicer(run_reporter_pb2_grpc.RunReporterServicer):
    def __init__(self, apply: Callable[[list[RunReport]], AppliedReports]) -> None:
        self._apply = apply

    def ReportRunEvents(
        self, request: run_reporter_pb2.ReportRunEventsRequest, context: grpc.ServicerContext
    ) -> run_reporter_pb2.ReportRunEventsResponse:
        reports = [report for event in request.events if (report := report_from_proto(event)) is not None]
        applied = self._apply(reports)
        return run_reporter_pb2.ReportRunEventsResponse(
            accepted_count=applied.accepted,
            duplicate_count=applied.duplicates,
            run_statuses={
                run_id: _RUN_STATUS_TO_PROTO[status] for run_id, status in applied.run_statuses.items()
            },
        )


def report_from_proto(event: run_events_pb2.RunEvent) -> RunReport | None:
    event_id = f"{event.worker_id}:{event.sequence}"
    timestamp = timestamp_from_proto(event.timestamp)
    kind = event.WhichOneof("event")
    if kind == "run_started":
        started = event.run_started
        detail = f"on {started.hostname} (pid {started.pid}, SDK {started.sdk_version})"
        return RunStartedReport(event.run_id, event_id, timestamp, detail)
    if kind == "partition_materialized":
        return PartitionOutcomeReport(
            event.run_id,
            event_id,
            timestamp,
            asset_key_from_proto(event.partition_materialized.asset_key),
            materialized=True,
        )
    if kind == "partition_failed":
        failed = event.partition_failed
        return PartitionOutcomeReport(
            event.run_id,
            event_id,
            timestamp,
            asset_key_from_proto(failed.asset_key),
            materialized=False,
            upstream_failed=failed.upstream_failed,
            error=_describe(failed.error),
        )
    if kind == "run_finished":
        finished = event.run_finished
        error = _describe(finished.error) if finished.HasField("error") else None
        return RunFinishedReport(event.run_id, event_id, timestamp, finished.success, error)
    return None


def _describe(error: errors_pb2.UserCodeError) -> str:
    text = f"{error.class_name}: {error.message}" if error.class_name else error.message
    return f"{text}\n{error.traceback}" if error.traceback else text
