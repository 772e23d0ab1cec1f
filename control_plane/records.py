"""The control plane's domain records: backfills, runs and partition statuses, as storage returns them.

Plain frozen dataclasses: planners, daemons and the API work on these, never on rows or protobufs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from code_server.asset_key import AssetKey
from code_server.partitions.keys import PartitionKeyRange
from launcher.base import FailureKind, WorkerIdentity

#: Why a run failed: one enum, shared with the launchers that report most of the kinds.
RunFailureKind = FailureKind


class BackfillStatus(StrEnum):
    REQUESTED = "requested"
    RUNNING = "running"
    PAUSED = "paused"
    WAITING_FOR_LOCATION = "waiting_for_location"
    CANCELING = "canceling"
    COMPLETED_SUCCESS = "completed_success"
    COMPLETED_FAILED = "completed_failed"
    CANCELED = "canceled"
    FAILED = "failed"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL_BACKFILL


_TERMINAL_BACKFILL = frozenset(
    {
        BackfillStatus.COMPLETED_SUCCESS,
        BackfillStatus.COMPLETED_FAILED,
        BackfillStatus.CANCELED,
        BackfillStatus.FAILED,
    }
)


class RunStatus(StrEnum):
    QUEUED = "queued"
    STARTING = "starting"
    STARTED = "started"
    SUCCESS = "success"
    FAILURE = "failure"
    CANCELING = "canceling"
    CANCELED = "canceled"

    @property
    def is_terminal(self) -> bool:
        return self in (RunStatus.SUCCESS, RunStatus.FAILURE, RunStatus.CANCELED)

    @property
    def is_active(self) -> bool:
        """Holds a concurrency slot: launched and not yet finished."""
        return self in (RunStatus.STARTING, RunStatus.STARTED, RunStatus.CANCELING)


class PartitionStatus(StrEnum):
    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    MATERIALIZED = "materialized"
    FAILED = "failed"
    UPSTREAM_FAILED = "upstream_failed"
    CANCELED = "canceled"

    @property
    def is_terminal(self) -> bool:
        return self in (
            PartitionStatus.MATERIALIZED,
            PartitionStatus.FAILED,
            PartitionStatus.UPSTREAM_FAILED,
            PartitionStatus.CANCELED,
        )


@dataclass(frozen=True, slots=True)
class BackfillRecord:
    id: str
    status: BackfillStatus
    location: str
    asset_keys: tuple[AssetKey, ...]
    created_at: datetime
    updated_at: datetime
    title: str | None = None
    description: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    #: None: only the global limit applies.
    max_concurrent_runs: int | None = None
    #: Higher runs first.
    priority: int = 0
    ended_at: datetime | None = None
    error: str | None = None
    #: Where the request came from: "api", "sensor:NAME", "schedule:NAME".
    origin: str = "api"


@dataclass(frozen=True, slots=True)
class BackfillPartition:
    """One (asset, partition) of a backfill, with its place in the asset's partition order."""

    backfill_id: str
    asset_key: AssetKey
    #: "" for an unpartitioned asset.
    partition_key: str
    #: Index of the key in the asset's partitions definition at launch; contiguous positions form ranges.
    position: int
    status: PartitionStatus = PartitionStatus.PENDING
    run_id: str | None = None


@dataclass(frozen=True, slots=True)
class PageCursor:
    """Where a newest-first page ended: the next page holds what is older, or as old with a smaller id.

    Both parts, because many items share a timestamp (every run of one launch has the same one).
    """

    at: datetime
    id: str


@dataclass(frozen=True, slots=True)
class PartitionSpan:
    """Partitions of one asset of a backfill at positions ``first_position`` .. ``last_position``
    (both included) that share a status and a run: how progress is stored, so a range queued in one
    run is one row whatever its length. Reads fill in the keys at both ends."""

    asset_key: AssetKey
    first_position: int
    last_position: int
    status: PartitionStatus = PartitionStatus.PENDING
    run_id: str | None = None
    first_key: str | None = None
    last_key: str | None = None

    @property
    def count(self) -> int:
        return self.last_position - self.first_position + 1


@dataclass(frozen=True, slots=True)
class RunRecord:
    id: str
    location: str
    asset_keys: tuple[AssetKey, ...]
    status: RunStatus
    created_at: datetime
    updated_at: datetime
    backfill_id: str | None = None
    partition_range: PartitionKeyRange | None = None
    partition_count: int = 0
    tags: Mapping[str, str] = field(default_factory=dict)
    priority: int = 0
    run_key: str | None = None
    launcher_kind: str | None = None
    launcher_handle: str | None = None
    attempt: int = 1
    started_at: datetime | None = None
    ended_at: datetime | None = None
    error: str | None = None
    failure_kind: RunFailureKind | None = None
    #: The worker that claimed this attempt; only it executes the run and reports on it.
    worker: WorkerIdentity | None = None
    claimed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class RunEventRecord:
    """One line of a run's event log (worker events, launcher output, status changes)."""

    run_id: str
    sequence: int
    timestamp: datetime
    kind: str
    message: str
    asset_key: AssetKey | None = None
