"""Records and views <-> ``partita.controlplane.v1`` messages, at the edge of the API.

Shared types (asset keys, key ranges, timestamps) go through ``code_server.wire`` and status enums
through ``control_plane.api.enums``; this module adds the control plane's own messages.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta

from google.protobuf.timestamp_pb2 import Timestamp

from code_server.asset_key import AssetKey
from code_server.partitions.keys import PartitionKeyRange
from code_server.wire.assets import asset_key_from_proto, asset_key_to_proto
from code_server.wire.automation import BackfillRequestSpec, backfill_target_from_proto
from code_server.wire.partitions import key_range_to_proto
from code_server.wire.timestamps import timestamp_to_proto
from control_plane.api.enums import (
    COUNT_FIELDS,
    backfill_status_to_proto,
    location_problem_kind_to_proto,
    location_status_to_proto,
    log_stream_to_proto,
    partition_status_to_proto,
    run_failure_kind_to_proto,
    run_status_to_proto,
)
from control_plane.location_health import LocationProblem
from control_plane.records import PartitionSpan, PartitionStatus, RunEventRecord, RunRecord
from control_plane.views import (
    BackfillPlanView,
    BackfillView,
    CodeLocationView,
    LaunchOptions,
    PlannedRunView,
)
from partita.common.v1 import assets_pb2, automation_pb2, errors_pb2, partitions_pb2, requests_pb2
from partita.controlplane.v1 import backfills_pb2, code_locations_pb2, partition_status_pb2, runs_pb2

_INSTIGATOR_TYPES = {
    "sensor": automation_pb2.INSTIGATOR_TYPE_SENSOR,
    "schedule": automation_pb2.INSTIGATOR_TYPE_SCHEDULE,
}
#: The local launcher's workers run where the control plane (and so this API) runs.
_HOSTNAME = socket.gethostname()

#: Partition-status fields of ``PartitionStatusCounts``, by status (None: "missing").
# --- backfills -----------------------------------------------------------------------------------


def partition_counts_to_proto(
    counts: Mapping[PartitionStatus, int] | Mapping[PartitionStatus | None, int],
) -> partition_status_pb2.PartitionStatusCounts:
    message = partition_status_pb2.PartitionStatusCounts()
    for status, count in counts.items():
        setattr(message, COUNT_FIELDS[status], count)
    return message


def partition_counts_from_proto(
    message: partition_status_pb2.PartitionStatusCounts,
) -> dict[PartitionStatus | None, int]:
    """Every status with its count, zeros included, in lifecycle order."""
    return {status: int(getattr(message, name)) for status, name in COUNT_FIELDS.items()}


def backfill_target_to_proto(spec: BackfillRequestSpec) -> requests_pb2.BackfillTarget:
    """The inverse of ``backfill_target_from_proto``: which assets and which partitions."""
    target = requests_pb2.BackfillTarget(asset_selection=[asset_key_to_proto(key) for key in spec.asset_keys])
    if spec.partitions_by_asset is not None:
        target.partitions_by_asset.CopyFrom(
            requests_pb2.PartitionsByAsset(
                assets=[
                    assets_pb2.AssetPartitions(
                        asset_key=asset_key_to_proto(key),
                        partitions=partitions_pb2.PartitionSubset(
                            keys=partitions_pb2.PartitionKeys(keys=keys)
                        ),
                    )
                    for key, keys in spec.partitions_by_asset.items()
                ]
            )
        )
    elif spec.all_partitions:
        target.all_partitions.CopyFrom(partitions_pb2.AllPartitions())
    elif spec.partition_ranges is not None:
        target.ranges.CopyFrom(
            partitions_pb2.PartitionKeyRanges(ranges=[key_range_to_proto(r) for r in spec.partition_ranges])
        )
    elif spec.partition_keys is not None:
        target.keys.CopyFrom(partitions_pb2.PartitionKeys(keys=spec.partition_keys))
    return target


def backfill_to_proto(view: BackfillView) -> backfills_pb2.Backfill:
    record = view.record
    message = backfills_pb2.Backfill(
        backfill_id=record.id,
        status=backfill_status_to_proto(record.status),
        location_name=record.location,
        target=backfill_target_to_proto(view.request),
        tags=dict(record.tags),
        limits=backfills_pb2.BackfillLimits(
            max_concurrent_runs=record.max_concurrent_runs or 0, priority=record.priority
        ),
        partition_counts=partition_counts_to_proto(view.total_counts),
        asset_counts=[
            partition_status_pb2.AssetPartitionStatusCounts(
                asset_key=asset_key_to_proto(key), counts=partition_counts_to_proto(view.counts[key])
            )
            for key in _in_selection_order(record.asset_keys, view.counts)
        ],
        created_at=timestamp_to_proto(record.created_at),
        updated_at=timestamp_to_proto(record.updated_at),
    )
    if record.title is not None:
        message.title = record.title
    if record.description is not None:
        message.description = record.description
    if record.ended_at is not None:
        message.ended_at.CopyFrom(timestamp_to_proto(record.ended_at))
    if record.error:
        message.failure.CopyFrom(backfills_pb2.BackfillFailure(message=record.error))
    kind, _, name = record.origin.partition(":")
    if kind in _INSTIGATOR_TYPES and name:
        message.created_by_tick.CopyFrom(
            automation_pb2.TickReference(
                instigator_type=_INSTIGATOR_TYPES[kind], location_name=record.location, instigator_name=name
            )
        )
    return message


def _in_selection_order(selection: Iterable[AssetKey], counted: Iterable[AssetKey]) -> list[AssetKey]:
    """The selection's order (parents first), then anything counted that the selection does not name."""
    counted_keys = list(counted)
    present = set(counted_keys)
    ordered = [key for key in selection if key in present]
    seen = set(ordered)
    return ordered + [key for key in counted_keys if key not in seen]


def _set_partition(
    message: backfills_pb2.PlannedRun | runs_pb2.Run, partition_range: PartitionKeyRange | None
) -> None:
    """A range of one key travels as ``partition_key``, a longer one as ``partition_range``."""
    if partition_range is None:
        return
    if partition_range.start == partition_range.end:
        message.partition_key = partition_range.start
    else:
        message.partition_range.CopyFrom(key_range_to_proto(partition_range))


def planned_run_to_proto(run: PlannedRunView) -> backfills_pb2.PlannedRun:
    message = backfills_pb2.PlannedRun(asset_selection=[asset_key_to_proto(key) for key in run.asset_keys])
    _set_partition(message, run.partition_range)
    return message


def backfill_plan_to_proto(plan: BackfillPlanView) -> backfills_pb2.BackfillPlan:
    asset_partitions = []
    for key, partition_keys in plan.partitions_by_asset.items():
        entry = assets_pb2.AssetPartitions(asset_key=asset_key_to_proto(key))
        # An unpartitioned asset is stored with the key "": it gets no subset at all.
        keys = [partition_key for partition_key in partition_keys if partition_key]
        if keys:
            entry.partitions.CopyFrom(
                partitions_pb2.PartitionSubset(keys=partitions_pb2.PartitionKeys(keys=keys))
            )
        asset_partitions.append(entry)
    return backfills_pb2.BackfillPlan(
        asset_partitions=asset_partitions,
        runs=[planned_run_to_proto(run) for run in plan.runs],
        partition_count=plan.partition_count,
        run_count=plan.run_count,
        asset_run_counts=[
            backfills_pb2.AssetRunCount(asset_key=asset_key_to_proto(key), run_count=count)
            for key, count in plan.runs_by_asset.items()
        ],
    )


def launch_request_to_proto(
    spec: BackfillRequestSpec, options: LaunchOptions
) -> backfills_pb2.LaunchBackfillRequest:
    message = backfills_pb2.LaunchBackfillRequest(
        location_name=options.location,
        target=backfill_target_to_proto(spec),
        tags=dict(options.tags),
        limits=backfills_pb2.BackfillLimits(
            max_concurrent_runs=options.max_concurrent_runs or 0, priority=options.priority
        ),
        dry_run=options.dry_run,
        request_id=options.request_id or "",
    )
    if options.title is not None:
        message.title = options.title
    if options.description is not None:
        message.description = options.description
    return message


def launch_request_from_proto(
    message: backfills_pb2.LaunchBackfillRequest,
) -> tuple[BackfillRequestSpec, LaunchOptions]:
    """The request as the service takes it; raises ``ValueError`` (or a ``PartitaError``) if malformed."""
    if not message.location_name:
        raise ValueError("location_name is required: name the code location of the assets.")
    if not message.HasField("target") or message.target.WhichOneof("partitions") is None:
        raise ValueError(
            "target must name the partitions: keys, ranges, all_partitions or partitions_by_asset."
        )
    limits = message.limits
    if limits.max_concurrent_runs < 0:
        raise ValueError(
            f"max_concurrent_runs must be 0 (no limit) or more, not {limits.max_concurrent_runs}."
        )
    title = message.title if message.HasField("title") else None
    description = message.description if message.HasField("description") else None
    asset_keys, arguments = backfill_target_from_proto(message.target)
    spec = BackfillRequestSpec(
        asset_keys=asset_keys,
        tags=dict(message.tags),
        title=title,
        description=description,
        **arguments,  # type: ignore[arg-type]
    )
    options = LaunchOptions(
        location=message.location_name,
        title=title,
        description=description,
        tags=dict(message.tags),
        max_concurrent_runs=limits.max_concurrent_runs or None,
        priority=limits.priority,
        dry_run=message.dry_run,
        request_id=message.request_id or None,
    )
    return spec, options


# --- runs ----------------------------------------------------------------------------------------


def run_to_proto(record: RunRecord) -> runs_pb2.Run:
    message = runs_pb2.Run(
        run_id=record.id,
        location_name=record.location,
        asset_selection=[asset_key_to_proto(key) for key in record.asset_keys],
        status=run_status_to_proto(record.status),
        tags=dict(record.tags),
        attempt=record.attempt,
        created_at=timestamp_to_proto(record.created_at),
        updated_at=timestamp_to_proto(record.updated_at),
    )
    if record.backfill_id is not None:
        message.backfill_id = record.backfill_id
    _set_partition(message, record.partition_range)
    handle = launcher_handle_to_proto(record.launcher_kind, record.launcher_handle)
    if handle is not None:
        message.launcher_handle.CopyFrom(handle)
    _set_time(message.started_at, record.started_at)
    _set_time(message.ended_at, record.ended_at)
    if record.error:
        message.failure.CopyFrom(
            runs_pb2.RunFailure(kind=run_failure_kind_to_proto(record.failure_kind), message=record.error)
        )
    if record.run_key is not None:
        message.run_key = record.run_key
    if record.worker is not None:
        message.worker.CopyFrom(
            runs_pb2.RunWorker(
                worker_id=record.worker.worker_id, hostname=record.worker.hostname, pid=record.worker.pid
            )
        )
        _set_time(message.worker.claimed_at, record.claimed_at)
    return message


def launcher_handle_to_proto(kind: str | None, handle: str | None) -> runs_pb2.RunLauncherHandle | None:
    """The local launcher's handle is ``pid:start-ticks`` (or a bare pid); the Kubernetes
    launcher's is ``namespace/job-name``."""
    if not kind or not handle:
        return None
    pid = handle.partition(":")[0]
    if kind == "local" and pid.isascii() and pid.isdigit():
        return runs_pb2.RunLauncherHandle(
            local_process=runs_pb2.LocalProcessHandle(hostname=_HOSTNAME, pid=int(pid))
        )
    if kind in ("k8s", "kubernetes") and "/" in handle:
        namespace, _, job_name = handle.partition("/")
        return runs_pb2.RunLauncherHandle(
            kubernetes_job=runs_pb2.KubernetesJobHandle(namespace=namespace, job_name=job_name)
        )
    return None


def run_log_entry_to_proto(event: RunEventRecord) -> runs_pb2.RunLogEntry:
    """Storage keeps each entry as text with a kind; worker events are sent as control-plane lines.

    The stored text of a worker event ("Run started on ...", "a 2024-01-01: Materialized") is what a
    reader needs; the structured ``RunEvent`` form would need fields that storage does not keep.
    """
    stream = log_stream_to_proto(event.kind)
    return runs_pb2.RunLogEntry(
        sequence=event.sequence,
        timestamp=timestamp_to_proto(event.timestamp),
        line=runs_pb2.LogLine(stream=stream, text=event.message),
    )


# --- code locations ------------------------------------------------------------------------------


def code_location_to_proto(view: CodeLocationView) -> code_locations_pb2.CodeLocation:
    message = code_locations_pb2.CodeLocation(
        name=view.name,
        address=view.address,
        status=location_status_to_proto(view.status),
        server_id=view.server_id,
        definitions_fingerprint=view.fingerprint,
        image=view.image,
        sdk_version=view.sdk_version,
        asset_count=view.asset_count,
        sensor_count=view.sensor_count,
        schedule_count=view.schedule_count,
    )
    if view.error:
        if view.status == "load_error":
            message.load_error.CopyFrom(
                errors_pb2.UserCodeError(kind=errors_pb2.USER_CODE_ERROR_KIND_LOAD_FAILED, message=view.error)
            )
        else:
            message.unavailable_reason = view.error
    if view.problem is not None:
        message.problem.CopyFrom(location_problem_to_proto(view.problem))
    if view.refresh_seconds is not None:
        message.refresh_interval.FromTimedelta(timedelta(seconds=view.refresh_seconds))
    message.using_last_good_definitions = view.using_last_good_definitions
    _set_time(message.last_seen_at, view.last_seen_at)
    _set_time(message.definitions_loaded_at, view.definitions_loaded_at)
    return message


def location_problem_to_proto(problem: LocationProblem) -> code_locations_pb2.CodeLocationProblem:
    message = code_locations_pb2.CodeLocationProblem(
        kind=location_problem_kind_to_proto(problem.kind),
        rpc=problem.rpc,
        message=problem.message,
        consecutive_failures=problem.consecutive_failures,
    )
    message.since.CopyFrom(timestamp_to_proto(problem.since))
    if problem.deadline is not None:
        message.deadline.FromTimedelta(timedelta(seconds=problem.deadline))
    return message


def asset_keys_from_proto(messages: Iterable[assets_pb2.AssetKey]) -> tuple[AssetKey, ...]:
    return tuple(asset_key_from_proto(message) for message in messages)


def _set_time(field: Timestamp, value: datetime | None) -> None:
    if value is not None:
        field.CopyFrom(timestamp_to_proto(value))


def partition_changes_to_proto(
    spans: Iterable[PartitionSpan],
) -> list[backfills_pb2.PartitionStatusChange]:
    """Changed spans, ordered by asset and position, as few changes as can say them: touching spans
    with the same status and run become one range."""
    merged: list[PartitionSpan] = []
    for span in spans:
        previous = merged[-1] if merged else None
        if (
            previous is not None
            and span.asset_key == previous.asset_key
            and span.first_position == previous.last_position + 1
            and (span.status, span.run_id) == (previous.status, previous.run_id)
        ):
            merged[-1] = replace(previous, last_position=span.last_position, last_key=span.last_key)
        else:
            merged.append(span)
    changes = []
    for span in merged:
        change = backfills_pb2.PartitionStatusChange(
            asset_key=asset_key_to_proto(span.asset_key), status=partition_status_to_proto(span.status)
        )
        if span.run_id:
            change.run_id = span.run_id
        if span.count > 1:
            change.partition_range.CopyFrom(
                key_range_to_proto(PartitionKeyRange(span.first_key or "", span.last_key or ""))
            )
        elif span.first_key:
            change.partition_key = span.first_key
        changes.append(change)
    return changes
