"""Errors a code-server client raises, each keeping the gRPC status it came from.

Hierarchy::

    CodeServerError                 (.status: grpc.StatusCode | None, .location)
    ├── CodeServerUnavailable        the server cannot be reached (UNAVAILABLE, DEADLINE_EXCEEDED)
    ├── InvalidAnswer                the server answered, but with something the client cannot use
    │   ├── UndecodableAnswer          bytes that do not decode as the RPC's response message
    │   └── InvalidDefinitions         a definitions snapshot that fails validation
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
    """Root of the client's errors: keeps the gRPC status, the location, the RPC and its deadline,
    so that callers can say exactly which call to which server failed, and how long it was given."""

    def __init__(
        self,
        message: str,
        *,
        status: grpc.StatusCode | None = None,
        location: str | None = None,
        rpc: str | None = None,
        deadline: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.location = location
        #: The RPC's name, e.g. "ListDefinitions"; None when not known.
        self.rpc = rpc
        #: Seconds the call was given in all (its retries included).
        self.deadline = deadline


class CodeServerUnavailable(CodeServerError):
    """The code server did not answer; retrying later may succeed."""

    @property
    def timed_out(self) -> bool:
        """True when the server was reached (or not) but gave no answer within the deadline."""
        return self.status == grpc.StatusCode.DEADLINE_EXCEEDED


class InvalidAnswer(CodeServerError):
    """The code server answered with something unusable: a broken server or a bad deploy, not the
    caller's fault. Raised so that callers can keep what they last knew instead of crashing on it."""


class UndecodableAnswer(InvalidAnswer):
    """The response bytes are not the RPC's protobuf message (a wrong or corrupt server)."""


class InvalidDefinitions(InvalidAnswer):
    """The definitions decode but do not form a valid asset graph (an asset defined twice, an
    unknown partitions kind, a dependency on an asset that is not defined, ...)."""


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
