"""Kubernetes launcher benchmark, against the loopback API server of the tests (tests/kube_cluster).

* launch: Jobs created per second through ``KubernetesRunLauncher.launch`` (one POST each; the
  simulated node is told the image cannot be pulled, so no process starts and only the API is timed);
* check: one run's health (the Job, then its pods: two GETs); and all of them at once with
  ``check_many``, as the monitor asks every pass (a LIST of Jobs and one of pods per 100 runs);
* terminate: deleting a Job with background propagation;
* end to end: a 20-day ``a -> b -> c`` backfill (20 runs of real run workers, started by the simulated
  node as local processes) through the control plane with the k8s launcher, next to the same
  backfill with the local launcher.

The API server runs in this process, so the figures are the launcher's and client's own costs plus
loopback HTTP; a real API server adds its network round trip and admission time to each call.
Run: ``.venv/bin/python -m benchmarks.k8s_launcher``.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from code_server.asset_key import AssetKey  # noqa: E402
from code_server.partitions.keys import PartitionKeyRange  # noqa: E402
from code_server.server.spawn import spawn_code_server  # noqa: E402
from code_server.wire.automation import BackfillRequestSpec  # noqa: E402
from control_plane.app import ControlPlane, ControlPlaneConfig  # noqa: E402
from control_plane.views import BackfillView, LaunchOptions  # noqa: E402
from launcher.base import CodeLocationTarget, LaunchRequest, RunLauncher  # noqa: E402
from launcher.k8s import K8sLauncherConfig, KubernetesRunLauncher  # noqa: E402
from tests.kube_cluster import KubeApiServer  # noqa: E402

JOBS = 200
IMAGE = "registry.example.com/bench:1"


def request(index: int) -> LaunchRequest:
    return LaunchRequest(
        run_id=f"bench{index:015d}",
        location=CodeLocationTarget("bench", module_name="benchmarks.chain_location", image=IMAGE),
        asset_keys=(AssetKey("a"), AssetKey("b"), AssetKey("c")),
        partition_range=PartitionKeyRange("2024-01-01", "2024-01-31"),
        control_plane_address="127.0.0.1:3000",
        backfill_id="bench",
    )


def per_call(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:.2f} ms median, {max(samples) * 1000:.2f} ms max"


def launcher_calls(kube: KubeApiServer) -> list[tuple[str, str]]:
    kube.node.fail_image(IMAGE, "CreateContainerConfigError")
    launcher = KubernetesRunLauncher(K8sLauncherConfig(namespace="bench"), kube.api_client())
    requests = [request(i) for i in range(JOBS)]
    launches, checks, terminations = [], [], []
    started = time.perf_counter()
    handles = []
    for launch in requests:
        call = time.perf_counter()
        handles.append(launcher.launch(launch))
        launches.append(time.perf_counter() - call)
    total = time.perf_counter() - started
    for launch, handle in zip(requests, handles, strict=True):
        call = time.perf_counter()
        launcher.check(launch.run_id, handle)
        checks.append(time.perf_counter() - call)
    pairs = [(launch.run_id, handle) for launch, handle in zip(requests, handles, strict=True)]
    bulk = []
    for _ in range(5):
        call = time.perf_counter()
        launcher.check_many(pairs)
        bulk.append(time.perf_counter() - call)
    for launch, handle in zip(requests, handles, strict=True):
        call = time.perf_counter()
        launcher.terminate(launch.run_id, handle)
        terminations.append(time.perf_counter() - call)
    one_by_one = sum(checks)
    return [
        (f"launch {JOBS} Jobs", f"{JOBS / total:,.0f} Jobs/s ({per_call(launches)})"),
        ("check one run (Job + pods)", per_call(checks)),
        (
            f"check {JOBS} runs in bulk (the monitor's pass)",
            f"{statistics.median(bulk) * 1000:.1f} ms median, 2 LISTs per 100 runs "
            f"(one by one: {one_by_one * 1000:.0f} ms, {2 * JOBS} GETs)",
        ),
        ("terminate one run (delete Job)", per_call(terminations)),
    ]


def end_to_end(code_server: str, directory: Path, launcher: RunLauncher | None) -> float:
    plane = ControlPlane(
        ControlPlaneConfig(
            database_url=f"sqlite:///{directory / f'{time.monotonic_ns()}.db'}",
            code_servers={"bench": code_server},
            port=0,
            max_concurrent_runs=10,
            idle_seconds=0.2,
            monitor_seconds=0.5,
            run_log_directory=str(directory / "logs"),
        ),
        launcher=launcher,
    )
    plane.start()
    try:
        spec = BackfillRequestSpec(
            asset_keys=(AssetKey("a"), AssetKey("b"), AssetKey("c")),
            partition_ranges=(PartitionKeyRange("2024-01-01", "2024-01-20"),),
        )
        started = time.perf_counter()
        view = plane.launch_backfill(spec, LaunchOptions(location="bench"))
        assert isinstance(view, BackfillView)
        while not (final := plane.get_backfill(view.record.id)).record.status.is_terminal:
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        assert final.record.status.value == "completed_success", final.record
        return elapsed
    finally:
        plane.stop()


def main() -> None:
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as name:
        directory = Path(name)
        with KubeApiServer(directory / "kube-calls", ROOT) as kube:
            rows += launcher_calls(kube)
        server = spawn_code_server(
            module_name="benchmarks.chain_location", working_directory=str(ROOT), image=IMAGE
        )
        try:
            with KubeApiServer(directory / "kube-e2e", ROOT) as kube:
                k8s = KubernetesRunLauncher(K8sLauncherConfig(namespace="bench"), kube.api_client())
                rows.append(
                    ("20-run backfill, k8s launcher", f"{end_to_end(server.address, directory, k8s):.2f} s")
                )
            rows.append(
                ("20-run backfill, local launcher", f"{end_to_end(server.address, directory, None):.2f} s")
            )
        finally:
            server.stop()
    width = max(len(label) for label, _ in rows)
    print("Kubernetes launcher against the loopback API server (tests/kube_cluster)")
    for label, value in rows:
        print(f"{label.ljust(width)}  {value}")


if __name__ == "__main__":
    main()
