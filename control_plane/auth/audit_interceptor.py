"""Records every mutating call of the ControlPlane service in the audit log, with who made it and how it ended.

A ``grpc.aio.ServerInterceptor`` that wraps the handler of each RPC in ``MUTATING_RPCS`` (matched by
name; dry-run launches and every read pass untouched). It must run INSIDE the authentication
interceptor (after it in ``aio.server(interceptors=[authentication, audit])``), so that the caller is
already set (``current_identity()``) when the handler runs; without one the caller is "unknown".

The outcome is read from the handler's own context: handlers end a refused call with
``context.abort`` (``StatusOnError``), and the handler's context is wrapped to see the code and message
it aborts with. The event is written on the handler's thread (one INSERT) before the caller hears the
outcome: on abort, before the status goes out; else when the handler returns. A failure to write it
is logged and never fails the call. The event's time is when the call arrived.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Protocol

import grpc
from google.protobuf.message import Message

from control_plane.api.aio_server import ServerInterceptor
from control_plane.audit import MAX_ERROR, UNKNOWN_IDENTITY, AuditEvent
from control_plane.auth.audit_targets import MUTATING_RPCS, audit_target, is_dry_run
from control_plane.auth.identity import Identity, current_identity
from control_plane.auth.roles import CONTROL_PLANE_SERVICE
from control_plane.errors import shortened

logger = logging.getLogger("partita.control_plane.audit")


class AuditRecorder(Protocol):
    """Where events go (``control_plane.storage.AuditStore``)."""

    def record(self, event: AuditEvent) -> None: ...


class AuditInterceptor(ServerInterceptor):
    """Wraps the mutating RPCs of the ControlPlane service so that each call leaves one audit event."""

    def __init__(self, recorder: AuditRecorder, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self._recorder = recorder
        self._clock = clock

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler = await continuation(handler_call_details)
        service, _, rpc = handler_call_details.method.lstrip("/").rpartition("/")
        if handler is None or service != CONTROL_PLANE_SERVICE or rpc not in MUTATING_RPCS:
            return handler
        if handler.unary_unary is None:
            return handler
        behavior = handler.unary_unary
        if inspect.iscoroutinefunction(behavior):
            wrapped: Callable[..., Any] = self._async_wrapper(rpc, behavior)
        else:
            wrapped = self._sync_wrapper(rpc, behavior)
        return grpc.unary_unary_rpc_method_handler(
            wrapped,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def _sync_wrapper(self, rpc: str, behavior: Callable[..., Any]) -> Callable[[Message, Any], Any]:
        def serve(request: Message, context: Any) -> Any:
            if is_dry_run(rpc, request):
                return behavior(request, context)
            call = _Call(rpc, request, current_identity(), self._clock())
            observed = ObservedContext(context, before_abort=lambda: self._record(call, observed))
            try:
                call.response = behavior(request, observed)
                return call.response
            except BaseException as error:
                call.raised = error
                raise
            finally:
                self._record(call, observed)

        return serve

    def _async_wrapper(self, rpc: str, behavior: Callable[..., Any]) -> Callable[[Message, Any], Any]:
        async def serve(request: Message, context: Any) -> Any:
            if is_dry_run(rpc, request):
                return await behavior(request, context)
            call = _Call(rpc, request, current_identity(), self._clock())
            observed = ObservedContext(context)
            try:
                call.response = await behavior(request, observed)
                return call.response
            except BaseException as error:
                call.raised = error
                raise
            finally:
                # Off the loop: the insert may wait on the database.
                await asyncio.to_thread(self._record, call, observed)

        return serve

    def _record(self, call: _Call, context: ObservedContext) -> None:
        """Write the call's event, once (on abort, or when the handler ends)."""
        if call.recorded:
            return
        call.recorded = True
        try:
            self._recorder.record(_event(call, context))
        except Exception:
            logger.exception("Could not record %s in the audit log; the call itself went ahead", call.rpc)


class _Call:
    """One call being served: what the audit event is made of."""

    def __init__(self, rpc: str, request: Message, identity: Identity | None, at: datetime) -> None:
        self.rpc = rpc
        self.request = request
        self.identity = identity
        self.at = at
        self.response: Message | None = None
        self.raised: BaseException | None = None
        self.recorded = False


def _event(call: _Call, context: ObservedContext) -> AuditEvent:
    rpc, identity = call.rpc, call.identity
    code, message = context.outcome(call.raised)
    target = audit_target(rpc, call.request, call.response if code == grpc.StatusCode.OK else None)
    peer = (identity.peer if identity is not None else "") or _peer(context)
    return AuditEvent(
        id=uuid.uuid4().hex,
        at=call.at,
        identity_name=identity.name if identity is not None else UNKNOWN_IDENTITY,
        identity_kind=identity.kind if identity is not None else UNKNOWN_IDENTITY,
        role=identity.role.label if identity is not None else "",
        peer=shortened(peer, 200),
        rpc=rpc,
        target_kind=target.kind,
        target_id=target.id,
        location=target.location,
        summary=target.summary,
        status=code.name,
        error=shortened(message, MAX_ERROR) if message else None,
    )


class ObservedContext:
    """A handler's context that remembers the status the handler ends the call with (and passes all on)."""

    def __init__(self, context: Any, before_abort: Callable[[], None] | None = None) -> None:
        self._context = context
        self._before_abort = before_abort
        self.code: grpc.StatusCode | None = None
        self.details: str | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)

    def abort(self, code: grpc.StatusCode, details: str = "", *args: Any, **kwargs: Any) -> Any:
        # The aio context's abort is a coroutine: returned for the handler to await.
        self.code, self.details = code, details
        if self._before_abort is not None:
            self._before_abort()
        return self._context.abort(code, details, *args, **kwargs)

    def abort_with_status(self, status: Any) -> Any:
        self.code, self.details = status.code, status.details
        if self._before_abort is not None:
            self._before_abort()
        return self._context.abort_with_status(status)

    def set_code(self, code: grpc.StatusCode) -> None:
        self.code = code
        self._context.set_code(code)

    def set_details(self, details: str) -> None:
        self.details = details
        self._context.set_details(details)

    def outcome(self, raised: BaseException | None) -> tuple[grpc.StatusCode, str | None]:
        """The code and message the call ended with."""
        if self.code is not None:
            return self.code, self.details
        if isinstance(raised, Exception):
            # gRPC answers an exception the handler did not turn into a status with UNKNOWN.
            return grpc.StatusCode.UNKNOWN, repr(raised)
        if raised is not None:
            return grpc.StatusCode.CANCELLED, type(raised).__name__
        return grpc.StatusCode.OK, None


def _peer(context: ObservedContext) -> str:
    try:
        return str(context.peer())
    except Exception:
        return ""
