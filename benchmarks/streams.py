"""Streams benchmark: 1,000 open ``WatchBackfill`` streams while unary calls and run reports flow.

A real control plane (SQLite, embedded) plans a 1-year daily backfill of chain "u" (a -> b -> c);
its launcher starts nothing, and this process plays the run workers over the RunReporter service
(claim, started, materialized, finished), so every report changes what the streams watch. A second
process holds the streams (``--hold N``: N streams on 10 channels, counting the messages they get),
so that its work does not share this process's interpreter. Meanwhile ``GetBackfill`` is timed.
Run: ``.venv/bin/python -m benchmarks.streams [--streams 1000]``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import grpc  # noqa: E402
from grpc import aio  # noqa: E402

from benchmarks.backfill import ONE_YEAR, RecordingLauncher  # noqa: E402
from code_server.asset_key import AssetKey  # noqa: E402
from code_server.run_worker.events import PartitionMaterialized, RunFinished, RunStarted  # noqa: E402
from code_server.run_worker.grpc_sink import event_to_proto  # noqa: E402
from code_server.server.spawn import spawn_code_server  # noqa: E402
from code_server.wire.automation import BackfillRequestSpec  # noqa: E402
from control_plane.app import ControlPlane, ControlPlaneConfig  # noqa: E402
from control_plane.records import RunStatus  # noqa: E402
from control_plane.runs.credentials import METADATA_KEY  # noqa: E402
from control_plane.views import LaunchOptions  # noqa: E402
from partita.controlplane.v1 import (  # noqa: E402
    backfills_pb2,
    control_plane_pb2_grpc,
    run_reporter_pb2,
    run_reporter_pb2_grpc,
)

CHANNELS = 10
TARGET_GET_P99_MS = 100.0
TARGET_REPORT_P99_MS = 250.0


def hold(address: str, backfill_id: str, streams: int, seconds: float) -> None:
    """Open ``streams`` watches, print "open" once all have their first message, keep them for
    ``seconds``, then print how many messages they got in all."""

    async def run() -> None:
        channels = [aio.insecure_channel(address) for _ in range(CHANNELS)]
        first = asyncio.Semaphore(0)
        received = 0

        async def watch(index: int) -> None:
            nonlocal received
            stub = control_plane_pb2_grpc.ControlPlaneStub(channels[index % CHANNELS])
            call = stub.WatchBackfill(backfills_pb2.WatchBackfillRequest(backfill_id=backfill_id))
            async for _ in call:
                if received < streams:
                    first.release()
                received += 1

        tasks = [asyncio.create_task(watch(index)) for index in range(streams)]
        for _ in range(streams):
            await first.acquire()
        print("open", flush=True)
        await asyncio.sleep(seconds)
        print(f"received {received}", flush=True)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for channel in channels:
            await channel.close()

    asyncio.run(run())


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


class Workers(threading.Thread):
    """Plays one worker after another over gRPC: claim, then three reports; times each report."""

    def __init__(self, plane: ControlPlane, backfill_id: str) -> None:
        super().__init__(daemon=True)
        self._plane = plane
        self._backfill_id = backfill_id
        self.latencies: list[float] = []
        self.stop = threading.Event()
        self.failures: list[str] = []

    def run(self) -> None:
        with grpc.insecure_channel(self._plane.address) as channel:
            stub = run_reporter_pb2_grpc.RunReporterStub(channel)
            while not self.stop.is_set():
                starting = self._plane.list_runs(
                    backfill_id=self._backfill_id, statuses=[RunStatus.STARTING], limit=10
                )
                if not starting:
                    time.sleep(0.01)
                    continue
                for run in starting:
                    self._play(stub, run.id, run.asset_keys[0], run.attempt)

    def _play(
        self, stub: run_reporter_pb2_grpc.RunReporterStub, run_id: str, asset: AssetKey, attempt: int
    ) -> None:
        worker_id = uuid.uuid4().hex
        worker = run_reporter_pb2.WorkerIdentity(worker_id=worker_id, hostname="bench", pid=1)
        # What the launcher would have handed the worker.
        metadata = ((METADATA_KEY, self._plane.run_credentials.mint(run_id, attempt)),)
        started = time.perf_counter()
        claim = stub.ClaimRun(
            run_reporter_pb2.ClaimRunRequest(run_id=run_id, attempt=attempt, worker=worker),
            timeout=30,
            metadata=metadata,
        )
        self.latencies.append(time.perf_counter() - started)
        if not claim.granted:
            self.failures.append(f"claim of {run_id} refused: {claim.refusal}")
            return
        events = [
            event_to_proto(event, worker_id=worker_id, sequence=sequence)
            for sequence, event in enumerate(
                (
                    RunStarted(run_id),
                    PartitionMaterialized(run_id, asset, None),
                    RunFinished(run_id, success=True),
                ),
                1,
            )
        ]
        for event in events:
            started = time.perf_counter()
            stub.ReportRunEvents(
                run_reporter_pb2.ReportRunEventsRequest(events=[event]), timeout=30, metadata=metadata
            )
            self.latencies.append(time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20.0, help="how long to measure under load")
    parser.add_argument("--hold", nargs=2, metavar=("ADDRESS", "BACKFILL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.hold:
        hold(args.hold[0], args.hold[1], args.streams, args.seconds + 5)
        return
    server = spawn_code_server(module_name="benchmarks.chain_location", working_directory=str(ROOT))
    try:
        with tempfile.TemporaryDirectory() as directory:
            plane = ControlPlane(
                ControlPlaneConfig(
                    database_url=f"sqlite:///{directory}/streams.db",
                    code_servers={"bench": server.address},
                    port=0,
                    max_concurrent_runs=20,
                    insecure_no_auth=True,  # streams, not authentication, are measured here
                ),
                launcher=RecordingLauncher(),
            )
            plane.start()
            try:
                measure(plane, args.streams, args.seconds)
            finally:
                plane.stop()
    finally:
        server.stop()


def measure(plane: ControlPlane, streams: int, seconds: float) -> None:
    spec = BackfillRequestSpec(
        asset_keys=tuple(AssetKey(f"u{name}") for name in "abc"), partition_ranges=(ONE_YEAR,)
    )
    view = plane.launch_backfill(spec, LaunchOptions(location="bench"))
    backfill_id = view.record.id  # type: ignore[union-attr]
    holder = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.streams", "--streams", str(streams), "--seconds", str(seconds),
         "--hold", plane.address, backfill_id],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout is not None
    opening = time.perf_counter()
    assert holder.stdout.readline().strip() == "open", "the stream holder failed"
    opened = time.perf_counter() - opening
    workers = Workers(plane, backfill_id)
    workers.start()
    get_latencies: list[float] = []
    with grpc.insecure_channel(plane.address) as channel:
        stub = control_plane_pb2_grpc.ControlPlaneStub(channel)
        request = backfills_pb2.GetBackfillRequest(backfill_id=backfill_id)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            started = time.perf_counter()
            stub.GetBackfill(request, timeout=30)
            get_latencies.append(time.perf_counter() - started)
            time.sleep(0.02)
    workers.stop.set()
    workers.join(60)
    received = int(holder.stdout.readline().split()[1])
    holder.wait(60)
    reports = len(workers.latencies)
    print(f"{streams:,} WatchBackfill streams open in {opened:.1f} s; {received:,} stream messages received")
    print(
        f"GetBackfill under load: {len(get_latencies)} calls, p50 {statistics.median(get_latencies) * 1000:.1f} ms, "
        f"p99 {_percentile(get_latencies, 0.99) * 1000:.1f} ms (target p99 < {TARGET_GET_P99_MS:.0f} ms)"
    )
    print(
        f"Run reporter under load: {reports} claims and reports ({reports / seconds:.0f}/s), "
        f"p50 {statistics.median(workers.latencies) * 1000:.1f} ms, "
        f"p99 {_percentile(workers.latencies, 0.99) * 1000:.1f} ms (target: keep flowing, p99 < "
        f"{TARGET_REPORT_P99_MS:.0f} ms)"
    )
    if workers.failures:
        print(f"{len(workers.failures)} claims refused, first: {workers.failures[0]}")
    print(
        "Before grpc.aio (32 threads, one per stream): 40 streams made GetBackfill and ReportRunEvents "
        "hit DEADLINE_EXCEEDED after 15 s."
    )


if __name__ == "__main__":
    main()
