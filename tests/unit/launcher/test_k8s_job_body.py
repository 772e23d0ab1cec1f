"""The Job sent for a run: its command, identity, settings, and validity for the Kubernetes API."""

from __future__ import annotations

import json
from typing import Any

import kubernetes_validate
import pytest
from kubernetes_validate.utils import latest_version

from code_server.asset_key import AssetKey
from code_server.partitions.keys import PartitionKeyRange
from launcher.base import CodeLocationTarget, LaunchRequest
from launcher.k8s import K8S_CONFIG_TAG, K8sConfigError, K8sLauncherConfig
from launcher.k8s.job_body import build_job

#: The oldest and the newest Kubernetes versions kubernetes-validate knows.
KUBERNETES_VERSIONS = ("1.25.0", latest_version())

CONFIG = K8sLauncherConfig.from_mapping(
    {
        "namespace": "partita",
        # The operator lets runs choose their pull policy too (not allowed by default).
        "allowed_run_overrides": ["resources", "image_pull_policy"],
        "defaults": {
            "service_account_name": "partita-run-worker",
            "image_pull_policy": "IfNotPresent",
            "image_pull_secrets": ["regcred"],
            "env": [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "warehouse", "key": "token"}}}],
            "env_from": [{"configMapRef": {"name": "partita-run-env"}}],
            "resources": {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"memory": "2Gi"}},
            "node_selector": {"workload": "batch"},
            "tolerations": [{"key": "batch", "operator": "Exists", "effect": "NoSchedule"}],
            "labels": {"team": "data", "app.kubernetes.io/managed-by": "someone-else"},
            "annotations": {"owner": "data-platform"},
            "active_deadline_seconds": 3600,
            "volumes": [{"name": "partita-tls", "secret": {"secretName": "partita-worker-tls"}}],
            "volume_mounts": [{"name": "partita-tls", "mountPath": "/var/run/partita/tls", "readOnly": True}],
        },
    }
)


def request(**overrides: Any) -> LaunchRequest:
    values: dict[str, Any] = {
        "run_id": "0123456789abcdef0123",
        "location": CodeLocationTarget(
            name="Analytics Location/Prod", module_name="my_pkg.defs", working_directory="/app"
        ),
        "asset_keys": (AssetKey(["warehouse", "events"]), AssetKey(["daily_summary"])),
        "partition_range": PartitionKeyRange("2024-01-01", "2024-01-31"),
        "control_plane_address": "partita-control-plane.partita.svc:3000",
        "backfill_id": "bf0123456789",
    }
    values.update(overrides)
    return LaunchRequest(**values)


def job_for(launch: LaunchRequest) -> dict[str, Any]:
    settings = CONFIG.settings_for(launch.location.name, launch.tags)
    return build_job(launch, settings, image="registry.example.com/analytics:1.4.2")


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize(
    "launch",
    [
        request(),
        request(partition_range=PartitionKeyRange("2024-01-01", "2024-01-01"), backfill_id=None),
        request(
            partition_range=None,
            tags={K8S_CONFIG_TAG: json.dumps({"resources": {"limits": {"memory": "8Gi"}}})},
        ),
        request(run_id="x" * 90, location=CodeLocationTarget(name="l" * 100, python_file="/app/defs.py")),
    ],
    ids=["range", "single-key", "unpartitioned-heavy", "long-names"],
)
def test_every_job_validates_strictly_against_the_kubernetes_schema(
    launch: LaunchRequest, version: str
) -> None:
    kubernetes_validate.validate(job_for(launch), version, strict=True)


def test_the_container_runs_the_worker_with_the_runs_range_as_arguments_and_environment() -> None:
    job = job_for(request())
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["partita"]
    assert container["args"] == [
        "execute-run", "--run-id", "0123456789abcdef0123", "--attempt", "1", "-m", "my_pkg.defs", "--working-directory", "/app",
        "--assets", "warehouse/events,daily_summary", "--partition-range", "2024-01-01...2024-01-31",
        "--control-plane", "partita-control-plane.partita.svc:3000",
    ]  # fmt: skip
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env["PARTITA_RUN_ID"] == "0123456789abcdef0123"
    assert env["PARTITA_ASSETS"] == "warehouse/events,daily_summary"
    assert env["PARTITA_PARTITION_RANGE"] == "2024-01-01...2024-01-31"
    assert env["PARTITA_CONTROL_PLANE"] == "partita-control-plane.partita.svc:3000"
    assert env["PARTITA_MODULE"] == "my_pkg.defs"
    assert "TOKEN" in env  # the configured env follows the run's own
    single = job_for(request(partition_range=PartitionKeyRange("2024-01-05", "2024-01-05")))
    single_container = single["spec"]["template"]["spec"]["containers"][0]
    assert single_container["args"][single_container["args"].index("--partition-key") + 1] == "2024-01-05"


def test_kubernetes_retries_nothing_and_finished_jobs_expire() -> None:
    job = job_for(request())
    assert job["metadata"] == job["metadata"] | {
        "name": "partita-run-0123456789abcdef0123",
        "namespace": "partita",
    }
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert job["spec"]["ttlSecondsAfterFinished"] == 86_400
    assert job["spec"]["activeDeadlineSeconds"] == 3600


def test_labels_and_annotations_identify_the_run_and_partitas_own_labels_win() -> None:
    job = job_for(request())
    labels = job["metadata"]["labels"]
    assert labels == job["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/managed-by"] == "partita"
    assert labels["app.kubernetes.io/component"] == "run-worker"
    assert labels["partita/run-id"] == "0123456789abcdef0123"
    assert labels["partita/backfill-id"] == "bf0123456789"
    # Sanitized, with a hash of the real name so two names that sanitize alike stay apart.
    assert labels["partita/location"].startswith("Analytics-Location-Prod-")
    # The first asset, so `kubectl get jobs -l partita/asset=warehouse.events` finds its runs.
    assert labels["partita/asset"] == "warehouse.events"
    assert labels["team"] == "data"
    annotations = job["metadata"]["annotations"]
    assert annotations["partita/assets"] == "warehouse/events,daily_summary"
    assert annotations["partita/partition-range"] == "2024-01-01...2024-01-31"
    assert annotations["partita/location"] == "Analytics Location/Prod"  # the real name, unsanitized
    assert annotations["owner"] == "data-platform"


def test_pod_settings_come_from_the_config_and_the_run_tag() -> None:
    heavy = {
        K8S_CONFIG_TAG: json.dumps(
            {"resources": {"limits": {"memory": "8Gi"}}, "image_pull_policy": "Always"}
        )
    }
    pod = job_for(request(tags=heavy))["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["resources"] == {
        "requests": {"cpu": "500m", "memory": "512Mi"},
        "limits": {"memory": "8Gi"},
    }
    assert container["imagePullPolicy"] == "Always"
    assert container["envFrom"] == [{"configMapRef": {"name": "partita-run-env"}}]
    assert container["image"] == "registry.example.com/analytics:1.4.2"
    assert pod["serviceAccountName"] == "partita-run-worker"
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    assert pod["nodeSelector"] == {"workload": "batch"}
    assert pod["tolerations"] == [{"key": "batch", "operator": "Exists", "effect": "NoSchedule"}]


def test_the_workers_tls_settings_are_in_the_jobs_environment_and_its_ca_is_mounted() -> None:
    launch = request(reporting_environment={"PARTITA_TLS_CA": "/var/run/partita/tls/ca.crt"})
    pod = job_for(launch)["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env["PARTITA_TLS_CA"] == "/var/run/partita/tls/ca.crt"
    assert pod["volumes"] == [{"name": "partita-tls", "secret": {"secretName": "partita-worker-tls"}}]
    assert container["volumeMounts"][0]["mountPath"] == "/var/run/partita/tls"


def test_a_run_tag_cannot_mount_volumes() -> None:
    tag = json.dumps({"volumes": [{"name": "host", "hostPath": {"path": "/"}}]})
    with pytest.raises(K8sConfigError, match="volumes can only be set in the launcher's config file"):
        CONFIG.settings_for("analytics", {K8S_CONFIG_TAG: tag})


def test_the_run_credential_is_in_the_jobs_environment_and_never_in_its_arguments() -> None:
    launch = request(run_credential="partita-run.c2VjcmV0")
    (container,) = job_for(launch)["spec"]["template"]["spec"]["containers"]
    assert {"name": "PARTITA_RUN_CREDENTIAL", "value": "partita-run.c2VjcmV0"} in container["env"]
    assert not any("partita-run." in argument for argument in container["args"])
    assert "c2VjcmV0" not in repr(launch)
    assert not any(
        item["name"] == "PARTITA_RUN_CREDENTIAL"
        for item in job_for(request())["spec"]["template"]["spec"]["containers"][0]["env"]
    )
