"""Each way a code server fails becomes one problem kind and status, with a reason naming the RPC and address."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
import pytest

from code_server.client import (
    CodeServerError,
    CodeServerUnavailable,
    InvalidDefinitions,
    UndecodableAnswer,
    UserCodeLoadFailed,
)
from code_server.errors import DefinitionError
from control_plane.location_health import LocationStatus, ProblemKind, problem_from_error
from partita.common.v1 import errors_pb2

NOW = datetime(2024, 3, 1, 12, tzinfo=UTC)
ADDRESS = "127.0.0.1:4000"


def invalid_definitions() -> InvalidDefinitions:
    try:
        raise InvalidDefinitions("bad", rpc="ListDefinitions") from DefinitionError(
            "Asset 'x' is defined twice."
        )
    except InvalidDefinitions as error:
        return error


@pytest.mark.parametrize(
    ("error", "kind", "status", "message"),
    [
        (
            CodeServerUnavailable(
                "x", status=grpc.StatusCode.DEADLINE_EXCEEDED, rpc="ListDefinitions", deadline=10.0
            ),
            ProblemKind.TIMED_OUT,
            LocationStatus.UNAVAILABLE,
            f"no answer within 10 s from {ADDRESS} (ListDefinitions)",
        ),
        (
            CodeServerUnavailable("refused", status=grpc.StatusCode.UNAVAILABLE, rpc="GetServerInfo"),
            ProblemKind.UNREACHABLE,
            LocationStatus.UNAVAILABLE,
            f"cannot reach {ADDRESS} (GetServerInfo: refused)",
        ),
        (
            UndecodableAnswer("x", status=grpc.StatusCode.INTERNAL, rpc="GetServerInfo"),
            ProblemKind.UNDECODABLE_ANSWER,
            LocationStatus.INVALID,
            f"{ADDRESS} answered GetServerInfo with bytes that are not a GetServerInfo response",
        ),
        (
            invalid_definitions(),
            ProblemKind.INVALID_DEFINITIONS,
            LocationStatus.INVALID,
            f"{ADDRESS} answered ListDefinitions with invalid definitions: Asset 'x' is defined twice.",
        ),
        (
            UserCodeLoadFailed(errors_pb2.UserCodeError(class_name="ImportError", message="no y")),
            ProblemKind.LOAD_FAILED,
            LocationStatus.LOAD_ERROR,
            "ImportError: no y",
        ),
        (
            CodeServerError("boom", status=grpc.StatusCode.INTERNAL, rpc="ListDefinitions"),
            ProblemKind.SERVER_ERROR,
            LocationStatus.UNAVAILABLE,
            f"{ADDRESS} answered ListDefinitions with INTERNAL: boom",
        ),
    ],
)
def test_each_failure_has_its_kind_status_and_reason(
    error: CodeServerError, kind: ProblemKind, status: LocationStatus, message: str
) -> None:
    problem = problem_from_error(error, address=ADDRESS, now=NOW, previous=None)
    assert (problem.kind, problem.status) == (kind, status)
    assert problem.message.startswith(message)
    assert problem.since == NOW and problem.consecutive_failures == 1


def test_a_repeated_failure_keeps_its_start_and_counts_and_a_new_kind_starts_over() -> None:
    hang = CodeServerUnavailable(
        "x", status=grpc.StatusCode.DEADLINE_EXCEEDED, rpc="GetServerInfo", deadline=5
    )
    first = problem_from_error(hang, address=ADDRESS, now=NOW, previous=None)
    again = problem_from_error(hang, address=ADDRESS, now=NOW + timedelta(seconds=5), previous=first)
    assert again.since == NOW and again.consecutive_failures == 2
    garbage = UndecodableAnswer("x", rpc="GetServerInfo")
    other = problem_from_error(garbage, address=ADDRESS, now=NOW + timedelta(seconds=10), previous=again)
    assert other.since == NOW + timedelta(seconds=10) and other.consecutive_failures == 1
