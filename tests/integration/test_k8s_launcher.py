"""The Kubernetes launcher against the loopback API server: idempotent launches, clear refusals."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest
from kubernetes import client as k8s_client

from code_server.asset_key import AssetKey
from code_server.partitions.keys import PartitionKeyRange
from launcher.base import CodeLocationTarget, FailureKind, LauncherError, LaunchRequest, RunState
from launcher.k8s import K8S_CONFIG_TAG, K8sLauncherConfig, KubernetesRunLauncher, job_name
from tests.integration.conftest import wait_until
from tests.kube_cluster import KubeApiServer

pytestmark = pytest.mark.integration
IMAGE = "registry.example.com/app:1"


def request(run_id: str = "run0000000000000001", image: str | None = IMAGE, **values: Any) -> LaunchRequest:
    return LaunchRequest(
        run_id=run_id,
        location=CodeLocationTarget("analytics", module_name="my_pkg.defs", image=image),
        asset_keys=(AssetKey("events"),),
        partition_range=PartitionKeyRange("2024-01-01", "2024-01-31"),
        control_plane_address="127.0.0.1:1",
        **values,
    )


@pytest.fixture
def launcher(kube_api: KubeApiServer) -> KubernetesRunLauncher:
    # Nothing in these tests should actually run: the container cannot be created.
    kube_api.node.fail_image(IMAGE, "CreateContainerConfigError")
    return KubernetesRunLauncher(K8sLauncherConfig(namespace="runs"), kube_api.api_client())


def jobs(kube: KubeApiServer) -> list[str]:
    listing = k8s_client.BatchV1Api(kube.api_client()).list_namespaced_job("runs")
    return [job.metadata.name for job in listing.items]


def test_launching_the_same_run_again_finds_its_job_instead_of_starting_it_twice(
    kube_api: KubeApiServer, launcher: KubernetesRunLauncher
) -> None:
    first = launcher.launch(request())
    # A control plane that crashed after creating the Job but before recording it launches again.
    again = launcher.launch(request())
    assert first == again == f"runs/{job_name('run0000000000000001')}"
    assert jobs(kube_api) == [job_name("run0000000000000001")]


def test_a_launch_cut_off_by_a_crash_is_found_by_its_job_name(
    kube_api: KubeApiServer, launcher: KubernetesRunLauncher
) -> None:
    handle = launcher.launch(request())
    # A new control plane (a new launcher) asks whether the run's worker was started.
    restarted = KubernetesRunLauncher(K8sLauncherConfig(namespace="runs"), kube_api.api_client())
    assert restarted.find(request()) == handle
    assert restarted.find(request("run0000000000000009")) is None
    restarted.close()


def test_a_job_name_taken_by_something_else_is_refused(
    kube_api: KubeApiServer, launcher: KubernetesRunLauncher
) -> None:
    foreign = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": job_name("run0000000000000002")},
        "spec": {
            "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "x", "image": "x"}]}}
        },
    }
    k8s_client.BatchV1Api(kube_api.api_client()).create_namespaced_job("runs", foreign)
    with pytest.raises(LauncherError, match=r"refused Job runs/partita-run-run0000000000000002.*HTTP 409"):
        launcher.launch(request("run0000000000000002"))
    assert launcher.find(request("run0000000000000002")) is None  # not the run's Job: not adopted


def test_a_location_without_an_image_or_a_bad_run_tag_is_refused_with_what_to_do(
    launcher: KubernetesRunLauncher,
) -> None:
    with pytest.raises(LauncherError, match=r"Code location 'analytics' has no image.*--image"):
        launcher.launch(request(image=None))
    with pytest.raises(
        LauncherError, match=r"run0000000000000001: run tag partita/k8s-config.*unknown setting\(s\) memory"
    ):
        launcher.launch(request(tags={K8S_CONFIG_TAG: json.dumps({"memory": "8Gi"})}))


def test_check_explains_a_container_that_cannot_start_and_terminate_deletes_the_job(
    kube_api: KubeApiServer, launcher: KubernetesRunLauncher
) -> None:
    handle = launcher.launch(request())
    wait_until(
        lambda: launcher.check("run0000000000000001", handle).state is RunState.FAILED,
        "the launcher saw the container config error",
    )
    health = launcher.check("run0000000000000001", handle)
    assert health.failure_kind is FailureKind.CONTAINER_CONFIG_ERROR
    assert 'secret "partita-missing-secret" not found' in (health.reason or "")
    assert launcher.terminate("run0000000000000001", handle) is True
    assert jobs(kube_api) == []
    assert launcher.terminate("run0000000000000001", handle) is False  # already gone
    gone = launcher.check("run0000000000000001", handle)
    assert (gone.state, gone.failure_kind) == (RunState.NOT_FOUND, FailureKind.WORKER_LOST)


def test_an_unreachable_api_server_is_a_launch_error_and_unknown_health() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    configuration = k8s_client.Configuration()
    configuration.host = f"http://127.0.0.1:{port}"
    configuration.retries = 0
    launcher = KubernetesRunLauncher(K8sLauncherConfig(namespace="runs"), k8s_client.ApiClient(configuration))
    with pytest.raises(LauncherError, match="Kubernetes API unreachable creating Job runs/partita-run-"):
        launcher.launch(request())
    # Whether a cut-off launch started cannot be told: the monitor asks again later.
    with pytest.raises(LauncherError, match="Kubernetes API unreachable reading Job runs/partita-run-"):
        launcher.find(request())
    # The monitor must not fail a healthy run because the API server is briefly away.
    health = launcher.check("run0000000000000001", "runs/partita-run-run0000000000000001")
    assert health.state is RunState.RUNNING and "unreachable" in (health.reason or "")


def test_a_bulk_check_says_what_each_check_says_in_two_requests(kube_api: KubeApiServer) -> None:
    kube_api.node.fail_image(IMAGE, "CreateContainerConfigError")
    api_client = kube_api.api_client()
    requests: list[str] = []
    call_api = api_client.call_api

    def counted(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        requests.append(f"{method} {url.split('?')[0]}")
        return call_api(method, url, *args, **kwargs)

    api_client.call_api = counted  # type: ignore[method-assign]
    launcher = KubernetesRunLauncher(K8sLauncherConfig(namespace="runs"), api_client)
    runs = [(f"run{index:016d}", launcher.launch(request(f"run{index:016d}"))) for index in range(5)]
    runs.append(("run9999999999999999", "runs/partita-run-run9999999999999999"))  # never launched
    k8s_client.BatchV1Api(kube_api.api_client()).delete_namespaced_job(
        job_name("run0000000000000004"), "runs"
    )
    # Settled first (every container config error shown), so both ways look at the same states.
    wait_until(
        lambda: all(launcher.check(*run).state is RunState.FAILED for run in runs[:4]),
        "the container config errors showed",
    )
    one_by_one = {run_id: launcher.check(run_id, handle) for run_id, handle in runs}
    requests.clear()
    assert launcher.check_many(runs) == one_by_one
    assert len(requests) == 2, requests  # one LIST of Jobs, one of pods
    assert {health.state for health in one_by_one.values()} == {RunState.FAILED, RunState.NOT_FOUND}
