"""The run monitor: asks the launcher about runs whose workers have not reported an end.

A run whose process or Job vanished, or ended without saying how, is failed with the reason the
launcher gives, and its open partitions become failed, so a retry picks them up.

It also recovers launches cut off by a crash (the run was handed to the launcher, its handle never
written): it asks the launcher whether a worker of the run exists (``RunLauncher.find``) and adopts
it, fails a claimed run whose worker left no trace, and queues again only a run that no worker
claimed and the launcher has no trace of. Should a worker exist all the same, the worker's claim
keeps the second launch from executing: each run attempt executes at most once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from control_plane.records import RunFailureKind, RunRecord, RunStatus
from control_plane.runs.queue import launch_request
from control_plane.runs.reports import RunReportHandler
from control_plane.storage import BackfillProgressStore, Database, RunEventStore, RunStore
from launcher.base import CodeLocationTarget, LauncherError, RunHealth, RunLauncher, RunState

logger = logging.getLogger("partita.control_plane.monitor")

_WATCHED = (RunStatus.STARTING, RunStatus.STARTED, RunStatus.CANCELING)
#: A run tag giving the most seconds a run may take once started; past it the run is stopped and failed.
MAX_RUNTIME_TAG = "partita/max_runtime"


class RunMonitor:
    def __init__(
        self,
        database: Database,
        launcher: RunLauncher,
        reports: RunReportHandler,
        *,
        clock: Callable[[], datetime],
        start_timeout: timedelta = timedelta(minutes=10),
    ) -> None:
        self._runs = RunStore(database)
        self._events = RunEventStore(database)
        self._progress = BackfillProgressStore(database)
        self._launcher = launcher
        self._reports = reports
        self._clock = clock
        self._start_timeout = start_timeout

    def recover_launches(self) -> int:
        """Settle runs whose launch was never recorded; returns how many were queued again."""
        requeued = 0
        for run in self._runs.unrecorded_launches(self._launcher.kind):
            request = launch_request(run, CodeLocationTarget(name=run.location), control_plane_address="")
            try:
                handle = self._launcher.find(request)
            except LauncherError as error:
                logger.warning(
                    "Run %s: cannot tell whether its worker started (%s); asking again later", run.id, error
                )
                continue
            if handle is not None:
                if self._runs.record_launch(run.id, launcher_kind=self._launcher.kind, handle=handle):
                    self._log(
                        run, f"Found the run's worker ({handle}) after the control plane stopped mid-launch"
                    )
                    logger.warning("Run %s: adopted its worker %s, launched before a restart", run.id, handle)
                continue
            if run.status is RunStatus.STARTED:
                # Claimed, so a worker ran, but the launcher knows no process or Job of it any more.
                reason = f"The run's worker (claimed by {_describe(run)}) left no {self._launcher.kind} process or Job."
                self._reports.fail_run(run, reason, self._clock(), kind=RunFailureKind.WORKER_LOST)
                continue
            if self._runs.update_status(run.id, RunStatus.QUEUED, only_from=(RunStatus.STARTING,)):
                requeued += 1
                self._log(
                    run,
                    "The control plane stopped while launching this run, and no worker of it started; queued again",
                )
                logger.warning(
                    "Run %s was being launched when the control plane stopped; queued again", run.id
                )
        return requeued

    def repair_ended_runs(self) -> int:
        """At start: close the partitions left open under runs that had ended (a control plane
        killed between a run's end and its partitions' before the two were one transaction);
        returns how many runs were repaired."""
        repaired = 0
        for run_id in self._progress.ended_runs_with_open_partitions():
            run = self._runs.get(run_id)
            if run is None or not run.status.is_terminal:
                continue
            if self._reports.close_partitions_of_ended_run(run).changes:
                repaired += 1
                self._log(run, f"Closed the partitions left open when this run ended ({run.status.value})")
                logger.warning("Run %s had ended with partitions still open; closed them", run.id)
        return repaired

    def check(self) -> int:
        """Check every launched, unfinished run; returns how many were failed."""
        self.recover_launches()
        failed = 0
        now = self._clock()
        watched = [
            run
            for run in self._runs.list(statuses=list(_WATCHED), limit=100_000)
            # Not launched yet, or by another launcher than this control plane's: not ours to check.
            if run.launcher_handle and run.launcher_kind == self._launcher.kind
        ]
        # One bulk question per pass (a launcher that can, asks its backend once, not once a run).
        healths = self._launcher.check_many([(run.id, run.launcher_handle or "") for run in watched])
        for run in watched:
            health = healths[run.id]
            reason, kind = self._failure(run, health, now)
            if reason is None:
                continue
            if health.state not in (RunState.NOT_FOUND, RunState.SUCCEEDED):
                # Still there (a pod waiting on an image, a run past its limit): stop it, so nothing
                # the control plane gave up on keeps running or holding a node.
                self._terminate(run, reason)
            latest = self._runs.get(run.id)
            if latest is None or latest.status.is_terminal:
                continue  # it reported its end while we looked
            if latest.status is RunStatus.CANCELING:
                # Being canceled: its end is the cancel's doing. Finish it as canceled (the canceler
                # does the same; whichever comes first wins the compare-and-set).
                self._reports.finish_canceled_run(latest, now)
                continue
            logger.warning("Failing run %s: %s", run.id, reason)
            self._reports.fail_run(latest, reason, now, kind=kind)
            failed += 1
        return failed

    def _failure(
        self, run: RunRecord, health: RunHealth, now: datetime
    ) -> tuple[str | None, RunFailureKind | None]:
        """Why ``run`` must be failed now, if it must; None while it is healthy."""
        launcher_kind = health.failure_kind
        if health.state in (RunState.FAILED, RunState.NOT_FOUND):
            reason = health.reason or f"The run's {self._launcher.kind} process is gone."
            return reason, launcher_kind or RunFailureKind.WORKER_LOST
        if health.state is RunState.SUCCEEDED:
            return (
                "The run worker exited without reporting the outcome of every asset.",
                RunFailureKind.WORKER_EXITED,
            )
        if run.status is RunStatus.STARTING and now - run.updated_at > self._start_timeout:
            why = f" Last seen: {health.reason}" if health.reason else ""
            return f"The run did not start within {self._start_timeout}.{why}", RunFailureKind.START_TIMEOUT
        if (limit := _max_runtime(run)) is not None and run.started_at and now - run.started_at > limit:
            return (
                f"The run exceeded its max_runtime of {limit} (tag {MAX_RUNTIME_TAG}) and was stopped.",
                RunFailureKind.MAX_RUNTIME_EXCEEDED,
            )
        return None, None

    def _log(self, run: RunRecord, message: str) -> None:
        self._events.append(run.id, [("control_plane", message, None)])

    def _terminate(self, run: RunRecord, reason: str) -> None:
        assert run.launcher_handle is not None
        try:
            self._launcher.terminate(run.id, run.launcher_handle)
        except LauncherError as error:
            # The run is failed all the same; the next check finds it again only while the run is unfinished.
            logger.warning("Run %s (%s): could not stop it: %s", run.id, reason, error)


def _describe(run: RunRecord) -> str:
    worker = run.worker
    if worker is None:
        return "an unknown worker"
    return f"worker {worker.worker_id} on {worker.hostname or 'an unknown host'}, pid {worker.pid}"


def _max_runtime(run: RunRecord) -> timedelta | None:
    value = run.tags.get(MAX_RUNTIME_TAG)
    if value is None:
        return None
    try:
        return timedelta(seconds=float(value))
    except ValueError:
        logger.warning(
            "Run %s: tag %s=%r is not a number of seconds; ignored", run.id, MAX_RUNTIME_TAG, value
        )
        return None
