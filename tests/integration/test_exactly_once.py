"""Each run attempt executes once: claims over real gRPC, launches recovered by asking, processes known
by more than their pid, and reports that survive a control plane answering "not now"."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest

from code_server.asset_key import AssetKey
from code_server.partitions.keys import PartitionKeyRange
from code_server.process_identity import process_arguments, process_stat
from code_server.run_worker.events import RunStarted
from code_server.run_worker.grpc_sink import GrpcEventSink, ReportFailed
from code_server.server.spawn import SpawnedCodeServer
from code_server.wire.assets import asset_key_to_proto
from code_server.wire.automation import BackfillRequestSpec
from code_server.wire.timestamps import timestamp_to_proto
from control_plane.app import ControlPlane
from control_plane.records import PartitionStatus, RunFailureKind, RunRecord, RunStatus
from control_plane.runs.monitor import RunMonitor
from control_plane.runs.reports import RunReportHandler
from control_plane.storage import BackfillProgressStore, Database, RunEventStore, RunStore
from control_plane.views import LaunchOptions
from launcher.base import LaunchRequest, RunState, worker_secrets
from launcher.local import LocalProcessLauncher
from partita.common.v1 import assets_pb2
from partita.controlplane.v1 import run_events_pb2, run_reporter_pb2, run_reporter_pb2_grpc
from tests.fixtures.holding_launcher import HoldingLauncher
from tests.integration.conftest import read_jsonl, wait_for_end, wait_until

DAYS = PartitionKeyRange("2024-01-01", "2024-01-04")
NOW = datetime(2025, 1, 1, tzinfo=UTC)


class TwiceLauncher(LocalProcessLauncher):
    """Starts two real workers for every run: what a launch repeated after a crash amounts to."""

    def __init__(self, log_directory: Path) -> None:
        super().__init__(log_directory=log_directory)
        self.extra: list[subprocess.Popen[bytes]] = []

    def launch(self, request: LaunchRequest) -> str:
        first = super().launch(request)
        command = [sys.executable, "-m", "partita.cli", *request.execute_run_arguments()]
        self.extra.append(
            subprocess.Popen(
                command,
                cwd=request.location.working_directory or None,
                env={**os.environ, **worker_secrets(request)},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        return first


def test_two_workers_of_one_attempt_execute_it_once(
    control_plane_factory: Callable[..., ControlPlane],
    backfill_code_server: SpawnedCodeServer,
    output_file: Path,
    tmp_path: Path,
) -> None:
    launcher = TwiceLauncher(tmp_path / "logs")
    plane = control_plane_factory({"tests": backfill_code_server.address}, launcher=launcher)
    spec = BackfillRequestSpec(asset_keys=(AssetKey("a"), AssetKey("b")), partition_ranges=(DAYS,))
    view = plane.launch_backfill(spec, LaunchOptions(location="tests"))
    final = wait_for_end(plane, view.record.id)  # type: ignore[union-attr]
    assert final.record.status.value == "completed_success"
    executions = Counter((entry["asset"], key) for entry in read_jsonl(output_file) for key in entry["keys"])
    assert set(executions.values()) == {1} and len(executions) == 8
    codes = [process.wait(timeout=60) for process in launcher.extra]
    runs = plane.list_runs(backfill_id=final.record.id)
    assert len(runs) == 4 and len(codes) == 4
    for run in runs:
        claims = [e for e in plane.run_logs(run.id) if e.message.startswith("Claimed by")]
        assert len(claims) == 1, claims
    # Whichever worker lost the race exited without executing (3: not claimed), or ran it alone.
    assert set(codes) <= {0, 3}


@pytest.fixture
def database(tmp_path: Path) -> Database:
    return Database.open(f"sqlite:///{tmp_path / 'recovery.db'}")


def _run(run_id: str, status: RunStatus) -> RunRecord:
    return RunRecord(run_id, "tests", (AssetKey("a"),), status, NOW, NOW, launcher_kind="local", attempt=1)


@pytest.fixture
def sleeper() -> Iterator[Callable[[str], subprocess.Popen[bytes]]]:
    """Processes whose command line says they execute a run (and which only sleep)."""
    started: list[subprocess.Popen[bytes]] = []

    def start(run_id: str) -> subprocess.Popen[bytes]:
        code = "import time; time.sleep(120)"
        process = subprocess.Popen([sys.executable, "-c", code, "execute-run", "--run-id", run_id])
        started.append(process)
        # Until it has exec'd, the child still shows the test's own command line.
        wait_until(lambda: "execute-run" in (process_arguments(process.pid) or []), "the process to exec", 10)
        return process

    yield start
    for process in started:
        process.kill()
        process.wait()


def test_a_launch_cut_off_by_a_crash_is_settled_by_asking_the_launcher(
    database: Database, tmp_path: Path, sleeper: Callable[[str], subprocess.Popen[bytes]]
) -> None:
    runs = RunStore(database)
    runs.create_many(
        [
            _run("alive", RunStatus.STARTING),
            _run("never-started", RunStatus.STARTING),
            _run("claimed-then-gone", RunStatus.STARTED),
        ]
    )
    worker = sleeper("alive")
    launcher = LocalProcessLauncher(log_directory=tmp_path / "logs")
    reports = RunReportHandler(database, on_applied=lambda applied: None)
    monitor = RunMonitor(database, launcher, reports, clock=lambda: NOW)

    assert monitor.recover_launches() == 1
    stat = process_stat(worker.pid)
    assert stat is not None
    adopted = runs.get("alive")
    assert adopted is not None and adopted.status is RunStatus.STARTING
    assert adopted.launcher_handle == f"{worker.pid}:{stat.start_ticks}"
    requeued = runs.get("never-started")
    assert requeued is not None and requeued.status is RunStatus.QUEUED
    assert any("no worker of it started" in e.message for e in RunEventStore(database).list("never-started"))
    lost = runs.get("claimed-then-gone")
    assert lost is not None and lost.status is RunStatus.FAILURE
    assert lost.failure_kind is RunFailureKind.WORKER_LOST
    # Settled once: asking again changes nothing.
    assert monitor.recover_launches() == 0
    assert worker.poll() is None  # adopting never signals the process


def test_a_pid_is_trusted_only_with_its_start_time_and_run_id(
    tmp_path: Path, sleeper: Callable[[str], subprocess.Popen[bytes]]
) -> None:
    worker = sleeper("r1")
    stat = process_stat(worker.pid)
    assert stat is not None
    launcher = LocalProcessLauncher(log_directory=tmp_path / "logs")
    assert launcher.check("r1", f"{worker.pid}:{stat.start_ticks}").state is RunState.RUNNING
    # The same pid after a reuse: a later start time, or a command line of another run.
    reused = launcher.check("r1", f"{worker.pid}:{stat.start_ticks + 1}")
    assert reused.state is RunState.NOT_FOUND and "started later" in (reused.reason or "")
    other_run = launcher.check("r2", f"{worker.pid}:{stat.start_ticks}")
    assert other_run.state is RunState.NOT_FOUND and "another process" in (other_run.reason or "")
    assert launcher.terminate("r1", f"{worker.pid}:{stat.start_ticks + 1}") is False
    assert launcher.terminate("r2", str(worker.pid)) is False
    assert worker.poll() is None  # never signalled
    assert launcher.terminate("r1", f"{worker.pid}:{stat.start_ticks}") is True
    assert worker.wait(timeout=10) < 0


def _event(run_id: str, worker_id: str, sequence: int, asset: str) -> run_events_pb2.RunEvent:
    event = run_events_pb2.RunEvent(run_id=run_id, worker_id=worker_id, sequence=sequence)
    event.timestamp.CopyFrom(timestamp_to_proto(NOW))
    event.partition_materialized.asset_key.CopyFrom(asset_key_to_proto(AssetKey(asset)))
    return event


def test_claims_and_reports_over_grpc_refuse_the_bad_and_keep_the_good(
    control_plane_factory: Callable[..., ControlPlane], backfill_code_server: SpawnedCodeServer
) -> None:
    plane = control_plane_factory({"tests": backfill_code_server.address}, launcher=HoldingLauncher())
    spec = BackfillRequestSpec(
        asset_keys=(AssetKey("a"),), partition_ranges=(PartitionKeyRange("2024-01-01", "2024-01-01"),)
    )
    view = plane.launch_backfill(spec, LaunchOptions(location="tests"))
    backfill_id = view.record.id  # type: ignore[union-attr]
    wait_until(
        lambda: [r.status for r in plane.list_runs(backfill_id=backfill_id)] == [RunStatus.STARTING],
        "the run to be launched",
    )
    (run,) = plane.list_runs(backfill_id=backfill_id)
    credential = (("partita-run-credential", plane.run_credentials.mint(run.id, 1)),)
    with grpc.insecure_channel(plane.address) as channel:
        stub = run_reporter_pb2_grpc.RunReporterStub(channel)

        def claim(worker_id: str) -> run_reporter_pb2.ClaimRunResponse:
            worker = run_reporter_pb2.WorkerIdentity(worker_id=worker_id, hostname="h", pid=7)
            return stub.ClaimRun(
                run_reporter_pb2.ClaimRunRequest(run_id=run.id, attempt=1, worker=worker),
                timeout=10,
                metadata=credential,
            )

        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(claim, ["w1", "w2", "w3", "w4"]))
        winners = [a for a in answers if a.granted]
        assert len(winners) == 1
        holder = winners[0].holder.worker_id
        assert all(a.holder.worker_id == holder and holder in a.refusal for a in answers if not a.granted)

        empty_key = _event(run.id, holder, 2, "a")
        empty_key.partition_materialized.asset_key.CopyFrom(assets_pb2.AssetKey())
        bad_time = _event(run.id, holder, 3, "a")
        bad_time.timestamp.seconds = -62135596801
        good = _event(run.id, holder, 1, "a")
        with pytest.raises(grpc.RpcError) as refused:
            stub.ReportRunEvents(
                run_reporter_pb2.ReportRunEventsRequest(events=[empty_key, good, bad_time]),
                timeout=10,
                metadata=credential,
            )
        assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        details = refused.value.details() or ""
        assert "2 event(s) refused, 1 recorded" in details
        assert "event 2" in details and "partition_materialized.asset_key" in details
        assert "event 3" in details and "timestamp" in details
        statuses = {p.status for p in BackfillProgressStore(plane.database).partitions(backfill_id)}
        assert statuses == {PartitionStatus.MATERIALIZED}

        impostor = "w1" if holder != "w1" else "w2"
        with pytest.raises(grpc.RpcError) as not_claimant:
            stub.ReportRunEvents(
                run_reporter_pb2.ReportRunEventsRequest(events=[_event(run.id, impostor, 1, "a")]),
                timeout=10,
                metadata=credential,
            )
        assert not_claimant.value.code() is grpc.StatusCode.FAILED_PRECONDITION
        assert holder in (not_claimant.value.details() or "")
        with pytest.raises(grpc.RpcError) as unknown:
            claim_unknown = run_reporter_pb2.ClaimRunRequest(
                run_id="no-such-run", attempt=1, worker=run_reporter_pb2.WorkerIdentity(worker_id="w")
            )
            unknown_credential = plane.run_credentials.mint("no-such-run", 1)
            stub.ClaimRun(
                claim_unknown, timeout=10, metadata=(("partita-run-credential", unknown_credential),)
            )
        assert unknown.value.code() is grpc.StatusCode.NOT_FOUND


class _FlakyReporter(run_reporter_pb2_grpc.RunReporterServicer):
    """A run reporter that says "not now" (ABORTED, UNAVAILABLE, then a full database) before it
    takes each call."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.received: list[run_events_pb2.RunEvent] = []
        self._lock = threading.Lock()

    def _refuse_first(self, rpc: str, context: grpc.ServicerContext) -> None:
        with self._lock:
            self.calls[rpc] += 1
            attempt = self.calls[rpc]
        if attempt == 1:
            context.abort(grpc.StatusCode.ABORTED, "serialization failure; retry")
        if attempt == 2:
            context.abort(grpc.StatusCode.UNAVAILABLE, "database connection lost; retry")
        if attempt == 3:
            context.set_trailing_metadata((("partita-error", "StorageFull"),))
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "the database is full: free disk space")

    def ClaimRun(
        self, request: run_reporter_pb2.ClaimRunRequest, context: grpc.ServicerContext
    ) -> run_reporter_pb2.ClaimRunResponse:
        self._refuse_first("ClaimRun", context)
        return run_reporter_pb2.ClaimRunResponse(granted=True, holder=request.worker)

    def ReportRunEvents(
        self, request: run_reporter_pb2.ReportRunEventsRequest, context: grpc.ServicerContext
    ) -> run_reporter_pb2.ReportRunEventsResponse:
        self._refuse_first("ReportRunEvents", context)
        self.received.extend(request.events)
        return run_reporter_pb2.ReportRunEventsResponse(accepted_count=len(request.events))


def test_the_worker_retries_what_may_succeed_later_and_loses_no_report() -> None:
    reporter = _FlakyReporter()
    server = grpc.server(ThreadPoolExecutor(2))
    run_reporter_pb2_grpc.add_RunReporterServicer_to_server(reporter, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    sink = GrpcEventSink(f"127.0.0.1:{port}", patience_seconds=30)
    try:
        assert sink.claim("r1", 1).granted
        sink.emit(RunStarted("r1"))
    finally:
        sink.close()
        server.stop(None)
    assert reporter.calls == Counter({"ClaimRun": 4, "ReportRunEvents": 4})
    assert [(e.run_id, e.sequence, e.WhichOneof("event")) for e in reporter.received] == [
        ("r1", 1, "run_started")
    ]


def test_the_worker_gives_up_on_a_refusal_for_good() -> None:
    class Refusing(run_reporter_pb2_grpc.RunReporterServicer):
        def ClaimRun(
            self, request: run_reporter_pb2.ClaimRunRequest, context: grpc.ServicerContext
        ) -> run_reporter_pb2.ClaimRunResponse:
            context.abort(grpc.StatusCode.NOT_FOUND, "No run with id 'r1'")

    server = grpc.server(ThreadPoolExecutor(1))
    run_reporter_pb2_grpc.add_RunReporterServicer_to_server(Refusing(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    sink = GrpcEventSink(f"127.0.0.1:{port}", patience_seconds=30)
    try:
        with pytest.raises(ReportFailed, match=r"refused.*NOT_FOUND: No run with id 'r1'"):
            sink.claim("r1", 1)
    finally:
        sink.close()
        server.stop(None)
