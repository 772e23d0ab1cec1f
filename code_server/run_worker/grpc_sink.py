"""The run worker's reports to the control plane, over ``partita.controlplane.v1.RunReporter``.

Each event carries (run id, worker id, sequence), so the control plane drops duplicates: the sink
can resend freely. A control plane that is briefly away (restarting) is waited for, not given up on.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from datetime import UTC, datetime

import grpc

from code_server.run_worker.events import (
    ErrorInfo,
    PartitionFailed,
    PartitionMaterialized,
    RunEvent,
    RunFinished,
    RunStarted,
)
from code_server.run_worker.json_sink import JsonLinesEventSink
from code_server.version import __version__
from code_server.wire.assets import asset_key_to_proto
from code_server.wire.partitions import key_range_to_proto
from code_server.wire.timestamps import timestamp_to_proto
from partita.common.v1 import errors_pb2
from partita.controlplane.v1 import run_events_pb2, run_reporter_pb2, run_reporter_pb2_grpc

logger = logging.getLogger("partita.run_worker")

#: How long to keep retrying one report while the control plane is unreachable.
REPORT_PATIENCE_SECONDS = 120.0
_CALL_TIMEOUT_SECONDS = 10.0


class GrpcEventSink:
    """Sends every event as it happens; also echoes it as a JSON line into the run's log."""

    def __init__(self, address: str, *, patience_seconds: float = REPORT_PATIENCE_SECONDS) -> None:
        self._channel = grpc.insecure_channel(address)
        self._stub = run_reporter_pb2_grpc.RunReporterStub(self._channel)
        self._address = address
        self._patience = patience_seconds
        self._worker_id = uuid.uuid4().hex
        self._sequence = 0
        self._echo = JsonLinesEventSink()

    def emit(self, event: RunEvent) -> None:
        self._echo.emit(event)
        self._sequence += 1
        message = event_to_proto(event, worker_id=self._worker_id, sequence=self._sequence)
        request = run_reporter_pb2.ReportRunEventsRequest(events=[message])
        deadline = time.monotonic() + self._patience
        delay = 0.2
        while True:
            try:
                self._stub.ReportRunEvents(request, timeout=_CALL_TIMEOUT_SECONDS, wait_for_ready=True)
                return
            except grpc.RpcError as error:
                code = error.code()
                retryable = code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
                if not retryable or time.monotonic() + delay > deadline:
                    # The run goes on; the control plane's monitor reconciles what it did not hear.
                    logger.error("Could not report %s to %s: %s", type(event).__name__, self._address, error)
                    return
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def close(self) -> None:
        self._channel.close()


def event_to_proto(event: RunEvent, *, worker_id: str, sequence: int) -> run_events_pb2.RunEvent:
    message = run_events_pb2.RunEvent(
        run_id=event.run_id,
        worker_id=worker_id,
        sequence=sequence,
        timestamp=timestamp_to_proto(datetime.now(UTC)),
    )
    if isinstance(event, RunStarted):
        message.run_started.CopyFrom(
            run_events_pb2.RunStarted(hostname=socket.gethostname(), pid=os.getpid(), sdk_version=__version__)
        )
    elif isinstance(event, PartitionMaterialized):
        materialized = run_events_pb2.PartitionMaterialized(asset_key=asset_key_to_proto(event.asset_key))
        if event.partition_range is not None:
            materialized.partition_range.CopyFrom(key_range_to_proto(event.partition_range))
        message.partition_materialized.CopyFrom(materialized)
    elif isinstance(event, PartitionFailed):
        failed = run_events_pb2.PartitionFailed(
            asset_key=asset_key_to_proto(event.asset_key),
            error=_error_to_proto(event.error),
            upstream_failed=event.upstream_failed,
        )
        if event.partition_range is not None:
            failed.partition_range.CopyFrom(key_range_to_proto(event.partition_range))
        message.partition_failed.CopyFrom(failed)
    elif isinstance(event, RunFinished):
        finished = run_events_pb2.RunFinished(success=event.success)
        if event.error is not None:
            finished.error.CopyFrom(_error_to_proto(event.error))
        message.run_finished.CopyFrom(finished)
    return message


def _error_to_proto(error: ErrorInfo) -> errors_pb2.UserCodeError:
    return errors_pb2.UserCodeError(
        kind=errors_pb2.USER_CODE_ERROR_KIND_RAISED,
        message=error.message,
        class_name=error.class_name,
        traceback=error.traceback,
    )
