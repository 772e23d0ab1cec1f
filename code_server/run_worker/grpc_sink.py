"""The run worker's claim and reports to the control plane, over ``partita.controlplane.v1.RunReporter``.

Before executing anything the worker claims its run attempt (``claim``); a worker refused the claim
exits without executing, so a run launched twice (a launch repeated after a control-plane crash)
executes once. Each event carries (run id, worker id, sequence), so the control plane drops
duplicates: the sink can resend freely. What can succeed on retry (the control plane is restarting,
its database connection dropped, a transaction lost a race) is retried with backoff for as long as
``patience_seconds``, counted from the first failure of an outage, so a control plane that is away
for minutes loses no report.

Both calls carry the run attempt's credential (``partita-run-credential`` metadata), which the
launcher hands the worker; without it the control plane refuses the claim (PERMISSION_DENIED).
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

import grpc

from code_server.process_identity import own_start_ticks
from code_server.run_worker.events import (
    ErrorInfo,
    PartitionFailed,
    PartitionMaterialized,
    RunEvent,
    RunFinished,
    RunStarted,
)
from code_server.run_worker.json_sink import JsonLinesEventSink
from code_server.tls import ClientTls, handshake_hint, open_channel
from code_server.version import __version__
from code_server.wire.assets import asset_key_to_proto
from code_server.wire.partitions import key_range_to_proto
from code_server.wire.timestamps import timestamp_to_proto
from partita.common.v1 import errors_pb2
from partita.controlplane.v1 import run_events_pb2, run_reporter_pb2, run_reporter_pb2_grpc

logger = logging.getLogger("partita.run_worker")

_T = TypeVar("_T")

#: How long to keep retrying while the control plane is unreachable (an outage, not one call):
#: enough for it to be rescheduled and restarted on another node.
REPORT_PATIENCE_SECONDS = 900.0
_CALL_TIMEOUT_SECONDS = 10.0
#: Answers that say "not now" rather than "no": the call may succeed when tried again.
RETRYABLE_CODES = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.ABORTED}
)
_MAX_DELAY_SECONDS = 5.0
#: Errors of the control plane's database that end once an operator acts (frees space, makes the file
#: writable): for anyone else not worth retrying, but a report must outlast them, as it would a restart.
_OPERATOR_FIXED_ERRORS = frozenset({"StorageFull", "StorageReadOnly"})
#: The trailing-metadata key naming the error class behind a control plane's status
#: (``control_plane.api.status.ERROR_METADATA_KEY``, which this side of the wire cannot import).
_ERROR_METADATA_KEY = "partita-error"
#: The metadata key of the run credential; the control plane's RunReporter reads it under this name.
RUN_CREDENTIAL_METADATA_KEY = "partita-run-credential"


@dataclass(frozen=True, slots=True)
class ClaimOutcome:
    """The control plane's answer to a claim: whether this worker may execute the run."""

    granted: bool
    #: Why not, naming the worker that holds the attempt; empty when granted.
    refusal: str = ""


class ReportFailed(Exception):
    """The control plane refused a call for good, or stayed unreachable past the patience."""


class GrpcEventSink:
    """Sends every event as it happens; also echoes it as a JSON line into the run's log."""

    def __init__(
        self,
        address: str,
        *,
        credential: str | None = None,
        patience_seconds: float = REPORT_PATIENCE_SECONDS,
        tls: ClientTls | None = None,
    ) -> None:
        self._tls = tls
        self._channel = open_channel(address, tls)
        self._metadata = ((RUN_CREDENTIAL_METADATA_KEY, credential),) if credential else ()
        self._stub = run_reporter_pb2_grpc.RunReporterStub(self._channel)
        self._address = address
        self._patience = patience_seconds
        self._worker_id = uuid.uuid4().hex
        self._sequence = 0
        self._echo = JsonLinesEventSink()
        #: When the current outage began (monotonic); None while calls succeed.
        self._failing_since: float | None = None

    @property
    def worker_id(self) -> str:
        return self._worker_id

    def claim(self, run_id: str, attempt: int) -> ClaimOutcome:
        """Claim the run attempt; retried like a report. Raises ``ReportFailed`` when the control
        plane refuses the call itself (unknown run) or cannot be reached in time."""
        request = run_reporter_pb2.ClaimRunRequest(
            run_id=run_id,
            attempt=attempt,
            worker=run_reporter_pb2.WorkerIdentity(
                worker_id=self._worker_id,
                hostname=socket.gethostname(),
                pid=os.getpid(),
                process_start_ticks=own_start_ticks() or 0,
            ),
        )
        response = self._call(
            lambda: self._stub.ClaimRun(
                request, timeout=_CALL_TIMEOUT_SECONDS, wait_for_ready=True, metadata=self._metadata
            ),
            "the claim",
        )
        return ClaimOutcome(granted=response.granted, refusal=response.refusal)

    def emit(self, event: RunEvent) -> None:
        self._echo.emit(event)
        self._sequence += 1
        message = event_to_proto(event, worker_id=self._worker_id, sequence=self._sequence)
        request = run_reporter_pb2.ReportRunEventsRequest(events=[message])
        try:
            self._call(
                lambda: self._stub.ReportRunEvents(
                    request, timeout=_CALL_TIMEOUT_SECONDS, wait_for_ready=True, metadata=self._metadata
                ),
                type(event).__name__,
            )
        except ReportFailed as failed:
            # The run goes on; the control plane's monitor reconciles what it did not hear.
            logger.error("%s", failed)

    def _call(self, invoke: Callable[[], _T], what: str) -> _T:
        """``invoke()``, retried with backoff while the answer is retryable and the outage is
        younger than the patience."""
        delay = 0.2
        while True:
            try:
                result = invoke()
            except grpc.RpcError as error:
                code = error.code()
                now = time.monotonic()
                if self._failing_since is None:
                    self._failing_since = now
                out_of_patience = now - self._failing_since + delay > self._patience
                retryable = code in RETRYABLE_CODES or _waits_for_an_operator(error)
                if not retryable or out_of_patience:
                    why = (
                        "gave up after the outage outlasted the patience"
                        if out_of_patience and retryable
                        else "refused"
                    )
                    raise ReportFailed(
                        f"Could not send {what} to the control plane at {self._address} ({why}): "
                        f"{code.name}: {error.details()}" + handshake_hint(error.details() or "", self._tls)
                    ) from error
                logger.warning(
                    "Control plane at %s answered %s for %s; retrying in %.1f s",
                    self._address,
                    code.name,
                    what,
                    delay,
                )
                time.sleep(delay)
                delay = min(delay * 2, _MAX_DELAY_SECONDS)
                continue
            self._failing_since = None
            return result

    def close(self) -> None:
        self._channel.close()


def _waits_for_an_operator(error: grpc.RpcError) -> bool:
    trailing: Sequence[tuple[str, str | bytes]] = (
        (error.trailing_metadata() or ()) if isinstance(error, grpc.Call) else ()
    )
    return any(key == _ERROR_METADATA_KEY and value in _OPERATOR_FIXED_ERRORS for key, value in trailing)


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
