"""Authentication overhead: ``GetBackfill`` per-call cost with an API token vs ``--insecure-no-auth``.

Two real control planes (SQLite, embedded, the same backfill of chain "u" planned in each), one
with authentication on (an admin token in ``authorization`` metadata, so each call is checked:
token parsed, secret hashed and compared, role looked up) and one with it off. Each gets 2,000
sequential ``GetBackfill`` calls over one channel after a warm-up; the difference of the medians is
what authentication adds to a call.
Run: ``.venv/bin/python -m benchmarks.auth_overhead [--calls 2000]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import grpc  # noqa: E402

from benchmarks.backfill import RecordingLauncher  # noqa: E402
from code_server.asset_key import AssetKey  # noqa: E402
from code_server.partitions.keys import PartitionKeyRange  # noqa: E402
from code_server.server.spawn import spawn_code_server  # noqa: E402
from code_server.wire.automation import BackfillRequestSpec  # noqa: E402
from control_plane.app import ControlPlane, ControlPlaneConfig  # noqa: E402
from control_plane.auth.identity import Role  # noqa: E402
from control_plane.client_auth import with_token  # noqa: E402
from control_plane.views import BackfillView, LaunchOptions  # noqa: E402
from partita.controlplane.v1 import backfills_pb2, control_plane_pb2_grpc  # noqa: E402

TARGET_ADDED_MS = 0.2
WARM_UP = 200


def time_calls(plane: ControlPlane, token: str | None, calls: int) -> list[float]:
    """Milliseconds of each of ``calls`` GetBackfill calls (after a warm-up)."""
    launched = plane.launch_backfill(
        BackfillRequestSpec(
            asset_keys=(AssetKey("ua"),), partition_ranges=(PartitionKeyRange("2024-01-01", "2024-01-31"),)
        ),
        LaunchOptions(location="bench"),
    )
    assert isinstance(launched, BackfillView)
    request = backfills_pb2.GetBackfillRequest(backfill_id=launched.record.id)
    with grpc.insecure_channel(plane.address) as raw:
        stub = control_plane_pb2_grpc.ControlPlaneStub(with_token(raw, token))
        for _ in range(WARM_UP):
            stub.GetBackfill(request, timeout=10)
        times = []
        for _ in range(calls):
            started = time.perf_counter()
            stub.GetBackfill(request, timeout=10)
            times.append((time.perf_counter() - started) * 1000)
    return times


def measure(code_server: str, directory: str, calls: int, *, authenticated: bool) -> list[float]:
    name = "auth" if authenticated else "open"
    plane = ControlPlane(
        ControlPlaneConfig(
            database_url=f"sqlite:///{directory}/{name}.db",
            code_servers={"bench": code_server},
            port=0,
            insecure_no_auth=not authenticated,
        ),
        launcher=RecordingLauncher(),
    )
    token = (
        plane.api_tokens.create(f"bench-{uuid.uuid4().hex[:8]}", Role.ADMIN).token if authenticated else None
    )
    plane.start()
    try:
        return time_calls(plane, token, calls)
    finally:
        plane.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    server = spawn_code_server(module_name="benchmarks.chain_location", working_directory=str(ROOT))
    try:
        with tempfile.TemporaryDirectory() as directory:
            # Alternate, twice each, so drift on a shared machine does not favour one side.
            runs = {True: [], False: []}  # type: dict[bool, list[float]]
            for authenticated in (False, True, False, True):
                runs[authenticated] += measure(
                    server.address, directory, args.calls // 2, authenticated=authenticated
                )
    finally:
        server.stop()
    open_median = statistics.median(runs[False])
    auth_median = statistics.median(runs[True])
    for label, times in (("--insecure-no-auth", runs[False]), ("API token", runs[True])):
        ordered = sorted(times)
        print(
            f"GetBackfill, {label:>18}: {len(times):,} calls, median {statistics.median(times):.3f} ms, "
            f"p99 {ordered[int(len(ordered) * 0.99)]:.3f} ms"
        )
    added = auth_median - open_median
    print(f"added per call: {added:.3f} ms (target < {TARGET_ADDED_MS} ms)")


if __name__ == "__main__":
    main()
