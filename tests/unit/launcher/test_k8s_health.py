"""Job and pod status as the API server reports it -> run health with a reason an operator can act on."""

from __future__ import annotations

from typing import Any

from launcher.base import FailureKind, RunState
from launcher.k8s.health import job_health

REF = "partita/partita-run-abc"


def job(*conditions: tuple[str, str], active: int = 0, deadline: int | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"backoffLimit": 0}
    if deadline is not None:
        spec["activeDeadlineSeconds"] = deadline
    return {
        "metadata": {"name": "partita-run-abc", "namespace": "partita"},
        "spec": spec,
        "status": {
            "active": active,
            "conditions": [
                {"type": kind, "status": "True", "reason": reason, "message": f"{kind}: {reason}"}
                for kind, reason in conditions
            ],
        },
    }


def pod(phase: str, *, state: dict[str, Any] | None = None, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "partita-run-abc-x7k2q"},
        "spec": {"containers": [{"name": "run-worker", "resources": {"limits": {"memory": "2Gi"}}}]},
        "status": {
            "phase": phase,
            "containerStatuses": [{"name": "run-worker", "image": "registry/app:1", "state": state or {}}],
            **status,
        },
    }


def test_a_deleted_job_is_lost_and_says_so() -> None:
    health = job_health(None, [], REF)
    assert (health.state, health.failure_kind) == (RunState.NOT_FOUND, FailureKind.WORKER_LOST)
    assert "partita/partita-run-abc was deleted" in (health.reason or "")


def test_running_pending_and_complete() -> None:
    assert job_health(job(active=1), [pod("Running", state={"running": {}})], REF).state is RunState.RUNNING
    pending = job_health(
        job(active=1), [pod("Pending", state={"waiting": {"reason": "ContainerCreating"}})], REF
    )
    assert pending.state is RunState.PENDING
    assert job_health(job(("SuccessCriteriaMet", ""), ("Complete", "")), [], REF).state is RunState.SUCCEEDED


def test_an_unschedulable_pod_stays_pending_with_the_schedulers_message() -> None:
    unschedulable = pod(
        "Pending",
        conditions=[
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": "0/3 nodes are available",
            }
        ],
    )
    health = job_health(job(active=1), [unschedulable], REF)
    assert health.state is RunState.PENDING
    assert "0/3 nodes are available" in (health.reason or "")


def test_an_image_that_cannot_be_pulled_fails_the_run_while_the_job_is_still_active() -> None:
    waiting = {
        "waiting": {"reason": "ImagePullBackOff", "message": 'Back-off pulling image "registry/app:1"'}
    }
    health = job_health(job(active=1), [pod("Pending", state=waiting)], REF)
    assert (health.state, health.failure_kind) == (RunState.FAILED, FailureKind.IMAGE_PULL_FAILED)
    assert "cannot pull image 'registry/app:1' (ImagePullBackOff)" in (health.reason or "")
    assert "image_pull_secrets" in (health.reason or "")


def test_a_container_config_error_names_the_missing_secret() -> None:
    waiting = {"waiting": {"reason": "CreateContainerConfigError", "message": 'secret "warehouse" not found'}}
    health = job_health(job(active=1), [pod("Pending", state=waiting)], REF)
    assert (health.state, health.failure_kind) == (RunState.FAILED, FailureKind.CONTAINER_CONFIG_ERROR)
    assert 'secret "warehouse" not found' in (health.reason or "")


def test_an_oom_kill_says_the_limit_and_how_to_raise_it() -> None:
    terminated = {"terminated": {"reason": "OOMKilled", "exitCode": 137}}
    health = job_health(job(("Failed", "BackoffLimitExceeded")), [pod("Failed", state=terminated)], REF)
    assert (health.state, health.failure_kind) == (RunState.FAILED, FailureKind.OUT_OF_MEMORY)
    assert "OOMKilled (memory limit: 2Gi)" in (health.reason or "")
    assert "partita/k8s-config" in (health.reason or "")


def test_eviction_and_deadline() -> None:
    evicted = pod("Failed", reason="Evicted", message="The node was low on resource: memory.")
    health = job_health(job(("Failed", "BackoffLimitExceeded")), [evicted], REF)
    assert (health.failure_kind, "low on resource: memory" in (health.reason or "")) == (
        FailureKind.EVICTED,
        True,
    )
    deadline = job_health(job(("Failed", "DeadlineExceeded"), deadline=600), [], REF)
    assert deadline.failure_kind is FailureKind.DEADLINE_EXCEEDED
    assert "activeDeadlineSeconds (600 s)" in (deadline.reason or "")


def test_a_worker_that_exits_non_zero_points_at_its_logs() -> None:
    terminated = {"terminated": {"reason": "Error", "exitCode": 2}}
    health = job_health(job(("Failed", "BackoffLimitExceeded")), [pod("Failed", state=terminated)], REF)
    assert (health.state, health.failure_kind) == (RunState.FAILED, FailureKind.WORKER_EXITED)
    assert "exited with code 2" in (health.reason or "")
    assert "kubectl logs job/partita-run-abc" in (health.reason or "")
    # The Job failed and its pod is already gone: the Job's own condition is the reason.
    bare = job_health(job(("Failed", "BackoffLimitExceeded")), [], REF)
    assert bare.state is RunState.FAILED and "BackoffLimitExceeded" in (bare.reason or "")
