"""Backfills whose runs are Kubernetes Jobs, against a real API server on loopback (tests/kube_cluster).

The API server's simulated node runs each Job's container command as a local process, so the run
workers are real and report to the control plane over gRPC, as they would from a cluster. Operators'
commands are real ``kubectl``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s_client

from code_server.asset_key import AssetKey
from code_server.partitions.keys import PartitionKeyRange
from code_server.server.spawn import SpawnedCodeServer, spawn_code_server
from code_server.wire.automation import BackfillRequestSpec
from control_plane.app import ControlPlane
from control_plane.records import BackfillStatus, PartitionStatus, RunFailureKind, RunStatus
from control_plane.views import BackfillView, LaunchOptions
from launcher.k8s import K8sLauncherConfig, KubernetesRunLauncher, job_name
from tests.fixtures.pki import make_pki
from tests.fixtures.processes import create_admin_token
from tests.integration.conftest import ROOT, read_jsonl, wait_for_end, wait_until
from tests.kube_cluster import KUBECTL, KubeApiServer

pytestmark = pytest.mark.integration
Factory = Callable[..., ControlPlane]

IMAGE = "registry.example.com/partita-tests:1.0"
NAMESPACE = "partita-runs"
needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed on this machine")


@pytest.fixture
def code_server(output_file: Path) -> Iterator[SpawnedCodeServer]:
    server = spawn_code_server(
        module_name="tests.fixtures.paced_location",
        working_directory=str(ROOT),
        location_name="tests",
        image=IMAGE,
    )
    yield server
    server.stop()


@pytest.fixture
def plane(
    kube_api: KubeApiServer, code_server: SpawnedCodeServer, control_plane_factory: Factory
) -> ControlPlane:
    launcher = KubernetesRunLauncher(K8sLauncherConfig(namespace=NAMESPACE), kube_api.api_client())
    return control_plane_factory({"tests": code_server.address}, launcher=launcher)


def launch(plane: ControlPlane, assets: list[str], start: str, end: str, **options: Any) -> BackfillView:
    spec = BackfillRequestSpec(
        asset_keys=tuple(AssetKey(a) for a in assets), partition_ranges=(PartitionKeyRange(start, end),)
    )
    view = plane.launch_backfill(spec, LaunchOptions(location="tests", **options))
    assert isinstance(view, BackfillView)
    return view


def kubectl_json(kube: KubeApiServer, *args: str) -> Any:
    result = kube.kubectl(*args, "-o", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def read_job(kube: KubeApiServer, name: str) -> dict[str, Any] | None:
    batch = k8s_client.BatchV1Api(kube.api_client())
    try:
        response = batch.read_namespaced_job(name, NAMESPACE, _preload_content=False)
    except k8s_client.ApiException as error:
        if error.status == 404:
            return None
        raise
    document: dict[str, Any] = json.loads(response.data)
    return document


@needs_kubectl
def test_control_plane_with_the_k8s_launcher_runs_a_backfill_as_jobs_over_tls_kubectl_can_inspect(
    kube_api: KubeApiServer, code_server: SpawnedCodeServer, output_file: Path, tmp_path: Path
) -> None:
    settings = tmp_path / "k8s.yaml"
    settings.write_text(
        f"namespace: {NAMESPACE}\n"
        "defaults:\n"
        "  labels: {team: data}\n"
        "  resources: {requests: {cpu: 100m, memory: 128Mi}}\n"
    )
    token = create_admin_token(f"sqlite:///{tmp_path / 'partita.db'}")
    # Production-like: TLS for clients and for the run pods' workers, and authentication on.
    pki = make_pki(tmp_path / "pki")
    command = [
        sys.executable, "-m", "partita.cli", "control-plane", "--port", "0",
        "--db", f"sqlite:///{tmp_path / 'partita.db'}", "--code-server", f"tests={code_server.address}",
        "--launcher", "k8s", "--k8s-config", str(settings), "--kubeconfig", str(kube_api.kubeconfig_path),
        "--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key),
        "--worker-tls-ca", str(pki.ca_file),
    ]  # fmt: skip
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert server.stdout is not None
        address = server.stdout.readline().strip().rpartition(" ")[2]
        assert address.startswith("127.0.0.1:"), address

        def partita(*args: str) -> str:
            connection = ["--control-plane", address, "--token", token, "--tls-ca", str(pki.ca_file)]
            result = subprocess.run(
                [sys.executable, "-m", "partita.cli", *args, *connection],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert result.returncode == 0, result.stderr
            return result.stdout

        heavy = json.dumps({"resources": {"limits": {"memory": "1Gi"}}})
        launched = json.loads(
            partita(
                "backfill",
                "launch",
                "--location",
                "tests",
                "--select",
                "paced_a,paced_b,paced_c",
                "--from",
                "2024-03-01",
                "--to",
                "2024-03-03",
                "--tag",
                f"partita/k8s-config={heavy}",
                "--json",
            )
        )
        backfill_id = launched["id"]
        assert "completed_success" in partita("backfill", "status", backfill_id, "--watch")
        runs = json.loads(partita("runs", "list", "--backfill", backfill_id, "--json"))
        # The containers' output reaches `partita runs logs`, as a local run's does.
        for run in runs:
            wait_until(
                lambda run_id=run["id"]: "Materialized paced_c 2024-03-0" in partita("runs", "logs", run_id),
                f"the output of run {run['id']} in `partita runs logs`",
            )
    finally:
        server.terminate()
        server.wait(timeout=30)

    assert len(runs) == 3 and {run["status"] for run in runs} == {"success"}
    assert all(run["launcher"]["kind"] == "k8s" for run in runs)
    done = {(entry["asset"], tuple(entry["keys"])) for entry in read_jsonl(output_file)}
    assert done == {
        (a, (day,))
        for a in ("paced_a", "paced_b", "paced_c")
        for day in ("2024-03-01", "2024-03-02", "2024-03-03")
    }

    # Every run is a Job that kubectl finds by the backfill's label ...
    jobs = kubectl_json(kube_api, "get", "jobs", "-n", NAMESPACE, "-l", f"partita/backfill-id={backfill_id}")
    assert sorted(job["metadata"]["name"] for job in jobs["items"]) == sorted(
        job_name(run["id"]) for run in runs
    )
    job = jobs["items"][0]
    assert job["metadata"]["labels"]["team"] == "data"
    by_asset = kubectl_json(kube_api, "get", "jobs", "-n", NAMESPACE, "-l", "partita/asset=paced_a")
    assert len(by_asset["items"]) == 3  # each run starts with paced_a
    assert job["metadata"]["annotations"]["partita/assets"] == "paced_a,paced_b,paced_c"
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == IMAGE
    assert container["resources"] == {
        "requests": {"cpu": "100m", "memory": "128Mi"},
        "limits": {"memory": "1Gi"},
    }
    assert any(c["type"] == "Complete" and c["status"] == "True" for c in job["status"]["conditions"])

    # ... describes, and shows the run worker's output as the Job's log.
    name = job["metadata"]["name"]
    described = kube_api.kubectl("describe", "job", name, "-n", NAMESPACE)
    assert described.returncode == 0, described.stderr
    assert name in described.stdout and f"partita/backfill-id={backfill_id}" in described.stdout
    logs = kube_api.kubectl("logs", f"job/{name}", "-n", NAMESPACE)
    assert logs.returncode == 0, logs.stderr
    assert "Materialized paced_c 2024-03-0" in logs.stdout


@needs_kubectl
def test_a_job_deleted_with_kubectl_fails_its_run_with_the_reason_and_a_retry_reruns_only_it(
    kube_api: KubeApiServer,
    plane: ControlPlane,
    output_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gate = tmp_path / "gate"
    monkeypatch.setenv("PARTITA_TEST_GATE", str(gate))
    view = launch(plane, ["gated"], "2024-03-01", "2024-03-02", max_concurrent_runs=1)
    wait_until(
        lambda: bool(plane.list_runs(backfill_id=view.record.id, statuses=[RunStatus.STARTED])),
        "the first run started in its pod",
    )
    (running,) = plane.list_runs(backfill_id=view.record.id, statuses=[RunStatus.STARTED])
    deleted = kube_api.kubectl("delete", "job", job_name(running.id), "-n", NAMESPACE)
    assert deleted.returncode == 0, deleted.stderr
    gate.touch()  # the other run may go on
    final = wait_for_end(plane, view.record.id, timeout=60)

    assert final.record.status is BackfillStatus.COMPLETED_FAILED
    failed = plane.get_run(running.id)
    assert failed is not None and failed.status is RunStatus.FAILURE
    assert failed.failure_kind is RunFailureKind.WORKER_LOST
    assert f"{NAMESPACE}/{job_name(running.id)} was deleted" in (failed.error or "")
    assert final.counts[AssetKey("gated")] == {PartitionStatus.FAILED: 1, PartitionStatus.MATERIALIZED: 1}

    plane.retry_backfill(view.record.id)
    retried = wait_for_end(plane, view.record.id, timeout=60)
    assert retried.record.status is BackfillStatus.COMPLETED_SUCCESS
    # Each day materialized exactly once: the deleted run's day only by the retry.
    gated_keys = [tuple(e["keys"]) for e in read_jsonl(output_file) if e["asset"] == "gated"]
    assert sorted(gated_keys) == [("2024-03-01",), ("2024-03-02",)]
    runs = plane.list_runs(backfill_id=view.record.id)
    assert len(runs) == 3  # two first time, and the retry of the deleted one only


def test_an_image_that_cannot_be_pulled_fails_the_run_with_the_reason_and_its_job_is_removed(
    kube_api: KubeApiServer, plane: ControlPlane, output_file: Path
) -> None:
    kube_api.node.fail_image(IMAGE, "ErrImagePull")
    view = launch(plane, ["paced_a"], "2024-03-01", "2024-03-01")
    final = wait_for_end(plane, view.record.id, timeout=60)

    assert final.record.status is BackfillStatus.COMPLETED_FAILED
    (run,) = plane.list_runs(backfill_id=view.record.id)
    assert run.status is RunStatus.FAILURE and run.failure_kind is RunFailureKind.IMAGE_PULL_FAILED
    assert f"cannot pull image '{IMAGE}'" in (run.error or "")
    # The control plane gave up on it, so the Job (and the pod waiting on its image) is gone.
    wait_until(lambda: read_job(kube_api, job_name(run.id)) is None, "the failed run's Job was deleted")
    assert read_jsonl(output_file) == []


def test_canceling_a_backfill_deletes_its_running_jobs(
    kube_api: KubeApiServer, plane: ControlPlane, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PARTITA_TEST_GATE", str(tmp_path / "never"))
    view = launch(plane, ["gated"], "2024-03-01", "2024-03-01")
    wait_until(
        lambda: bool(plane.list_runs(backfill_id=view.record.id, statuses=[RunStatus.STARTED])),
        "the run started in its pod",
    )
    (run,) = plane.list_runs(backfill_id=view.record.id)
    plane.cancel_backfill(view.record.id)
    final = wait_for_end(plane, view.record.id, timeout=60)
    assert final.record.status is BackfillStatus.CANCELED
    assert plane.get_run(run.id).status is RunStatus.CANCELED  # type: ignore[union-attr]
    wait_until(lambda: read_job(kube_api, job_name(run.id)) is None, "the canceled run's Job was deleted")
