"""Copying run output from pods (launcher.k8s.logs) against the loopback API server and its node."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client as k8s_client

from launcher.base import RunState
from launcher.k8s import K8sLauncherConfig, KubernetesRunLauncher, logs
from launcher.k8s.logs import PodLogFollower
from launcher.k8s.names import job_name, label_value
from tests.integration.conftest import wait_until
from tests.kube_cluster import KubeApiServer

pytestmark = pytest.mark.integration
NAMESPACE = "runs"


class Lines:
    """The handler: every (run, line) it was given, in order."""

    def __init__(self) -> None:
        self.received: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def __call__(self, run_id: str, line: str) -> None:
        with self._lock:
            self.received.append((run_id, line))

    def of(self, run_id: str) -> list[str]:
        with self._lock:
            return [line for run, line in self.received if run == run_id]


def run_job(
    kube: KubeApiServer, run_id: str, script: str, image: str = "example.com/app:1", name: str | None = None
) -> str:
    name = name or f"job-{run_id}"
    body: dict[str, Any] = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": {"partita/run-id": label_value(run_id)}},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "run-worker",
                            "image": image,
                            "command": [sys.executable, "-u", "-c", script],
                        }
                    ],
                },
            },
        },
    }
    k8s_client.BatchV1Api(kube.api_client()).create_namespaced_job(NAMESPACE, body)
    return name


@pytest.fixture
def lines() -> Lines:
    return Lines()


@pytest.fixture
def follower(kube_api: KubeApiServer, lines: Lines) -> Iterator[PodLogFollower]:
    follower = PodLogFollower(k8s_client.CoreV1Api(kube_api.api_client()), lines, poll_seconds=0.1)
    yield follower
    follower.close()


def pods_of(kube: KubeApiServer, run_id: str) -> Callable[[], list[dict[str, Any]]]:
    """The run's pods as the API server sends them (what the launcher hands the follower)."""
    core = k8s_client.CoreV1Api(kube.api_client())

    def pods() -> list[dict[str, Any]]:
        listing: Any = core.list_namespaced_pod(
            NAMESPACE, label_selector=f"partita/run-id={label_value(run_id)}", _preload_content=False
        )
        items: list[dict[str, Any]] = json.loads(listing.data)["items"]
        return items

    return pods


def job_exists(kube: KubeApiServer, name: str) -> bool:
    try:
        job = k8s_client.BatchV1Api(kube.api_client()).read_namespaced_job(name, NAMESPACE)
    except k8s_client.ApiException as error:
        if error.status == 404:
            return False
        raise
    return not any(c.type in ("Complete", "Failed") for c in (job.status.conditions or ()))


def test_every_line_a_run_prints_is_copied_once_in_order(
    kube_api: KubeApiServer, follower: PodLogFollower, lines: Lines
) -> None:
    script = "import time\nfor i in range(3):\n    print(f'line {i}')\n    time.sleep(0.3)\nprint('no newline', end='')"
    name = run_job(kube_api, "r1", script)
    follower.follow(
        "r1", NAMESPACE, pods=pods_of(kube_api, "r1"), job_exists=lambda: job_exists(kube_api, name)
    )
    wait_until(lambda: follower.following() == [], "the follower ended with the container")
    assert lines.of("r1") == ["line 0", "line 1", "line 2", "no newline"]


def test_a_stream_that_breaks_is_opened_again_without_repeating_lines(
    kube_api: KubeApiServer, follower: PodLogFollower, lines: Lines, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A read timeout shorter than the run's silence cuts the stream, as an API server restart would.
    monkeypatch.setattr(logs, "SILENCE_SECONDS", 0.3)
    script = "import time\nprint('before', flush=True)\ntime.sleep(1.5)\nprint('after')"
    name = run_job(kube_api, "r2", script)
    follower.follow(
        "r2", NAMESPACE, pods=pods_of(kube_api, "r2"), job_exists=lambda: job_exists(kube_api, name)
    )
    wait_until(lambda: follower.following() == [], "the follower ended with the container")
    assert lines.of("r2") == ["before", "after"]


def test_following_a_run_again_skips_the_lines_already_stored(
    kube_api: KubeApiServer, follower: PodLogFollower, lines: Lines
) -> None:
    """What a restarted control plane does for a run it finds running: the first lines it stored
    before it stopped are skipped, and everything after them is copied, nothing lost."""
    script = "import time\nprint('stored', flush=True)\nprint('printed while down', flush=True)\ntime.sleep(1.0)\nprint('late')"
    name = run_job(kube_api, "r3", script)
    wait_until(
        lambda: "while down" in (kube_api.node.log(NAMESPACE, _pod_of(kube_api, "r3")) or ""),
        "the run printed",
    )
    follower.follow(
        "r3",
        NAMESPACE,
        pods=pods_of(kube_api, "r3"),
        job_exists=lambda: job_exists(kube_api, name),
        skip_lines=1,
    )
    wait_until(lambda: follower.following() == [], "the follower ended with the container")
    assert lines.of("r3") == ["printed while down", "late"]
    assert follower.knows("r3")
    follower.follow(
        "r3", NAMESPACE, pods=pods_of(kube_api, "r3"), job_exists=lambda: True
    )  # a run followed to its end is not followed again
    assert follower.following() == []


def test_stop_ends_the_copy_of_a_silent_run_at_once(
    kube_api: KubeApiServer, follower: PodLogFollower, lines: Lines
) -> None:
    name = run_job(kube_api, "r4", "import time\nprint('started', flush=True)\ntime.sleep(60)")
    follower.follow(
        "r4", NAMESPACE, pods=pods_of(kube_api, "r4"), job_exists=lambda: job_exists(kube_api, name)
    )
    wait_until(lambda: lines.of("r4") == ["started"], "the first line arrived")
    started = time.monotonic()
    follower.stop("r4")
    wait_until(lambda: not _thread_alive("run-log-r4"), "the follower's thread ended", timeout=5)
    assert time.monotonic() - started < 3
    k8s_client.BatchV1Api(kube_api.api_client()).delete_namespaced_job(
        name, NAMESPACE, propagation_policy="Background"
    )


def test_a_job_deleted_before_its_container_started_ends_the_wait(
    kube_api: KubeApiServer, follower: PodLogFollower, lines: Lines
) -> None:
    kube_api.node.fail_image("example.com/broken:1", "ErrImagePull")
    name = run_job(kube_api, "r5", "print('never')", image="example.com/broken:1")
    follower.follow(
        "r5", NAMESPACE, pods=pods_of(kube_api, "r5"), job_exists=lambda: job_exists(kube_api, name)
    )
    k8s_client.BatchV1Api(kube_api.api_client()).delete_namespaced_job(
        name, NAMESPACE, propagation_policy="Background"
    )
    wait_until(lambda: follower.following() == [], "the follower gave up on the deleted Job")
    assert lines.of("r5") == []


def _pod_of(kube: KubeApiServer, run_id: str) -> str:
    pods = k8s_client.CoreV1Api(kube.api_client()).list_namespaced_pod(
        NAMESPACE, label_selector=f"partita/run-id={label_value(run_id)}"
    )
    return pods.items[0].metadata.name if pods.items else ""


def _thread_alive(name: str) -> bool:
    return any(thread.name == name and thread.is_alive() for thread in threading.enumerate())


def test_a_restarted_launcher_copies_the_rest_of_a_run_that_finished_meanwhile(
    kube_api: KubeApiServer,
) -> None:
    """The Job finished while no control plane copied its output; its pod stays until the TTL."""
    name = run_job(kube_api, "r6", "print('stored')\nprint('printed while down')", name=job_name("r6"))
    wait_until(lambda: not job_exists(kube_api, name), "the Job finished")
    lines = Lines()
    launcher = KubernetesRunLauncher(K8sLauncherConfig(namespace=NAMESPACE), kube_api.api_client())
    launcher.capture_output(lines, lambda run_id: 1)  # the control plane had stored "stored"
    try:
        assert launcher.check("r6", f"{NAMESPACE}/{name}").state is RunState.SUCCEEDED
        wait_until(lambda: lines.of("r6") == ["printed while down"], "the rest of its output arrived")
        launcher.check("r6", f"{NAMESPACE}/{name}")  # looking again copies nothing again
        time.sleep(0.3)
        assert lines.of("r6") == ["printed while down"]
    finally:
        launcher.close()
