"""Start, serve and stop a code server: gRPC with health checking, reflection and graceful SIGTERM."""

from __future__ import annotations

import logging
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from types import FrameType
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from code_server.auth_token import TokenAuthInterceptor, TokenFile
from code_server.server.location import LoadedLocation
from code_server.server.servicer import CodeServerServicer
from code_server.tls import ServerTls, is_loopback
from partita.codeserver.v1 import code_server_pb2, code_server_pb2_grpc

logger = logging.getLogger("partita.code_server")

SERVICE_NAME = code_server_pb2.DESCRIPTOR.services_by_name["CodeServer"].full_name
#: Time given to calls in flight on shutdown before they are cancelled.
SHUTDOWN_GRACE_SECONDS = 10.0


class CodeServer:
    """A running gRPC code server for one location.

    With ``token_file`` only callers presenting its token may call (health and reflection stay
    open); with ``tls`` it serves TLS, and mutual TLS when ``tls.client_ca`` is set.
    """

    def __init__(
        self,
        location: LoadedLocation,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        workers: int = 16,
        tls: ServerTls | None = None,
        token_file: TokenFile | None = None,
    ) -> None:
        self.location = location
        interceptors: list[grpc.ServerInterceptor[Any, Any]] = (
            [TokenAuthInterceptor(token_file)] if token_file is not None else []
        )
        self._server = grpc.server(
            ThreadPoolExecutor(max_workers=workers, thread_name_prefix="code-server"),
            interceptors=interceptors,
        )
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
        address = f"{host}:{port}"
        self.port = (
            self._server.add_secure_port(address, tls.credentials())
            if tls is not None
            else self._server.add_insecure_port(address)
        )
        if self.port == 0:
            raise OSError(f"Could not bind the code server to {host}:{port}.")
        self.address = f"{host}:{self.port}"
        self._stopped = threading.Event()
        if token_file is None and (tls is None or tls.client_ca is None) and not is_loopback(host):
            logger.warning(
                "Code server on %s accepts calls (Reload, sensor evaluation) from anyone who can reach "
                "it: give it --auth-token-file (or mutual TLS with --tls-client-ca) and the control "
                "plane the same token (--code-server-token-file).",
                self.address,
            )

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
