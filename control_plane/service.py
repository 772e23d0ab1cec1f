"""The control plane's use cases, behind the gRPC API: one method per operation, records in and out.

The API layer converts messages to these calls and the results back; it holds no logic of its own.
Errors: InvalidBackfillRequest -> INVALID_ARGUMENT, BackfillNotFound/RunNotFound -> NOT_FOUND,
InvalidStateTransition -> FAILED_PRECONDITION, LocationUnavailable -> UNAVAILABLE.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

from code_server.asset_key import AssetKey
from code_server.partitions.keys import PartitionKeyRange
from code_server.wire.automation import BackfillRequestSpec
from control_plane.audit import EVERY_EVENT, AuditEvent, AuditFilter
from control_plane.records import (
    BackfillStatus,
    PageCursor,
    PartitionSpan,
    PartitionStatus,
    RunEventRecord,
    RunRecord,
    RunStatus,
)
from control_plane.views import BackfillPlanView, BackfillView, CodeLocationView, LaunchOptions


@dataclass(frozen=True, slots=True)
class PartitionStatusRange:
    """Consecutive partitions of an asset (in definition order) that share one status."""

    partition_range: PartitionKeyRange
    status: PartitionStatus | None  # None: never materialized nor attempted ("missing")
    partition_count: int


@dataclass(frozen=True, slots=True)
class AssetPartitionStatusView:
    asset_key: AssetKey
    counts: Mapping[PartitionStatus | None, int]
    ranges: Sequence[PartitionStatusRange]
    #: For an unpartitioned asset: its latest status (None if never run).
    unpartitioned_status: PartitionStatus | None = None


class ControlPlaneService:
    """Implemented in ``control_plane.app``; this class documents the contract the API relies on."""

    def launch_backfill(
        self, spec: BackfillRequestSpec, options: LaunchOptions
    ) -> BackfillView | BackfillPlanView:
        """Validate and store a backfill (or, with ``options.dry_run``, only plan it); runs are queued at once."""
        raise NotImplementedError

    def get_backfill(self, backfill_id: str) -> BackfillView:
        raise NotImplementedError

    def list_backfills(
        self,
        *,
        statuses: Sequence[BackfillStatus] = (),
        tags: Mapping[str, str] | None = None,
        location: str | None = None,
        limit: int = 100,
        before: PageCursor | None = None,
    ) -> list[BackfillView]:
        """Newest first; ``before`` is where the previous page ended."""
        raise NotImplementedError

    def cancel_backfill(self, backfill_id: str) -> BackfillView:
        raise NotImplementedError

    def retry_backfill(self, backfill_id: str) -> tuple[BackfillView, int]:
        """Re-queue failed and upstream-failed partitions; returns the view and how many were re-queued."""
        raise NotImplementedError

    def pause_backfill(self, backfill_id: str) -> BackfillView:
        raise NotImplementedError

    def resume_backfill(self, backfill_id: str) -> BackfillView:
        raise NotImplementedError

    def update_backfill_limits(
        self, backfill_id: str, *, max_concurrent_runs: int | None = None, priority: int | None = None
    ) -> BackfillView:
        """Change limits while it runs; ``max_concurrent_runs=0`` removes the per-backfill limit."""
        raise NotImplementedError

    def backfill_change_marks(self, backfill_ids: Sequence[str]) -> Mapping[str, Hashable]:
        """For each backfill that exists, a value that changes whenever its view does: one cheap
        look tells the watchers of many backfills which to read again."""
        raise NotImplementedError

    def partition_changes(
        self, backfill_id: str, *, after: int | None
    ) -> tuple[int, Sequence[PartitionSpan]]:
        """The backfill's change sequence now, and the spans of partitions changed after ``after`` (none for None)."""
        raise NotImplementedError

    def list_runs(
        self,
        *,
        backfill_id: str | None = None,
        statuses: Sequence[RunStatus] = (),
        tags: Mapping[str, str] | None = None,
        include_backfill_runs: bool = True,
        location: str | None = None,
        limit: int = 100,
        before: PageCursor | None = None,
    ) -> list[RunRecord]:
        raise NotImplementedError

    def get_run(self, run_id: str) -> RunRecord:
        raise NotImplementedError

    def terminate_run(self, run_id: str) -> RunRecord:
        raise NotImplementedError

    def run_logs(self, run_id: str, *, after_sequence: int = 0, limit: int = 1000) -> list[RunEventRecord]:
        """Log lines and events of a run, in order; ``kind`` is "stdout", "control_plane" or an event name."""
        raise NotImplementedError

    def run_log_heads(self, run_ids: Sequence[str]) -> Mapping[str, tuple[int, bool]]:
        """For each run: the last sequence of its log (0 for none) and whether it has ended (an unknown
        run counts as ended): one look tells the followers of many runs which have news."""
        raise NotImplementedError

    def asset_partition_status(
        self, location: str, asset_key: AssetKey, partition_range: PartitionKeyRange | None = None
    ) -> AssetPartitionStatusView:
        raise NotImplementedError

    def code_locations(self) -> list[CodeLocationView]:
        raise NotImplementedError

    def list_audit_events(
        self, *, where: AuditFilter = EVERY_EVENT, limit: int = 100, before: PageCursor | None = None
    ) -> list[AuditEvent]:
        """The audit log, newest first; ``before`` is where the previous page ended."""
        raise NotImplementedError
