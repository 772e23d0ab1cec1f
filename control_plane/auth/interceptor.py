"""The control plane's authentication and authorization, as a ``grpc.aio`` server interceptor.

Every ``partita.controlplane.v1.ControlPlane`` call is authenticated (``Authenticator``), checked
(``access.check_call``) and then served inside ``acting_as(identity)``, so the handler and whatever
it calls can read ``current_identity()``. Other services pass through untouched: health and
reflection stay open, and the RunReporter authenticates run workers by their own credentials, never
by API tokens.

The handler is wrapped rather than refused up front because the peer certificate is only on the
call's context, and because sync handlers run on the server's thread pool, where the identity must
be set (the interceptor's own context does not reach them).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import grpc
from grpc import aio

from control_plane.api.aio_server import ServerInterceptor
from control_plane.api.status import ERROR_METADATA_KEY
from control_plane.auth.access import OwnerLocation, Refused, check_call
from control_plane.auth.authenticator import AuthenticationFailed, Authenticator, CertificateWithoutRole
from control_plane.auth.identity import Identity, acting_as
from control_plane.auth.roles import CONTROL_PLANE_SERVICE

_PREFIX = f"/{CONTROL_PLANE_SERVICE}/"
#: What a call presents: its metadata, its transport's auth context and its peer address.
_Credentials = tuple[Any, dict[str, list[bytes]], str]


class AuthInterceptor(ServerInterceptor):
    """Authenticates and authorizes ControlPlane calls; see the module docstring."""

    def __init__(self, authenticator: Authenticator, owner_location: OwnerLocation | None = None) -> None:
        self._authenticator = authenticator
        self._owner_location = owner_location

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler = await continuation(handler_call_details)
        method_path: str = handler_call_details.method
        if handler is None or not method_path.startswith(_PREFIX):
            return handler
        method = method_path[len(_PREFIX) :]
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._wrap_unary(method, handler.unary_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._wrap_stream(method, handler.unary_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler  # the service has no client-streaming methods

    def admit(self, method: str, request: Any, credentials: _Credentials) -> Identity:
        """The caller of this call, if it may make it; raises Refused otherwise."""
        try:
            identity = self._authenticator.identify(*credentials)
        except AuthenticationFailed as error:
            raise Refused(grpc.StatusCode.UNAUTHENTICATED, f"{method}: {error}") from error
        except CertificateWithoutRole as error:
            raise Refused(grpc.StatusCode.PERMISSION_DENIED, f"{method}: {error}") from error
        check_call(method, request, identity, self._owner_location)
        return identity

    def _wrap_unary(self, method: str, behavior: Callable[..., Any]) -> Callable[..., Any]:
        if inspect.iscoroutinefunction(behavior):

            async def unary_coroutine(request: Any, context: aio.ServicerContext[Any, Any]) -> Any:
                identity = await self._admit_async(method, request, context)
                with acting_as(identity):
                    return await behavior(request, context)

            return unary_coroutine

        def unary(request: Any, context: grpc.ServicerContext) -> Any:
            try:
                identity = self.admit(method, request, _credentials(context))
            except Refused as refused:
                context.set_trailing_metadata(((ERROR_METADATA_KEY, "Refused"),))
                context.abort(refused.code, str(refused))
            with acting_as(identity):
                return behavior(request, context)

        return unary

    def _wrap_stream(self, method: str, behavior: Callable[..., Any]) -> Callable[..., Any]:
        if inspect.isasyncgenfunction(behavior):

            async def stream_generator(
                request: Any, context: aio.ServicerContext[Any, Any]
            ) -> AsyncIterator[Any]:
                identity = await self._admit_async(method, request, context)
                with acting_as(identity):
                    async for response in behavior(request, context):
                        yield response

            return stream_generator
        if inspect.iscoroutinefunction(behavior):

            async def stream_coroutine(request: Any, context: aio.ServicerContext[Any, Any]) -> Any:
                identity = await self._admit_async(method, request, context)
                with acting_as(identity):
                    return await behavior(request, context)

            return stream_coroutine

        def stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            try:
                identity = self.admit(method, request, _credentials(context))
            except Refused as refused:
                context.set_trailing_metadata(((ERROR_METADATA_KEY, "Refused"),))
                context.abort(refused.code, str(refused))
            with acting_as(identity):
                yield from behavior(request, context)

        return stream

    async def _admit_async(
        self, method: str, request: Any, context: aio.ServicerContext[Any, Any]
    ) -> Identity:
        # Off the loop: a cache miss or a scoped token's look-up reads the database.
        try:
            credentials = _credentials(context)
            return await asyncio.get_running_loop().run_in_executor(
                None, self.admit, method, request, credentials
            )
        except Refused as refused:
            context.set_trailing_metadata(((ERROR_METADATA_KEY, "Refused"),))
            await context.abort(refused.code, str(refused))
            raise AssertionError("unreachable: abort raises") from refused


def _credentials(context: Any) -> _Credentials:
    return context.invocation_metadata(), _auth_context(context), context.peer()


def _auth_context(context: Any) -> dict[str, list[bytes]]:
    try:
        found: dict[str, list[bytes]] = context.auth_context() or {}
    except Exception:  # a context without transport security has none to give
        return {}
    return found
