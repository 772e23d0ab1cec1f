"""The control plane assembled: storage, code locations, engine, queue, monitor, daemon and gRPC API."""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from grpc import aio
from grpc_health.v1 import _async as health_aio  # health.aio, which the typed stubs omit
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from sqlalchemy.engine import make_url

from code_server.asset_key import AssetKey
from code_server.auth_token import TokenFile
from code_server.client import CodeServerClient, CodeServerDeadlines
from code_server.partitions.keys import PartitionKeyRange
from code_server.tls import ClientTls, ServerTls
from code_server.wire.automation import BackfillRequestSpec
from control_plane.api.aio_server import AioServer
from control_plane.api.servicer import ControlPlaneServicer
from control_plane.api.stream_hubs import DEFAULT_MAX_OPEN_STREAMS, ChangeSignal
from control_plane.asset_status import asset_partition_status
from control_plane.audit import EVERY_EVENT, AuditEvent, AuditFilter
from control_plane.auth.audit_interceptor import AuditInterceptor
from control_plane.auth.authenticator import Authenticator
from control_plane.auth.identity import Role
from control_plane.auth.interceptor import AuthInterceptor
from control_plane.automation import AutomationDaemon
from control_plane.automation.evaluation import DEFAULT_EVALUATION_TIMEOUT
from control_plane.backfills.engine import BackfillEngine
from control_plane.backfills.run_settings import RunSettingsCheck
from control_plane.daemon import Daemon
from control_plane.errors import BackfillNotFound, InvalidStateTransition, RunNotFound, shown
from control_plane.locations import CodeLocations
from control_plane.records import (
    BackfillStatus,
    PageCursor,
    PartitionSpan,
    RunEventRecord,
    RunFailureKind,
    RunRecord,
    RunStatus,
)
from control_plane.runs.credentials import RunCredentials
from control_plane.runs.monitor import RunMonitor
from control_plane.runs.queue import RunQueue
from control_plane.runs.reporter_servicer import RunReporterServicer
from control_plane.runs.reports import AppliedReports, ClaimDecision, RunReport, RunReportHandler
from control_plane.service import AssetPartitionStatusView, ControlPlaneService
from control_plane.storage import (
    AuditStore,
    BackfillProgressStore,
    BackfillStore,
    Database,
    NotFound,
    RunEventStore,
    RunStore,
)
from control_plane.storage.api_tokens import ApiTokenStore
from control_plane.storage.retrying import retry_through_faults
from control_plane.views import BackfillPlanView, BackfillView, CodeLocationView, LaunchOptions
from launcher.base import RunLauncher, WorkerIdentity
from launcher.local import LocalProcessLauncher
from partita.controlplane.v1 import (
    control_plane_pb2,
    control_plane_pb2_grpc,
    run_reporter_pb2,
    run_reporter_pb2_grpc,
)

logger = logging.getLogger("partita.control_plane")

DEFAULT_DATABASE_URL = "sqlite:///.partita/partita.db"
DEFAULT_PORT = 3000
#: The run event kind of a line a run printed.
OUTPUT_EVENT_KIND = "stdout"
#: How long audit events are kept by default, and how often older ones are deleted.
DEFAULT_AUDIT_RETENTION_DAYS = 90.0
AUDIT_PRUNE_SECONDS = 3600.0


@dataclass
class ControlPlaneConfig:
    #: Kept out of the config's repr: it may hold a password.
    database_url: str = field(default=DEFAULT_DATABASE_URL, repr=False)
    #: Code location name -> code server address (HOST:PORT).
    code_servers: Mapping[str, str] = field(default_factory=dict)
    host: str = "127.0.0.1"
    #: 0 picks a free port.
    port: int = DEFAULT_PORT
    #: Address run workers report to; defaults to host:port as bound.
    advertised_address: str | None = None
    max_concurrent_runs: int = 10
    idle_seconds: float = 1.0
    location_refresh_seconds: float = 5.0
    monitor_seconds: float = 2.0
    run_start_timeout: timedelta = timedelta(minutes=10)
    #: Where the local launcher writes run output; default: beside a SQLite database, else .partita/.
    run_log_directory: str | None = None
    #: Seconds a sensor or schedule evaluation may take before its tick fails as timed out.
    evaluation_timeout_seconds: float = DEFAULT_EVALUATION_TIMEOUT
    #: Threads serving unary calls; streams are coroutines and take none.
    unary_threads: int = 32
    #: Open streams (watches, log follows) served at once; beyond it a stream is RESOURCE_EXHAUSTED.
    max_open_streams: int = DEFAULT_MAX_OPEN_STREAMS
    #: How long each kind of call to a code server may take before its location shows the problem.
    code_server_deadlines: CodeServerDeadlines = field(default_factory=CodeServerDeadlines)
    #: Audit events older than this are deleted (hourly, in bulk).
    audit_retention_days: float = DEFAULT_AUDIT_RETENTION_DAYS
    #: Serve TLS (mutual TLS with ``tls.client_ca``); None serves plain text.
    tls: ServerTls | None = None
    #: How to verify code servers (and the certificate to present to them).
    code_server_tls: ClientTls | None = None
    #: The file holding the code servers' shared token, sent with every call to them.
    code_server_token_file: str | None = None
    #: What run workers trust to reach this control plane (paths as a worker sees them).
    worker_tls: ClientTls | None = None
    #: File holding the secret run credentials are minted under; None keeps a generated one in the database.
    run_secret_file: str | None = None
    #: Serve every caller as an anonymous admin (``--insecure-no-auth``); off: API tokens required.
    insecure_no_auth: bool = False
    #: Verified client certificate common name -> its role (``--tls-client-role CN=ROLE``).
    certificate_roles: Mapping[str, Role] = field(default_factory=dict)
    #: Variables of this process (names, or ``PREFIX*``) the local launcher's workers may see besides
    #: the base ones; never the database URL (``launcher.worker_env``).
    worker_env: tuple[str, ...] = ()

    def resolved_run_log_directory(self) -> Path:
        if self.run_log_directory:
            return Path(self.run_log_directory)
        url = make_url(self.database_url)
        if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
            return Path(url.database).resolve().parent / "run-logs"
        return Path(".partita/run-logs")


class ControlPlane(ControlPlaneService):
    """The running control plane. ``start()`` serves; ``stop()`` stops serving (runs keep running)."""

    def __init__(
        self,
        config: ControlPlaneConfig,
        *,
        launcher: RunLauncher | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        interceptors: Sequence[aio.ServerInterceptor[Any, Any]] = (),
    ) -> None:
        """``interceptors`` run between authentication and the audit log, outermost first (a test
        sets the caller with one, and the audit log records that caller)."""
        self.config = config
        self._clock = clock
        self.daemon = Daemon(idle_seconds=config.idle_seconds)
        self.database = Database.open(config.database_url)
        try:
            self.run_credentials = RunCredentials.load(self.database, secret_file=config.run_secret_file)
        except Exception:
            self.database.dispose()
            raise
        self._backfills = BackfillStore(self.database)
        self._progress = BackfillProgressStore(self.database)
        self._runs = RunStore(self.database)
        self._events = RunEventStore(self.database)
        self._audit = AuditStore(self.database)
        token_file = TokenFile.from_setting(config.code_server_token_file)
        self.locations = CodeLocations(
            config.code_servers,
            client_factory=lambda name, address: CodeServerClient(
                address,
                location_name=name,
                deadlines=config.code_server_deadlines,
                tls=config.code_server_tls,
                token_file=token_file,
            ),
            clock=clock,
            deadlines=config.code_server_deadlines,
            refresh_seconds=config.location_refresh_seconds,
            on_change=lambda _name: self.engine.note_all_running(),
        )
        self.launcher = launcher or LocalProcessLauncher(
            log_directory=config.resolved_run_log_directory(), worker_env=config.worker_env
        )
        self.launcher.capture_output(self._record_output, self._stored_output_lines)
        self.api_tokens = ApiTokenStore(self.database)
        self.authenticator = Authenticator(
            self.api_tokens,
            insecure_no_auth=config.insecure_no_auth,
            certificate_roles=config.certificate_roles,
            clock=clock,
        )
        self._server = AioServer(
            name="control-plane",
            unary_threads=config.unary_threads,
            # Authentication outermost: the audit log records who made each call it lets through.
            interceptors=[
                AuthInterceptor(self.authenticator, self._owner_location),
                *interceptors,
                AuditInterceptor(self._audit, clock=clock),
            ],
        )
        # Run workers and streams read the database on threads of their own: no number of open
        # streams or busy API clients can take the threads a report needs.
        self._reporter_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="run-reporter")
        self._stream_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="streams")
        self._changes = ChangeSignal()
        self._stopped = False
        self.port = self._server.add_port(
            f"{config.host}:{config.port}", config.tls.credentials() if config.tls else None
        )
        self.address = f"{config.host}:{self.port}"
        self.reports = RunReportHandler(
            self.database, on_applied=self._on_reports_applied, credentials=self.run_credentials
        )
        self.engine = BackfillEngine(
            self.database,
            self.locations,
            clock=clock,
            wake=self._wake,
            check_run_settings=RunSettingsCheck(self.launcher),
        )
        self.queue = RunQueue(
            self.database,
            self.locations,
            self.launcher,
            control_plane_address=lambda: config.advertised_address or self.address,
            max_concurrent_runs=config.max_concurrent_runs,
            clock=clock,
            reporting_environment=config.worker_tls.environment() if config.worker_tls else None,
            credentials=self.run_credentials,
            on_launch_failed=lambda run, reason: self.reports.fail_run(
                run, reason, self._clock(), kind=RunFailureKind.LAUNCH_FAILED
            ),
        )
        self.monitor = RunMonitor(
            self.database, self.launcher, self.reports, clock=clock, start_timeout=config.run_start_timeout
        )
        self.daemon.add_step("plan", self.engine.tick)
        self.daemon.add_step("launch", self.queue.launch_queued)
        self.daemon.add_periodic("locations", config.location_refresh_seconds, self._refresh_locations)
        self.daemon.add_periodic("monitor", config.monitor_seconds, self.monitor.check)
        self.daemon.add_periodic("audit-retention", AUDIT_PRUNE_SECONDS, self.prune_audit_log)
        self.automation = AutomationDaemon(
            self.database,
            self.locations,
            self.engine,
            clock=clock,
            wake=self._wake,
            evaluation_timeout=config.evaluation_timeout_seconds,
        )
        # Sensors and schedules run user code (up to its timeout): on a loop of their own, so a slow
        # sensor never holds up planning and launching.
        self.automation_loop = Daemon(name="partita-automation", idle_seconds=1.0)
        self.automation_loop.add_periodic("automation", 1.0, self.automation.tick)
        self._register_services()

    # --- lifecycle --------------------------------------------------------------------------------

    def start(self) -> None:
        self.locations.refresh()
        self.monitor.recover_launches()
        self.monitor.repair_ended_runs()
        self.engine.note_all_running()
        self._server.start()
        self._server.run(self._health.set("", health_pb2.HealthCheckResponse.SERVING))
        self.daemon.start()
        self.automation_loop.start()
        self._wake()
        if self.config.insecure_no_auth:
            logger.warning(
                "Authentication is OFF (--insecure-no-auth): anyone who can reach %s acts as an admin.",
                self.address,
            )
        logger.info("Control plane listening on %s", self.address)

    def stop(self, grace: float = 5.0) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._server.run(self._health.enter_graceful_shutdown())
        self.automation_loop.stop()
        self.daemon.stop()
        self._server.stop(grace)
        self._reporter_pool.shutdown(wait=False, cancel_futures=True)
        self._stream_pool.shutdown(wait=False, cancel_futures=True)
        self.launcher.close()
        self.locations.close()
        self.database.dispose()

    def _register_services(self) -> None:
        server = self._server.server
        servicer = ControlPlaneServicer(
            self,
            stream_executor=self._stream_pool,
            changes=self._changes,
            max_open_streams=self.config.max_open_streams,
        )
        servicer.attach_api_tokens(self.api_tokens, self.authenticator)
        control_plane_pb2_grpc.add_ControlPlaneServicer_to_server(servicer, server)
        run_reporter_pb2_grpc.add_RunReporterServicer_to_server(
            RunReporterServicer(self, self._reporter_pool), server
        )
        self._health = health_aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        services = (
            control_plane_pb2.DESCRIPTOR.services_by_name["ControlPlane"].full_name,
            run_reporter_pb2.DESCRIPTOR.services_by_name["RunReporter"].full_name,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        )
        reflection.enable_server_reflection(services, server)

    def _owner_location(self, kind: str, target_id: str) -> str | None:
        """The code location of a backfill or run, for tokens scoped to locations."""
        record = self._backfills.get(target_id) if kind == "backfill" else self._runs.get(target_id)
        return record.location if record is not None else None

    def _wake(self) -> None:
        self.daemon.wake()
        self._changes.notify()

    def _refresh_locations(self) -> None:
        # Off this loop: a server that hangs delays only its own location (on_change replans).
        self.locations.refresh(wait=False)

    def _record_output(self, run_id: str, line: str) -> None:
        # The copier waits while the database is briefly down; the run's log file holds what follows.
        retry_through_faults(
            lambda: self._events.append(run_id, [(OUTPUT_EVENT_KIND, line, None)]),
            what=f"an output line of run {run_id}",
        )

    def _stored_output_lines(self, run_id: str) -> int:
        return self._events.count(run_id, kind=OUTPUT_EVENT_KIND)

    # --- reports ------------------------------------------------------------------------------------

    def claim(
        self, run_id: str, attempt: int, worker: WorkerIdentity, credential: str | None
    ) -> ClaimDecision:
        return self.reports.claim(
            run_id,
            attempt,
            worker,
            handle=self.launcher.handle_for_worker(worker),
            now=self._clock(),
            credential=credential,
        )

    def report(self, reports: list[RunReport], credential: str | None) -> AppliedReports:
        return self.reports.apply(reports, credential)

    def _on_reports_applied(self, applied: AppliedReports) -> None:
        # Every backfill with a partition that changed or a run that ended is planned again.
        for backfill_id, changes in applied.changes.items():
            self.engine.note_changes(backfill_id, changes)
        self._wake()

    # --- backfills ------------------------------------------------------------------------------------

    def launch_backfill(
        self, spec: BackfillRequestSpec, options: LaunchOptions
    ) -> BackfillView | BackfillPlanView:
        launched = self.engine.launch(spec, options)
        if isinstance(launched, BackfillPlanView):
            return launched
        return self.get_backfill(launched)

    def get_backfill(self, backfill_id: str) -> BackfillView:
        record = self._backfills.get(backfill_id)
        if record is None:
            raise BackfillNotFound(
                f"No backfill with id {shown(backfill_id)}; list them with `partita backfill list`."
            )
        return BackfillView(
            record=record,
            request=self._backfills.get_request(backfill_id),
            counts=self._progress.partition_counts(backfill_id),
        )

    def list_backfills(
        self,
        *,
        statuses: Sequence[BackfillStatus] = (),
        tags: Mapping[str, str] | None = None,
        location: str | None = None,
        limit: int = 100,
        before: PageCursor | None = None,
    ) -> list[BackfillView]:
        records = self._backfills.list(
            statuses=list(statuses) or None,
            tags=tags,
            location=location,
            limit=limit,
            before=before,
        )
        return [
            BackfillView(
                record=record,
                request=self._backfills.get_request(record.id),
                counts=self._progress.partition_counts(record.id),
            )
            for record in records
        ]

    def cancel_backfill(self, backfill_id: str) -> BackfillView:
        active = self.engine.begin_cancel(backfill_id)
        now = self._clock()
        for run in active:
            self._terminate(run, now)
        self.engine.check_completion(backfill_id)
        self._wake()
        return self.get_backfill(backfill_id)

    def retry_backfill(self, backfill_id: str) -> tuple[BackfillView, int]:
        requeued = self.engine.retry(backfill_id)
        return self.get_backfill(backfill_id), requeued

    def pause_backfill(self, backfill_id: str) -> BackfillView:
        self.engine.pause(backfill_id)
        self._wake()
        return self.get_backfill(backfill_id)

    def resume_backfill(self, backfill_id: str) -> BackfillView:
        self.engine.resume(backfill_id)
        return self.get_backfill(backfill_id)

    def update_backfill_limits(
        self, backfill_id: str, *, max_concurrent_runs: int | None = None, priority: int | None = None
    ) -> BackfillView:
        self.engine.update_limits(backfill_id, max_concurrent_runs=max_concurrent_runs, priority=priority)
        return self.get_backfill(backfill_id)

    def backfill_change_marks(self, backfill_ids: Sequence[str]) -> Mapping[str, Hashable]:
        return self._backfills.change_marks(backfill_ids)

    def partition_changes(
        self, backfill_id: str, *, after: int | None
    ) -> tuple[int, Sequence[PartitionSpan]]:
        try:
            return self._progress.partition_changes(backfill_id, after=after)
        except NotFound as error:
            raise BackfillNotFound(
                f"No backfill with id {shown(backfill_id)}; list them with `partita backfill list`."
            ) from error

    # --- runs -----------------------------------------------------------------------------------------

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
        return self._runs.list(
            backfill_id=backfill_id,
            statuses=list(statuses) or None,
            tags=tags,
            include_backfill_runs=include_backfill_runs,
            location=location,
            limit=limit,
            before=before,
        )

    def get_run(self, run_id: str) -> RunRecord:
        run = self._runs.get(run_id)
        if run is None:
            raise RunNotFound(f"No run with id {shown(run_id)}; list them with `partita runs list`.")
        return run

    def terminate_run(self, run_id: str) -> RunRecord:
        run = self.get_run(run_id)
        if run.status.is_terminal:
            raise InvalidStateTransition(f"Run {run_id} already ended ({run.status.value}).")
        self._terminate(run, self._clock())
        self._wake()
        return self.get_run(run_id)

    def _terminate(self, run: RunRecord, now: datetime) -> None:
        """Stop the run's process or Job and record it as canceled, with its open partitions."""
        if run.status is RunStatus.QUEUED:
            canceled = self.reports.end_canceled(run, now, only_from=(RunStatus.QUEUED,))
        else:
            # Canceling first: killed here, the control plane finishes the cancel when it finds the
            # process gone (``RunReportHandler.finish_canceled_run``).
            self._runs.update_status(
                run.id, RunStatus.CANCELING, only_from=(RunStatus.STARTING, RunStatus.STARTED)
            )
            if run.launcher_handle:
                self.launcher.terminate(run.id, run.launcher_handle)
            canceled = self.reports.end_canceled(
                run, now, only_from=(RunStatus.CANCELING, RunStatus.STARTING, RunStatus.STARTED)
            )
        if run.backfill_id and canceled:
            # Their children in the backfill can no longer run: let the planner mark them.
            self.engine.note_changes(run.backfill_id, canceled)

    def run_log_heads(self, run_ids: Sequence[str]) -> Mapping[str, tuple[int, bool]]:
        statuses = self._runs.statuses_of(run_ids)
        last = self._events.last_sequences(run_ids)
        return {
            run_id: (last.get(run_id, 0), run_id not in statuses or statuses[run_id].is_terminal)
            for run_id in run_ids
        }

    def run_logs(self, run_id: str, *, after_sequence: int = 0, limit: int = 1000) -> list[RunEventRecord]:
        self.get_run(run_id)
        return self._events.list(run_id, after_sequence=after_sequence, limit=limit)

    # --- assets and locations ---------------------------------------------------------------------------

    def asset_partition_status(
        self, location: str, asset_key: AssetKey, partition_range: PartitionKeyRange | None = None
    ) -> AssetPartitionStatusView:
        graph = self.locations.graph(location)
        return asset_partition_status(self.database, graph.node(asset_key), partition_range, self._clock())

    def code_locations(self) -> list[CodeLocationView]:
        return self.locations.views()

    # --- audit log --------------------------------------------------------------------------------------

    def list_audit_events(
        self, *, where: AuditFilter = EVERY_EVENT, limit: int = 100, before: PageCursor | None = None
    ) -> list[AuditEvent]:
        return self._audit.list(where=where, limit=limit, before=before)

    def prune_audit_log(self) -> int:
        """Delete the audit events older than the retention period; returns how many went."""
        cutoff = self._clock() - timedelta(days=self.config.audit_retention_days)
        pruned = self._audit.prune(cutoff)
        if pruned:
            logger.info("Deleted %d audit events from before %s", pruned, cutoff.isoformat())
        return pruned
