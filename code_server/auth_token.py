"""The shared token with which the control plane authenticates itself to its code servers.

A code server runs user code on request (``Reload``, sensor and schedule evaluation): only its
control plane may ask. Both read the same token from a file (a mounted Secret on Kubernetes), and
the control plane sends it as ``authorization: Bearer <token>`` on every call. The file is read
again when it changes, so a rotated Secret is picked up without a restart (rotate by restarting
nothing: write the new token to both sides' file; calls in between are refused and retried).

Health checks and reflection stay open: probes and tooling carry no token.
"""

from __future__ import annotations

import hmac
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc

from code_server.errors import PartitaError

#: The token file of both sides (``partita code-server`` and ``partita control-plane``).
TOKEN_FILE_ENV = "PARTITA_CODE_SERVER_TOKEN_FILE"
AUTHORIZATION_KEY = "authorization"
_BEARER = "bearer "
#: Services any caller may use: probes and tooling.
OPEN_SERVICES = frozenset({"grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"})
#: Tokens shorter than this are refused at start: a guessable token authenticates nobody.
MIN_TOKEN_LENGTH = 16


if TYPE_CHECKING:  # grpc-stubs make these generic; at run time they are plain classes
    _ServerInterceptor = grpc.ServerInterceptor[Any, Any]
    _UnaryUnaryClientInterceptor = grpc.UnaryUnaryClientInterceptor[Any, Any]
    _UnaryStreamClientInterceptor = grpc.UnaryStreamClientInterceptor[Any, Any]
else:
    _ServerInterceptor = grpc.ServerInterceptor
    _UnaryUnaryClientInterceptor = grpc.UnaryUnaryClientInterceptor
    _UnaryStreamClientInterceptor = grpc.UnaryStreamClientInterceptor


class TokenFileError(PartitaError):
    """The token file is missing, unreadable, or holds no usable token."""


class TokenFile:
    """A token kept in a file, re-read whenever the file's modification time or size changes.

    Exists so that the code server and the control plane read the shared token the same way, and
    pick up a rotation without a restart.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._token = ""
        self.read()  # fail at start, naming the file, rather than at the first call

    def read(self) -> str:
        """The token as the file holds it now (surrounding whitespace removed)."""
        try:
            stat = self.path.stat()
        except OSError as error:
            raise TokenFileError(
                f"Cannot read the code-server token file {str(self.path)!r}: {error.strerror}."
            ) from error
        stamp = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if stamp != self._stamp:
                try:
                    token = self.path.read_text().strip()
                except (OSError, UnicodeDecodeError) as error:
                    raise TokenFileError(
                        f"Cannot read the code-server token file {str(self.path)!r}: {error}."
                    ) from error
                if len(token) < MIN_TOKEN_LENGTH or any(c.isspace() for c in token):
                    raise TokenFileError(
                        f"The code-server token file {str(self.path)!r} must hold one token of at "
                        f"least {MIN_TOKEN_LENGTH} characters without spaces, e.g. the output of "
                        "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`."
                    )
                self._token, self._stamp = token, stamp
            return self._token

    @classmethod
    def from_setting(cls, path: str | None) -> TokenFile | None:
        return cls(path) if path else None


def bearer_metadata(token: str) -> tuple[tuple[str, str], ...]:
    return ((AUTHORIZATION_KEY, f"Bearer {token}"),)


def presented_token(metadata: Any) -> str | None:
    """The bearer token in a call's invocation metadata, if any."""
    for key, value in metadata or ():
        if key == AUTHORIZATION_KEY:
            text = value if isinstance(value, str) else value.decode(errors="replace")
            if text[: len(_BEARER)].lower() == _BEARER:
                return text[len(_BEARER) :].strip()
    return None


class TokenAuthInterceptor(_ServerInterceptor):
    """Refuses every call but health and reflection unless it carries the token of ``token_file``."""

    def __init__(self, token_file: TokenFile) -> None:
        self._token_file = token_file

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        method = handler_call_details.method
        service = method.lstrip("/").partition("/")[0]
        if service in OPEN_SERVICES:
            return continuation(handler_call_details)
        presented = presented_token(handler_call_details.invocation_metadata)
        if presented is not None:
            try:
                expected = self._token_file.read()
            except TokenFileError:
                expected = ""  # the file went away: refuse everyone rather than let anyone in
            if expected and hmac.compare_digest(presented.encode(), expected.encode()):
                return continuation(handler_call_details)
        handler = continuation(handler_call_details)
        return _refusal(handler, _refusal_message(method, presented is not None))


def _refusal_message(method: str, had_token: bool) -> str:
    what = "a token that is not this code server's" if had_token else "no token"
    return (
        f"{method} needs the code server's token and the call carried {what}. Give the control "
        f"plane the token file the code server reads: `partita control-plane --code-server-token-file "
        f"FILE` (or ${TOKEN_FILE_ENV}), the same file as `partita code-server --auth-token-file FILE`."
    )


def _refusal(
    handler: grpc.RpcMethodHandler[Any, Any] | None, message: str
) -> grpc.RpcMethodHandler[Any, Any]:
    """A handler of the same shape as ``handler`` that aborts with UNAUTHENTICATED."""

    def abort(request: object, context: grpc.ServicerContext) -> Any:
        context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    def abort_stream(request: object, context: grpc.ServicerContext) -> Iterator[Any]:
        context.abort(grpc.StatusCode.UNAUTHENTICATED, message)
        yield  # pragma: no cover  (abort raises)

    if handler is not None and handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(
            abort_stream,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    return grpc.unary_unary_rpc_method_handler(
        abort,
        request_deserializer=handler.request_deserializer if handler else None,
        response_serializer=handler.response_serializer if handler else None,
    )


class TokenClientInterceptor(_UnaryUnaryClientInterceptor, _UnaryStreamClientInterceptor):
    """Adds ``authorization: Bearer <token>`` (read from the file at each call) to every call."""

    def __init__(self, token_file: TokenFile) -> None:
        self._token_file = token_file

    def _with_token(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        metadata = (*(details.metadata or ()), *bearer_metadata(self._token_file.read()))
        return _CallDetails(details, metadata)

    def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return continuation(self._with_token(client_call_details), request)

    def intercept_unary_stream(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return continuation(self._with_token(client_call_details), request)


class _CallDetails(grpc.ClientCallDetails):
    def __init__(
        self, details: grpc.ClientCallDetails, metadata: tuple[tuple[str, str | bytes], ...]
    ) -> None:
        self.method = details.method
        self.timeout = details.timeout
        self.metadata = metadata
        self.credentials = details.credentials
        self.wait_for_ready = getattr(details, "wait_for_ready", None)
        self.compression = getattr(details, "compression", None)


def token_file_from_environment() -> str | None:
    return os.environ.get(TOKEN_FILE_ENV) or None


__all__ = [
    "OPEN_SERVICES",
    "TOKEN_FILE_ENV",
    "TokenAuthInterceptor",
    "TokenClientInterceptor",
    "TokenFile",
    "TokenFileError",
    "bearer_metadata",
    "presented_token",
]
