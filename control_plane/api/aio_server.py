"""A ``grpc.aio`` server on an event loop thread of its own, driven from ordinary threaded code.

Long streams are coroutines on the loop and hold no thread, so any number of watchers cannot take
the threads unary calls need; plain (non-coroutine) handlers run on ``unary_threads`` threads as
before. The control plane and the test servers built on its servicer share this one way to serve.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
from grpc import aio

_T = TypeVar("_T")

if TYPE_CHECKING:
    #: The base of the control plane's server interceptors (authentication, the audit log).
    ServerInterceptor = aio.ServerInterceptor[Any, Any]
else:  # generic only in the type stubs
    ServerInterceptor = aio.ServerInterceptor

#: Messages up to this size are accepted (a large launch request, a big definitions snapshot).
_MAX_MESSAGE_BYTES = 64 * 1024 * 1024


class AioServer:
    """One ``grpc.aio.Server`` and the loop thread it runs on; ``run`` calls into the loop."""

    def __init__(
        self,
        *,
        name: str,
        unary_threads: int = 32,
        options: Sequence[tuple[str, Any]] = (),
        interceptors: Sequence[aio.ServerInterceptor[Any, Any]] = (),
    ) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"{name}-loop", daemon=True)
        self._thread.start()
        self._unary_pool = ThreadPoolExecutor(max_workers=unary_threads, thread_name_prefix=name)
        self._interceptors = list(interceptors)
        all_options = [
            ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES),
            *options,
        ]
        self.server: aio.Server = self.run(self._create(all_options))
        self._stopped = False

    async def _create(self, options: list[tuple[str, Any]]) -> aio.Server:
        return aio.server(
            migration_thread_pool=self._unary_pool, options=options, interceptors=self._interceptors or None
        )

    def run(self, coroutine: Coroutine[Any, Any, _T], timeout: float | None = None) -> _T:
        """Run ``coroutine`` on the server's loop and wait for its result (call from any other thread)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def add_port(self, address: str, credentials: grpc.ServerCredentials | None = None) -> int:
        """Bind ``address`` (port 0 picks one); returns the port bound."""
        if credentials is None:
            return self.server.add_insecure_port(address)
        return self.server.add_secure_port(address, credentials)

    def start(self) -> None:
        self.run(self.server.start())

    def stop(self, grace: float | None = 5.0) -> None:
        """Stop serving (open calls get ``grace`` seconds), then end the loop thread."""
        if self._stopped:
            return
        self._stopped = True
        try:
            self.run(self.server.stop(grace))
            self.run(_cancel_the_rest())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._unary_pool.shutdown(wait=False, cancel_futures=True)
            if not self._thread.is_alive():
                self._loop.close()


async def _cancel_the_rest() -> None:
    """End what still runs on the loop (the stream hubs' followers) before the loop closes."""
    others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in others:
        task.cancel()
    await asyncio.gather(*others, return_exceptions=True)
