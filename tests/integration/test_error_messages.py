"""Errors stay small whatever the input: the right status code reaches the client, and the message
echoes only a short, marked piece of what was sent."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest

from control_plane.app import ControlPlane
from partita.controlplane.v1 import backfills_pb2, control_plane_pb2_grpc, runs_pb2
from tests.integration.conftest import authorized_channel


@pytest.mark.parametrize(
    ("run_id", "code"),
    [
        ("x" * 1_000_000, grpc.StatusCode.INVALID_ARGUMENT),  # past every id's length limit
        ("é" * 1_000, grpc.StatusCode.NOT_FOUND),  # a valid id that names nothing, 2 bytes a character
        ("\U0001f600" * 200_000, grpc.StatusCode.INVALID_ARGUMENT),  # 4 bytes a character
    ],
)
def test_a_huge_id_gets_its_own_status_and_a_short_message(
    control_plane_factory: Callable[..., ControlPlane], run_id: str, code: grpc.StatusCode
) -> None:
    plane = control_plane_factory({})
    with authorized_channel(plane.address) as channel:
        stub = control_plane_pb2_grpc.ControlPlaneStub(channel)
        for call in (
            lambda: stub.GetRun(runs_pb2.GetRunRequest(run_id=run_id), timeout=10),
            lambda: stub.CancelBackfill(backfills_pb2.CancelBackfillRequest(backfill_id=run_id), timeout=10),
        ):
            with pytest.raises(grpc.RpcError) as refused:
                call()
            assert refused.value.code() is code, refused.value.details()
            details = refused.value.details() or ""
            assert 0 < len(details) <= 400, len(details)
            assert run_id[:100] not in details  # at most a marked piece of the input is echoed
