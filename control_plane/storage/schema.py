"""Every table and index of the control plane, in one SQLAlchemy Core ``MetaData``.

Backfill progress is rows (spans of partitions sharing a status and run), never a document
rewritten per tick; everything the planner, the queue or the API filters on is a real, indexed column.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on SQLite (which keeps no zone) as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"Refusing to store naive datetime {value!r}.")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        result: datetime = value
        return result.replace(tzinfo=UTC) if result.tzinfo is None else result.astimezone(UTC)


_ID = String(40)
_KEY = String(512)
_STATUS = String(32)

backfills = Table(
    "backfills",
    metadata,
    Column("id", _ID, primary_key=True),
    Column("status", _STATUS, nullable=False),
    Column("location", String(255), nullable=False),
    Column("title", Text),
    Column("description", Text),
    Column("max_concurrent_runs", Integer),
    Column("priority", Integer, nullable=False, default=0),
    Column("origin", String(255), nullable=False),
    Column("request_id", String(255)),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("ended_at", UtcDateTime),
    Column("error", Text),
    #: Bumped by every write to the backfill's partition spans, which carry it as change_seq: a watcher
    #: asks for the rows changed after the sequence it last saw. The row lock orders the writers.
    Column("partition_change_seq", Integer, nullable=False, default=0, server_default="0"),
    Index("ix_backfills_status_created_at", "status", "created_at"),
    Index("ix_backfills_created_at", "created_at"),
    Index("ix_backfills_request_id", "request_id", unique=True),
)

backfill_assets = Table(
    "backfill_assets",
    metadata,
    Column("backfill_id", _ID, ForeignKey("backfills.id", ondelete="CASCADE"), primary_key=True),
    Column("ordinal", Integer, primary_key=True),
    Column("asset_key", _KEY, nullable=False),
)

backfill_tags = Table(
    "backfill_tags",
    metadata,
    Column("backfill_id", _ID, ForeignKey("backfills.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("value", Text, nullable=False),
    Index("ix_backfill_tags_key_value", "key", "value"),
)

#: The request as launched, for display and relaunch: what kind of target, and its keys or ranges.
backfill_request_parts = Table(
    "backfill_request_parts",
    metadata,
    Column("backfill_id", _ID, ForeignKey("backfills.id", ondelete="CASCADE"), primary_key=True),
    Column("ordinal", Integer, primary_key=True),
    #: "keys", "range", "all" or "asset_keys" (one part per key of partitions_by_asset).
    Column("kind", String(16), nullable=False),
    #: For "asset_keys": the asset the keys belong to.
    Column("asset_key", _KEY),
    Column("start_key", _KEY),
    Column("end_key", _KEY),
)

#: How each asset of a backfill maps partition positions to keys, as launched (see control_plane.key_spaces).
backfill_key_spaces = Table(
    "backfill_key_spaces",
    metadata,
    Column("backfill_id", _ID, ForeignKey("backfills.id", ondelete="CASCADE"), primary_key=True),
    Column("asset_key", _KEY, primary_key=True),
    #: "time_window" (the serialized definition) or "keys" (JSON [positions, keys]).
    Column("kind", String(16), nullable=False),
    Column("definition", LargeBinary),
    Column("keys", Text),
)

#: Progress as spans: positions first..last of an asset that share a status and run. Spans of an
#: asset never overlap and cover exactly the backfill's partitions of it; a write splits the spans
#: it touches, so the row count follows the runs planned, not the partitions.
backfill_partition_spans = Table(
    "backfill_partition_spans",
    metadata,
    Column("backfill_id", _ID, ForeignKey("backfills.id", ondelete="CASCADE"), primary_key=True),
    Column("asset_key", _KEY, primary_key=True),
    Column("first_position", Integer, primary_key=True),
    Column("last_position", Integer, nullable=False),
    Column("status", _STATUS, nullable=False),
    Column("run_id", _ID),
    Column("change_seq", Integer, nullable=False, default=0, server_default="0"),
    Index("ix_backfill_partition_spans_backfill_id_status", "backfill_id", "status"),
    Index("ix_backfill_partition_spans_backfill_id_change_seq", "backfill_id", "change_seq"),
    Index("ix_backfill_partition_spans_run_id", "run_id"),
)

runs = Table(
    "runs",
    metadata,
    Column("id", _ID, primary_key=True),
    Column("backfill_id", _ID, ForeignKey("backfills.id", ondelete="CASCADE")),
    Column("location", String(255), nullable=False),
    Column("partition_range_start", _KEY),
    Column("partition_range_end", _KEY),
    Column("partition_count", Integer, nullable=False, default=0),
    Column("status", _STATUS, nullable=False),
    Column("priority", Integer, nullable=False, default=0),
    Column("run_key", String(512)),
    Column("launcher_kind", String(32)),
    Column("launcher_handle", String(512)),
    Column("attempt", Integer, nullable=False, default=1),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("started_at", UtcDateTime),
    Column("ended_at", UtcDateTime),
    Column("error", Text),
    Column("failure_kind", String(32)),
    #: The worker that claimed the run's attempt (control_plane.storage.runs.WorkerIdentity); only it
    #: executes the run and reports on it.
    Column("worker_id", String(64)),
    Column("worker_hostname", String(255)),
    Column("worker_pid", Integer),
    #: The worker process's start time (clock ticks since boot), which tells it from a reused pid.
    Column("worker_process_start", BigInteger),
    Column("claimed_at", UtcDateTime),
    Index("ix_runs_status_priority_created_at", "status", "priority", "created_at"),
    Index("ix_runs_backfill_id_status_created_at", "backfill_id", "status", "created_at"),
    Index("ix_runs_created_at", "created_at"),
    Index("ix_runs_location_run_key", "location", "run_key", unique=True),
)

run_assets = Table(
    "run_assets",
    metadata,
    Column("run_id", _ID, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("ordinal", Integer, primary_key=True),
    Column("asset_key", _KEY, nullable=False),
)

run_tags = Table(
    "run_tags",
    metadata,
    Column("run_id", _ID, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("value", Text, nullable=False),
    Index("ix_run_tags_key_value", "key", "value"),
)

run_events = Table(
    "run_events",
    metadata,
    Column("run_id", _ID, primary_key=True),
    Column("sequence", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("timestamp", UtcDateTime, nullable=False),
    Column("kind", String(64), nullable=False),
    Column("asset_key", _KEY),
    Column("message", Text, nullable=False),
)

reported_events = Table(
    "reported_events",
    metadata,
    Column("run_id", _ID, primary_key=True),
    Column("event_id", String(128), primary_key=True),
)

asset_partition_status = Table(
    "asset_partition_status",
    metadata,
    Column("asset_key", _KEY, primary_key=True),
    Column("partition_key", _KEY, primary_key=True),
    Column("status", _STATUS, nullable=False),
    Column("run_id", _ID),
    Column("updated_at", UtcDateTime, nullable=False),
)

daemon_cursors = Table(
    "daemon_cursors",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

#: Secrets the control plane generates once and keeps (the key that run credentials are minted under).
control_plane_secrets = Table(
    "control_plane_secrets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

#: One row per sensor or schedule the control plane has seen: running or stopped, cursor, last tick.
instigator_state = Table(
    "instigator_state",
    metadata,
    Column("location", String(255), primary_key=True),
    #: "sensor" or "schedule".
    Column("instigator_type", String(16), primary_key=True),
    Column("name", String(255), primary_key=True),
    #: "running" or "stopped".
    Column("status", _STATUS, nullable=False),
    Column("cursor", Text),
    #: Sensors: when the last tick began. Schedules: the cron time of the last tick.
    Column("last_tick_at", UtcDateTime),
    #: When it was last started (or first seen running): schedules tick at cron times after it.
    Column("started_at", UtcDateTime),
    Column("updated_at", UtcDateTime, nullable=False),
)

instigator_ticks = Table(
    "instigator_ticks",
    metadata,
    Column("id", _ID, primary_key=True),
    Column("location", String(255), nullable=False),
    Column("instigator_type", String(16), nullable=False),
    Column("name", String(255), nullable=False),
    #: "started", "skipped", "success" or "failure".
    Column("status", _STATUS, nullable=False),
    #: Schedules only: the cron time the tick is for.
    Column("scheduled_at", UtcDateTime),
    Column("started_at", UtcDateTime, nullable=False),
    Column("ended_at", UtcDateTime),
    Column("cursor_before", Text),
    Column("cursor_after", Text),
    Column("skip_reason", Text),
    Column("error", Text),
    #: "raised", "timed_out" or "launch_failed".
    Column("error_kind", String(32)),
    Column("error_class", String(255)),
    Column("error_traceback", Text),
    Index("ix_instigator_ticks_instigator_started_at", "location", "instigator_type", "name", "started_at"),
    Index("ix_instigator_ticks_status", "status"),
)

#: What each tick created, in request order: backfills (by id) and runs (by id).
instigator_tick_targets = Table(
    "instigator_tick_targets",
    metadata,
    Column("tick_id", _ID, ForeignKey("instigator_ticks.id", ondelete="CASCADE"), primary_key=True),
    Column("ordinal", Integer, primary_key=True),
    #: "backfill" or "run".
    Column("kind", String(16), nullable=False),
    Column("target_id", _ID, nullable=False),
)

#: One row per mutating API call (control_plane.audit.AuditEvent), pruned after the retention period.
audit_events = Table(
    "audit_events",
    metadata,
    Column("id", _ID, primary_key=True),
    Column("at", UtcDateTime, nullable=False),
    Column("identity_name", String(255), nullable=False),
    Column("identity_kind", String(32), nullable=False),
    Column("role", String(16), nullable=False),
    Column("peer", String(255), nullable=False),
    Column("rpc", String(64), nullable=False),
    Column("target_kind", String(16)),
    Column("target_id", String(255)),
    Column("location", String(255)),
    Column("summary", Text, nullable=False),
    Column("status", String(32), nullable=False),
    Column("error", Text),
    Index("ix_audit_events_at_id", "at", "id"),
    Index("ix_audit_events_target_at", "target_kind", "target_id", "at"),
    Index("ix_audit_events_identity_name_at", "identity_name", "at"),
    Index("ix_audit_events_rpc_at", "rpc", "at"),
)

#: API tokens: only the SHA-256 of each secret is kept; the secret is shown once, at creation.
api_tokens = Table(
    "api_tokens",
    metadata,
    #: The public part of the token ("pt_<id>_<secret>"): what a call is looked up by.
    Column("id", String(32), primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    #: "viewer", "operator" or "admin".
    Column("role", String(16), nullable=False),
    #: JSON list of the code locations it may act on; NULL for all.
    Column("locations", Text),
    #: Hex SHA-256 of the secret part.
    Column("secret_sha256", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime),
    Column("revoked_at", UtcDateTime),
    Column("last_used_at", UtcDateTime),
)
