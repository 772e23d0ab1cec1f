"""Copy each run's container output into the control plane, line by line, as ``kubectl logs -f`` would.

One thread per followed run: it waits for the run's pod to start its container, then streams the
log with ``follow=true`` until the container has terminated. A stream cut short (the API server
restarted, a proxy timed out) is opened again and the lines already delivered are skipped; so is a
run found running after a control-plane restart, from the count of lines the control plane stored.
``partita runs logs`` shows what the run printed, once, for Kubernetes runs as for local ones.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

import urllib3
from kubernetes import client as k8s_client
from kubernetes.client.exceptions import ApiException

from launcher.base import LauncherError, OutputHandler
from launcher.k8s.job_body import CONTAINER_NAME

logger = logging.getLogger("partita.launcher.k8s.logs")

#: Seconds between looks for the run's pod while its container has not started.
POLL_SECONDS = 1.0
#: Seconds to connect for a log stream.
CONNECT_TIMEOUT_SECONDS = 10.0
#: Seconds a run may print nothing before its stream is opened again (skipping what was copied).
SILENCE_SECONDS = 3600.0
_REMEMBERED_RUNS = 10_000


class PodLogFollower:
    """Follows the containers of runs and hands every line they print to ``handler``."""

    def __init__(
        self, core: k8s_client.CoreV1Api, handler: OutputHandler, *, poll_seconds: float = POLL_SECONDS
    ) -> None:
        self._core = core
        self._handler = handler
        self._poll_seconds = poll_seconds
        self._lock = threading.Lock()
        self._followed: dict[str, _Following] = {}
        #: Runs followed to their end (the latest ones), never followed again.
        self._done: OrderedDict[str, None] = OrderedDict()

    def follow(
        self,
        run_id: str,
        namespace: str,
        *,
        pods: Callable[[], list[dict[str, Any]]],
        job_exists: Callable[[], bool],
        skip_lines: int = 0,
    ) -> None:
        """Start following the run, once: calls for a run followed now or before do nothing.

        ``pods`` lists the run's pods (raising ``LauncherError`` when the API cannot say).
        ``job_exists`` tells whether the run's Job is still there and running: a Job deleted, or
        finished, before any pod started ends the following. The first ``skip_lines`` lines are
        not handed over (a control plane that restarted stored them already).
        """
        with self._lock:
            if run_id in self._followed or run_id in self._done:
                return
            following = _Following(run_id, namespace, pods, job_exists)
            following.delivered = skip_lines
            self._followed[run_id] = following
        following.thread = threading.Thread(
            target=self._follow, args=(following,), name=f"run-log-{run_id}", daemon=True
        )
        following.thread.start()

    def knows(self, run_id: str) -> bool:
        """Whether the run is followed now, or was to its end."""
        with self._lock:
            return run_id in self._followed or run_id in self._done

    def stop(self, run_id: str) -> None:
        with self._lock:
            following = self._followed.pop(run_id, None)
        if following is not None:
            following.cancel()

    def following(self) -> list[str]:
        """Runs whose output is being copied now."""
        with self._lock:
            return list(self._followed)

    def close(self, timeout: float = 2.0) -> None:
        with self._lock:
            followed, self._followed = list(self._followed.values()), {}
        for following in followed:
            following.cancel()
        for following in followed:
            if following.thread is not None:
                following.thread.join(timeout)

    # --- one run ------------------------------------------------------------------------------------

    def _follow(self, following: _Following) -> None:
        try:
            self._copy_output(following)
        except Exception:
            logger.exception("Stopped copying the output of run %s", following.run_id)
        finally:
            with self._lock:
                if self._followed.get(following.run_id) is following:
                    del self._followed[following.run_id]
                    self._done[following.run_id] = None
                    while len(self._done) > _REMEMBERED_RUNS:
                        self._done.popitem(last=False)

    def _copy_output(self, following: _Following) -> None:
        while not following.stopped.is_set():
            pod = self._started_pod(following)
            if pod is None:
                if not following.job_exists():
                    return
                following.stopped.wait(self._poll_seconds)
                continue
            name = pod["metadata"]["name"]
            try:
                self._stream(following, name)
            except (ApiException, urllib3.exceptions.HTTPError, OSError) as error:
                if following.stopped.is_set():
                    return
                logger.info("Log stream of run %s broke (%s); opening it again", following.run_id, error)
                following.stopped.wait(self._poll_seconds)
                continue
            try:
                pod = next((p for p in following.pods() if p["metadata"]["name"] == name), None)
            except LauncherError:
                continue  # cannot tell whether the container ended: open the stream again
            if _terminated(pod):
                return  # the stream ended because the container did

    def _stream(self, following: _Following, pod_name: str) -> None:
        """Copy the pod's log from the start, skipping the lines delivered before (by this stream
        before it broke, or by the control plane before it restarted)."""
        response: Any = self._core.read_namespaced_pod_log(
            pod_name,
            following.namespace,
            container=CONTAINER_NAME,
            follow=True,
            _preload_content=False,
            _request_timeout=(CONNECT_TIMEOUT_SECONDS, SILENCE_SECONDS),
        )
        following.response = response
        skip = following.delivered
        try:
            for index, line in enumerate(_lines(response)):
                if index >= skip:
                    self._handler(following.run_id, line)
                    following.delivered += 1
        finally:
            following.response = None
            response.release_conn()

    def _started_pod(self, following: _Following) -> dict[str, Any] | None:
        """The run's pod once its container has started (running or terminated), else None."""
        try:
            pods = following.pods()
        except LauncherError as error:
            logger.debug("Cannot list the pods of run %s yet: %s", following.run_id, error)
            return None
        for pod in pods:
            states = [
                status.get("state") or {}
                for status in (pod.get("status") or {}).get("containerStatuses") or ()
            ]
            if any("running" in state or "terminated" in state for state in states):
                return dict(pod)
        return None


class _Following:
    def __init__(
        self,
        run_id: str,
        namespace: str,
        pods: Callable[[], list[dict[str, Any]]],
        job_exists: Callable[[], bool],
    ) -> None:
        self.run_id = run_id
        self.namespace = namespace
        self.pods = pods
        self.job_exists = job_exists
        self.stopped = threading.Event()
        #: Lines handed over so far.
        self.delivered = 0
        self.thread: threading.Thread | None = None
        self.response: Any = None

    def cancel(self) -> None:
        self.stopped.set()
        response = self.response
        if response is not None:
            try:
                response.shutdown()  # wakes a read blocked on a silent run (urllib3 >= 2.3)
            except Exception:  # best effort: the thread also checks ``stopped`` between reads
                logger.debug("Closing the log stream of run %s", self.run_id, exc_info=True)


def _lines(response: Any) -> Iterator[str]:
    pending = b""
    for chunk in response.stream(4096, decode_content=True):
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            yield line.decode(errors="replace")
    if pending:
        yield pending.decode(errors="replace")


def _terminated(pod: dict[str, Any] | None) -> bool:
    """True when the pod is gone or every container has terminated."""
    if pod is None:
        return True
    statuses = (pod.get("status") or {}).get("containerStatuses") or ()
    return bool(statuses) and all("terminated" in (status.get("state") or {}) for status in statuses)
