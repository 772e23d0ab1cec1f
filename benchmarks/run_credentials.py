"""Run credentials benchmark: what verifying the run credential adds to each ``ReportRunEvents`` call.

A real control plane (SQLite, embedded; a launcher that starts nothing) launches one run, and this
process claims it and sends 2,000 one-event reports with the credential, verified, and 2,000 with no
credential to a handler that verifies none (the same control plane, its report handler swapped),
in interleaved rounds so that both see the same database and machine load. Each call is timed
over real gRPC; the figure is the difference of the medians.
Run: ``.venv/bin/python -m benchmarks.run_credentials [--reports 2000]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import timeit
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import grpc  # noqa: E402

from benchmarks.backfill import RecordingLauncher  # noqa: E402
from code_server.asset_key import AssetKey  # noqa: E402
from code_server.partitions.keys import PartitionKeyRange  # noqa: E402
from code_server.server.spawn import spawn_code_server  # noqa: E402
from code_server.wire.automation import BackfillRequestSpec  # noqa: E402
from code_server.wire.timestamps import timestamp_to_proto  # noqa: E402
from control_plane.app import ControlPlane, ControlPlaneConfig  # noqa: E402
from control_plane.records import RunStatus  # noqa: E402
from control_plane.runs.credentials import METADATA_KEY  # noqa: E402
from control_plane.runs.reports import RunReportHandler  # noqa: E402
from control_plane.views import LaunchOptions  # noqa: E402
from partita.controlplane.v1 import run_events_pb2, run_reporter_pb2, run_reporter_pb2_grpc  # noqa: E402

ROUNDS = 10
TARGET_MS = 0.2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reports", type=int, default=2000, help="reports of each kind")
    args = parser.parse_args()
    server = spawn_code_server(module_name="benchmarks.chain_location", working_directory=str(ROOT))
    try:
        with tempfile.TemporaryDirectory() as directory:
            plane = ControlPlane(
                ControlPlaneConfig(
                    database_url=f"sqlite:///{directory}/credentials.db",
                    code_servers={"bench": server.address},
                    port=0,
                ),
                launcher=RecordingLauncher(),
            )
            plane.start()
            try:
                measure(plane, args.reports)
            finally:
                plane.stop()
    finally:
        server.stop()


def measure(plane: ControlPlane, reports: int) -> None:
    spec = BackfillRequestSpec(
        asset_keys=(AssetKey("ua"),), partition_ranges=(PartitionKeyRange("2024-01-01", "2024-01-01"),)
    )
    view = plane.launch_backfill(spec, LaunchOptions(location="bench"))
    backfill_id = view.record.id  # type: ignore[union-attr]
    deadline = time.monotonic() + 60
    while not plane.list_runs(backfill_id=backfill_id, statuses=[RunStatus.STARTING]):
        if time.monotonic() > deadline:
            raise SystemExit("the run was not launched within 60 s")
        time.sleep(0.05)
    (run,) = plane.list_runs(backfill_id=backfill_id)
    plane.automation_loop.stop()
    plane.daemon.stop()
    credential = plane.run_credentials.mint(run.id, run.attempt)
    verifying = plane.reports
    unverifying = RunReportHandler(plane.database, on_applied=lambda applied: None, credentials=None)
    timed: dict[str, list[float]] = {"credential": [], "none": []}
    with grpc.insecure_channel(plane.address) as channel:
        stub = run_reporter_pb2_grpc.RunReporterStub(channel)
        worker = run_reporter_pb2.WorkerIdentity(worker_id="bench", hostname="bench", pid=1)
        claim = run_reporter_pb2.ClaimRunRequest(run_id=run.id, attempt=run.attempt, worker=worker)
        assert stub.ClaimRun(claim, timeout=30, metadata=((METADATA_KEY, credential),)).granted
        sequence = 0
        per_round = max(1, reports // ROUNDS)
        for _ in range(ROUNDS):
            for kind, handler, metadata in (
                ("credential", verifying, ((METADATA_KEY, credential),)),
                ("none", unverifying, ()),
            ):
                plane.reports = handler
                for _ in range(per_round):
                    sequence += 1
                    event = run_events_pb2.RunEvent(run_id=run.id, worker_id="bench", sequence=sequence)
                    event.timestamp.CopyFrom(timestamp_to_proto(datetime.now(UTC)))
                    event.run_started.hostname = "bench"
                    request = run_reporter_pb2.ReportRunEventsRequest(events=[event])
                    started = time.perf_counter()
                    response = stub.ReportRunEvents(request, timeout=30, metadata=metadata)
                    timed[kind].append(time.perf_counter() - started)
                    assert response.accepted_count == 1
        plane.reports = verifying
    hmac_us = (
        timeit.timeit(lambda: plane.run_credentials.covers(credential, run.id, 1), number=20_000) / 20_000
    )
    for kind, latencies in timed.items():
        print(
            f"{kind:>10}: {len(latencies)} reports, median {statistics.median(latencies) * 1000:.3f} ms, "
            f"mean {statistics.mean(latencies) * 1000:.3f} ms"
        )
    added = statistics.median(timed["credential"]) - statistics.median(timed["none"])
    print(f"verifying one credential alone: {hmac_us * 1e6:.1f} us")
    print(f"added per report: {added * 1000:.3f} ms (target < {TARGET_MS} ms)")


if __name__ == "__main__":
    main()
