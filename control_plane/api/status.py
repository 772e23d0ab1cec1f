"""Errors of the service -> gRPC status codes, with the error's message as the details.

The error's class name also goes into the trailing metadata under ``ERROR_METADATA_KEY``, so a client
can tell "the control plane answered UNAVAILABLE" (a code location is down) from a transport failure.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import TracebackType
from typing import Any, NoReturn, TypeVar

import grpc
from grpc import aio

from code_server.client.errors import (
    CodeServerError,
    CodeServerUnavailable,
    DefinitionNotFound,
    InvalidRequest,
    UserCodeError,
)
from code_server.errors import DefinitionError, PartitaError, PartitionKeyError, UnknownDefinitionError
from control_plane.errors import (
    BackfillNotFound,
    ControlPlaneError,
    InvalidBackfillRequest,
    InvalidStateTransition,
    LocationUnavailable,
    RunNotFound,
    RunSettingsRefused,
    TooManyStreams,
    UnknownLocation,
    shortened,
)
from control_plane.storage.api_tokens import ApiTokenExists
from control_plane.storage.errors import (
    BackfillAlreadyExists,
    RunAlreadyExists,
    RunKeyAlreadyUsed,
    StorageConflict,
    StorageFull,
    StorageReadOnly,
    StorageUnavailable,
)
from control_plane.storage.errors import NotFound as StorageNotFound

logger = logging.getLogger("partita.control_plane.api")

#: Trailing-metadata key naming the error class behind a non-OK status.
ERROR_METADATA_KEY = "partita-error"
#: Longest status message sent, in characters: what to do and an error's summary, never a flood of echoed
#: input; at 4 bytes a character at most, it stays well inside the 8 KiB gRPC allows for trailers.
_MAX_MESSAGE = 1000

_T = TypeVar("_T")

#: First match wins, so subclasses come before their bases.
_STATUS_BY_ERROR: tuple[tuple[type[Exception], grpc.StatusCode], ...] = (
    (InvalidBackfillRequest, grpc.StatusCode.INVALID_ARGUMENT),
    (BackfillNotFound, grpc.StatusCode.NOT_FOUND),
    (RunNotFound, grpc.StatusCode.NOT_FOUND),
    (UnknownLocation, grpc.StatusCode.NOT_FOUND),
    (InvalidStateTransition, grpc.StatusCode.FAILED_PRECONDITION),
    (LocationUnavailable, grpc.StatusCode.UNAVAILABLE),
    (TooManyStreams, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (RunSettingsRefused, grpc.StatusCode.PERMISSION_DENIED),
    (ControlPlaneError, grpc.StatusCode.FAILED_PRECONDITION),
    # Storage errors that reach the API: a conflict or a row that vanished, not an internal fault.
    (StorageNotFound, grpc.StatusCode.NOT_FOUND),
    (BackfillAlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (RunAlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (RunKeyAlreadyUsed, grpc.StatusCode.ALREADY_EXISTS),
    (ApiTokenExists, grpc.StatusCode.ALREADY_EXISTS),
    # The database's own faults: retry UNAVAILABLE with backoff and an ABORTED call at once; a full or
    # read-only database needs an operator first (the message says what to free or fix).
    (StorageUnavailable, grpc.StatusCode.UNAVAILABLE),
    (StorageConflict, grpc.StatusCode.ABORTED),
    (StorageFull, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (StorageReadOnly, grpc.StatusCode.FAILED_PRECONDITION),
    # Code-server errors that reach the API name the location and what to do about it.
    (CodeServerUnavailable, grpc.StatusCode.UNAVAILABLE),
    (DefinitionNotFound, grpc.StatusCode.NOT_FOUND),
    (InvalidRequest, grpc.StatusCode.INVALID_ARGUMENT),
    (UserCodeError, grpc.StatusCode.FAILED_PRECONDITION),
    (CodeServerError, grpc.StatusCode.UNAVAILABLE),
    # SDK errors come from what the caller named: an unknown asset, a key not in its definition.
    (UnknownDefinitionError, grpc.StatusCode.NOT_FOUND),
    (PartitionKeyError, grpc.StatusCode.INVALID_ARGUMENT),
    (DefinitionError, grpc.StatusCode.INVALID_ARGUMENT),
)


class BadRequest(ValueError):
    """The request itself is malformed (missing id, bad page token, unknown enum): INVALID_ARGUMENT."""


def status_for_error(error: Exception) -> grpc.StatusCode:
    """The status an error of the service becomes; anything unexpected is INTERNAL."""
    if isinstance(error, BadRequest):
        return grpc.StatusCode.INVALID_ARGUMENT
    for error_type, code in _STATUS_BY_ERROR:
        if isinstance(error, error_type):
            return code
    return grpc.StatusCode.INTERNAL


class StatusOnError:
    """Ends the RPC with the status of an error raised in its block (``with StatusOnError(context, "Rpc"):``)."""

    def __init__(self, context: grpc.ServicerContext, rpc: str) -> None:
        self._context = context
        self._rpc = rpc

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, exc_type: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        # BaseExceptions (GeneratorExit when a client cancels a stream) pass through untouched.
        if not isinstance(error, Exception):
            return
        code, message = error_status(error, self._rpc)
        self._context.set_trailing_metadata(((ERROR_METADATA_KEY, type(error).__name__),))
        self._context.abort(code, message)


def error_status(error: Exception, rpc: str) -> tuple[grpc.StatusCode, str]:
    """The status and message an error raised while serving ``rpc`` ends it with (INTERNAL ones logged)."""
    code = status_for_error(error)
    if code == grpc.StatusCode.INTERNAL:
        logger.error("%s failed unexpectedly", rpc, exc_info=error)
        return (
            code,
            f"Internal error in the control plane during {rpc}: {shortened(repr(error))}; see its log.",
        )
    return code, shortened(str(error) or type(error).__name__, _MAX_MESSAGE)


async def abort_with_error(context: aio.ServicerContext[Any, Any], rpc: str, error: Exception) -> NoReturn:
    """``StatusOnError`` for coroutine handlers: end the call with the error's status."""
    code, message = error_status(error, rpc)
    context.set_trailing_metadata(((ERROR_METADATA_KEY, type(error).__name__),))
    await context.abort(code, message)
    raise AssertionError("unreachable: abort raises")


def required(value: str, field: str) -> str:
    if not value:
        raise BadRequest(f"{field} is required.")
    return value


def parsed(parse: Callable[[], _T]) -> _T:
    """Run a request conversion; what it rejects (bad enum, asset key or target) is INVALID_ARGUMENT."""
    try:
        return parse()
    except (ValueError, PartitaError) as error:
        raise BadRequest(str(error)) from error
