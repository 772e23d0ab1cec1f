"""Apply what run workers report: claims, run and partition statuses, logs, and changes for the planner.

A worker claims its run attempt before executing anything (``claim``): exactly one worker is granted
each attempt, and only the claimant's reports are applied; others are refused (``RejectedReport``)
and change nothing. Reports may repeat (a worker retries while the control plane restarts): each
event is applied once, recognized by (run id, worker id, sequence), and status updates only move
forward.

With ``credentials``, a claim or report must carry the run attempt's credential
(``control_plane.runs.credentials``): one without it, or with another run's or attempt's, is refused
and changes nothing. A partition outcome must name one of the run's assets, and either no partition
(the run's whole range) or the run's whole range itself: anything else is refused as out of scope.

A report's statuses are written *before* it is marked as applied, and its log line after: a control
plane killed between the two leaves the report unmarked, so the worker's resend applies it again
(harmless, statuses only move forward) instead of being dropped as a duplicate with its outcome
lost. At worst such a crash costs one log line, never a partition's status.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from code_server.asset_key import AssetKey
from code_server.partitions.keys import PartitionKeyRange
from control_plane.errors import RunNotFound, shortened
from control_plane.records import PartitionStatus, RunFailureKind, RunRecord, RunStatus
from control_plane.runs.credentials import RunCredentialRefused, RunCredentials
from control_plane.storage import (
    AssetStatusStore,
    BackfillProgressStore,
    BackfillStore,
    Database,
    RunEventStore,
    RunStore,
)
from launcher.base import WorkerIdentity

logger = logging.getLogger("partita.control_plane.reports")

#: (kind, message, asset) of one run log entry.
LogEntry = tuple[str, str, AssetKey | None]

#: Statuses of a run's partitions that are not final yet.
_RUN_OPEN_PARTITIONS = (PartitionStatus.QUEUED, PartitionStatus.RUNNING)
#: Partition statuses a report may move on from. A late "materialized" still wins over a cancel.
_OPEN = (PartitionStatus.PENDING, PartitionStatus.QUEUED, PartitionStatus.RUNNING, PartitionStatus.CANCELED)


@dataclass(frozen=True, slots=True)
class RunStartedReport:
    """The worker began executing (after its claim was granted)."""

    run_id: str
    worker_id: str
    sequence: int
    timestamp: datetime
    detail: str = ""

    @property
    def event_id(self) -> str:
        return _event_id(self.worker_id, self.sequence)


@dataclass(frozen=True, slots=True)
class PartitionOutcomeReport:
    """An asset of the run materialized or failed over the run's whole partition range."""

    run_id: str
    worker_id: str
    sequence: int
    timestamp: datetime
    asset_key: AssetKey
    materialized: bool
    upstream_failed: bool = False
    error: str | None = None
    #: The partitions the worker named (a key is a one-key range); None: the run's whole range.
    partitions: PartitionKeyRange | None = None

    @property
    def event_id(self) -> str:
        return _event_id(self.worker_id, self.sequence)


@dataclass(frozen=True, slots=True)
class RunFinishedReport:
    """The worker finished the run (``success`` when every asset materialized)."""

    run_id: str
    worker_id: str
    sequence: int
    timestamp: datetime
    success: bool
    error: str | None = None

    @property
    def event_id(self) -> str:
        return _event_id(self.worker_id, self.sequence)


RunReport = RunStartedReport | PartitionOutcomeReport | RunFinishedReport


def _event_id(worker_id: str, sequence: int) -> str:
    return f"{worker_id}:{sequence}"


class RejectionKind(StrEnum):
    """Why a report was refused: a malformed event, a credential that does not cover its run, an
    asset or partition outside the run, an unknown run, or a worker without the claim."""

    MALFORMED = "malformed"
    FORBIDDEN = "forbidden"
    OUT_OF_SCOPE = "out_of_scope"
    UNKNOWN_RUN = "unknown_run"
    NOT_CLAIMANT = "not_claimant"


@dataclass(frozen=True, slots=True)
class RejectedReport:
    """A report that was not applied, and why, naming the run and the event."""

    run_id: str
    worker_id: str
    sequence: int
    kind: RejectionKind
    reason: str


@dataclass(frozen=True, slots=True)
class ClaimDecision:
    """The answer to a worker's claim of a run attempt."""

    granted: bool
    #: The worker that holds the attempt (the asker when granted); None when nobody does.
    holder: WorkerIdentity | None
    run_status: RunStatus
    #: Why not; empty when granted.
    refusal: str = ""


@dataclass
class AppliedReports:
    accepted: int = 0
    duplicates: int = 0
    #: Partitions that reached a final status, per backfill, for the planner.
    changes: dict[str, dict[AssetKey, list[str]]] = field(default_factory=dict)
    #: Runs that ended, so limits free up.
    finished_runs: list[str] = field(default_factory=list)
    run_statuses: dict[str, RunStatus] = field(default_factory=dict)
    #: Reports refused (unknown run, not the claimant's), which changed nothing.
    rejected: list[RejectedReport] = field(default_factory=list)

    def run_finished(self, run: RunRecord) -> None:
        """``run`` ended: its slot frees up, and its backfill is looked at again (it may be done)."""
        self.finished_runs.append(run.id)
        if run.backfill_id:
            self.changes.setdefault(run.backfill_id, {})


class RunReportHandler:
    """Applies reports in order: statuses first, then the mark that makes a resend a duplicate."""

    def __init__(
        self,
        database: Database,
        *,
        on_applied: Callable[[AppliedReports], None],
        credentials: RunCredentials | None = None,
    ) -> None:
        """``credentials`` None verifies no credential: for tests of the claim and report logic only;
        the control plane always passes its own."""
        self._database = database
        self._credentials = credentials
        self._runs = RunStore(database)
        self._backfills = BackfillStore(database)
        self._progress = BackfillProgressStore(database)
        self._asset_status = AssetStatusStore(database)
        self._events = RunEventStore(database)
        self._on_applied = on_applied

    def claim(
        self,
        run_id: str,
        attempt: int,
        worker: WorkerIdentity,
        *,
        handle: str | None,
        now: datetime,
        credential: str | None = None,
    ) -> ClaimDecision:
        """Grant the run attempt to ``worker`` if nobody holds it and the run is being launched.

        A claim granted to this very worker before is granted again (a retried call). ``handle``
        names the worker's process for the launcher (``RunLauncher.handle_for_worker``). Raises
        ``RunNotFound`` for an unknown run, and ``RunCredentialRefused`` (before reading anything)
        when ``credential`` is not the one of this attempt, or the attempt is no longer the run's.
        """
        if self._credentials is not None:
            self._credentials.check(credential, run_id, attempt)
        with self._database.unit_of_work():
            run = self._runs.get(run_id)
            if run is None:
                raise RunNotFound(
                    f"No run with id {run_id!r}: a worker can claim only a run the control plane launched."
                )
            if self._credentials is not None and run.attempt != attempt:
                raise RunCredentialRefused(run_id)
            if run.backfill_id:
                # The backfill first, in the order cancel, planning and reports lock.
                self._backfills.lock([run.backfill_id])
            granted = self._runs.claim(run_id, attempt, worker, now=now, handle=handle)
            if granted:
                if run.backfill_id:
                    self._progress.set_status_for_run(
                        run.id,
                        PartitionStatus.RUNNING,
                        only_from=(PartitionStatus.QUEUED,),
                        backfill_id=run.backfill_id,
                    )
                self._events.append(
                    run.id, [("control_plane", f"Claimed by {describe_worker(worker)}", None)]
                )
            latest = self._runs.get(run_id)
            assert latest is not None
        if granted:
            applied = AppliedReports(run_statuses={run_id: latest.status})
            if run.backfill_id:
                applied.changes[run.backfill_id] = {}
            self._on_applied(applied)
            return ClaimDecision(True, worker, latest.status)
        if latest.worker is not None and latest.worker.worker_id == worker.worker_id:
            return ClaimDecision(True, latest.worker, latest.status)
        return ClaimDecision(False, latest.worker, latest.status, _refusal(latest, attempt))

    def apply(self, reports: Sequence[RunReport], credential: str | None = None) -> AppliedReports:
        """Apply the batch in one transaction (all of it or none: a worker resends what failed).

        Reports of unknown runs, of runs whose current attempt ``credential`` does not cover, of a
        worker that does not hold the run's claim, or outside the run's assets and range, are
        refused one by one (``AppliedReports.rejected``) and change nothing; the rest is applied.
        """
        applied = AppliedReports()
        with self._database.unit_of_work():
            self._apply_each(reports, applied, credential)
        if applied.accepted:
            self._on_applied(applied)
        return applied

    def _apply_each(
        self, reports: Sequence[RunReport], applied: AppliedReports, credential: str | None
    ) -> None:
        # A batch is mostly one run's reports: read each run once, keep its status current, and
        # append its event log lines once at the end.
        runs: dict[str, RunRecord | None] = {
            run_id: self._runs.get(run_id) for run_id in dict.fromkeys(r.run_id for r in reports)
        }
        covered = {
            run_id: self._credentials is None or self._credentials.covers(credential, run.id, run.attempt)
            for run_id, run in runs.items()
            if run is not None
        }
        # Lock the backfills before any run row, in the order cancel and planning lock them, so two
        # transactions never hold one each and wait for the other. A caller without the credential
        # locks nothing.
        self._backfills.lock(
            sorted({run.backfill_id for run in runs.values() if run and run.backfill_id and covered[run.id]})
        )
        logs: dict[str, list[LogEntry]] = {}
        for report in reports:
            run = runs[report.run_id]
            rejection = _rejection(run, report, covered.get(report.run_id, False))
            if rejection is not None:
                applied.rejected.append(rejection)
                continue
            assert run is not None
            effects = AppliedReports()
            if isinstance(report, RunStartedReport):
                log = self._started(run, report)
            elif isinstance(report, PartitionOutcomeReport):
                log = self._partition_outcome(run, report, effects)
            else:
                # The run's error names its first failed asset, read from the log: write it first.
                self._events.append(run.id, logs.pop(run.id, []))
                log = self._finished(run, report, effects)
            if not self._events.mark_reported(report.run_id, report.event_id):
                applied.duplicates += 1  # applied before; doing it again changed nothing
                continue
            logs.setdefault(run.id, []).extend(log)
            applied.accepted += 1
            for backfill_id, changes in effects.changes.items():
                merged = applied.changes.setdefault(backfill_id, {})
                for asset_key, keys in changes.items():
                    merged.setdefault(asset_key, []).extend(keys)
            applied.finished_runs.extend(effects.finished_runs)
            latest = self._runs.status_of(run.id)
            if latest is not None:
                applied.run_statuses[run.id] = latest
                runs[run.id] = replace(run, status=latest)
        for run_id, entries in logs.items():
            self._events.append(run_id, entries)

    def fail_run(
        self,
        run: RunRecord,
        reason: str,
        now: datetime,
        applied: AppliedReports | None = None,
        *,
        kind: RunFailureKind | None = None,
    ) -> AppliedReports:
        """Fail a run the worker cannot report on (process gone, Job deleted): its open partitions fail too."""
        applied = applied or AppliedReports()
        # Not from CANCELING: a run that vanished while being canceled ends canceled, not failed.
        running = (RunStatus.QUEUED, RunStatus.STARTING, RunStatus.STARTED)
        # One transaction: a crash between the run's end and its partitions' would leave them
        # running under an ended run, and its backfill would never end.
        with self._ending(run):
            failed = self._runs.update_status(
                run.id, RunStatus.FAILURE, error=reason, failure_kind=kind, ended_at=now, only_from=running
            )
            if failed:
                self._events.append(run.id, [("control_plane", f"Run failed: {reason}", None)])
                self._fail_open_partitions(run, applied)
        if failed:
            applied.run_finished(run)
            applied.run_statuses[run.id] = RunStatus.FAILURE
            self._on_applied(applied)
        return applied

    def finish_canceled_run(self, run: RunRecord, now: datetime) -> None:
        """A run being canceled whose process is gone ends canceled (after a crash mid-cancel too)."""
        canceled = self.end_canceled(run, now, only_from=(RunStatus.CANCELING,))
        if canceled is not None:
            applied = AppliedReports(run_statuses={run.id: RunStatus.CANCELED})
            if run.backfill_id and canceled:
                applied.changes[run.backfill_id] = canceled
            applied.run_finished(run)
            self._on_applied(applied)

    def end_canceled(
        self, run: RunRecord, now: datetime, *, only_from: Sequence[RunStatus]
    ) -> dict[AssetKey, list[str]] | None:
        """Record ``run`` canceled and cancel its open partitions, in one transaction; returns them
        by asset, or None when the run was not in ``only_from`` (it ended meanwhile)."""
        with self._ending(run):
            if not self._runs.update_status(run.id, RunStatus.CANCELED, ended_at=now, only_from=only_from):
                return None
            self._events.append(run.id, [("control_plane", "Run canceled", None)])
            return self.cancel_open_partitions(run)

    def close_partitions_of_ended_run(self, run: RunRecord) -> AppliedReports:
        """Give an ended run's still-open partitions the end its status implies (canceled for a
        canceled run, failed otherwise): repairs what a crash left between the two writes."""
        applied = AppliedReports()
        with self._ending(run):
            if run.status is RunStatus.CANCELED:
                canceled = self.cancel_open_partitions(run)
                if run.backfill_id and canceled:
                    applied.changes[run.backfill_id] = canceled
            else:
                self._fail_open_partitions(run, applied)
        if applied.changes:
            applied.run_finished(run)
            self._on_applied(applied)
        return applied

    @contextmanager
    def _ending(self, run: RunRecord) -> Iterator[None]:
        """One transaction for a run's end and its partitions', its backfill locked first (the
        order reports, cancel and planning lock in)."""
        with self._database.unit_of_work():
            if run.backfill_id:
                self._backfills.lock([run.backfill_id])
            yield

    def cancel_open_partitions(self, run: RunRecord) -> dict[AssetKey, list[str]]:
        """A canceled run's partitions that had not finished are canceled too; returns them by asset."""
        return self._close_open_partitions(run, PartitionStatus.CANCELED)

    def _started(self, run: RunRecord, report: RunStartedReport) -> list[LogEntry]:
        # The claim made the run started and its partitions running; this is its log line.
        return [("run_started", f"Run started {report.detail}".strip(), None)]

    def _partition_outcome(
        self, run: RunRecord, report: PartitionOutcomeReport, applied: AppliedReports
    ) -> list[LogEntry]:
        if report.materialized:
            status, message = PartitionStatus.MATERIALIZED, "Materialized"
        elif report.upstream_failed:
            status, message = PartitionStatus.UPSTREAM_FAILED, report.error or "Upstream failed"
        else:
            status, message = PartitionStatus.FAILED, report.error or "Failed"
        range_text = str(run.partition_range) if run.partition_range else "(unpartitioned)"
        keys = self._partition_keys_of(run, report.asset_key)
        if status is not PartitionStatus.UPSTREAM_FAILED:
            self._asset_status.upsert(report.asset_key, keys, status, run.id)
        if run.backfill_id:
            self._progress.set_status_for_run(
                run.id, status, asset_key=report.asset_key, only_from=_OPEN, backfill_id=run.backfill_id
            )
            applied.changes.setdefault(run.backfill_id, {}).setdefault(report.asset_key, []).extend(keys)
        return [
            (
                f"partition_{status.value}",
                f"{report.asset_key.to_user_string()} {range_text}: {message}",
                report.asset_key,
            )
        ]

    def _finished(self, run: RunRecord, report: RunFinishedReport, applied: AppliedReports) -> list[LogEntry]:
        status = RunStatus.SUCCESS if report.success else RunStatus.FAILURE
        error = report.error if report.success or report.error else self._first_asset_failure(run.id)
        # A run being canceled ends as canceled, whatever it says.
        if run.status in (RunStatus.CANCELING, RunStatus.CANCELED):
            status = RunStatus.CANCELED
        self._runs.update_status(
            run.id,
            status,
            error=error,
            # A run-level error (code that would not load, say) is not an asset's failure.
            failure_kind=RunFailureKind.ASSET_FAILED
            if status is RunStatus.FAILURE and not report.error
            else None,
            ended_at=report.timestamp,
            only_from=_UNFINISHED_RUN_STATUSES,
        )
        # A partition still open now never will be: its outcome was not reported (or lost).
        self._fail_open_partitions(run, applied)
        applied.run_finished(run)
        return [("run_finished", f"Run finished: {status.value}" + (f": {error}" if error else ""), None)]

    def _first_asset_failure(self, run_id: str) -> str | None:
        """``asset: Error: message`` of the first asset that failed in the run, from its event log."""
        for event in self._events.list(run_id, limit=10_000):
            if event.kind == f"partition_{PartitionStatus.FAILED.value}" and event.asset_key is not None:
                summary = event.message.split(": ", 1)[-1].splitlines()[0]
                return f"{event.asset_key.to_user_string()}: {summary}"
        return None

    def _fail_open_partitions(self, run: RunRecord, applied: AppliedReports) -> None:
        """Fail what the run left open (the reason is on the run); the planner hears of it."""
        if not run.backfill_id:
            return
        failed = self._close_open_partitions(run, PartitionStatus.FAILED)
        for asset_key, keys in failed.items():
            self._asset_status.upsert(asset_key, keys, PartitionStatus.FAILED, run.id)
            applied.changes.setdefault(run.backfill_id, {}).setdefault(asset_key, []).extend(keys)

    def _close_open_partitions(self, run: RunRecord, status: PartitionStatus) -> dict[AssetKey, list[str]]:
        """Give the run's still-open partitions a final ``status``; returns them by asset."""
        if not run.backfill_id:
            return {}
        closed: dict[AssetKey, list[str]] = {}
        for row in self._progress.partitions_of_run(run.id):
            if row.status in _RUN_OPEN_PARTITIONS:
                closed.setdefault(row.asset_key, []).append(row.partition_key)
        if closed:
            self._progress.set_status_for_run(
                run.id, status, only_from=_RUN_OPEN_PARTITIONS, backfill_id=run.backfill_id
            )
        return closed

    def _partition_keys_of(self, run: RunRecord, asset_key: AssetKey) -> list[str]:
        if run.backfill_id:
            return [
                row.partition_key
                for row in self._progress.partitions_of_run(run.id)
                if row.asset_key == asset_key
            ]
        # Runs outside backfills (a sensor's RunRequest) have one partition key at most.
        return [run.partition_range.start] if run.partition_range is not None else [""]


_UNFINISHED_RUN_STATUSES = (RunStatus.QUEUED, RunStatus.STARTING, RunStatus.STARTED, RunStatus.CANCELING)


def describe_worker(worker: WorkerIdentity) -> str:
    """``worker W on HOST (pid P)``, for logs and refusals."""
    where = f" on {worker.hostname}" if worker.hostname else ""
    pid = f" (pid {worker.pid})" if worker.pid else ""
    return f"worker {worker.worker_id}{where}{pid}"


def _rejection(run: RunRecord | None, report: RunReport, covered: bool) -> RejectedReport | None:
    """Why ``report`` must not be applied to ``run``; None when its credential covers the run's
    attempt, its worker holds the run's claim, and it stays within the run's assets and range."""
    if run is None:
        return RejectedReport(
            report.run_id, report.worker_id, report.sequence, RejectionKind.UNKNOWN_RUN,
            f"No run with id {report.run_id!r}.",
        )  # fmt: skip
    if not covered:
        reason = str(RunCredentialRefused(run.id))
        return RejectedReport(run.id, report.worker_id, report.sequence, RejectionKind.FORBIDDEN, reason)
    if run.worker is None:
        reason = f"Run {run.id} has not been claimed: a worker claims its run (ClaimRun) before it reports."
    elif run.worker.worker_id != report.worker_id:
        reason = f"Run {run.id} is claimed by {describe_worker(run.worker)}: events of worker {report.worker_id} are refused."
    else:
        out_of_scope = _out_of_scope(run, report) if isinstance(report, PartitionOutcomeReport) else None
        if out_of_scope is None:
            return None
        return RejectedReport(
            run.id, report.worker_id, report.sequence, RejectionKind.OUT_OF_SCOPE, out_of_scope
        )
    return RejectedReport(run.id, report.worker_id, report.sequence, RejectionKind.NOT_CLAIMANT, reason)


def _out_of_scope(run: RunRecord, report: PartitionOutcomeReport) -> str | None:
    """Why the outcome is not the run's to report (an asset it does not execute, a partition it
    does not cover); None when it is."""
    asset = report.asset_key.to_user_string()
    if report.asset_key not in run.asset_keys:
        assets = ", ".join(key.to_user_string() for key in run.asset_keys)
        return f"Asset {asset!r} is not one of run {run.id}'s assets ({assets}): its outcome is refused."
    named = report.partitions
    if named is None or named == run.partition_range:
        return None
    what = (
        f"partition {shortened(named.start)!r}"
        if named.start == named.end
        else f"partition range {shortened(str(named))}"
    )
    if run.partition_range is None:
        return f"Run {run.id} has no partitions: {what} of asset {asset!r} is outside it."
    return (
        f"{what[0].upper()}{what[1:]} of asset {asset!r} is not run {run.id}'s range "
        f"{run.partition_range}: a report names the run's whole range or no partition."
    )


def _refusal(run: RunRecord, attempt: int) -> str:
    """Why a claim of ``run``'s ``attempt`` was refused, for the refused worker's log."""
    if run.worker is not None:
        return f"Run {run.id} attempt {run.attempt} is held by {describe_worker(run.worker)}."
    if attempt != run.attempt:
        return f"Run {run.id} is at attempt {run.attempt}, not {attempt}."
    if run.status is RunStatus.QUEUED:
        return f"Run {run.id} is queued, not being launched: it will be launched again."
    return f"Run {run.id} is {run.status.value}: it is not being launched."
