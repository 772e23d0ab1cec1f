"""Errors a code-server client raises, each keeping the gRPC status it came from.

Hierarchy::

    CodeServerError                 (.status: grpc.StatusCode | None, .location)
    ├── CodeServerUnavailable        the server cannot be reached (UNAVAILABLE, DEADLINE_EXCEEDED)
    ├── DefinitionNotFound           NOT_FOUND: unknown asset, sensor or schedule
    ├── InvalidRequest               INVALID_ARGUMENT / FAILED_PRECONDITION: e.g. a key not in the definition
    └── UserCodeError                the user's code raised, timed out, or did not load
        └── UserCodeLoadFailed       the module failed to import; every call reports it
"""

from __future__ import annotations

import grpc

from code_server.errors import PartitaError
from partita.common.v1 import errors_pb2


class CodeServerError(PartitaError):
    def __init__(
        self, message: str, *, status: grpc.StatusCode | None = None, location: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.location = location


class CodeServerUnavailable(CodeServerError):
    """The code server did not answer; retrying later may succeed."""


class DefinitionNotFound(CodeServerError):
    """The code server has no asset, sensor or schedule by that name."""


class InvalidRequest(CodeServerError):
    """The request was malformed for this code location (bad key, unpartitioned asset, ...)."""


class UserCodeError(CodeServerError):
    """User code failed; ``error`` holds the message, class, traceback and cause chain."""

    def __init__(self, error: errors_pb2.UserCodeError, *, location: str | None = None) -> None:
        where = f" in code location {location!r}" if location else ""
        super().__init__(f"{error.class_name}{where}: {error.message}", location=location)
        self.error = error

    @property
    def kind(self) -> errors_pb2.UserCodeErrorKind.ValueType:
        return self.error.kind

    @property
    def traceback(self) -> str:
        return self.error.traceback

    @property
    def timed_out(self) -> bool:
        return self.error.kind == errors_pb2.USER_CODE_ERROR_KIND_TIMED_OUT


class UserCodeLoadFailed(UserCodeError):
    """The code location's module did not load; fix the code and reload or redeploy."""


def user_code_error(error: errors_pb2.UserCodeError, location: str | None) -> UserCodeError:
    if error.kind == errors_pb2.USER_CODE_ERROR_KIND_LOAD_FAILED:
        return UserCodeLoadFailed(error, location=location)
    return UserCodeError(error, location=location)
