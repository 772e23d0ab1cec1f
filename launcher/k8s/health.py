"""Run health from a Job and its pods, with the reason an operator needs to act on a failure.

The Job says whether the run ended; its pod says why it went wrong: an image that cannot be pulled
leaves the Job active forever with the pod waiting, so the pod's waiting reason is failure enough.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from launcher.base import FailureKind, RunHealth, RunState

_IMAGE_PULL_REASONS = frozenset({"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"})
_CONFIG_REASONS = frozenset({"CreateContainerConfigError", "CreateContainerError", "RunContainerError"})


def job_health(job: Mapping[str, Any] | None, pods: Sequence[Mapping[str, Any]], job_ref: str) -> RunHealth:
    """``job_ref`` (namespace/name) names the Job in every reason."""
    if job is None:
        return RunHealth(
            RunState.NOT_FOUND,
            f"Kubernetes Job {job_ref} was deleted (e.g. with kubectl delete job) before the run "
            "reported its end.",
            FailureKind.WORKER_LOST,
        )
    status = job.get("status") or {}
    if _condition(status, "Complete") or _condition(status, "SuccessCriteriaMet"):
        return RunHealth(RunState.SUCCEEDED)
    if (failed := _condition(status, "Failed") or _condition(status, "FailureTarget")) is not None:
        return _failed_job_health(job, failed, pods, job_ref)
    if (pod_failure := _pod_failure(pods, job_ref)) is not None:
        return pod_failure
    if any(_phase(pod) in ("Running", "Succeeded") for pod in pods):
        return RunHealth(RunState.RUNNING)  # a pod that succeeded: the Job is about to say Complete
    return RunHealth(RunState.PENDING, _pending_reason(pods, job_ref))


def _failed_job_health(
    job: Mapping[str, Any], condition: Mapping[str, Any], pods: Sequence[Mapping[str, Any]], job_ref: str
) -> RunHealth:
    if condition.get("reason") == "DeadlineExceeded":
        deadline = (job.get("spec") or {}).get("activeDeadlineSeconds")
        return RunHealth(
            RunState.FAILED,
            f"Kubernetes Job {job_ref} ran past its activeDeadlineSeconds ({deadline} s) and was stopped; "
            "raise active_deadline_seconds for this location or run (tag partita/k8s-config).",
            FailureKind.DEADLINE_EXCEEDED,
        )
    if (pod_failure := _pod_failure(pods, job_ref)) is not None:
        return pod_failure
    message = condition.get("message") or condition.get("reason") or "failed"
    return RunHealth(
        RunState.FAILED,
        f"Kubernetes Job {job_ref} failed: {message}. See kubectl describe job {_name(job_ref)}.",
        FailureKind.WORKER_EXITED,
    )


def _pod_failure(pods: Sequence[Mapping[str, Any]], job_ref: str) -> RunHealth | None:
    """The first pod-level failure: eviction, a container that cannot start, or one that died."""
    for pod in pods:
        pod_name = (pod.get("metadata") or {}).get("name", "?")
        pod_status = pod.get("status") or {}
        if pod_status.get("reason") == "Evicted":
            return RunHealth(
                RunState.FAILED,
                f"Pod {pod_name} of Job {job_ref} was evicted: {pod_status.get('message') or 'no message'}.",
                FailureKind.EVICTED,
            )
        for container in pod_status.get("containerStatuses") or ():
            state = container.get("state") or {}
            waiting = state.get("waiting") or {}
            terminated = state.get("terminated") or {}
            reason = waiting.get("reason")
            if reason in _IMAGE_PULL_REASONS:
                return RunHealth(
                    RunState.FAILED,
                    f"Pod {pod_name} of Job {job_ref} cannot pull image {container.get('image')!r} "
                    f"({reason}): {waiting.get('message') or 'no message'}. Check the image name and tag "
                    "and the location's image_pull_secrets.",
                    FailureKind.IMAGE_PULL_FAILED,
                )
            if reason in _CONFIG_REASONS:
                return RunHealth(
                    RunState.FAILED,
                    f"Pod {pod_name} of Job {job_ref} cannot start its container ({reason}): "
                    f"{waiting.get('message') or 'no message'}. Check the env, envFrom and secrets it names.",
                    FailureKind.CONTAINER_CONFIG_ERROR,
                )
            if terminated.get("reason") == "OOMKilled":
                limit = ((pod.get("spec") or {}).get("containers") or [{}])[0]
                memory = ((limit.get("resources") or {}).get("limits") or {}).get("memory", "none set")
                return RunHealth(
                    RunState.FAILED,
                    f"Pod {pod_name} of Job {job_ref} was OOMKilled (memory limit: {memory}); raise "
                    'resources.limits.memory, e.g. tag partita/k8s-config={"resources": {"limits": '
                    '{"memory": "8Gi"}}}.',
                    FailureKind.OUT_OF_MEMORY,
                )
            if terminated and terminated.get("exitCode", 0) != 0:
                return RunHealth(
                    RunState.FAILED,
                    f"The run worker in pod {pod_name} of Job {job_ref} exited with code "
                    f"{terminated.get('exitCode')} ({terminated.get('reason') or 'Error'}) without "
                    f"reporting its end; see kubectl logs job/{_name(job_ref)}.",
                    FailureKind.WORKER_EXITED,
                )
    return None


def _pending_reason(pods: Sequence[Mapping[str, Any]], job_ref: str) -> str | None:
    if not pods:
        return f"Kubernetes Job {job_ref} has no pod yet."
    for pod in pods:
        for condition in (pod.get("status") or {}).get("conditions") or ():
            if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
                return f"Pod {(pod.get('metadata') or {}).get('name')} is not scheduled: {condition.get('message') or condition.get('reason')}"
    return None


def _condition(status: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for condition in status.get("conditions") or ():
        if condition.get("type") == kind and condition.get("status") == "True":
            return condition  # type: ignore[no-any-return]
    return None


def _phase(pod: Mapping[str, Any]) -> str | None:
    return (pod.get("status") or {}).get("phase")


def _name(job_ref: str) -> str:
    return job_ref.rpartition("/")[2]
