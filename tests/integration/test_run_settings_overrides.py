"""Run settings overrides over the real API and the loopback Kubernetes API server.

A backfill's ``partita/k8s-config`` tag may set only the keys the launcher configuration allows for
its location: a refused key is named to the LaunchBackfill caller (PERMISSION_DENIED) with nothing
stored or launched, and the Job the API server receives carries only the allowed overrides.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from kubernetes import client as k8s_client

from code_server.asset_key import AssetKey
from code_server.partitions.keys import PartitionKeyRange
from code_server.server.spawn import SpawnedCodeServer, spawn_code_server
from code_server.wire.automation import BackfillRequestSpec
from control_plane.app import ControlPlane
from control_plane.client import ControlPlaneClient, ControlPlaneClientError
from control_plane.views import LaunchOptions
from launcher.base import CodeLocationTarget, LaunchRequest
from launcher.k8s import K8S_CONFIG_TAG, K8sLauncherConfig, KubernetesRunLauncher, job_name
from tests.integration.conftest import ROOT, wait_until
from tests.kube_cluster import KubeApiServer

pytestmark = pytest.mark.integration
Factory = Callable[..., ControlPlane]

IMAGE = "registry.example.com/partita-tests:1.0"
NAMESPACE = "partita-runs"
SETTINGS = {
    "namespace": NAMESPACE,
    "defaults": {
        "service_account_name": "partita-run-worker",
        "resources": {"requests": {"cpu": "100m"}},
    },
    "locations": {"tests": {}},
}


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


def start_plane(
    kube_api: KubeApiServer, code_server: SpawnedCodeServer, factory: Factory, settings: dict[str, Any]
) -> ControlPlane:
    # Nothing needs to execute: the Job body is what these tests look at.
    kube_api.node.fail_image(IMAGE, "ErrImagePull")
    launcher = KubernetesRunLauncher(K8sLauncherConfig.from_mapping(settings), kube_api.api_client())
    return factory({"tests": code_server.address}, launcher=launcher)


def launch(plane: ControlPlane, override: dict[str, Any]) -> Any:
    spec = BackfillRequestSpec(
        asset_keys=(AssetKey("paced_a"),), partition_ranges=(PartitionKeyRange("2024-03-01", "2024-03-01"),)
    )
    options = LaunchOptions(location="tests", tags={K8S_CONFIG_TAG: json.dumps(override)})
    with ControlPlaneClient(plane.address) as client:
        return client.launch_backfill(spec, options)


def jobs(kube: KubeApiServer) -> list[dict[str, Any]]:
    response = k8s_client.BatchV1Api(kube.api_client()).list_namespaced_job(NAMESPACE, _preload_content=False)
    return list(json.loads(response.data)["items"])


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("env_from", [{"secretRef": {"name": "partita-database"}}]),
        ("service_account_name", "partita-control-plane"),
        ("env", [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "partita-database", "key": "url"}}}]),
        ("image", "attacker/image:latest"),
        ("namespace", "kube-system"),
    ],
)
def test_a_key_the_operator_did_not_allow_is_refused_by_name_and_nothing_is_written(
    kube_api: KubeApiServer,
    code_server: SpawnedCodeServer,
    control_plane_factory: Factory,
    key: str,
    value: Any,
) -> None:
    plane = start_plane(kube_api, code_server, control_plane_factory, SETTINGS)
    with pytest.raises(ControlPlaneClientError) as error:
        launch(plane, {key: value, "resources": {"limits": {"memory": "1Gi"}}})
    assert error.value.status is grpc.StatusCode.PERMISSION_DENIED
    message = str(error.value)
    assert f"key {key!r} is not allowed for location 'tests'" in message
    assert (
        "allowed: active_deadline_seconds, annotations, labels, node_selector, resources, tolerations"
        in message
    )
    assert "allowed_run_overrides" in message
    assert plane.list_backfills() == []
    assert plane.list_runs() == []
    assert jobs(kube_api) == []


def test_a_malformed_tag_is_invalid_argument_at_launch(
    kube_api: KubeApiServer, code_server: SpawnedCodeServer, control_plane_factory: Factory
) -> None:
    plane = start_plane(kube_api, code_server, control_plane_factory, SETTINGS)
    with pytest.raises(ControlPlaneClientError) as error:
        launch(plane, {"memory": "8Gi"})
    assert error.value.status is grpc.StatusCode.INVALID_ARGUMENT
    assert "unknown setting(s) memory" in str(error.value)
    assert plane.list_runs() == []


def test_the_job_the_api_server_receives_carries_only_the_allowed_overrides(
    kube_api: KubeApiServer, code_server: SpawnedCodeServer, control_plane_factory: Factory
) -> None:
    plane = start_plane(kube_api, code_server, control_plane_factory, SETTINGS)
    override = {
        "resources": {"limits": {"memory": "3Gi"}},
        "node_selector": {"pool": "highmem"},
        "tolerations": [{"key": "highmem", "operator": "Exists"}],
        "labels": {"team": "analytics"},
        "annotations": {"note": "heavy"},
        "active_deadline_seconds": 600,
    }
    backfill = launch(plane, override)
    (run,) = plane.list_runs(backfill_id=backfill.backfill_id)
    wait_until(lambda: len(jobs(kube_api)) == 1, "the run's Job was created")
    (job,) = jobs(kube_api)
    assert job["metadata"]["name"] == job_name(run.id)
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["resources"] == {"requests": {"cpu": "100m"}, "limits": {"memory": "3Gi"}}
    assert pod["nodeSelector"] == {"pool": "highmem"}
    assert pod["tolerations"] == [{"key": "highmem", "operator": "Exists"}]
    assert job["metadata"]["labels"]["team"] == "analytics"
    assert job["metadata"]["annotations"]["note"] == "heavy"
    assert job["spec"]["activeDeadlineSeconds"] == 600
    # What the operator configured, untouched by the tag.
    assert pod["serviceAccountName"] == "partita-run-worker"
    assert container["image"] == IMAGE
    assert job["metadata"]["namespace"] == NAMESPACE
    assert "envFrom" not in container
    assert all(not item["name"].startswith("X") for item in container.get("env", []))


def test_an_operator_can_allow_a_key_for_one_location(
    kube_api: KubeApiServer, code_server: SpawnedCodeServer, control_plane_factory: Factory
) -> None:
    settings = {**SETTINGS, "locations": {"tests": {"allowed_run_overrides": ["resources", "env_from"]}}}
    plane = start_plane(kube_api, code_server, control_plane_factory, settings)
    backfill = launch(plane, {"env_from": [{"configMapRef": {"name": "analytics-env"}}]})
    assert plane.list_runs(backfill_id=backfill.backfill_id)
    wait_until(lambda: len(jobs(kube_api)) == 1, "the run's Job was created")
    (container,) = jobs(kube_api)[0]["spec"]["template"]["spec"]["containers"]
    assert container["envFrom"] == [{"configMapRef": {"name": "analytics-env"}}]
    # node_selector is a default key, but this location's own list replaces the defaults.
    with pytest.raises(ControlPlaneClientError, match="'node_selector' is not allowed for location 'tests'"):
        launch(plane, {"node_selector": {"pool": "x"}})


def test_a_job_launched_before_the_operator_disallowed_its_key_is_still_found(
    kube_api: KubeApiServer,
) -> None:
    kube_api.node.fail_image(IMAGE, "ErrImagePull")
    loose = {**SETTINGS, "allowed_run_overrides": ["env"]}
    launch_request = LaunchRequest(
        run_id="run0000000000000042",
        location=CodeLocationTarget("tests", module_name="m", image=IMAGE),
        asset_keys=(AssetKey("paced_a"),),
        partition_range=None,
        control_plane_address="127.0.0.1:1",
        tags={K8S_CONFIG_TAG: json.dumps({"env": [{"name": "EXTRA", "value": "1"}]})},
    )
    before = KubernetesRunLauncher(K8sLauncherConfig.from_mapping(loose), kube_api.api_client())
    handle = before.launch(launch_request)
    before.close()
    # A restarted control plane with a stricter configuration adopts the Job instead of never answering.
    after = KubernetesRunLauncher(K8sLauncherConfig.from_mapping(SETTINGS), kube_api.api_client())
    assert after.find(launch_request) == handle
    after.close()
