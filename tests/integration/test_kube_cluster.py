"""The test API server (tests/kube_cluster) behaves like Kubernetes for the official client and kubectl."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s_client
from kubernetes import watch as k8s_watch

from tests.integration.conftest import wait_until
from tests.kube_cluster import KUBECTL, KubeApiServer

pytestmark = pytest.mark.integration
needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed on this machine")
NS = "team-a"


def job_body(name: str, script: str, image: str = "example.com/app:1", **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {"name": "run-worker", "image": image, "command": [sys.executable, "-c", script]}
                    ],
                }
            },
        },
    }


@pytest.fixture
def batch(kube_api: KubeApiServer) -> k8s_client.BatchV1Api:
    return k8s_client.BatchV1Api(kube_api.api_client())


@pytest.fixture
def core(kube_api: KubeApiServer) -> k8s_client.CoreV1Api:
    return k8s_client.CoreV1Api(kube_api.api_client())


def job_status(batch: k8s_client.BatchV1Api, name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(batch.read_namespaced_job(name, NS, _preload_content=False).data)
    return document.get("status") or {}


def condition(batch: k8s_client.BatchV1Api, name: str) -> str | None:
    for item in job_status(batch, name).get("conditions") or ():
        if item["type"] in ("Complete", "Failed") and item["status"] == "True":
            return str(item["type"])
    return None


def pods_of(core: k8s_client.CoreV1Api, job: str) -> list[Any]:
    return list(core.list_namespaced_pod(NS, label_selector=f"job-name={job}").items)


def test_it_says_it_is_kubernetes_1_32(kube_api: KubeApiServer) -> None:
    version = k8s_client.VersionApi(kube_api.api_client()).get_code()
    assert (version.major, version.minor) == ("1", "32")


def test_objects_get_server_metadata_selectors_and_api_errors(batch: k8s_client.BatchV1Api) -> None:
    created = batch.create_namespaced_job(NS, job_body("one", "pass", team="a", tier="x"))
    batch.create_namespaced_job(NS, job_body("two", "pass", team="b"))
    assert created.metadata.uid and created.metadata.resource_version and created.metadata.creation_timestamp
    assert created.spec.selector.match_labels == {"batch.kubernetes.io/controller-uid": created.metadata.uid}
    assert created.spec.template.metadata.labels["job-name"] == "one"

    def names(selector: str) -> list[str]:
        return [job.metadata.name for job in batch.list_namespaced_job(NS, label_selector=selector).items]

    assert names("team=a") == ["one"]
    assert names("team!=a") == ["two"]
    assert names("team in (a,b)") == ["one", "two"]
    assert names("tier") == ["one"] and names("!tier") == ["two"]
    listing = batch.list_namespaced_job(NS)
    assert listing.kind == "JobList" and int(listing.metadata.resource_version) >= 2

    with pytest.raises(k8s_client.ApiException) as conflict:
        batch.create_namespaced_job(NS, job_body("one", "pass"))
    assert conflict.value.status == 409 and json.loads(conflict.value.body)["reason"] == "AlreadyExists"
    with pytest.raises(k8s_client.ApiException) as missing:
        batch.read_namespaced_job("nope", NS)
    assert (
        missing.value.status == 404
        and 'jobs.batch "nope" not found' in json.loads(missing.value.body)["message"]
    )

    patched = batch.patch_namespaced_job_status("one", NS, {"status": {"active": 7}})
    assert patched.status.active == 7
    assert int(patched.metadata.resource_version) > int(created.metadata.resource_version)


def test_a_watch_replays_from_a_resource_version_and_ends_at_its_timeout(
    batch: k8s_client.BatchV1Api,
) -> None:
    first = batch.create_namespaced_job(NS, job_body("w1", "pass"))
    batch.create_namespaced_job(NS, job_body("w2", "pass"))
    started = time.monotonic()
    events = list(
        k8s_watch.Watch().stream(
            batch.list_namespaced_job, NS, resource_version=first.metadata.resource_version, timeout_seconds=1
        )
    )
    assert time.monotonic() - started < 10
    assert ("ADDED", "w2") in [(event["type"], event["object"].metadata.name) for event in events]
    assert "w1" not in [event["object"].metadata.name for event in events if event["type"] == "ADDED"]


def test_the_node_runs_jobs_to_complete_or_failed_and_serves_their_logs(
    batch: k8s_client.BatchV1Api, core: k8s_client.CoreV1Api
) -> None:
    batch.create_namespaced_job(NS, job_body("ok", "print('hello from the pod')"))
    batch.create_namespaced_job(NS, job_body("bad", "import sys; sys.exit(3)"))
    wait_until(
        lambda: condition(batch, "ok") is not None and condition(batch, "bad") is not None, "both jobs ended"
    )

    assert condition(batch, "ok") == "Complete" and job_status(batch, "ok")["succeeded"] == 1
    (pod,) = pods_of(core, "ok")
    assert pod.status.phase == "Succeeded" and pod.metadata.owner_references[0].name == "ok"
    assert core.read_namespaced_pod_log(pod.metadata.name, NS).strip() == "hello from the pod"

    assert condition(batch, "bad") == "Failed" and job_status(batch, "bad")["failed"] == 1
    (failed,) = pods_of(core, "bad")
    terminated = failed.status.container_statuses[0].state.terminated
    assert (failed.status.phase, terminated.exit_code, terminated.reason) == ("Failed", 3, "Error")


def test_images_a_test_marks_as_failing(
    kube_api: KubeApiServer, batch: k8s_client.BatchV1Api, core: k8s_client.CoreV1Api
) -> None:
    kube_api.node.fail_image("example.com/missing:1", "ErrImagePull")
    kube_api.node.fail_image("example.com/hungry:1", "OOMKilled")
    batch.create_namespaced_job(NS, job_body("pull", "pass", image="example.com/missing:1"))
    batch.create_namespaced_job(
        NS, job_body("oom", "import time; time.sleep(30)", image="example.com/hungry:1")
    )

    def waiting_reason() -> str | None:
        pods = pods_of(core, "pull")
        state = pods[0].status.container_statuses[0].state if pods else None
        return state.waiting.reason if state and state.waiting else None

    wait_until(lambda: waiting_reason() == "ImagePullBackOff", "the pull backed off")
    assert job_status(batch, "pull")["active"] == 1  # stuck, as a real Job would be
    wait_until(lambda: condition(batch, "oom") == "Failed", "the OOM-killed job failed")
    (pod,) = pods_of(core, "oom")
    terminated = pod.status.container_statuses[0].state.terminated
    assert (terminated.reason, terminated.exit_code) == ("OOMKilled", 137)


def test_deleting_a_running_job_in_background_kills_its_process_and_removes_its_pods(
    kube_api: KubeApiServer, batch: k8s_client.BatchV1Api, core: k8s_client.CoreV1Api, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pid"
    script = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    batch.create_namespaced_job(NS, job_body("long", script))
    wait_until(pid_file.exists, "the job's process started")
    wait_until(lambda: pid_file.read_text() != "", "the pid was written")
    pid = int(pid_file.read_text())
    batch.delete_namespaced_job("long", NS, body=k8s_client.V1DeleteOptions(propagation_policy="Background"))
    wait_until(lambda: not _alive(pid), "the job's process was killed")
    assert pods_of(core, "long") == []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (killed, not yet reaped) is gone as far as the test is concerned; so is one reaped
    # between the two looks (the file is gone, or vanishes while it is read: ESRCH).
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False


@needs_kubectl
def test_kubectl_gets_describes_logs_and_deletes_jobs(
    kube_api: KubeApiServer, batch: k8s_client.BatchV1Api
) -> None:
    batch.create_namespaced_job(NS, job_body("report", "print('rows written: 42')", backfill="bf1"))
    batch.create_namespaced_job(NS, job_body("other", "pass", backfill="bf2"))
    wait_until(lambda: condition(batch, "report") == "Complete", "the job completed")

    listed = kube_api.kubectl("get", "jobs", "-n", NS, "-l", "backfill=bf1", "-o", "name")
    assert (listed.returncode, listed.stdout.split()) == (0, ["job.batch/report"]), listed.stderr
    table = kube_api.kubectl("get", "jobs", "-n", NS)
    assert table.returncode == 0 and "COMPLETIONS" in table.stdout and "report" in table.stdout
    described = kube_api.kubectl("describe", "job", "report", "-n", NS)
    assert described.returncode == 0, described.stderr
    assert "Name:             report" in described.stdout and "SuccessfulCreate" in described.stdout
    logs = kube_api.kubectl("logs", "job/report", "-n", NS)
    assert (logs.returncode, logs.stdout.strip()) == (0, "rows written: 42"), logs.stderr
    deleted = kube_api.kubectl("delete", "job", "report", "-n", NS)
    assert deleted.returncode == 0 and 'job.batch "report" deleted' in deleted.stdout, deleted.stderr
    gone = kube_api.kubectl("get", "job", "report", "-n", NS)
    assert gone.returncode == 1 and "NotFound" in gone.stderr
    pods = kube_api.kubectl("get", "pods", "-n", NS, "-l", "job-name=report", "-o", "name")
    assert pods.returncode == 0 and pods.stdout.strip() == ""
