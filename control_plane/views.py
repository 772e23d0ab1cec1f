"""What the control plane's service returns to its API: records plus what is derived for display."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from code_server.asset_key import AssetKey
from code_server.partitions.keys import PartitionKeyRange
from code_server.wire.automation import BackfillRequestSpec
from control_plane.location_health import LocationProblem
from control_plane.records import BackfillRecord, PartitionStatus


@dataclass(frozen=True, slots=True)
class LaunchOptions:
    location: str
    title: str | None = None
    description: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    max_concurrent_runs: int | None = None
    priority: int = 0
    dry_run: bool = False
    #: "api", "sensor:NAME" or "schedule:NAME".
    origin: str = "api"
    #: Optional idempotency key: launching twice with the same id returns the first backfill.
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class PlannedRunView:
    asset_keys: tuple[AssetKey, ...]
    partition_range: PartitionKeyRange | None


@dataclass(frozen=True, slots=True)
class BackfillPlanView:
    """A dry run's answer: what would be materialized, and every run the backfill would make if
    every partition succeeds (counted in full, the first of them listed)."""

    partitions_by_asset: Mapping[AssetKey, tuple[str, ...]]
    #: The first runs, parents before children (at most the engine's ``DRY_RUN_LISTED_RUNS``).
    runs: tuple[PlannedRunView, ...]
    partition_count: int
    #: Every run, listed or not.
    run_count: int
    #: How many of those runs materialize each asset (a run of several assets counts for each).
    runs_by_asset: Mapping[AssetKey, int]


@dataclass(frozen=True, slots=True)
class BackfillView:
    record: BackfillRecord
    #: The request as launched (for display and for launching it again).
    request: BackfillRequestSpec
    counts: Mapping[AssetKey, Mapping[PartitionStatus, int]]

    @property
    def total_counts(self) -> dict[PartitionStatus, int]:
        totals: dict[PartitionStatus, int] = {}
        for per_asset in self.counts.values():
            for status, count in per_asset.items():
                totals[status] = totals.get(status, 0) + count
        return totals


@dataclass(frozen=True, slots=True)
class CodeLocationView:
    """A code location as the API shows it: status, the reason when not loaded, what is in use."""

    name: str
    address: str
    #: "loaded", "unavailable", "load_error" or "invalid" (a :class:`LocationStatus` value).
    status: str
    server_id: str = ""
    fingerprint: str = ""
    image: str = ""
    sdk_version: str = ""
    error: str | None = None
    asset_count: int = 0
    sensor_count: int = 0
    schedule_count: int = 0
    last_seen_at: datetime | None = None
    problem: LocationProblem | None = None
    definitions_loaded_at: datetime | None = None
    #: Seconds between refreshes (how soon a fixed server is noticed).
    refresh_seconds: float | None = None
    #: Not loaded now, but planning uses the definitions last loaded.
    using_last_good_definitions: bool = False
