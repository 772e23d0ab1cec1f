"""Start, serve and stop a code server: gRPC with health checking, reflection and graceful SIGTERM."""

from __future__ import annotations

import logging
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from types import FrameType

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from code_server.server.location import LoadedLocation
from code_server.server.servicer import CodeServerServicer
from partita.codeserver.v1 import code_server_pb2, code_server_pb2_grpc

logger = logging.getLogger("partita.code_server")

SERVICE_NAME = code_server_pb2.DESCRIPTOR.services_by_name["CodeServer"].full_name
#: Time given to calls in flight on shutdown before they are cancelled.
SHUTDOWN_GRACE_SECONDS = 10.0


class CodeServer:
    """A running gRPC code server for one location."""

    def __init__(
        self, location: LoadedLocation, *, host: str = "127.0.0.1", port: int = 0, workers: int = 16
    ) -> None:
        self.location = location
        self._server = grpc.server(ThreadPoolExecutor(max_workers=workers, thread_name_prefix="code-server"))
        code_server_pb2_grpc.add_CodeServerServicer_to_server(CodeServerServicer(location), self._server)
        self._health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
        reflection.enable_server_reflection(
            (
                SERVICE_NAME,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ),
            self._server,
        )
        self.port = self._server.add_insecure_port(f"{host}:{port}")
        if self.port == 0:
            raise OSError(f"Could not bind the code server to {host}:{port}.")
        self.address = f"{host}:{self.port}"
        self._stopped = threading.Event()

    def start(self) -> None:
        self._server.start()
        # Serving even with a load error: the error is what the control plane needs to see.
        self._health.set("", health_pb2.HealthCheckResponse.SERVING)
        self._health.set(SERVICE_NAME, health_pb2.HealthCheckResponse.SERVING)

    def stop(self, grace: float = SHUTDOWN_GRACE_SECONDS) -> None:
        self._health.enter_graceful_shutdown()
        self._server.stop(grace).wait()
        self._stopped.set()

    def serve_until_signalled(self) -> None:
        """Serve until SIGTERM or SIGINT, then finish the calls in flight and exit."""

        def handle(signum: int, frame: FrameType | None) -> None:
            logger.info("Received %s; shutting down gracefully", signal.Signals(signum).name)
            threading.Thread(target=self.stop, name="code-server-shutdown").start()

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)
        self._stopped.wait()
