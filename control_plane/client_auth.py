"""The client side of authentication: which API token a client sends, and sending it.

A token is taken, first found, from: the ``token`` argument (the CLI's ``--token``), ``$PARTITA_TOKEN``,
the file ``$PARTITA_TOKEN_FILE`` names, and, for a control plane on this machine, the token file
``partita dev`` wrote for its address (as Jupyter does), readable only by its user.
"""

from __future__ import annotations

import collections
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc

TOKEN_ENV = "PARTITA_TOKEN"
TOKEN_FILE_ENV = "PARTITA_TOKEN_FILE"
#: Where ``partita dev`` keeps the tokens of the servers it runs (default ~/.partita).
HOME_ENV = "PARTITA_HOME"
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


def dev_token_file(address: str) -> Path:
    """The file ``partita dev`` serving at ``address`` (HOST:PORT) writes its admin token to."""
    home = Path(os.environ.get(HOME_ENV) or Path.home() / ".partita")
    return home / "dev-tokens" / address.replace(":", "_").replace("[", "").replace("]", "")


def resolve_token(address: str, token: str | None = None) -> str | None:
    """The token to send to ``address``; None to send none. ``token=""`` means none, explicitly."""
    if token is not None:
        return token or None
    if found := os.environ.get(TOKEN_ENV, "").strip():
        return found
    if path := os.environ.get(TOKEN_FILE_ENV):
        return _read(Path(path), required=True)
    host = address.rpartition(":")[0]
    if host in _LOOPBACK_HOSTS:
        return _read(dev_token_file(address), required=False)
    return None


def _read(path: Path, *, required: bool) -> str | None:
    try:
        return path.read_text().strip() or None
    except OSError as error:
        if required:
            raise TokenFileError(
                f"Cannot read the token file {path} (${TOKEN_FILE_ENV}): {error.strerror}."
            ) from error
        return None


class TokenFileError(OSError):
    """``$PARTITA_TOKEN_FILE`` names a file that cannot be read."""


class _CallDetails(
    collections.namedtuple(
        "_CallDetails", ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression")
    ),
    grpc.ClientCallDetails,
):
    pass


if TYPE_CHECKING:
    _UnaryUnary = grpc.UnaryUnaryClientInterceptor[Any, Any]
    _UnaryStream = grpc.UnaryStreamClientInterceptor[Any, Any]
else:  # generic only in the type stubs
    _UnaryUnary = grpc.UnaryUnaryClientInterceptor
    _UnaryStream = grpc.UnaryStreamClientInterceptor


class BearerTokenInterceptor(_UnaryUnary, _UnaryStream):
    """Adds ``authorization: Bearer <token>`` to every call of a channel."""

    def __init__(self, token: str) -> None:
        self._metadata = ("authorization", f"Bearer {token}")

    def _details(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        metadata = [*(details.metadata or ()), self._metadata]
        return _CallDetails(
            details.method,
            details.timeout,
            metadata,
            details.credentials,
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)


def with_token(channel: grpc.Channel, token: str | None) -> grpc.Channel:
    """``channel``, sending ``token`` on every call (unchanged when None)."""
    return grpc.intercept_channel(channel, BearerTokenInterceptor(token)) if token else channel
