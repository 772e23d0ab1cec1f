"""Calling a gRPC service with retries: what the code-server and control-plane clients share.

Only failures that never reached the service (it is down, or did not answer within the deadline)
are retried, with exponential backoff; every other failure is turned into the caller's own error.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import grpc

_T = TypeVar("_T")

#: Status codes of calls that never reached the service, which are safe to try again.
RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


def call_with_retries(
    invoke: Callable[[], _T],
    *,
    retries: int,
    backoff: float,
    translate: Callable[[grpc.RpcError], Exception],
    retryable: Callable[[grpc.RpcError, Exception], bool],
) -> _T:
    """``invoke()``, tried ``retries`` more times (after ``backoff``, 2x, 4x ... seconds) while
    ``retryable(error, translate(error))``; then ``translate(error)`` is raised from the gRPC error."""
    for attempt in range(retries + 1):
        try:
            return invoke()
        except grpc.RpcError as error:
            translated = translate(error)
            if attempt < retries and retryable(error, translated):
                time.sleep(backoff * (2**attempt))
                continue
            raise translated from error
    raise AssertionError("unreachable")
