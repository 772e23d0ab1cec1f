"""``partita.controlplane.v1.RunReporter``: where run workers claim their runs and send their events.

Both RPCs are coroutines that run their storage work on an executor of their own, never on the pool
that serves the public API: however many clients call or stream from the API, workers are heard.

Both require the run attempt's credential as ``partita-run-credential`` metadata
(``control_plane.runs.credentials``): a claim without it, or with another run's or attempt's, is
PERMISSION_DENIED and changes nothing.

Events are checked one by one: a malformed one (no run id, an empty asset key, a timestamp out of
range) is refused with the field it fails on, and the valid events of its batch are applied all the
same; the call then ends with the gravest refusal's status, naming each event: INVALID_ARGUMENT for
a malformed event, PERMISSION_DENIED for a run the credential does not cover, INVALID_ARGUMENT for
an asset or partition outside the run, FAILED_PRECONDITION for events of a worker that does not
hold the run's claim, NOT_FOUND for an unknown run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import grpc
from google.protobuf.message import Message
from grpc import aio

from code_server.asset_key import AssetKey
from code_server.errors import PartitaError
from code_server.partitions.keys import PartitionKeyRange
from code_server.wire.assets import asset_key_from_proto
from code_server.wire.partitions import key_range_from_proto
from code_server.wire.timestamps import timestamp_from_proto
from code_server.wire.validation import InvalidField, check_message
from control_plane.api.enums import run_status_to_proto
from control_plane.api.status import BadRequest, abort_with_error
from control_plane.errors import shortened
from control_plane.runs.credentials import METADATA_KEY, RunCredentialRefused
from control_plane.runs.reports import (
    AppliedReports,
    ClaimDecision,
    PartitionOutcomeReport,
    RejectedReport,
    RejectionKind,
    RunFinishedReport,
    RunReport,
    RunStartedReport,
)
from launcher.base import WorkerIdentity
from partita.common.v1 import assets_pb2, errors_pb2
from partita.controlplane.v1 import run_events_pb2, run_reporter_pb2, run_reporter_pb2_grpc

_T = TypeVar("_T")
#: Longest worker id accepted (the column that stores it).
_MAX_WORKER_ID = 64
#: Longest worker host name accepted (a DNS name).
_MAX_HOSTNAME = 255
#: Longest run id accepted (the column that stores it).
_MAX_RUN_ID = 40
#: Refused events named in one error message; the rest are counted.
_NAMED_REFUSALS = 5
#: A refusal's status: the gravest kind among the refused events decides.
_STATUS_OF_REJECTION = (
    (RejectionKind.MALFORMED, grpc.StatusCode.INVALID_ARGUMENT),
    (RejectionKind.FORBIDDEN, grpc.StatusCode.PERMISSION_DENIED),
    (RejectionKind.OUT_OF_SCOPE, grpc.StatusCode.INVALID_ARGUMENT),
    (RejectionKind.NOT_CLAIMANT, grpc.StatusCode.FAILED_PRECONDITION),
    (RejectionKind.UNKNOWN_RUN, grpc.StatusCode.NOT_FOUND),
)


class RunReports(Protocol):
    """What the servicer needs of the control plane: claims and batches of reports."""

    def claim(
        self, run_id: str, attempt: int, worker: WorkerIdentity, credential: str | None
    ) -> ClaimDecision: ...

    def report(self, reports: list[RunReport], credential: str | None) -> AppliedReports: ...


class MalformedEvent(BadRequest):
    """An event (or claim) that cannot be applied: ``field`` says which part of it is wrong."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field


class RunReporterServicer(run_reporter_pb2_grpc.RunReporterServicer):
    """Serves run workers on ``executor`` (kept apart from the public API's threads)."""

    def __init__(self, reports: RunReports, executor: Executor) -> None:
        self._reports = reports
        self._executor = executor

    async def ClaimRun(
        self, request: run_reporter_pb2.ClaimRunRequest, context: aio.ServicerContext[Any, Any]
    ) -> run_reporter_pb2.ClaimRunResponse:
        try:
            _check_fields(request, "")
            run_id = _run_id(request.run_id)
            worker = worker_from_proto(request.worker)
            if request.attempt < 1:
                raise MalformedEvent("attempt", f"must be 1 or more, not {request.attempt}")
            credential = run_credential(context)
            decision = await self._off_loop(
                lambda: self._reports.claim(run_id, request.attempt, worker, credential)
            )
        except RunCredentialRefused as refused:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, str(refused))
        except Exception as error:
            await abort_with_error(context, "ClaimRun", error)
            raise AssertionError("unreachable: abort raises") from error
        response = run_reporter_pb2.ClaimRunResponse(
            granted=decision.granted,
            refusal=decision.refusal,
            run_status=run_status_to_proto(decision.run_status),
        )
        if decision.holder is not None:
            response.holder.CopyFrom(worker_to_proto(decision.holder))
        return response

    async def ReportRunEvents(
        self, request: run_reporter_pb2.ReportRunEventsRequest, context: aio.ServicerContext[Any, Any]
    ) -> run_reporter_pb2.ReportRunEventsResponse:
        reports: list[RunReport] = []
        refused: list[RejectedReport] = []
        for event in request.events:
            try:
                reports.append(report_from_proto(event))
            except MalformedEvent as malformed:
                refused.append(
                    RejectedReport(
                        shortened(event.run_id), shortened(event.worker_id), event.sequence,
                        RejectionKind.MALFORMED, str(malformed),
                    )
                )  # fmt: skip
        credential = run_credential(context)
        try:
            applied = (
                await self._off_loop(lambda: self._reports.report(reports, credential))
                if reports
                else AppliedReports()
            )
        except Exception as error:
            await abort_with_error(context, "ReportRunEvents", error)
            raise AssertionError("unreachable: abort raises") from error
        refused.extend(applied.rejected)
        if refused:
            code, message = _refusal_status(refused, applied.accepted + applied.duplicates)
            await context.abort(code, message)
        return run_reporter_pb2.ReportRunEventsResponse(
            accepted_count=applied.accepted,
            duplicate_count=applied.duplicates,
            run_statuses={
                run_id: run_status_to_proto(status) for run_id, status in applied.run_statuses.items()
            },
        )

    async def _off_loop(self, work: Callable[[], _T]) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, work)


def run_credential(context: aio.ServicerContext[Any, Any]) -> str | None:
    """The run credential the caller sent (``partita-run-credential`` metadata), if any."""
    for key, value in context.invocation_metadata() or ():
        if key == METADATA_KEY:
            return value if isinstance(value, str) else value.decode("utf-8", "replace")
    return None


@dataclass(frozen=True, slots=True)
class _Header:
    run_id: str
    worker_id: str
    sequence: int


def report_from_proto(event: run_events_pb2.RunEvent) -> RunReport:
    """The report an event stands for; raises ``MalformedEvent`` naming the field that is wrong."""
    _check_fields(event, "")
    header = _Header(_run_id(event.run_id), _worker_id(event.worker_id, "worker_id"), event.sequence)
    if header.sequence < 1:
        raise MalformedEvent("sequence", f"must be 1 or more, not {header.sequence}")
    if not event.HasField("timestamp"):
        raise MalformedEvent("timestamp", "is required")
    try:
        timestamp = timestamp_from_proto(event.timestamp)
    except (ValueError, OverflowError) as error:
        raise MalformedEvent(
            "timestamp", f"{event.timestamp.seconds}s {event.timestamp.nanos}ns is not a valid time: {error}"
        ) from error
    common = (header.run_id, header.worker_id, header.sequence, timestamp)
    kind = event.WhichOneof("event")
    if kind == "run_started":
        started = event.run_started
        detail = f"on {shortened(started.hostname)} (pid {started.pid}, SDK {shortened(started.sdk_version)})"
        return RunStartedReport(*common, detail)
    if kind == "partition_materialized":
        materialized = event.partition_materialized
        asset_key = _asset_key(materialized.asset_key, "partition_materialized.asset_key")
        return PartitionOutcomeReport(
            *common,
            asset_key,
            materialized=True,
            partitions=_named_partitions(materialized, "partition_materialized"),
        )
    if kind == "partition_failed":
        failed = event.partition_failed
        return PartitionOutcomeReport(
            *common,
            _asset_key(failed.asset_key, "partition_failed.asset_key"),
            materialized=False,
            upstream_failed=failed.upstream_failed,
            error=_describe(failed.error),
            partitions=_named_partitions(failed, "partition_failed"),
        )
    if kind == "run_finished":
        finished = event.run_finished
        failure = _describe(finished.error) if finished.HasField("error") else None
        return RunFinishedReport(*common, finished.success, failure)
    raise MalformedEvent(
        "event",
        "exactly one of run_started, partition_materialized, partition_failed, run_finished must be set",
    )


def worker_from_proto(message: run_reporter_pb2.WorkerIdentity) -> WorkerIdentity:
    """The claimant as it describes itself (its fields already checked, ``_check_fields``);
    raises ``MalformedEvent`` for a missing or bad id."""
    worker_id = _worker_id(message.worker_id, "worker.worker_id")
    if len(message.hostname) > _MAX_HOSTNAME:
        raise MalformedEvent("worker.hostname", f"must be a host name of at most {_MAX_HOSTNAME} characters")
    if message.pid < 0 or message.process_start_ticks < 0:
        raise MalformedEvent("worker.pid", "pid and process_start_ticks must be 0 (unknown) or more")
    return WorkerIdentity(
        worker_id=worker_id,
        hostname=message.hostname,
        pid=message.pid,
        process_start_ticks=message.process_start_ticks or None,
    )


def worker_to_proto(worker: WorkerIdentity) -> run_reporter_pb2.WorkerIdentity:
    return run_reporter_pb2.WorkerIdentity(
        worker_id=worker.worker_id,
        hostname=worker.hostname,
        pid=worker.pid,
        process_start_ticks=worker.process_start_ticks or 0,
    )


def _run_id(value: str) -> str:
    if not value:
        raise MalformedEvent("run_id", "is required")
    if len(value) > _MAX_RUN_ID:
        raise MalformedEvent("run_id", f"{shortened(value)!r} is not a run id")
    return value


def _worker_id(value: str, field: str) -> str:
    if not value:
        raise MalformedEvent(field, "is required")
    if len(value) > _MAX_WORKER_ID:
        raise MalformedEvent(field, f"must be at most {_MAX_WORKER_ID} characters")
    return value


def _asset_key(message: assets_pb2.AssetKey, field: str) -> AssetKey:
    try:
        return asset_key_from_proto(message)
    except (PartitaError, ValueError) as error:
        raise MalformedEvent(field, str(error)) from error


def _named_partitions(
    outcome: run_events_pb2.PartitionMaterialized | run_events_pb2.PartitionFailed, field: str
) -> PartitionKeyRange | None:
    """The partitions an outcome names (a key as a range of one); None when it names none."""
    kind = outcome.WhichOneof("partition")
    if kind == "partition_key":
        if not outcome.partition_key:
            raise MalformedEvent(f"{field}.partition_key", "must not be empty")
        return PartitionKeyRange(outcome.partition_key, outcome.partition_key)
    if kind == "partition_range":
        if not outcome.partition_range.start or not outcome.partition_range.end:
            raise MalformedEvent(f"{field}.partition_range", "needs both a start and an end")
        return key_range_from_proto(outcome.partition_range)
    return None


def _check_fields(message: Message, path: str) -> None:
    """Every field of a request or event (control characters, lengths, enums, time ranges), as at
    every edge of the API; raises ``MalformedEvent`` naming the field."""
    try:
        check_message(message, path)
    except InvalidField as invalid:
        raise MalformedEvent(invalid.path, invalid.problem) from invalid


def _refusal_status(refused: list[RejectedReport], recorded: int) -> tuple[grpc.StatusCode, str]:
    kinds = {rejection.kind for rejection in refused}
    code = next(code for kind, code in _STATUS_OF_REJECTION if kind in kinds)
    named = "; ".join(
        f"event {rejection.sequence} of run {rejection.run_id!r} (worker {rejection.worker_id!r}): {rejection.reason}"
        for rejection in refused[:_NAMED_REFUSALS]
    )
    more = f"; and {len(refused) - _NAMED_REFUSALS} more" if len(refused) > _NAMED_REFUSALS else ""
    return code, f"{len(refused)} event(s) refused, {recorded} recorded: {named}{more}"


def _describe(error: errors_pb2.UserCodeError) -> str:
    text = f"{error.class_name}: {error.message}" if error.class_name else error.message
    return f"{text}\n{error.traceback}" if error.traceback else text
