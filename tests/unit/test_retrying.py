"""call_with_retries: what both clients retry (only what never reached the service) and what they raise."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest

from code_server.client.retrying import RETRYABLE, call_with_retries


class StatusError(grpc.RpcError):
    """An RpcError with a status code, as a failed gRPC call raises."""

    def __init__(self, code: grpc.StatusCode) -> None:
        super().__init__(code.name)
        self._code = code

    def code(self) -> grpc.StatusCode:
        return self._code


class Translated(Exception):
    pass


def _calls(*outcomes: grpc.StatusCode | str) -> tuple[list[int], Callable[[], str]]:
    attempts: list[int] = []

    def invoke() -> str:
        attempts.append(len(attempts))
        outcome = outcomes[len(attempts) - 1]
        if isinstance(outcome, grpc.StatusCode):
            raise StatusError(outcome)
        return outcome

    return attempts, invoke


def _call(invoke: Callable[[], str], retries: int = 3) -> str:
    return call_with_retries(
        invoke,
        retries=retries,
        backoff=0.001,
        translate=lambda error: Translated(error.code().name),
        retryable=lambda error, _: error.code() in RETRYABLE,
    )


def test_a_service_that_was_down_is_tried_again_until_it_answers() -> None:
    attempts, invoke = _calls(grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, "ok")
    assert _call(invoke) == "ok"
    assert len(attempts) == 3


def test_an_answer_from_the_service_is_never_retried() -> None:
    attempts, invoke = _calls(grpc.StatusCode.INVALID_ARGUMENT, "ok")
    with pytest.raises(Translated, match="INVALID_ARGUMENT") as raised:
        _call(invoke)
    assert len(attempts) == 1
    assert isinstance(raised.value.__cause__, StatusError)


def test_after_the_last_retry_the_translated_error_is_raised() -> None:
    attempts, invoke = _calls(*[grpc.StatusCode.UNAVAILABLE] * 3)
    with pytest.raises(Translated, match="UNAVAILABLE"):
        _call(invoke, retries=2)
    assert len(attempts) == 3
