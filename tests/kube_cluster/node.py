"""A simulated node: the Job controller and a kubelet, running each Job's container as a local process.

For every new Job it creates the Pod (owned by the Job, labelled with its selector), records the
events ``kubectl describe`` shows, runs the container's command and args with the container's env
(the run worker is installed in this environment), captures its output as the pod's log, and
patches Pod and Job status as the real controllers would: active/ready/succeeded/failed, the
Complete or Failed conditions, and the reasons operators see (ErrImagePull, OOMKilled, Evicted,
DeadlineExceeded). A pod that is deleted has its process killed. ``ttlSecondsAfterFinished`` is not
simulated: finished Jobs stay until deleted.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import secrets
import signal
import string
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.kube_cluster.store import ApiError, ObjectStore, now_text

logger = logging.getLogger("tests.kube_cluster.node")
NODE_NAME = "partita-test-node"
#: Failures a test can ask for by image: how the kubelet would report them.
FAILURES = ("ErrImagePull", "CreateContainerConfigError", "OOMKilled", "Evicted")
_KILL_GRACE_SECONDS = 2.0
_TICK_SECONDS = 0.05
_BACKOFF_AFTER_SECONDS = 0.3
_SIMULATED_CRASH_AFTER_SECONDS = 0.3


@dataclass
class _PodRun:
    namespace: str
    job_name: str
    pod_name: str
    image: str
    started: float
    deadline_seconds: float | None
    failure: str | None
    process: subprocess.Popen[bytes] | None = None
    kill_at: float | None = None
    reported_backoff: bool = False
    outcome: str | None = None  # why the node ended it: DeadlineExceeded, OOMKilled, Evicted
    done: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class SimulatedNode:
    def __init__(self, store: ObjectStore, *, working_directory: Path, log_directory: Path) -> None:
        self._store = store
        self._working_directory = working_directory
        self._log_directory = log_directory
        log_directory.mkdir(parents=True, exist_ok=True)
        self._changes: queue.Queue[tuple[str, str, dict[str, Any]]] = queue.Queue()
        self._failing: dict[str, str] = {}
        self._runs: dict[tuple[str, str], _PodRun] = {}  # (namespace, pod) -> run
        self._stopped = threading.Event()
        store.listeners.append(self._on_change)
        self._thread = threading.Thread(target=self._loop, name="kube-node", daemon=True)
        self._thread.start()

    def fail_image(self, image: str, reason: str) -> None:
        """Make pods of ``image`` fail the way ``reason`` says (one of FAILURES)."""
        if reason not in FAILURES:
            raise ValueError(f"unknown failure {reason!r}; choose from {', '.join(FAILURES)}")
        self._failing[image] = reason

    def log(self, namespace: str, pod: str) -> str | None:
        path = self._log_path(namespace, pod)
        return path.read_text(errors="replace") if path.exists() else None

    def running_processes(self) -> int:
        return sum(
            1 for run in list(self._runs.values()) if run.process is not None and run.process.poll() is None
        )

    def wait_idle(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while self.running_processes() and time.monotonic() < deadline:
            time.sleep(_TICK_SECONDS)

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=10)
        for run in list(self._runs.values()):
            if run.process is not None and run.process.poll() is None:
                _signal(run.process, signal.SIGKILL)
                run.process.wait()

    # --- the loop ---------------------------------------------------------------------------------

    def _on_change(self, plural: str, kind: str, obj: dict[str, Any]) -> None:
        if (plural, kind) in (("jobs", "ADDED"), ("pods", "DELETED")):
            self._changes.put((plural, kind, obj))

    def _loop(self) -> None:
        while not self._stopped.is_set():
            try:
                plural, _, obj = self._changes.get(timeout=_TICK_SECONDS)
            except queue.Empty:
                pass
            else:
                try:
                    if plural == "jobs":
                        self._start(obj)
                    else:
                        self._pod_deleted(obj)
                except ApiError:
                    pass  # deleted meanwhile
                except Exception:  # a bad object must not stop the node for every other test object
                    logger.exception(
                        "Simulated node could not handle %s %s", plural, obj["metadata"].get("name")
                    )
            for run in list(self._runs.values()):
                if not run.done:
                    with contextlib.suppress(ApiError):  # its objects were deleted meanwhile
                        self._advance(run)

    def _start(self, job: dict[str, Any]) -> None:
        metadata, spec = job["metadata"], job.get("spec") or {}
        namespace, job_name = metadata["namespace"], metadata["name"]
        template = spec.get("template") or {}
        pod_spec = dict(template.get("spec") or {})
        container = (pod_spec.get("containers") or [{}])[0]
        image = str(container.get("image", ""))
        pod_name = (
            f"{job_name}-{''.join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(5))}"
        )
        pod_spec["nodeName"] = NODE_NAME
        self._store.create(
            "pods",
            namespace,
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": pod_name,
                    "labels": dict((template.get("metadata") or {}).get("labels") or {}),
                    "annotations": dict((template.get("metadata") or {}).get("annotations") or {}),
                    "ownerReferences": [
                        {
                            "apiVersion": "batch/v1",
                            "kind": "Job",
                            "name": job_name,
                            "uid": metadata["uid"],
                            "controller": True,
                            "blockOwnerDeletion": True,
                        }
                    ],
                },
                "spec": pod_spec,
                "status": {
                    "phase": "Pending",
                    "conditions": [
                        {"type": "PodScheduled", "status": "True", "lastTransitionTime": now_text()}
                    ],
                    "containerStatuses": [
                        _container_status(container, {"waiting": {"reason": "ContainerCreating"}})
                    ],
                },
            },
        )
        self._event(
            namespace,
            "Job",
            job_name,
            metadata["uid"],
            "SuccessfulCreate",
            f"Created pod: {pod_name}",
            "job-controller",
        )
        self._patch(
            "jobs", namespace, job_name, {"status": {"active": 1, "ready": 0, "startTime": now_text()}}
        )
        pod_uid = self._store.get("pods", namespace, pod_name)["metadata"]["uid"]
        self._event(
            namespace,
            "Pod",
            pod_name,
            pod_uid,
            "Scheduled",
            f"Successfully assigned {namespace}/{pod_name} to {NODE_NAME}",
            "default-scheduler",
        )
        self._event(namespace, "Pod", pod_name, pod_uid, "Pulling", f'Pulling image "{image}"', "kubelet")
        deadline = spec.get("activeDeadlineSeconds")
        run = _PodRun(
            namespace,
            job_name,
            pod_name,
            image,
            time.monotonic(),
            float(deadline) if deadline else None,
            self._failing.get(image),
        )
        run.extra["pod_uid"], run.extra["container"] = pod_uid, container
        self._runs[(namespace, pod_name)] = run
        if run.failure == "ErrImagePull":
            message = f'failed to pull and unpack image "{image}": not found'
            self._container_waiting(run, "ErrImagePull", message)
            self._event(
                namespace,
                "Pod",
                pod_name,
                pod_uid,
                "Failed",
                f'Failed to pull image "{image}": {message}',
                "kubelet",
                "Warning",
            )
            return
        self._event(
            namespace, "Pod", pod_name, pod_uid, "Pulled", f'Successfully pulled image "{image}"', "kubelet"
        )
        if run.failure == "CreateContainerConfigError":
            message = 'secret "partita-missing-secret" not found'
            self._container_waiting(run, "CreateContainerConfigError", message)
            self._event(
                namespace, "Pod", pod_name, pod_uid, "Failed", f"Error: {message}", "kubelet", "Warning"
            )
            return
        self._run_container(run, container)

    def _run_container(self, run: _PodRun, container: dict[str, Any]) -> None:
        environment = dict(os.environ)
        environment["PATH"] = os.path.dirname(sys.executable) + os.pathsep + environment.get("PATH", "")
        for item in container.get("env") or ():
            if "value" in item:
                environment[item["name"]] = str(item["value"])
        command = [*(container.get("command") or ()), *(container.get("args") or ())]
        with self._log_path(run.namespace, run.pod_name).open("ab") as log:
            try:
                if not command:
                    raise OSError("the simulated node runs only containers that give a command")
                run.process = subprocess.Popen(
                    command,
                    cwd=container.get("workingDir") or self._working_directory,
                    env=environment,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            except OSError as error:
                # What a kubelet reports for an executable it cannot start.
                log.write(f"{error}\n".encode())
                run.done, run.outcome = True, "StartError"
                self._finish(run, 128)
                return
        pod_uid = run.extra["pod_uid"]
        self._event(
            run.namespace, "Pod", run.pod_name, pod_uid, "Created", "Created container run-worker", "kubelet"
        )
        self._event(
            run.namespace, "Pod", run.pod_name, pod_uid, "Started", "Started container run-worker", "kubelet"
        )
        running = _container_status(container, {"running": {"startedAt": now_text()}}, ready=True)
        self._patch(
            "pods",
            run.namespace,
            run.pod_name,
            {"status": {"phase": "Running", "containerStatuses": [running]}},
        )
        self._patch("jobs", run.namespace, run.job_name, {"status": {"ready": 1}})

    def _advance(self, run: _PodRun) -> None:
        elapsed = time.monotonic() - run.started
        if run.failure == "ErrImagePull" and not run.reported_backoff and elapsed > _BACKOFF_AFTER_SECONDS:
            run.reported_backoff = True
            self._container_waiting(run, "ImagePullBackOff", f'Back-off pulling image "{run.image}"')
            self._event(
                run.namespace,
                "Pod",
                run.pod_name,
                run.extra["pod_uid"],
                "BackOff",
                f'Back-off pulling image "{run.image}"',
                "kubelet",
                "Normal",
            )
        process = run.process
        if process is None:
            return
        if run.outcome is None:
            if run.deadline_seconds is not None and elapsed > run.deadline_seconds:
                run.outcome = "DeadlineExceeded"
            elif run.failure in ("OOMKilled", "Evicted") and elapsed > _SIMULATED_CRASH_AFTER_SECONDS:
                run.outcome = run.failure
            if run.outcome is not None:
                _signal(process, signal.SIGKILL if run.outcome == "OOMKilled" else signal.SIGTERM)
                run.kill_at = time.monotonic() + _KILL_GRACE_SECONDS
        if run.kill_at is not None and time.monotonic() > run.kill_at and process.poll() is None:
            _signal(process, signal.SIGKILL)
        code = process.poll()
        if code is None:
            return
        run.done = True
        self._finish(run, code)

    def _finish(self, run: _PodRun, code: int) -> None:
        container = run.extra["container"]
        now = now_text()
        ok = code == 0 and run.outcome is None
        reason = (
            run.outcome if run.outcome in ("OOMKilled", "StartError") else ("Completed" if ok else "Error")
        )
        exit_code = 137 if run.outcome == "OOMKilled" else (code if code >= 0 else 128 - code)
        terminated = {"terminated": {"reason": reason, "exitCode": exit_code, "finishedAt": now}}
        pod_status: dict[str, Any] = {
            "phase": "Succeeded" if ok else "Failed",
            "containerStatuses": [_container_status(container, terminated)],
        }
        if run.outcome == "Evicted":
            pod_status.update(
                reason="Evicted", message="The node was low on resource: memory. Threshold quantity: 100Mi."
            )
            self._event(
                run.namespace,
                "Pod",
                run.pod_name,
                run.extra["pod_uid"],
                "Evicted",
                pod_status["message"],
                "kubelet",
                "Warning",
            )
        self._patch("pods", run.namespace, run.pod_name, {"status": pod_status})
        if ok:
            conditions = [_condition("SuccessCriteriaMet", "CompletionsReached", "Reached expected number of succeeded pods"),
                          _condition("Complete", "CompletionsReached", "Reached expected number of succeeded pods")]  # fmt: skip
            job_status = {
                "active": 0,
                "ready": 0,
                "succeeded": 1,
                "completionTime": now,
                "conditions": conditions,
            }
            self._event_for_job(run, "Completed", "Job completed", "Normal")
        else:
            why, message = (
                ("DeadlineExceeded", "Job was active longer than specified deadline")
                if run.outcome == "DeadlineExceeded"
                else ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
            )
            conditions = [_condition("FailureTarget", why, message), _condition("Failed", why, message)]
            job_status = {"active": 0, "ready": 0, "failed": 1, "conditions": conditions}
            self._event_for_job(run, why, message, "Warning")
        with contextlib.suppress(ApiError):
            self._patch("jobs", run.namespace, run.job_name, {"status": job_status})

    def _pod_deleted(self, pod: dict[str, Any]) -> None:
        run = self._runs.get((pod["metadata"]["namespace"], pod["metadata"]["name"]))
        if run is None or run.done:
            return
        run.done = True
        if run.process is not None and run.process.poll() is None:
            _signal(run.process, signal.SIGTERM)
            try:
                run.process.wait(timeout=_KILL_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                _signal(run.process, signal.SIGKILL)
                run.process.wait()

    # --- writing status and events --------------------------------------------------------------

    def _container_waiting(self, run: _PodRun, reason: str, message: str) -> None:
        waiting = _container_status(
            run.extra["container"], {"waiting": {"reason": reason, "message": message}}
        )
        self._patch(
            "pods",
            run.namespace,
            run.pod_name,
            {"status": {"phase": "Pending", "containerStatuses": [waiting]}},
        )

    def _patch(self, plural: str, namespace: str, name: str, patch: dict[str, Any]) -> None:
        def merge(obj: dict[str, Any]) -> None:
            obj.setdefault("status", {}).update(patch["status"])

        self._store.replace(plural, namespace, name, merge)

    def _event_for_job(self, run: _PodRun, reason: str, message: str, kind: str) -> None:
        job = self._store.find("jobs", run.namespace, run.job_name)
        if job is not None:
            self._event(
                run.namespace,
                "Job",
                run.job_name,
                job["metadata"]["uid"],
                reason,
                message,
                "job-controller",
                kind,
            )

    def _event(
        self,
        namespace: str,
        kind: str,
        name: str,
        uid: str,
        reason: str,
        message: str,
        source: str,
        event_type: str = "Normal",
    ) -> None:
        now = now_text()
        self._store.create(
            "events",
            namespace,
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"generateName": f"{name}."},
                "involvedObject": {
                    "kind": kind,
                    "namespace": namespace,
                    "name": name,
                    "uid": uid,
                    "apiVersion": "batch/v1" if kind == "Job" else "v1",
                },
                "reason": reason,
                "message": message,
                "type": event_type,
                "source": {"component": source},
                "firstTimestamp": now,
                "lastTimestamp": now,
                "count": 1,
            },
        )

    def _log_path(self, namespace: str, pod: str) -> Path:
        return self._log_directory / f"{namespace}_{pod}.log"


def _container_status(
    container: dict[str, Any], state: dict[str, Any], ready: bool = False
) -> dict[str, Any]:
    return {
        "name": container.get("name", "run-worker"),
        "image": container.get("image", ""),
        "imageID": "",
        "ready": ready,
        "restartCount": 0,
        "started": "running" in state,
        "state": state,
    }


def _condition(kind: str, reason: str, message: str) -> dict[str, Any]:
    now = now_text()
    return {
        "type": kind,
        "status": "True",
        "reason": reason,
        "message": message,
        "lastProbeTime": now,
        "lastTransitionTime": now,
    }


def _signal(process: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)
