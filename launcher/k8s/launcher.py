"""The production launcher: every run is a Kubernetes Job in its code location's image.

It talks to the API server through the official ``kubernetes`` client, with its own ``ApiClient``
(never the process-wide default configuration), reading Jobs and pods as plain JSON so that fields
newer than the client's models are kept. Launching is idempotent: a Job name is derived from the run
id, so a control plane that crashed between creating a Job and recording it finds the Job on relaunch
instead of starting the run twice.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from launcher.base import (
    InvalidRunSettings,
    LauncherError,
    LaunchRequest,
    OutputHandler,
    RunHealth,
    RunLauncher,
    RunSettingsNotAllowed,
    RunState,
    StoredLines,
)
from launcher.k8s.config import K8sLauncherConfig
from launcher.k8s.health import job_health
from launcher.k8s.job_body import RUN_ID_LABEL, build_job
from launcher.k8s.logs import PodLogFollower
from launcher.k8s.names import job_name, label_value
from launcher.k8s.run_overrides import K8sConfigError, RunOverrideNotAllowed

logger = logging.getLogger("partita.launcher.k8s")

SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
#: Seconds for any one API call; the run queue and monitor must never hang on the API server.
REQUEST_TIMEOUT_SECONDS = 10.0
#: Run ids per label selector of a bulk check (keeps request URLs short).
_RUNS_PER_LIST = 100


class KubernetesRunLauncher(RunLauncher):
    kind = "k8s"

    def __init__(self, config: K8sLauncherConfig, api_client: k8s_client.ApiClient) -> None:
        self._config = config
        self._api_client = api_client
        self._batch = k8s_client.BatchV1Api(api_client)
        self._core = k8s_client.CoreV1Api(api_client)
        self._logs: PodLogFollower | None = None
        self._stored_lines: StoredLines = lambda run_id: 0

    def capture_output(self, handler: OutputHandler, stored_lines: StoredLines) -> None:
        """Copy each run's container output to ``handler`` while it runs (see ``launcher.k8s.logs``)."""
        if self._logs is not None:
            self._logs.close()
        self._logs = PodLogFollower(self._core, handler)
        self._stored_lines = stored_lines

    @classmethod
    def from_environment(
        cls, config: K8sLauncherConfig, *, kubeconfig: str | None = None, context: str | None = None
    ) -> KubernetesRunLauncher:
        """In a pod: its service account; elsewhere: ``kubeconfig`` (or $KUBECONFIG, ~/.kube/config)."""
        try:
            if kubeconfig is None and context is None and _in_cluster():
                if config.namespace is None:
                    config = replace(config, namespace=_own_namespace())
                configuration = k8s_client.Configuration()
                k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
                api_client = k8s_client.ApiClient(configuration)
            else:
                api_client = k8s_config.new_client_from_config(  # type: ignore[no-untyped-call]
                    config_file=kubeconfig, context=context
                )
        except (k8s_config.ConfigException, OSError) as error:
            raise LauncherError(
                f"Cannot configure the Kubernetes client ({error}); run in a pod with a service account, "
                "or pass --kubeconfig"
            ) from error
        return cls(config, api_client)

    def check_run_settings(self, location: str, tags: Mapping[str, str]) -> None:
        """The run tag's override must parse and set only keys allowed for ``location``."""
        try:
            self._config.check_run_override(location, tags)
        except RunOverrideNotAllowed as error:
            raise RunSettingsNotAllowed(str(error)) from error
        except K8sConfigError as error:
            raise InvalidRunSettings(str(error)) from error

    def launch(self, request: LaunchRequest) -> str:
        try:
            settings = self._config.settings_for(request.location.name, request.tags)
        except K8sConfigError as error:
            raise LauncherError(f"Run {request.run_id}: {error}") from error
        image = request.location.image or settings.image
        if not image:
            raise LauncherError(
                f"Code location {request.location.name!r} has no image for run {request.run_id}: start its "
                f"code server with --image, or set locations.{request.location.name}.image in the "
                "Kubernetes launcher config"
            )
        body = build_job(request, settings, image)
        handle = f"{settings.namespace}/{body['metadata']['name']}"
        try:
            # A dict body is sent as it is: exactly the manifest the tests validate. The answer is
            # read raw (and so the connection released) rather than parsed into the client's models.
            response: Any = self._batch.create_namespaced_job(  # raw: an HTTPResponse
                settings.namespace,
                body,  # type: ignore[arg-type]
                _request_timeout=REQUEST_TIMEOUT_SECONDS,
                _preload_content=False,
            )
            response.release_conn()
        except ApiException as error:
            if error.status == 409 and self._is_same_run(settings.namespace, body, request.run_id):
                logger.info("Job %s already exists for run %s; not creating it again", handle, request.run_id)
                self._follow_output(request.run_id, handle)
                return handle
            raise LauncherError(
                f"Kubernetes refused Job {handle} for run {request.run_id}: {_explain(error)}"
            ) from error
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise LauncherError(f"Kubernetes API unreachable creating Job {handle}: {error}") from error
        self._follow_output(request.run_id, handle)
        return handle

    def find(self, request: LaunchRequest) -> str | None:
        """The run's Job, by its deterministic name, if it was created: a launch cut off by a crash is
        adopted rather than repeated. Raises ``LauncherError`` when the API cannot tell."""
        try:
            settings = self._config.settings_for(request.location.name, request.tags)
        except K8sConfigError:
            # A tag the configuration now refuses could not have made a Job since; one made before
            # was made in the configured namespace unless the tag moved it, which only a looser
            # configuration allowed. Look there rather than never answering.
            settings = self._config.settings_for(request.location.name, {})
        name = job_name(request.run_id)
        existing = self._read_job(settings.namespace, name)
        labels = ((existing or {}).get("metadata") or {}).get("labels") or {}
        if existing is None or labels.get(RUN_ID_LABEL) != label_value(request.run_id):
            return None
        handle = f"{settings.namespace}/{name}"
        self._follow_output(request.run_id, handle)
        return handle

    def terminate(self, run_id: str, handle: str) -> bool:
        """Delete the Job and its pods (background propagation) unless it already finished.

        A finished Job is kept until its ttlSecondsAfterFinished so that ``kubectl logs`` still works.
        """
        if self._logs is not None:
            self._logs.stop(run_id)
        namespace, name = _split(handle)
        job = self._read_job(namespace, name)
        if job is None or _finished(job):
            return False
        try:
            self._batch.delete_namespaced_job(
                name,
                namespace,
                body=k8s_client.V1DeleteOptions(propagation_policy="Background"),
                _request_timeout=REQUEST_TIMEOUT_SECONDS,
            )
        except ApiException as error:
            if error.status == 404:
                return False
            raise LauncherError(
                f"Could not delete Job {handle} of run {run_id}: {_explain(error)}"
            ) from error
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise LauncherError(f"Kubernetes API unreachable deleting Job {handle}: {error}") from error
        logger.info("Deleted Job %s of run %s", handle, run_id)
        return True

    def check(self, run_id: str, handle: str) -> RunHealth:
        namespace, name = _split(handle)
        try:
            job = self._read_job(namespace, name)
            pods = [] if job is None or _finished_successfully(job) else self._pods(namespace, run_id)
        except LauncherError as error:
            # The API server is down or slow: say nothing is known rather than fail a healthy run.
            logger.warning("Cannot check run %s: %s", run_id, error)
            return RunHealth(RunState.RUNNING, str(error))
        return self._health(run_id, handle, job, pods)

    def _health(
        self, run_id: str, handle: str, job: dict[str, Any] | None, pods: list[dict[str, Any]]
    ) -> RunHealth:
        health = job_health(job, pods, handle)
        if job is not None:
            # A run launched before this control plane (re)started, running or finished meanwhile
            # (its pod kept until the Job's TTL): copy what it printed that is not stored yet.
            self._follow_output(run_id, handle, resuming=True)
        return health

    def check_many(self, runs: Sequence[tuple[str, str]]) -> dict[str, RunHealth]:
        """Two LISTs per namespace and 100 runs (Jobs and pods selected by ``partita/run-id in (...)``),
        not two GETs per run: the monitor's cost per pass stays flat as active runs grow."""
        healths: dict[str, RunHealth] = {}
        by_namespace: dict[str, list[tuple[str, str, str]]] = {}
        for run_id, handle in runs:
            namespace, name = _split(handle)
            by_namespace.setdefault(namespace, []).append((run_id, handle, name))
        for namespace, members in by_namespace.items():
            for start in range(0, len(members), _RUNS_PER_LIST):
                chunk = members[start : start + _RUNS_PER_LIST]
                selector = (
                    f"{RUN_ID_LABEL} in ({','.join(sorted({label_value(run_id) for run_id, _, _ in chunk}))})"
                )
                try:
                    jobs = self._list_jobs(namespace, selector)
                    pods = self._list_pods(namespace, selector)
                except LauncherError as error:
                    logger.warning("Cannot check %d runs in %s: %s", len(chunk), namespace, error)
                    healths.update(
                        {run_id: RunHealth(RunState.RUNNING, str(error)) for run_id, _, _ in chunk}
                    )
                    continue
                jobs_by_name = {job["metadata"]["name"]: job for job in jobs}
                pods_by_run: dict[str, list[dict[str, Any]]] = {}
                for pod in pods:
                    label = ((pod.get("metadata") or {}).get("labels") or {}).get(RUN_ID_LABEL)
                    pods_by_run.setdefault(str(label), []).append(pod)
                for run_id, handle, name in chunk:
                    job = jobs_by_name.get(name)
                    run_pods = (
                        []
                        if job is None or _finished_successfully(job)
                        else pods_by_run.get(label_value(run_id), [])
                    )
                    healths[run_id] = self._health(run_id, handle, job, run_pods)
        return healths

    def close(self) -> None:
        if self._logs is not None:
            self._logs.close()
        self._api_client.close()  # type: ignore[no-untyped-call]

    def _follow_output(self, run_id: str, handle: str, *, resuming: bool = False) -> None:
        if self._logs is None or self._logs.knows(run_id):
            return
        namespace, name = _split(handle)

        def job_exists() -> bool:
            try:
                job = self._read_job(namespace, name)
            except LauncherError:
                return True  # unknown: keep waiting
            return job is not None and not _finished(job)

        skip = self._stored_lines(run_id) if resuming else 0
        self._logs.follow(
            run_id,
            namespace,
            pods=lambda: self._pods(namespace, run_id),
            job_exists=job_exists,
            skip_lines=skip,
        )

    # --- reading ----------------------------------------------------------------------------------

    def _read_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._get_json(
            lambda: self._batch.read_namespaced_job(
                name, namespace, _preload_content=False, _request_timeout=REQUEST_TIMEOUT_SECONDS
            ),
            f"Job {namespace}/{name}",
        )

    def _pods(self, namespace: str, run_id: str) -> list[dict[str, Any]]:
        return self._list_pods(namespace, f"{RUN_ID_LABEL}={label_value(run_id)}")

    def _list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        """Pods of ``namespace`` matching the label ``selector``."""
        listing = self._get_json(
            lambda: self._core.list_namespaced_pod(
                namespace,
                label_selector=selector,
                _preload_content=False,
                _request_timeout=REQUEST_TIMEOUT_SECONDS,
            ),
            f"pods in {namespace} ({selector})",
        )
        return list((listing or {}).get("items") or [])

    def _list_jobs(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        """Jobs of ``namespace`` matching the label ``selector``."""
        listing = self._get_json(
            lambda: self._batch.list_namespaced_job(
                namespace,
                label_selector=selector,
                _preload_content=False,
                _request_timeout=REQUEST_TIMEOUT_SECONDS,
            ),
            f"Jobs in {namespace} ({selector})",
        )
        return list((listing or {}).get("items") or [])

    def _get_json(self, call: Callable[[], Any], what: str) -> dict[str, Any] | None:
        try:
            response = call()
        except ApiException as error:
            if error.status == 404:
                return None
            raise LauncherError(f"Could not read {what}: {_explain(error)}") from error
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise LauncherError(f"Kubernetes API unreachable reading {what}: {error}") from error
        document: dict[str, Any] = json.loads(response.data)
        return document

    def _is_same_run(self, namespace: str, body: dict[str, Any], run_id: str) -> bool:
        existing = self._read_job(namespace, body["metadata"]["name"])
        labels = ((existing or {}).get("metadata") or {}).get("labels") or {}
        return bool(labels.get(RUN_ID_LABEL) == label_value(run_id))


def job_handle(namespace: str, run_id: str) -> str:
    return f"{namespace}/{job_name(run_id)}"


def _split(handle: str) -> tuple[str, str]:
    namespace, slash, name = handle.partition("/")
    if not slash or not namespace or not name:
        raise LauncherError(f"Not a Kubernetes Job handle (namespace/name): {handle!r}")
    return namespace, name


def _finished(job: dict[str, Any]) -> bool:
    conditions = (job.get("status") or {}).get("conditions") or ()
    return any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True" for c in conditions)


def _finished_successfully(job: dict[str, Any]) -> bool:
    conditions = (job.get("status") or {}).get("conditions") or ()
    return any(c.get("type") == "Complete" and c.get("status") == "True" for c in conditions)


def _explain(error: ApiException) -> str:
    """The API server's own message, plus what to do for the common refusals."""
    message = error.reason or "error"
    if error.body:
        try:
            message = json.loads(error.body).get("message") or message
        except (ValueError, AttributeError):
            message = str(error.body)[:500]
    hint = {
        401: " (the control plane's credentials were rejected)",
        403: " (the control plane's service account lacks permission: see its Role in k8s/base)",
        404: " (does the namespace exist?)",
        422: " (the Job is invalid: check the launcher config and the run's partita/k8s-config tag)",
    }.get(error.status or 0, "")
    return f"HTTP {error.status}: {message}{hint}"


def _own_namespace() -> str | None:
    """The namespace of the pod this runs in, from its service account's mounted files."""
    try:
        return SERVICE_ACCOUNT_NAMESPACE.read_text().strip() or None
    except OSError:
        return None


def _in_cluster() -> bool:
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST"))
