"""The run queue: launch queued runs within the global and per-backfill limits, by priority, fairly.

Fair: at equal priority, backfills take turns (one run each, round robin), so a large backfill
launched first does not hold every slot while a small one waits. Turns carry over from one call
to the next: the backfill with the fewest active runs, then the one served longest ago, goes
first, so that even one free slot at a time is shared instead of always going to the same
backfill. Cost per call grows with the runs launched and the number of running backfills, not
with the size of any backfill.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Mapping
from datetime import datetime

from control_plane.errors import LocationUnavailable
from control_plane.locations import CodeLocations
from control_plane.records import BackfillStatus, RunRecord, RunStatus
from control_plane.runs.credentials import RunCredentials
from control_plane.storage import BackfillStore, Database, RunEventStore, RunStore
from launcher.base import CodeLocationTarget, LaunchRequest, RunLauncher

logger = logging.getLogger("partita.control_plane.queue")


class RunQueue:
    def __init__(
        self,
        database: Database,
        locations: CodeLocations,
        launcher: RunLauncher,
        *,
        control_plane_address: Callable[[], str],
        max_concurrent_runs: int,
        clock: Callable[[], datetime],
        credentials: RunCredentials,
        on_launch_failed: Callable[[RunRecord, str], object],
        reporting_environment: Mapping[str, str] | None = None,
    ) -> None:
        self._reporting_environment = dict(reporting_environment or {})
        self._runs = RunStore(database)
        self._backfills = BackfillStore(database)
        self._events = RunEventStore(database)
        self._locations = locations
        self._launcher = launcher
        self._address = control_plane_address
        self.max_concurrent_runs = max_concurrent_runs
        self._clock = clock
        self._credentials = credentials
        self._on_launch_failed = on_launch_failed
        #: Backfill id -> when (a serial number) it last had a run launched; kept for running ones only.
        self._last_turn: dict[str, int] = {}
        self._turns = itertools.count(1)

    def launch_queued(self) -> int:
        """Launch as many queued runs as the limits allow; returns how many were launched."""
        total_active, active_by_backfill = self._runs.active_counts()
        free = self.max_concurrent_runs - total_active
        if free <= 0:
            return 0
        launched = 0
        for run in self._next_runs(free, active_by_backfill):
            if run.backfill_id is not None:
                self._last_turn[run.backfill_id] = next(self._turns)
            if self._launch(run):
                launched += 1
        return launched

    def _next_runs(self, free: int, active_by_backfill: dict[str, int]) -> list[RunRecord]:
        """Up to ``free`` queued runs: highest priority first, backfills taking turns within a priority."""
        queues: dict[int, list[list[RunRecord]]] = {}
        standalone = self._runs.queued_runs(limit=free, backfill_id=None, standalone_only=True)
        for run in standalone:
            queues.setdefault(run.priority, []).append([run])
        running = self._backfills.list(statuses=[BackfillStatus.RUNNING], limit=10_000)
        self._last_turn = {b.id: self._last_turn[b.id] for b in running if b.id in self._last_turn}
        # Whose turn it is: fewest active runs first, then the one served longest ago, then the oldest.
        running.sort(
            key=lambda b: (active_by_backfill.get(b.id, 0), self._last_turn.get(b.id, 0), b.created_at)
        )
        for backfill in running:
            slots = free
            if backfill.max_concurrent_runs:
                slots = min(slots, backfill.max_concurrent_runs - active_by_backfill.get(backfill.id, 0))
            if slots <= 0:
                continue
            runs = self._runs.queued_runs(limit=slots, backfill_id=backfill.id)
            if runs:
                queues.setdefault(backfill.priority, []).append(runs)
        chosen: list[RunRecord] = []
        for priority in sorted(queues, reverse=True):
            for run in _round_robin(queues[priority]):
                if len(chosen) == free:
                    return chosen
                chosen.append(run)
        return chosen

    def _launch(self, run: RunRecord) -> bool:
        try:
            target = self._locations.launch_target(run.location)
        except LocationUnavailable as unavailable:
            # Not the run's fault: it stays queued and launches once the location answers.
            logger.warning("Run %s waits for its code location: %s", run.id, unavailable)
            return False
        # The launcher's kind is written before the launch, so that a launch cut off by a crash is
        # recovered by asking the right launcher (``RunMonitor.recover_launches``).
        if not self._runs.update_status(
            run.id, RunStatus.STARTING, launcher_kind=self._launcher.kind, only_from=(RunStatus.QUEUED,)
        ):
            return False  # canceled or taken meanwhile
        try:
            request = launch_request(
                run,
                target,
                self._address(),
                self._credentials.mint(run.id, run.attempt),
                reporting_environment=self._reporting_environment,
            )
            handle = self._launcher.launch(request)
        except Exception as error:  # a launch failure fails this run, never the loop
            reason = f"Could not launch run: {error}"
            logger.warning("Run %s: %s", run.id, reason)
            self._on_launch_failed(run, reason)
            return False
        # Unless its worker claimed the run first and named its own process.
        self._runs.record_launch(run.id, launcher_kind=self._launcher.kind, handle=handle)
        self._events.append(
            run.id, [("control_plane", f"Launched by the {self._launcher.kind} launcher ({handle})", None)]
        )
        return True


def launch_request(
    run: RunRecord,
    target: CodeLocationTarget,
    control_plane_address: str,
    run_credential: str = "",
    *,
    reporting_environment: Mapping[str, str] | None = None,
) -> LaunchRequest:
    """What the launcher is given for ``run``: the same for a launch and for finding one again
    (which needs no ``run_credential``: only a launch hands one to a worker)."""
    return LaunchRequest(
        run_id=run.id,
        location=target,
        asset_keys=run.asset_keys,
        partition_range=run.partition_range,
        control_plane_address=control_plane_address,
        backfill_id=run.backfill_id,
        tags=run.tags,
        attempt=run.attempt,
        reporting_environment=dict(reporting_environment or {}),
        run_credential=run_credential,
    )


def _round_robin(queues: list[list[RunRecord]]) -> list[RunRecord]:
    return [run for group in itertools.zip_longest(*queues) for run in group if run is not None]
