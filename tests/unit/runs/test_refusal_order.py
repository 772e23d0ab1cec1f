"""A batch's refusal ends with the gravest kind's status: malformed, then a credential that does not
cover the run, then out of scope, then not the claimant, then an unknown run."""

from __future__ import annotations

import grpc
import pytest

from control_plane.runs.reporter_servicer import _refusal_status
from control_plane.runs.reports import RejectedReport, RejectionKind

K = RejectionKind


@pytest.mark.parametrize(
    ("kinds", "code"),
    [
        ((K.UNKNOWN_RUN, K.FORBIDDEN, K.MALFORMED), grpc.StatusCode.INVALID_ARGUMENT),
        ((K.UNKNOWN_RUN, K.NOT_CLAIMANT, K.OUT_OF_SCOPE, K.FORBIDDEN), grpc.StatusCode.PERMISSION_DENIED),
        ((K.UNKNOWN_RUN, K.NOT_CLAIMANT, K.OUT_OF_SCOPE), grpc.StatusCode.INVALID_ARGUMENT),
        ((K.UNKNOWN_RUN, K.NOT_CLAIMANT), grpc.StatusCode.FAILED_PRECONDITION),
        ((K.UNKNOWN_RUN,), grpc.StatusCode.NOT_FOUND),
    ],
)
def test_the_gravest_refusal_decides_the_status(
    kinds: tuple[RejectionKind, ...], code: grpc.StatusCode
) -> None:
    refused = [RejectedReport("r", "w", n, kind, kind.value) for n, kind in enumerate(kinds, 1)]
    assert _refusal_status(refused, 0)[0] is code
    assert set(RejectionKind) == {K.MALFORMED, K.FORBIDDEN, K.OUT_OF_SCOPE, K.NOT_CLAIMANT, K.UNKNOWN_RUN}
