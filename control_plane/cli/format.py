"""How the CLI shows control-plane messages to people: aligned tables, progress bars, UTC times.

Statuses are shown as the records' values (``completed_success``, ``upstream_failed``), as in the
JSON output (``json_format``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from code_server.wire.timestamps import timestamp_from_proto
from control_plane.api.convert import asset_keys_from_proto, partition_counts_from_proto
from control_plane.api.enums import (
    COUNT_FIELDS,
    backfill_status_from_proto,
    location_status_from_proto,
    log_stream_name,
    partition_status_from_proto,
    run_failure_kind_from_proto,
    run_status_from_proto,
)
from control_plane.client import AssetPartitionStatus
from control_plane.records import PartitionStatus
from partita.common.v1 import assets_pb2, automation_pb2, requests_pb2
from partita.controlplane.v1 import backfills_pb2, code_locations_pb2, partition_status_pb2, runs_pb2

#: Columns of per-asset count tables, in lifecycle order ("missing" only exists per asset, not in backfills).
BACKFILL_STATUSES = tuple(status for status in PartitionStatus)
_DONE = (
    PartitionStatus.MATERIALIZED,
    PartitionStatus.FAILED,
    PartitionStatus.UPSTREAM_FAILED,
    PartitionStatus.CANCELED,
)


# --- small pieces --------------------------------------------------------------------------------


def timestamp_text(message: Timestamp | None) -> str:
    when = utc_time(message)
    return when.strftime("%Y-%m-%d %H:%M:%SZ") if when else "-"


def utc_time(message: Timestamp | None) -> datetime | None:
    if message is None or (message.seconds == 0 and message.nanos == 0):
        return None
    return timestamp_from_proto(message).astimezone(UTC)


def number(value: int) -> str:
    return f"{value:,}"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell; the last column is not padded."""
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]
    lines = []
    for row in [headers, *rows]:
        cells = [str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def asset_list(keys: Sequence[assets_pb2.AssetKey]) -> list[str]:
    return [key.to_user_string() for key in asset_keys_from_proto(keys)]


def partition_text(message: backfills_pb2.PlannedRun | runs_pb2.Run) -> str:
    kind = message.WhichOneof("partition")
    if kind == "partition_key":
        return message.partition_key
    if kind == "partition_range":
        return f"{message.partition_range.start}...{message.partition_range.end}"
    return "(unpartitioned)"


# --- backfills -----------------------------------------------------------------------------------


def counts_of(message: partition_status_pb2.PartitionStatusCounts) -> dict[PartitionStatus, int]:
    """A backfill's counts by status (without "missing", which backfills never have)."""
    return {
        status: count for status, count in partition_counts_from_proto(message).items() if status is not None
    }


def progress_line(backfill: backfills_pb2.Backfill, width: int = 30) -> str:
    """``[#########.....]  60%  3,600/6,000 done · 3,590 materialized · 10 failed · 4 running``."""
    counts = counts_of(backfill.partition_counts)
    total = sum(counts.values())
    done = sum(counts[status] for status in _DONE)
    fraction = done / total if total else 1.0
    filled = int(fraction * width)
    parts = [f"[{'#' * filled}{'.' * (width - filled)}] {fraction:4.0%}  {number(done)}/{number(total)} done"]
    for status in (*_DONE, PartitionStatus.RUNNING, PartitionStatus.QUEUED):
        if counts[status]:
            parts.append(f"{number(counts[status])} {status.value.replace('_', ' ')}")
    return " · ".join(parts)


def watch_line(backfill: backfills_pb2.Backfill, shown_assets: int = 8) -> str:
    """One line per update when not on a terminal: status, progress, and materialized/total per asset."""
    status = backfill_status_from_proto(backfill.status).value
    per_asset = []
    for entry in backfill.asset_counts[:shown_assets]:
        counts = counts_of(entry.counts)
        per_asset.append(
            f"{'/'.join(entry.asset_key.path)} {number(counts[PartitionStatus.MATERIALIZED])}/{number(sum(counts.values()))}"
        )
    if len(backfill.asset_counts) > shown_assets:
        per_asset.append(f"... {len(backfill.asset_counts) - shown_assets} more assets")
    return f"{status}  {progress_line(backfill)}" + (f"  |  {', '.join(per_asset)}" if per_asset else "")


def asset_counts_table(backfill: backfills_pb2.Backfill, max_assets: int | None = None) -> str:
    """Counts by status, one row per asset; past ``max_assets`` rows, one line says how many are left out."""
    headers = ["ASSET", *(status.value.upper() for status in BACKFILL_STATUSES)]
    entries = backfill.asset_counts[:max_assets] if max_assets is not None else backfill.asset_counts
    rows = []
    for entry in entries:
        counts = counts_of(entry.counts)
        rows.append(
            ["/".join(entry.asset_key.path), *(number(counts[status]) for status in BACKFILL_STATUSES)]
        )
    text = table(headers, rows)
    hidden = len(backfill.asset_counts) - len(entries)
    return text + (f"\n... and {number(hidden)} more assets" if hidden else "")


def target_text(target: requests_pb2.BackfillTarget) -> str:
    kind = target.WhichOneof("partitions")
    if kind == "keys":
        return _abbreviated(list(target.keys.keys))
    if kind == "ranges":
        return _abbreviated([f"{r.start}...{r.end}" for r in target.ranges.ranges])
    if kind == "all_partitions":
        return "all partitions"
    if kind == "partitions_by_asset":
        return "; ".join(
            f"{'/'.join(entry.asset_key.path)}: {_abbreviated(list(entry.partitions.keys.keys))}"
            for entry in target.partitions_by_asset.assets
        )
    return "-"


def _abbreviated(items: list[str], shown: int = 5) -> str:
    if len(items) <= shown:
        return ", ".join(items)
    return f"{', '.join(items[:shown])}, ... ({number(len(items))} in all)"


def backfill_text(backfill: backfills_pb2.Backfill, max_assets: int | None = None) -> str:
    status = backfill_status_from_proto(backfill.status).value
    limits = backfill.limits
    fields = [
        ("title", backfill.title if backfill.HasField("title") else ""),
        ("location", backfill.location_name),
        ("assets", _abbreviated(asset_list(backfill.target.asset_selection), 8)),
        ("partitions", target_text(backfill.target)),
        ("tags", ", ".join(f"{k}={v}" for k, v in sorted(backfill.tags.items()))),
        ("limits", f"{limits.max_concurrent_runs or 'no'} concurrent-run limit, priority {limits.priority}"),
        ("created", timestamp_text(backfill.created_at)),
        ("ended", timestamp_text(backfill.ended_at) if backfill.HasField("ended_at") else ""),
        ("created by", tick_text(backfill)),
        ("description", backfill.description if backfill.HasField("description") else ""),
        ("error", backfill.failure.message if backfill.HasField("failure") else ""),
    ]
    lines = [f"Backfill {backfill.backfill_id}: {status}"]
    lines += [f"  {name + ':':<12} {value}" for name, value in fields if value]
    lines += ["", progress_line(backfill), "", asset_counts_table(backfill, max_assets)]
    return "\n".join(lines)


def tick_text(backfill: backfills_pb2.Backfill) -> str:
    if not backfill.HasField("created_by_tick"):
        return ""
    tick = backfill.created_by_tick
    kind = "sensor" if tick.instigator_type == automation_pb2.INSTIGATOR_TYPE_SENSOR else "schedule"
    return f"{kind} {tick.instigator_name}" + (f" (tick {tick.tick_id})" if tick.tick_id else "")


def backfill_row(backfill: backfills_pb2.Backfill) -> list[str]:
    counts = counts_of(backfill.partition_counts)
    total = sum(counts.values())
    failed = counts[PartitionStatus.FAILED] + counts[PartitionStatus.UPSTREAM_FAILED]
    title = (
        backfill.title
        if backfill.HasField("title")
        else _abbreviated(asset_list(backfill.target.asset_selection), 3)
    )
    return [
        backfill.backfill_id,
        backfill_status_from_proto(backfill.status).value,
        backfill.location_name,
        f"{number(counts[PartitionStatus.MATERIALIZED])}/{number(total)}",
        number(failed),
        timestamp_text(backfill.created_at),
        title,
    ]


BACKFILL_HEADERS = ("ID", "STATUS", "LOCATION", "MATERIALIZED", "FAILED", "CREATED", "TITLE")


def plural(count: int, noun: str) -> str:
    """``1 run``, ``2 runs``, ``1,000 runs``."""
    return f"{number(count)} {noun}{'' if count == 1 else 's'}"


def run_count_text(plan: backfills_pb2.BackfillPlan) -> str:
    """``6 runs: x 3, y 3``: every run the plan makes, and how many materialize each asset."""
    per_asset = ", ".join(
        f"{'/'.join(entry.asset_key.path)} {number(entry.run_count)}" for entry in plan.asset_run_counts
    )
    return plural(plan.run_count, "run") + (f": {per_asset}" if per_asset else "")


def plan_text(plan: backfills_pb2.BackfillPlan, shown_runs: int = 20) -> str:
    lines = [
        f"Dry run: {plural(plan.partition_count, 'partition')} of {plural(len(plan.asset_partitions), 'asset')}. "
        "Nothing was written.",
        f"If every partition succeeds: {run_count_text(plan)}.",
        "",
    ]
    rows = []
    for entry in plan.asset_partitions:
        keys = list(entry.partitions.keys.keys)
        rows.append(
            [
                "/".join(entry.asset_key.path),
                number(len(keys)) if keys else "(unpartitioned)",
                keys[0] if keys else "",
                keys[-1] if keys else "",
            ]
        )
    lines += [table(("ASSET", "PARTITIONS", "FIRST", "LAST"), rows), ""]
    run_rows = [
        [partition_text(run), ", ".join(asset_list(run.asset_selection))] for run in plan.runs[:shown_runs]
    ]
    lines.append(table(("RUN PARTITIONS", "ASSETS"), run_rows))
    if plan.run_count > len(run_rows):
        more = plan.run_count - len(run_rows)
        listed = len(plan.runs)
        where = (
            f" (the first {number(listed)} with --json)"
            if plan.run_count > listed
            else " (all of them with --json)"
        )
        lines.append(f"... and {plural(more, 'more run')}{where}")
    return "\n".join(lines)


# --- runs ----------------------------------------------------------------------------------------


RUN_HEADERS = ("ID", "STATUS", "BACKFILL", "ASSETS", "PARTITIONS", "CREATED", "ENDED")


def run_row(run: runs_pb2.Run) -> list[str]:
    return [
        run.run_id,
        run_status_from_proto(run.status).value,
        run.backfill_id if run.HasField("backfill_id") else "-",
        ", ".join(asset_list(run.asset_selection)),
        partition_text(run),
        timestamp_text(run.created_at),
        timestamp_text(run.ended_at) if run.HasField("ended_at") else "-",
    ]


def run_text(run: runs_pb2.Run) -> str:
    fields = [
        ("backfill", run.backfill_id if run.HasField("backfill_id") else ""),
        ("location", run.location_name),
        ("assets", ", ".join(asset_list(run.asset_selection))),
        ("partitions", partition_text(run)),
        ("tags", ", ".join(f"{k}={v}" for k, v in sorted(run.tags.items()))),
        ("attempt", str(run.attempt)),
        ("launcher", _launcher_text(run)),
        ("created", timestamp_text(run.created_at)),
        ("started", timestamp_text(run.started_at) if run.HasField("started_at") else ""),
        ("ended", timestamp_text(run.ended_at) if run.HasField("ended_at") else ""),
        ("failure", _failure_text(run)),
    ]
    lines = [f"Run {run.run_id}: {run_status_from_proto(run.status).value}"]
    lines += [f"  {name + ':':<11} {value}" for name, value in fields if value]
    return "\n".join(lines)


def _launcher_text(run: runs_pb2.Run) -> str:
    handle = run.launcher_handle
    kind = handle.WhichOneof("kind") if run.HasField("launcher_handle") else None
    if kind == "local_process":
        return f"local process {handle.local_process.pid} on {handle.local_process.hostname}"
    if kind == "kubernetes_job":
        return f"Kubernetes Job {handle.kubernetes_job.namespace}/{handle.kubernetes_job.job_name}"
    return ""


def log_entry_text(entry: runs_pb2.RunLogEntry) -> str:
    stream, text = log_content(entry)
    return f"{timestamp_text(entry.timestamp)} {stream:<13} {text}"


def log_content(entry: runs_pb2.RunLogEntry) -> tuple[str, str]:
    if entry.WhichOneof("content") == "line":
        return log_stream_name(entry.line.stream), entry.line.text
    return "event", str(entry.event.WhichOneof("event") or "")


# --- locations and assets ----------------------------------------------------------------------


LOCATION_HEADERS = ("NAME", "STATUS", "ADDRESS", "ASSETS", "SENSORS", "SCHEDULES", "IMAGE", "LAST SEEN")


def location_row(location: code_locations_pb2.CodeLocation) -> list[str]:
    return [
        location.name,
        location_status_from_proto(location.status),
        location.address,
        str(location.asset_count),
        str(location.sensor_count),
        str(location.schedule_count),
        location.image or "-",
        timestamp_text(location.last_seen_at) if location.HasField("last_seen_at") else "never",
    ]


def _failure_text(run: runs_pb2.Run) -> str:
    if not run.HasField("failure"):
        return ""
    kind = run_failure_kind_from_proto(run.failure.kind)
    return f"[{kind.value}] {run.failure.message}" if kind else run.failure.message


def location_error(location: code_locations_pb2.CodeLocation) -> str:
    if location.HasField("load_error"):
        return location.load_error.message
    return location.unavailable_reason


def status_name(value: partition_status_pb2.PartitionStatus.ValueType) -> str:
    status = partition_status_from_proto(value)
    return status.value if status is not None else COUNT_FIELDS[None]


def asset_status_text(location: str, asset: str, status: AssetPartitionStatus) -> str:
    if status.unpartitioned_status:
        return f"{location}/{asset}: unpartitioned, {status_name(status.unpartitioned_status)}"
    counts = partition_counts_from_proto(status.counts)
    summary = ", ".join(f"{number(n)} {COUNT_FIELDS[key]}" for key, n in counts.items() if n)
    lines = [f"{location}/{asset}: {number(sum(counts.values()))} partitions ({summary or 'none'})", ""]
    rows = [
        [r.range.start, r.range.end, status_name(r.status), number(r.partition_count)] for r in status.ranges
    ]
    lines.append(table(("FROM", "TO", "STATUS", "PARTITIONS"), rows))
    return "\n".join(lines)
