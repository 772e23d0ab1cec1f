"""Status enums of the control plane <-> their ``partita.controlplane.v1`` enum values, both ways.

The records' ``StrEnum`` values (``completed_success``) are what people and scripts see; the wire
carries the proto enums. An unknown wire value (a newer server) raises ``ValueError`` naming it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeAlias, TypeVar

from control_plane.location_health import ProblemKind
from control_plane.records import BackfillStatus, PartitionStatus, RunFailureKind, RunStatus
from partita.controlplane.v1 import backfills_pb2, code_locations_pb2, partition_status_pb2, runs_pb2

_K = TypeVar("_K")
_V = TypeVar("_V")
_BackfillStatusProto: TypeAlias = backfills_pb2.BackfillStatus.ValueType
_RunStatusProto: TypeAlias = runs_pb2.RunStatus.ValueType
_PartitionStatusProto: TypeAlias = partition_status_pb2.PartitionStatus.ValueType
_LocationStatusProto: TypeAlias = code_locations_pb2.CodeLocationStatus.ValueType

_BACKFILL_STATUS: dict[BackfillStatus, _BackfillStatusProto] = {
    BackfillStatus.REQUESTED: backfills_pb2.BACKFILL_STATUS_REQUESTED,
    BackfillStatus.RUNNING: backfills_pb2.BACKFILL_STATUS_RUNNING,
    BackfillStatus.PAUSED: backfills_pb2.BACKFILL_STATUS_PAUSED,
    BackfillStatus.WAITING_FOR_LOCATION: backfills_pb2.BACKFILL_STATUS_WAITING_FOR_LOCATION,
    BackfillStatus.CANCELING: backfills_pb2.BACKFILL_STATUS_CANCELING,
    BackfillStatus.COMPLETED_SUCCESS: backfills_pb2.BACKFILL_STATUS_COMPLETED_SUCCESS,
    BackfillStatus.COMPLETED_FAILED: backfills_pb2.BACKFILL_STATUS_COMPLETED_FAILED,
    BackfillStatus.CANCELED: backfills_pb2.BACKFILL_STATUS_CANCELED,
    BackfillStatus.FAILED: backfills_pb2.BACKFILL_STATUS_FAILED,
}
_RUN_STATUS: dict[RunStatus, _RunStatusProto] = {
    RunStatus.QUEUED: runs_pb2.RUN_STATUS_QUEUED,
    RunStatus.STARTING: runs_pb2.RUN_STATUS_STARTING,
    RunStatus.STARTED: runs_pb2.RUN_STATUS_STARTED,
    RunStatus.SUCCESS: runs_pb2.RUN_STATUS_SUCCESS,
    RunStatus.FAILURE: runs_pb2.RUN_STATUS_FAILURE,
    RunStatus.CANCELING: runs_pb2.RUN_STATUS_CANCELING,
    RunStatus.CANCELED: runs_pb2.RUN_STATUS_CANCELED,
}
_PARTITION_STATUS: dict[PartitionStatus | None, _PartitionStatusProto] = {
    PartitionStatus.PENDING: partition_status_pb2.PARTITION_STATUS_PENDING,
    PartitionStatus.QUEUED: partition_status_pb2.PARTITION_STATUS_QUEUED,
    PartitionStatus.RUNNING: partition_status_pb2.PARTITION_STATUS_RUNNING,
    PartitionStatus.MATERIALIZED: partition_status_pb2.PARTITION_STATUS_MATERIALIZED,
    PartitionStatus.FAILED: partition_status_pb2.PARTITION_STATUS_FAILED,
    PartitionStatus.UPSTREAM_FAILED: partition_status_pb2.PARTITION_STATUS_UPSTREAM_FAILED,
    PartitionStatus.CANCELED: partition_status_pb2.PARTITION_STATUS_CANCELED,
    None: partition_status_pb2.PARTITION_STATUS_MISSING,
}
_LOCATION_STATUS: dict[str, _LocationStatusProto] = {
    "loaded": code_locations_pb2.CODE_LOCATION_STATUS_LOADED,
    "unavailable": code_locations_pb2.CODE_LOCATION_STATUS_UNAVAILABLE,
    "load_error": code_locations_pb2.CODE_LOCATION_STATUS_LOAD_ERROR,
    "invalid": code_locations_pb2.CODE_LOCATION_STATUS_INVALID,
}
_PROBLEM_KIND: dict[ProblemKind, code_locations_pb2.CodeLocationProblemKind.ValueType] = {
    ProblemKind.UNREACHABLE: code_locations_pb2.CODE_LOCATION_PROBLEM_KIND_UNREACHABLE,
    ProblemKind.TIMED_OUT: code_locations_pb2.CODE_LOCATION_PROBLEM_KIND_TIMED_OUT,
    ProblemKind.UNDECODABLE_ANSWER: code_locations_pb2.CODE_LOCATION_PROBLEM_KIND_UNDECODABLE_ANSWER,
    ProblemKind.INVALID_DEFINITIONS: code_locations_pb2.CODE_LOCATION_PROBLEM_KIND_INVALID_DEFINITIONS,
    ProblemKind.LOAD_FAILED: code_locations_pb2.CODE_LOCATION_PROBLEM_KIND_LOAD_FAILED,
    ProblemKind.SERVER_ERROR: code_locations_pb2.CODE_LOCATION_PROBLEM_KIND_SERVER_ERROR,
}
_LOG_STREAM: dict[str, runs_pb2.RunLogStream.ValueType] = {
    "stdout": runs_pb2.RUN_LOG_STREAM_STDOUT,
    "stderr": runs_pb2.RUN_LOG_STREAM_STDERR,
    "control_plane": runs_pb2.RUN_LOG_STREAM_CONTROL_PLANE,
}

COUNT_FIELDS: dict[PartitionStatus | None, str] = {status: status.value for status in PartitionStatus} | {
    None: "missing"
}


# --- enums ---------------------------------------------------------------------------------------


def backfill_status_to_proto(status: BackfillStatus) -> _BackfillStatusProto:
    return _BACKFILL_STATUS[status]


def backfill_status_from_proto(value: _BackfillStatusProto) -> BackfillStatus:
    return _reverse(_BACKFILL_STATUS, value, "backfill status")


def run_status_to_proto(status: RunStatus) -> _RunStatusProto:
    return _RUN_STATUS[status]


def run_status_from_proto(value: _RunStatusProto) -> RunStatus:
    return _reverse(_RUN_STATUS, value, "run status")


def partition_status_to_proto(status: PartitionStatus | None) -> _PartitionStatusProto:
    """``None`` (never attempted) is MISSING on the wire."""
    return _PARTITION_STATUS[status]


def partition_status_from_proto(value: _PartitionStatusProto) -> PartitionStatus | None:
    return _reverse(_PARTITION_STATUS, value, "partition status")


def location_status_to_proto(status: str) -> _LocationStatusProto:
    return _LOCATION_STATUS.get(status, code_locations_pb2.CODE_LOCATION_STATUS_UNSPECIFIED)


def location_problem_kind_to_proto(kind: ProblemKind) -> code_locations_pb2.CodeLocationProblemKind.ValueType:
    return _PROBLEM_KIND[kind]


def location_problem_kind_from_proto(
    value: code_locations_pb2.CodeLocationProblemKind.ValueType,
) -> ProblemKind:
    return _reverse(_PROBLEM_KIND, value, "code location problem kind")


def location_status_from_proto(value: _LocationStatusProto) -> str:
    return _reverse(_LOCATION_STATUS, value, "code location status")


def run_failure_kind_to_proto(kind: RunFailureKind | None) -> runs_pb2.RunFailureKind.ValueType:
    """The names match by construction (``out_of_memory`` <-> ``RUN_FAILURE_KIND_OUT_OF_MEMORY``)."""
    if kind is None:
        return runs_pb2.RUN_FAILURE_KIND_UNSPECIFIED
    return runs_pb2.RunFailureKind.Value(f"RUN_FAILURE_KIND_{kind.value.upper()}")


def run_failure_kind_from_proto(value: runs_pb2.RunFailureKind.ValueType) -> RunFailureKind | None:
    if value == runs_pb2.RUN_FAILURE_KIND_UNSPECIFIED:
        return None
    name = runs_pb2.RunFailureKind.Name(value).removeprefix("RUN_FAILURE_KIND_").lower()
    return RunFailureKind(name)


def _reverse(table: Mapping[_K, _V], value: _V, what: str) -> _K:
    for key, candidate in table.items():
        if candidate == value:
            return key
    raise ValueError(f"Unknown {what} {value!r} on the wire; is the client newer than the server?")


def log_stream_to_proto(kind: str) -> runs_pb2.RunLogStream.ValueType:
    """A stored log entry's kind as a stream; worker events and anything else are control-plane lines."""
    return _LOG_STREAM.get(kind, runs_pb2.RUN_LOG_STREAM_CONTROL_PLANE)


def log_stream_name(stream: runs_pb2.RunLogStream.ValueType) -> str:
    """The name the CLI shows for a log line's stream."""
    for name, value in _LOG_STREAM.items():
        if value == stream:
            return name
    return "unknown"
