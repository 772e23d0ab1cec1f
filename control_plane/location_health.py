"""How a code location stands: its status, and the problem with its server when it is not loaded.

A code server can fail in ways that say different things to an operator: nothing listens (start
it), it listens but never answers (it is stuck), it answers bytes that are no response (wrong
server or version), it answers definitions that do not form a graph (a bad deploy), or the user's
module does not import. Each becomes a :class:`LocationProblem` naming the RPC, the address and
the deadline, so that ``partita locations list`` can say which one it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import grpc

from code_server.client import (
    CodeServerError,
    CodeServerUnavailable,
    InvalidDefinitions,
    UndecodableAnswer,
    UserCodeLoadFailed,
)


class LocationStatus(StrEnum):
    """Whether the control plane can use a code location (values as the API and CLI show them)."""

    LOADED = "loaded"
    UNAVAILABLE = "unavailable"
    LOAD_ERROR = "load_error"
    INVALID = "invalid"


class ProblemKind(StrEnum):
    """What went wrong with a location's server; each kind maps to one status."""

    UNREACHABLE = "unreachable"
    TIMED_OUT = "timed_out"
    UNDECODABLE_ANSWER = "undecodable_answer"
    INVALID_DEFINITIONS = "invalid_definitions"
    LOAD_FAILED = "load_failed"
    SERVER_ERROR = "server_error"

    @property
    def status(self) -> LocationStatus:
        return _STATUS_OF_KIND[self]


_STATUS_OF_KIND = {
    ProblemKind.UNREACHABLE: LocationStatus.UNAVAILABLE,
    ProblemKind.TIMED_OUT: LocationStatus.UNAVAILABLE,
    ProblemKind.SERVER_ERROR: LocationStatus.UNAVAILABLE,
    ProblemKind.UNDECODABLE_ANSWER: LocationStatus.INVALID,
    ProblemKind.INVALID_DEFINITIONS: LocationStatus.INVALID,
    ProblemKind.LOAD_FAILED: LocationStatus.LOAD_ERROR,
}


@dataclass(frozen=True, slots=True)
class LocationProblem:
    """Why a location is not loaded, as its last refresh found it."""

    kind: ProblemKind
    #: The code-server RPC that failed ("" before the first call).
    rpc: str
    #: In words, naming the address: "no answer within 10 s from 127.0.0.1:4000 (ListDefinitions)".
    message: str
    #: When this run of failures began.
    since: datetime
    deadline: float | None = None
    consecutive_failures: int = 1

    @property
    def status(self) -> LocationStatus:
        return self.kind.status


def not_reached_yet(address: str, now: datetime) -> LocationProblem:
    """The problem of a location no refresh has finished for."""
    return LocationProblem(
        ProblemKind.UNREACHABLE, "", f"{address} not reached yet", now, consecutive_failures=0
    )


def problem_from_error(
    error: CodeServerError, *, address: str, now: datetime, previous: LocationProblem | None
) -> LocationProblem:
    """The problem ``error`` shows; a repeat of the previous problem's kind keeps its start time."""
    rpc = error.rpc or "GetServerInfo"
    kind, message = _describe(error, address, rpc)
    if previous is not None and previous.kind is kind and previous.consecutive_failures:
        return LocationProblem(
            kind, rpc, message, previous.since, error.deadline, previous.consecutive_failures + 1
        )
    return LocationProblem(kind, rpc, message, now, error.deadline)


def _describe(error: CodeServerError, address: str, rpc: str) -> tuple[ProblemKind, str]:
    cause = error.__cause__
    if isinstance(error, UserCodeLoadFailed):
        traceback = f"\n{error.traceback}" if error.traceback else ""
        return ProblemKind.LOAD_FAILED, f"{error}{traceback}"
    if isinstance(error, CodeServerUnavailable) and error.timed_out:
        deadline = f"{error.deadline:g} s" if error.deadline is not None else "its deadline"
        return ProblemKind.TIMED_OUT, f"no answer within {deadline} from {address} ({rpc})"
    if isinstance(error, CodeServerUnavailable):
        return ProblemKind.UNREACHABLE, f"cannot reach {address} ({rpc}: {_details(cause, error)})"
    if isinstance(error, UndecodableAnswer):
        return (
            ProblemKind.UNDECODABLE_ANSWER,
            f"{address} answered {rpc} with bytes that are not a {rpc} response "
            "(is it a Partita code server of a compatible version?)",
        )
    if isinstance(error, InvalidDefinitions):
        detail = str(cause) if cause is not None else str(error)
        return ProblemKind.INVALID_DEFINITIONS, f"{address} answered {rpc} with invalid definitions: {detail}"
    status = error.status.name if error.status is not None else "an error"
    return ProblemKind.SERVER_ERROR, f"{address} answered {rpc} with {status}: {_details(cause, error)}"


def _details(cause: BaseException | None, error: CodeServerError) -> str:
    if isinstance(cause, grpc.RpcError):
        details = cause.details()
        if isinstance(details, str) and details:
            return details
    return str(error)
