"""The ``batch/v1`` Job that runs one run: built from the launch request and the merged settings.

The Job is a plain JSON-shaped dict, exactly what is sent to the API server (and what the tests
validate against the Kubernetes OpenAPI schema). Kubernetes retries nothing (``backoffLimit: 0``,
``restartPolicy: Never``): retrying is the control plane's job, per failed partition.
"""

from __future__ import annotations

from typing import Any

from launcher.base import LaunchRequest, worker_secrets
from launcher.k8s.config import JobSettings
from launcher.k8s.names import job_name, label_value

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
COMPONENT_LABEL = "app.kubernetes.io/component"
RUN_ID_LABEL = "partita/run-id"
BACKFILL_ID_LABEL = "partita/backfill-id"
LOCATION_LABEL = "partita/location"
#: The run's first (most upstream) asset, its path joined by "." (every asset: ``partita/assets``).
ASSET_LABEL = "partita/asset"
ASSETS_ANNOTATION = "partita/assets"
PARTITION_RANGE_ANNOTATION = "partita/partition-range"
LOCATION_ANNOTATION = "partita/location"
CONTAINER_NAME = "run-worker"


def build_job(request: LaunchRequest, settings: JobSettings, image: str) -> dict[str, Any]:
    """The Job manifest for ``request``; Partita's own labels win over configured ones."""
    labels = {
        **settings.labels,
        MANAGED_BY_LABEL: "partita",
        COMPONENT_LABEL: "run-worker",
        RUN_ID_LABEL: label_value(request.run_id),
        LOCATION_LABEL: label_value(request.location.name),
    }
    if request.asset_keys:
        labels[ASSET_LABEL] = label_value(".".join(request.asset_keys[0].path))
    if request.backfill_id:
        labels[BACKFILL_ID_LABEL] = label_value(request.backfill_id)
    annotations = {
        **settings.annotations,
        ASSETS_ANNOTATION: ",".join(key.to_user_string() for key in request.asset_keys),
        LOCATION_ANNOTATION: request.location.name,
    }
    if request.partition_range is not None:
        annotations[PARTITION_RANGE_ANNOTATION] = str(request.partition_range)
    job_spec: dict[str, Any] = {
        "backoffLimit": 0,
        "template": {
            "metadata": {"labels": labels, "annotations": annotations},
            "spec": _pod_spec(request, settings, image),
        },
    }
    if settings.ttl_seconds_after_finished is not None:
        job_spec["ttlSecondsAfterFinished"] = settings.ttl_seconds_after_finished
    if settings.active_deadline_seconds is not None:
        job_spec["activeDeadlineSeconds"] = settings.active_deadline_seconds
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(request.run_id),
            "namespace": settings.namespace,
            "labels": labels,
            "annotations": annotations,
        },
        "spec": job_spec,
    }


def _pod_spec(request: LaunchRequest, settings: JobSettings, image: str) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": image,
        "command": ["partita"],
        "args": request.execute_run_arguments(),
        "env": [*_run_environment(request), *(dict(item) for item in settings.env)],
    }
    if settings.image_pull_policy:
        container["imagePullPolicy"] = settings.image_pull_policy
    if settings.env_from:
        container["envFrom"] = [dict(item) for item in settings.env_from]
    if settings.resources:
        container["resources"] = dict(settings.resources)
    if settings.volume_mounts:
        container["volumeMounts"] = [dict(item) for item in settings.volume_mounts]
    pod_spec: dict[str, Any] = {"restartPolicy": "Never", "containers": [container]}
    if settings.service_account_name:
        pod_spec["serviceAccountName"] = settings.service_account_name
    if settings.image_pull_secrets:
        pod_spec["imagePullSecrets"] = [{"name": name} for name in settings.image_pull_secrets]
    if settings.node_selector:
        pod_spec["nodeSelector"] = dict(settings.node_selector)
    if settings.tolerations:
        pod_spec["tolerations"] = [dict(item) for item in settings.tolerations]
    if settings.volumes:
        pod_spec["volumes"] = [dict(item) for item in settings.volumes]
    return pod_spec


def _run_environment(request: LaunchRequest) -> list[dict[str, str]]:
    """The run's identity as environment variables too, for user code and log shippers that read them."""
    environment = {
        "PARTITA_RUN_ID": request.run_id,
        "PARTITA_RUN_ATTEMPT": str(request.attempt),
        "PARTITA_LOCATION": request.location.name,
        "PARTITA_ASSETS": ",".join(key.to_user_string() for key in request.asset_keys),
        "PARTITA_CONTROL_PLANE": request.control_plane_address,
        "PYTHONUNBUFFERED": "1",
        # TLS to the control plane: paths inside the pod, where a Secret is mounted (docs/security.md).
        **request.reporting_environment,
        # Readable by whoever may read Jobs in the namespace; it allows reporting on this attempt only.
        **worker_secrets(request),
    }
    location = request.location
    if location.module_name:
        environment["PARTITA_MODULE"] = location.module_name
    elif location.python_file:
        environment["PARTITA_PYTHON_FILE"] = location.python_file
    if location.working_directory:
        environment["PARTITA_WORKING_DIRECTORY"] = location.working_directory
    if request.backfill_id:
        environment["PARTITA_BACKFILL_ID"] = request.backfill_id
    if request.partition_range is not None:
        if request.partition_range.start == request.partition_range.end:
            environment["PARTITA_PARTITION_KEY"] = request.partition_range.start
        else:
            environment["PARTITA_PARTITION_RANGE"] = str(request.partition_range)
    return [{"name": name, "value": value} for name, value in environment.items()]
