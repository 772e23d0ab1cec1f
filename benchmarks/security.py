"""Security benchmark: what authentication and transport security add to a call and to a launch.

Real control planes (SQLite, embedded, a launcher that starts nothing) hold the same small backfill:
one with nothing on (plain text, ``--insecure-no-auth``), one plain with an API token, one TLS with a
token, and one mutual TLS with a token (a ``trustme`` CA, ECDSA P-256 certificates). Each is called
``GetBackfill`` on a warm channel (the handshake is paid once per connection, not per call), one call
of each in turn so that drift on a shared machine hits all alike. Then the 1-year no-policy launch
of chain a -> b -> c (366 runs planned and written) through ``LaunchBackfill``, with nothing on and
with everything on. (``benchmarks/run_credentials.py`` measures the verified run report.)
Run: ``.venv/bin/python -m benchmarks.security [--calls 2000]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.backfill import RecordingLauncher  # noqa: E402
from code_server.asset_key import AssetKey  # noqa: E402
from code_server.partitions.keys import PartitionKeyRange  # noqa: E402
from code_server.server.spawn import spawn_code_server  # noqa: E402
from code_server.wire.automation import BackfillRequestSpec  # noqa: E402
from control_plane.app import ControlPlane, ControlPlaneConfig  # noqa: E402
from control_plane.auth.identity import Role  # noqa: E402
from control_plane.client import ControlPlaneClient  # noqa: E402
from control_plane.views import LaunchOptions  # noqa: E402
from tests.fixtures.pki import make_pki  # noqa: E402

TARGET_ADDED_MS = 0.2
TARGET_LAUNCH_ADDED = 0.10
SPEC = BackfillRequestSpec(
    asset_keys=(AssetKey("a"), AssetKey("b"), AssetKey("c")),
    partition_ranges=(PartitionKeyRange("2024-01-01", "2024-01-31"),),
)
YEAR_SPEC = BackfillRequestSpec(
    asset_keys=(AssetKey("a"), AssetKey("b"), AssetKey("c")),
    partition_ranges=(PartitionKeyRange("2024-01-01", "2024-12-31"),),
)
LAUNCHES = 15


def timed_calls(call: Callable[[], object], count: int) -> list[float]:
    """Milliseconds of each of ``count`` calls."""
    times = []
    for _ in range(count):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2000, help="GetBackfill calls per case")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        work = Path(directory)
        pki = make_pki(work / "pki")
        code_server = spawn_code_server(
            module_name="tests.fixtures.backfill_location", working_directory=str(ROOT), location_name="tests"
        )
        cases = {
            "nothing on": (None, None, False),
            "token": (None, None, True),
            "TLS + token": (pki.server(), pki.client(), True),
            "mTLS + token": (pki.server(mutual=True), pki.client(with_cert=True), True),
        }
        planes: list[ControlPlane] = []
        clients: dict[str, tuple[ControlPlaneClient, str]] = {}
        try:
            for index, (name, (server_tls, client_tls, auth)) in enumerate(cases.items()):
                plane = ControlPlane(
                    ControlPlaneConfig(
                        database_url=f"sqlite:///{work / f'{index}.db'}",
                        code_servers={"tests": code_server.address},
                        port=0,
                        tls=server_tls,
                        insecure_no_auth=not auth,
                    ),
                    launcher=RecordingLauncher(),
                )
                plane.start()
                planes.append(plane)
                token = plane.api_tokens.create(f"bench-{index}", Role.ADMIN).token if auth else ""
                client = ControlPlaneClient(plane.address, tls=client_tls, token=token)
                backfill = client.launch_backfill(SPEC, LaunchOptions(location="tests"))
                clients[name] = (client, backfill.backfill_id)  # type: ignore[union-attr]
            times: dict[str, list[float]] = {name: [] for name in cases}
            for client, backfill_id in clients.values():
                timed_calls(lambda c=client, b=backfill_id: c.get_backfill(b), 200)  # warm up
            # Call by call in turn: a burst of load from elsewhere on the machine hits every case alike.
            for _ in range(args.calls):
                for name, (client, backfill_id) in clients.items():
                    times[name] += timed_calls(lambda c=client, b=backfill_id: c.get_backfill(b), 1)
            report(times)
            launches: dict[str, list[float]] = {"nothing on": [], "mTLS + token": []}
            for turn in range(LAUNCHES):
                # Each first in turn: the planning a launch leaves behind must not weigh on one case.
                for name in list(launches)[:: 1 if turn % 2 else -1]:
                    time.sleep(0.5)  # the previous launch's planning and queueing settle first
                    client = clients[name][0]
                    launches[name] += timed_calls(
                        lambda c=client: c.launch_backfill(YEAR_SPEC, LaunchOptions(location="tests")), 1
                    )
            report_launch(launches)
        finally:
            for client, _ in clients.values():
                client.close()
            for plane in planes:
                plane.stop()
            code_server.stop()


def report(times: dict[str, list[float]]) -> None:
    base = "nothing on"
    print(f"GetBackfill on a warm channel, {len(times[base]):,} calls per case (ms):")
    print(f"{'case':<14} {'p50':>8} {'mean':>8} {'p99':>8}")
    for name, values in times.items():
        p99 = statistics.quantiles(values, n=100)[98]
        print(f"{name:<14} {statistics.median(values):>8.3f} {statistics.fmean(values):>8.3f} {p99:>8.3f}")
    plain = statistics.median(times[base])
    for name in list(times)[1:]:
        added = statistics.median(times[name]) - plain
        verdict = "ok" if added < TARGET_ADDED_MS else "OVER TARGET"
        print(f"{name}: added per call: {added:.3f} ms (target < {TARGET_ADDED_MS} ms) {verdict}")


def report_launch(launches: dict[str, list[float]]) -> None:
    off, on = (statistics.median(values) for values in launches.values())
    added = on / off - 1
    verdict = "ok" if added < TARGET_LAUNCH_ADDED else "OVER TARGET"
    print(
        f"1-year no-policy launch (366 runs) over LaunchBackfill, median of {LAUNCHES}: nothing on "
        f"{off:.1f} ms, everything on (mutual TLS + token; both audited) {on:.1f} ms: added {added:+.1%} "
        f"(target < {TARGET_LAUNCH_ADDED:.0%}) {verdict}"
    )


if __name__ == "__main__":
    main()
