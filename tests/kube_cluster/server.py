"""``KubeApiServer``: the emulator served on loopback from a thread of its own, with a simulated node.

The tests that use it are synchronous; the server runs its own asyncio loop in a background thread
(kmock's ``Server`` inside it), so the ``kubernetes`` client and ``kubectl`` reach it over a real
socket like any API server. A kubeconfig file points both at it.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

import kmock
import yaml
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from tests.kube_cluster.emulator import ClusterEmulator
from tests.kube_cluster.node import SimulatedNode

KUBECTL = shutil.which("kubectl")
CONTEXT = "kube-api"


class KubeApiServer:
    def __init__(self, workdir: Path, node_working_directory: Path) -> None:
        self._workdir = workdir
        self.emulator = ClusterEmulator()
        self.store = self.emulator.store
        self.node = SimulatedNode(
            self.store, working_directory=node_working_directory, log_directory=workdir / "pod-logs"
        )
        self.emulator.log_source = self.node.log
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._serve, name="kube-api-server", daemon=True)
        self.url = ""
        self.kubeconfig_path = workdir / "kubeconfig.yaml"
        self._clients: list[k8s_client.ApiClient] = []

    def __enter__(self) -> KubeApiServer:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(timeout=30) or self._error is not None:
            raise RuntimeError(f"The Kubernetes API server did not start: {self._error}")
        self._write_kubeconfig()

    def stop(self) -> None:
        self.node.stop()
        for api_client in self._clients:
            api_client.close()  # type: ignore[no-untyped-call]
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=30)

    def api_client(self) -> k8s_client.ApiClient:
        """A client of its own (never the process-wide default configuration)."""
        api_client: k8s_client.ApiClient = k8s_config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(self.kubeconfig_path), context=CONTEXT
        )
        self._clients.append(api_client)
        return api_client

    def kubectl(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        if KUBECTL is None:
            raise RuntimeError("kubectl is not installed")
        command = [
            KUBECTL,
            "--kubeconfig",
            str(self.kubeconfig_path),
            "--cache-dir",
            str(self._workdir / "kube-cache"),
            *args,
        ]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)

    # --- the server thread ------------------------------------------------------------------------

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        except BaseException as error:  # reported to start()
            self._error = error
            self._ready.set()
        finally:
            self._loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        async with self.emulator, kmock.Server(self.emulator) as server:
            self.url = f"http://{server.host}:{server.port}"
            self._ready.set()
            await self._stop.wait()

    def _write_kubeconfig(self) -> None:
        config: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": CONTEXT, "cluster": {"server": self.url}}],
            "users": [{"name": "tester", "user": {}}],
            "contexts": [
                {"name": CONTEXT, "context": {"cluster": CONTEXT, "user": "tester", "namespace": "default"}}
            ],
            "current-context": CONTEXT,
        }
        self.kubeconfig_path.write_text(yaml.safe_dump(config))
