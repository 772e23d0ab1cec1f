"""The backfill engine: launch, plan on every outcome, and cancel, retry, pause and resume.

Planning is single-threaded: API calls and run reports *note* what changed and wake the daemon,
whose ``tick`` plans each noted backfill. A restart notes every running backfill for a full plan,
so nothing noted before a crash is lost; partitions are assigned to runs in the same transaction
that creates the runs, so nothing is planned twice.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import deque
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from itertools import islice

from code_server.asset_key import AssetKey
from code_server.wire.automation import BackfillRequestSpec
from control_plane.backfills.planning import BackfillPlan, BackfillPlanner
from control_plane.backfills.readiness import UNFINISHED
from control_plane.backfills.run_planning import PlannedRun
from control_plane.backfills.targets import ResolvedTarget, resolve_target
from control_plane.errors import BackfillNotFound, InvalidStateTransition, LocationUnavailable, shown
from control_plane.locations import CodeLocations
from control_plane.records import (
    BackfillRecord,
    BackfillStatus,
    PartitionSpan,
    PartitionStatus,
    RunRecord,
    RunStatus,
)
from control_plane.storage import (
    BackfillAlreadyExists,
    BackfillProgressStore,
    BackfillStore,
    Database,
    RunStore,
    StorageFault,
)
from control_plane.views import BackfillPlanView, LaunchOptions, PlannedRunView

logger = logging.getLogger("partita.control_plane.backfills")

BACKFILL_ID_TAG = "partita/backfill_id"
#: Runs a launch plans and writes at a time.
_LAUNCH_BATCH = 1000
#: Runs a dry run lists (it counts them all).
DRY_RUN_LISTED_RUNS = 100
_UNFINISHED_PARTITIONS = UNFINISHED
_UNFINISHED_RUNS = (RunStatus.QUEUED, RunStatus.STARTING, RunStatus.STARTED, RunStatus.CANCELING)


def new_id() -> str:
    return uuid.uuid4().hex[:20]


class StoredPartitionRows:
    """Partition rows read from storage as the planner asks for them."""

    def __init__(self, progress: BackfillProgressStore, backfill_id: str) -> None:
        self._progress = progress
        self._backfill_id = backfill_id

    def rows(
        self, asset_key: AssetKey, partition_keys: Collection[str] | None
    ) -> Mapping[str, tuple[PartitionStatus, int]]:
        if partition_keys is not None and not partition_keys:
            return {}
        rows = self._progress.partitions(
            self._backfill_id,
            asset_key=asset_key,
            partition_keys=None if partition_keys is None else list(partition_keys),
        )
        return {row.partition_key: (row.status, row.position) for row in rows}

    def intervals(self, asset_key: AssetKey) -> Sequence[tuple[int, int]]:
        return self._progress.asset_intervals(self._backfill_id, asset_key)

    def keys_between(self, asset_key: AssetKey, first: int, last: int) -> list[str]:
        space = self._progress.key_space(self._backfill_id, asset_key)
        if space is None:
            return []
        return [
            space.key_at(position)
            for low, high in self.intervals(asset_key)
            if low <= last and high >= first
            for position in range(max(low, first), min(high, last) + 1)
        ]

    def unfinished(self, asset_key: AssetKey, first: int | None, last: int | None) -> bool:
        between = None if first is None or last is None else (first, last)
        return self._progress.has_partitions(
            self._backfill_id, statuses=UNFINISHED, asset_key=asset_key, between=between
        )


class BackfillEngine:
    def __init__(
        self,
        database: Database,
        locations: CodeLocations,
        *,
        clock: Callable[[], datetime],
        wake: Callable[[], None],
        check_run_settings: Callable[[str, Mapping[str, str]], None] | None = None,
    ) -> None:
        self._database = database
        #: Refuses tags the launcher would refuse (``control_plane.backfills.run_settings``).
        self._check_run_settings = check_run_settings
        self._backfills = BackfillStore(database)
        self._progress = BackfillProgressStore(database)
        self._runs = RunStore(database)
        self._locations = locations
        self._clock = clock
        self._wake = wake
        self._lock = threading.Lock()
        self._changes: dict[str, dict[AssetKey, set[str]]] = {}
        self._full_plans: set[str] = set()
        #: Backfills given a safety-net full plan since their last change (so it runs once, not every tick).
        self._safety_planned: set[str] = set()

    # --- launching ------------------------------------------------------------------------------

    def launch(self, spec: BackfillRequestSpec, options: LaunchOptions) -> str | BackfillPlanView:
        """Store the backfill and queue its first runs in one transaction; a dry run writes nothing.

        With ``options.request_id``, launching again with the same id returns the first backfill's id
        (a sensor tick resumed after a crash, a client retrying) instead of making a second one.
        """
        if options.request_id and not options.dry_run:
            existing = self._backfills.find_by_request_id(options.request_id)
            if existing is not None:
                return existing.id
        if self._check_run_settings is not None:
            self._check_run_settings(options.location, options.tags)
        graph = self._locations.loaded_graph(options.location)  # new work: only against current definitions
        now = self._clock()
        target = resolve_target(graph, spec, now)
        planner = BackfillPlanner(graph, target.asset_keys)
        if options.dry_run:
            return _dry_run_view(planner, target)
        backfill_id = new_id()
        record = BackfillRecord(
            id=backfill_id,
            status=BackfillStatus.RUNNING,
            location=options.location,
            asset_keys=target.asset_keys,
            created_at=now,
            updated_at=now,
            title=options.title,
            description=options.description,
            tags=dict(options.tags),
            max_concurrent_runs=options.max_concurrent_runs or None,
            priority=options.priority,
            origin=options.origin,
        )
        ready = planner.launch_ready_assets()
        queued = 0
        try:
            with self._database.transaction() as connection:
                self._backfills.create(
                    record,
                    request=spec,
                    request_id=options.request_id,
                    connection=connection,
                    # Assets that wait for parents are pending throughout; the others are all in runs.
                    spans=[
                        PartitionSpan(key, first, last)
                        for key, part in target.partitions.items()
                        if key not in ready
                        for first, last in part.intervals
                    ],
                    key_spaces={key: part.key_space for key, part in target.partitions.items()},
                )
                # In batches: a launch holds one batch of runs in memory, however many it queues.
                planned = planner.launch_runs(target.partitions)
                while batch := list(islice(planned, _LAUNCH_BATCH)):
                    runs = self._run_records(record, batch, now)
                    self._runs.create_many(runs, connection=connection)
                    self._progress.add_spans(record.id, _run_spans(runs, batch), connection=connection)
                    queued += len(runs)
        except BackfillAlreadyExists:
            raced = self._backfills.find_by_request_id(options.request_id) if options.request_id else None
            if raced is None:
                raise
            return raced.id
        logger.info(
            "Launched backfill %s: %d partitions of %d assets, %d runs queued",
            backfill_id,
            target.partition_count,
            len(target.asset_keys),
            queued,
        )
        self._wake()
        return backfill_id

    def _run_records(
        self, backfill: BackfillRecord, planned: list[PlannedRun], now: datetime
    ) -> list[RunRecord]:
        tags = {**backfill.tags, BACKFILL_ID_TAG: backfill.id}
        return [
            RunRecord(
                id=new_id(),
                location=backfill.location,
                asset_keys=run.asset_keys,
                status=RunStatus.QUEUED,
                created_at=now,
                updated_at=now,
                backfill_id=backfill.id,
                partition_range=run.partition_range,
                partition_count=run.partition_count,
                tags=tags,
                priority=backfill.priority,
            )
            for run in planned
        ]

    # --- noting and planning ----------------------------------------------------------------------

    def note_changes(self, backfill_id: str, changes: Mapping[AssetKey, Collection[str]]) -> None:
        with self._lock:
            self._safety_planned.discard(backfill_id)
            noted = self._changes.setdefault(backfill_id, {})
            for asset_key, keys in changes.items():
                noted.setdefault(asset_key, set()).update(keys)
        self._wake()

    def note_full_plan(self, backfill_id: str) -> None:
        with self._lock:
            self._full_plans.add(backfill_id)
        self._wake()

    def note_all_running(self) -> None:
        """After a restart: plan every running backfill from its stored rows."""
        # Waiting ones retry their location; a cancel cut off by a crash ends too.
        active = [BackfillStatus.RUNNING, BackfillStatus.WAITING_FOR_LOCATION, BackfillStatus.CANCELING]
        for backfill in self._backfills.list(statuses=active, limit=100_000):
            self.note_full_plan(backfill.id)

    def tick(self) -> int:
        """Plan every noted backfill; returns how many runs were queued."""
        with self._lock:
            changes, self._changes = self._changes, {}
            full_plans, self._full_plans = self._full_plans, set()
        queued = 0
        remaining = deque(sorted(full_plans | set(changes)))
        try:
            while remaining:
                backfill_id = remaining[0]
                try:
                    changed = None if backfill_id in full_plans else changes[backfill_id]
                    queued += self._plan(backfill_id, changed)
                except LocationUnavailable as unavailable:
                    # Nothing fails: the backfill waits, and is planned again when the location is back.
                    logger.warning("Backfill %s waits for its code location: %s", backfill_id, unavailable)
                    self._backfills.update_status(backfill_id, BackfillStatus.WAITING_FOR_LOCATION)
                except StorageFault:
                    raise
                except Exception:
                    logger.exception("Planning backfill %s failed; it will be planned again", backfill_id)
                    with self._lock:
                        self._full_plans.add(backfill_id)
                self.check_completion(backfill_id)
                remaining.popleft()
        except StorageFault:
            # The database fails every backfill alike: plan the rest from their rows once it is back,
            # and let the daemon log the episode once rather than a traceback per backfill.
            with self._lock:
                self._full_plans.update(remaining)
            raise
        return queued

    def _plan(self, backfill_id: str, changes: Mapping[AssetKey, Collection[str]] | None) -> int:
        record = self._backfills.get(backfill_id)
        plannable = (BackfillStatus.RUNNING, BackfillStatus.WAITING_FOR_LOCATION)
        if record is None or record.status not in plannable:
            return 0
        graph = self._locations.graph(record.location)
        if record.status is BackfillStatus.WAITING_FOR_LOCATION:
            self._backfills.update_status(backfill_id, BackfillStatus.RUNNING)
            changes = None  # whatever happened meanwhile, plan from the stored rows
        present = [key for key in record.asset_keys if key in graph]
        removed = [key for key in record.asset_keys if key not in graph]
        if removed:
            self._fail_removed_assets(record, removed)
        planner = BackfillPlanner(graph, present)
        rows = StoredPartitionRows(self._progress, backfill_id)
        plan = planner.plan_everything(rows) if changes is None else planner.plan_changes(changes, rows)
        return self._save_plan(record, plan)

    def _fail_removed_assets(self, record: BackfillRecord, removed: list[AssetKey]) -> None:
        """Assets no longer defined in the location fail their waiting partitions, and only those."""
        names = ", ".join(repr(key.to_user_string()) for key in removed)
        failed: dict[AssetKey, list[str]] = {}
        for key in removed:
            rows = self._progress.partitions(record.id, asset_key=key, statuses=[PartitionStatus.PENDING])
            if rows:
                keys = [row.partition_key for row in rows]
                self._progress.set_partition_status(
                    record.id, key, keys, PartitionStatus.FAILED, only_from=(PartitionStatus.PENDING,)
                )
                failed[key] = keys
        if failed:
            reason = f"Asset(s) {names} were removed from code location {record.location!r}; their partitions failed."
            logger.warning("Backfill %s: %s", record.id, reason)
            self._backfills.update_status(record.id, BackfillStatus.RUNNING, error=reason)
            self.note_changes(record.id, failed)

    def _save_plan(self, record: BackfillRecord, plan: BackfillPlan) -> int:
        if not plan.runs and not plan.upstream_failed:
            return 0
        now = self._clock()
        runs = self._run_records(record, plan.runs, now)
        with self._database.transaction() as connection:
            for asset_key, keys in plan.upstream_failed.items():
                self._progress.set_partition_status(
                    record.id,
                    asset_key,
                    keys,
                    PartitionStatus.UPSTREAM_FAILED,
                    only_from=(PartitionStatus.PENDING,),
                    connection=connection,
                )
            self._runs.create_many(runs, connection=connection)
            self._progress.assign_runs(record.id, _run_spans(runs, plan.runs), connection=connection)
        if plan.upstream_failed:
            # Downstream of these there may be more to fail (in other backfill units).
            self.note_changes(record.id, {key: keys for key, keys in plan.upstream_failed.items()})
        if runs:
            self._wake()
        return len(runs)

    def check_completion(self, backfill_id: str) -> BackfillStatus | None:
        """End the backfill when nothing is left to run; returns the final status if it ended."""
        status = self._backfills.status_of(backfill_id)
        if status not in (BackfillStatus.RUNNING, BackfillStatus.CANCELING):
            return None
        if self._runs.exists(backfill_id=backfill_id, statuses=_UNFINISHED_RUNS):
            return None
        if status is BackfillStatus.CANCELING:
            final = BackfillStatus.CANCELED
        else:
            if self._progress.has_partitions(backfill_id, statuses=_UNFINISHED_PARTITIONS):
                with self._lock:
                    first_time = backfill_id not in self._safety_planned
                    self._safety_planned.add(backfill_id)
                if first_time:
                    # Nothing runs, yet partitions wait: plan them from storage once (a safety net),
                    # and not again until something changes, so a stuck backfill cannot spin the daemon.
                    self.note_full_plan(backfill_id)
                return None
            counts = self._progress.partition_counts(backfill_id)
            failed = any(
                status is not PartitionStatus.MATERIALIZED and count
                for per_asset in counts.values()
                for status, count in per_asset.items()
            )
            final = BackfillStatus.COMPLETED_FAILED if failed else BackfillStatus.COMPLETED_SUCCESS
        self._backfills.update_status(backfill_id, final, ended_at=self._clock())
        logger.info("Backfill %s ended: %s", backfill_id, final.value)
        return final

    # --- operator actions -------------------------------------------------------------------------

    def retry(self, backfill_id: str) -> int:
        """Re-queue failed and upstream-failed partitions in the same backfill; materialized ones stay."""
        record = self._require(backfill_id)
        if record.status in (BackfillStatus.CANCELING,):
            raise InvalidStateTransition(f"Backfill {backfill_id} is being canceled; wait, then retry.")
        with self._database.transaction() as connection:
            requeued = self._progress.reset_partitions(
                backfill_id,
                from_statuses=(
                    PartitionStatus.FAILED,
                    PartitionStatus.UPSTREAM_FAILED,
                    PartitionStatus.CANCELED,
                ),
                connection=connection,
            )
            if requeued:
                self._backfills.update_status(
                    backfill_id, BackfillStatus.RUNNING, clear_ended_at=True, connection=connection
                )
        if requeued:
            self.note_full_plan(backfill_id)
        return requeued

    def pause(self, backfill_id: str) -> None:
        record = self._require(backfill_id)
        if record.status is not BackfillStatus.RUNNING:
            raise InvalidStateTransition(
                f"Backfill {backfill_id} is {record.status.value}; only a running backfill pauses."
            )
        self._backfills.update_status(backfill_id, BackfillStatus.PAUSED)

    def resume(self, backfill_id: str) -> None:
        record = self._require(backfill_id)
        if record.status is not BackfillStatus.PAUSED:
            raise InvalidStateTransition(
                f"Backfill {backfill_id} is {record.status.value}; only a paused backfill resumes."
            )
        self._backfills.update_status(backfill_id, BackfillStatus.RUNNING)
        self.note_full_plan(backfill_id)

    def begin_cancel(self, backfill_id: str) -> list[RunRecord]:
        """Stop submitting: queued runs and unstarted partitions are canceled at once.

        Returns the active runs, which the caller terminates; the backfill ends as canceled when
        the last of them has stopped.
        """
        record = self._require(backfill_id)
        if record.status.is_terminal:
            raise InvalidStateTransition(f"Backfill {backfill_id} already ended ({record.status.value}).")
        now = self._clock()
        with self._database.transaction() as connection:
            self._backfills.update_status(backfill_id, BackfillStatus.CANCELING, connection=connection)
            self._runs.cancel_queued(backfill_id, ended_at=now, connection=connection)
            self._progress.set_partition_status(
                backfill_id,
                None,
                None,
                PartitionStatus.CANCELED,
                only_from=(PartitionStatus.PENDING, PartitionStatus.QUEUED),
                connection=connection,
            )
        return self._runs.list(backfill_id=backfill_id, statuses=list(_UNFINISHED_RUNS), limit=100_000)

    def update_limits(
        self, backfill_id: str, *, max_concurrent_runs: int | None, priority: int | None
    ) -> None:
        self._require(backfill_id)
        self._backfills.update_limits(backfill_id, max_concurrent_runs=max_concurrent_runs, priority=priority)
        if priority is not None:
            self._runs.set_priority_of_queued(backfill_id, priority)
        self._wake()

    def _require(self, backfill_id: str) -> BackfillRecord:
        record = self._backfills.get(backfill_id)
        if record is None:
            raise BackfillNotFound(f"No backfill with id {shown(backfill_id)}.")
        return record


def _dry_run_view(planner: BackfillPlanner, target: ResolvedTarget) -> BackfillPlanView:
    """Every run the backfill would make if every partition succeeds: counted, the first listed."""
    runs_by_asset = dict.fromkeys(target.asset_keys, 0)
    listed: list[PlannedRunView] = []
    run_count = 0
    for run in planner.every_run(target.partitions):
        run_count += 1
        for asset_key in run.asset_keys:
            runs_by_asset[asset_key] += 1
        if len(listed) < DRY_RUN_LISTED_RUNS:
            listed.append(PlannedRunView(run.asset_keys, run.partition_range))
    return BackfillPlanView(
        partitions_by_asset={key: tuple(part.keys()) for key, part in target.partitions.items()},
        runs=tuple(listed),
        partition_count=target.partition_count,
        run_count=run_count,
        runs_by_asset=runs_by_asset,
    )


def _run_spans(runs: Sequence[RunRecord], planned: Sequence[PlannedRun]) -> list[PartitionSpan]:
    """Each run's partitions of each of its assets, queued in it: one span per run and asset."""
    return [
        PartitionSpan(asset_key, plan.first_position, plan.last_position, PartitionStatus.QUEUED, run.id)
        for run, plan in zip(runs, planned, strict=True)
        for asset_key in plan.asset_keys
    ]
