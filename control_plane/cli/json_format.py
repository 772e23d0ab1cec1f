"""The CLI's ``--json`` output: one object per message, with stable keys.

These keys are the CLI's contract with scripts: add keys, never rename or drop them. Statuses are
the records' values (``completed_success``), times are ISO-8601 UTC (``...Z``) or null.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from control_plane.api.convert import partition_counts_from_proto
from control_plane.api.enums import (
    COUNT_FIELDS,
    backfill_status_from_proto,
    location_problem_kind_from_proto,
    location_status_from_proto,
    run_failure_kind_from_proto,
    run_status_from_proto,
)
from control_plane.cli.format import (
    asset_list,
    counts_of,
    location_error,
    log_content,
    status_name,
    utc_time,
)
from control_plane.client import AssetPartitionStatus
from partita.common.v1 import automation_pb2, requests_pb2
from partita.controlplane.v1 import backfills_pb2, code_locations_pb2, runs_pb2

Json = dict[str, Any]


def timestamp_json(message: Timestamp | None) -> str | None:
    when = utc_time(message)
    return when.isoformat().replace("+00:00", "Z") if when else None


def partition_json(message: backfills_pb2.PlannedRun | runs_pb2.Run) -> Json:
    kind = message.WhichOneof("partition")
    if kind == "partition_key":
        return {"partition_key": message.partition_key, "partition_range": None}
    if kind == "partition_range":
        key_range = message.partition_range
        return {"partition_key": None, "partition_range": {"start": key_range.start, "end": key_range.end}}
    return {"partition_key": None, "partition_range": None}


def backfill_json(backfill: backfills_pb2.Backfill) -> Json:
    counts = counts_of(backfill.partition_counts)
    tick = backfill.created_by_tick if backfill.HasField("created_by_tick") else None
    return {
        "id": backfill.backfill_id,
        "status": backfill_status_from_proto(backfill.status).value,
        "location": backfill.location_name,
        "title": backfill.title if backfill.HasField("title") else None,
        "description": backfill.description if backfill.HasField("description") else None,
        "assets": asset_list(backfill.target.asset_selection),
        "target": target_json(backfill.target),
        "tags": dict(sorted(backfill.tags.items())),
        "max_concurrent_runs": backfill.limits.max_concurrent_runs or None,
        "priority": backfill.limits.priority,
        "partition_count": sum(counts.values()),
        "counts": {status.value: count for status, count in counts.items()},
        "asset_counts": [
            {
                "asset": "/".join(entry.asset_key.path),
                "counts": {status.value: count for status, count in counts_of(entry.counts).items()},
            }
            for entry in backfill.asset_counts
        ],
        "created_at": timestamp_json(backfill.created_at),
        "updated_at": timestamp_json(backfill.updated_at),
        "ended_at": timestamp_json(backfill.ended_at) if backfill.HasField("ended_at") else None,
        "error": backfill.failure.message if backfill.HasField("failure") else None,
        "created_by": (
            {
                "type": "sensor"
                if tick.instigator_type == automation_pb2.INSTIGATOR_TYPE_SENSOR
                else "schedule",
                "name": tick.instigator_name,
            }
            if tick is not None
            else None
        ),
    }


def target_json(target: requests_pb2.BackfillTarget) -> Json:
    kind = target.WhichOneof("partitions")
    result: Json = {"kind": kind}
    if kind == "keys":
        result["keys"] = list(target.keys.keys)
    elif kind == "ranges":
        result["ranges"] = [{"start": r.start, "end": r.end} for r in target.ranges.ranges]
    elif kind == "partitions_by_asset":
        result["partitions_by_asset"] = {
            "/".join(entry.asset_key.path): list(entry.partitions.keys.keys)
            for entry in target.partitions_by_asset.assets
        }
    return result


def plan_json(plan: backfills_pb2.BackfillPlan) -> Json:
    return {
        "dry_run": True,
        "partition_count": plan.partition_count,
        "assets": [
            {"asset": "/".join(entry.asset_key.path), "partition_keys": list(entry.partitions.keys.keys)}
            for entry in plan.asset_partitions
        ],
        "run_count": plan.run_count,
        "runs_by_asset": {"/".join(entry.asset_key.path): entry.run_count for entry in plan.asset_run_counts},
        "runs": [{"assets": asset_list(run.asset_selection), **partition_json(run)} for run in plan.runs],
        "runs_not_listed": plan.run_count - len(plan.runs),
    }


def launcher_json(run: runs_pb2.Run) -> Json | None:
    if not run.HasField("launcher_handle"):
        return None
    handle = run.launcher_handle
    if handle.WhichOneof("kind") == "local_process":
        return {"kind": "local", "hostname": handle.local_process.hostname, "pid": handle.local_process.pid}
    if handle.WhichOneof("kind") == "kubernetes_job":
        job = handle.kubernetes_job
        return {"kind": "k8s", "namespace": job.namespace, "job_name": job.job_name}
    return None


def run_json(run: runs_pb2.Run) -> Json:
    return {
        "id": run.run_id,
        "status": run_status_from_proto(run.status).value,
        "backfill_id": run.backfill_id if run.HasField("backfill_id") else None,
        "location": run.location_name,
        "assets": asset_list(run.asset_selection),
        **partition_json(run),
        "tags": dict(sorted(run.tags.items())),
        "attempt": run.attempt,
        "run_key": run.run_key if run.HasField("run_key") else None,
        "launcher": launcher_json(run),
        "created_at": timestamp_json(run.created_at),
        "started_at": timestamp_json(run.started_at) if run.HasField("started_at") else None,
        "ended_at": timestamp_json(run.ended_at) if run.HasField("ended_at") else None,
        "updated_at": timestamp_json(run.updated_at),
        "error": run.failure.message if run.HasField("failure") else None,
        "failure_kind": _failure_kind(run),
    }


def _failure_kind(run: runs_pb2.Run) -> str | None:
    if not run.HasField("failure"):
        return None
    kind = run_failure_kind_from_proto(run.failure.kind)
    return kind.value if kind else None


def log_entry_json(entry: runs_pb2.RunLogEntry) -> Json:
    stream, text = log_content(entry)
    return {
        "sequence": entry.sequence,
        "timestamp": timestamp_json(entry.timestamp),
        "stream": stream,
        "text": text,
    }


def location_json(location: code_locations_pb2.CodeLocation) -> Json:
    return {
        "name": location.name,
        "address": location.address,
        "status": location_status_from_proto(location.status),
        "server_id": location.server_id or None,
        "definitions_fingerprint": location.definitions_fingerprint or None,
        "image": location.image or None,
        "sdk_version": location.sdk_version or None,
        "asset_count": location.asset_count,
        "sensor_count": location.sensor_count,
        "schedule_count": location.schedule_count,
        "error": location_error(location) or None,
        "problem": location_problem_json(location.problem) if location.HasField("problem") else None,
        "using_last_good_definitions": location.using_last_good_definitions,
        "refresh_interval_seconds": (
            location.refresh_interval.ToTimedelta().total_seconds()
            if location.HasField("refresh_interval")
            else None
        ),
        "last_seen_at": timestamp_json(location.last_seen_at) if location.HasField("last_seen_at") else None,
        "definitions_loaded_at": (
            timestamp_json(location.definitions_loaded_at)
            if location.HasField("definitions_loaded_at")
            else None
        ),
    }


def location_problem_json(problem: code_locations_pb2.CodeLocationProblem) -> Json:
    return {
        "kind": location_problem_kind_from_proto(problem.kind).value,
        "rpc": problem.rpc or None,
        "message": problem.message,
        "since": timestamp_json(problem.since) if problem.HasField("since") else None,
        "deadline_seconds": problem.deadline.ToTimedelta().total_seconds()
        if problem.HasField("deadline")
        else None,
        "consecutive_failures": problem.consecutive_failures,
    }


def asset_status_json(location: str, asset: str, status: AssetPartitionStatus) -> Json:
    counts = partition_counts_from_proto(status.counts)
    return {
        "location": location,
        "asset": asset,
        "counts": {COUNT_FIELDS[key]: count for key, count in counts.items()},
        "partition_count": sum(counts.values()),
        "ranges": [
            {
                "start": r.range.start,
                "end": r.range.end,
                "status": status_name(r.status),
                "partition_count": r.partition_count,
            }
            for r in status.ranges
        ],
        "unpartitioned_status": status_name(status.unpartitioned_status)
        if status.unpartitioned_status
        else None,
    }
