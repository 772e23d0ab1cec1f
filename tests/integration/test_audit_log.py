"""The audit log over real sockets: every mutating RPC leaves exactly one event naming its target,
caller, peer and outcome; reads and dry runs leave none; ListAuditEvents pages and filters them."""

from __future__ import annotations

import argparse
import json
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from grpc import aio

from code_server.asset_key import AssetKey
from code_server.server.spawn import SpawnedCodeServer, spawn_code_server
from code_server.wire.assets import asset_key_to_proto
from control_plane.app import ControlPlane
from control_plane.audit import AuditEvent, AuditFilter
from control_plane.auth.dev_token import DEV_TOKEN_PREFIX
from control_plane.auth.identity import Identity, Role, acting_as
from control_plane.cli import add_parsers
from partita.common.v1 import partitions_pb2, requests_pb2
from partita.controlplane.v1 import (
    audit_pb2,
    backfills_pb2,
    control_plane_pb2_grpc,
    runs_pb2,
)
from partita.controlplane.v1 import sensors_schedules_pb2 as ss
from tests.integration.conftest import ROOT, authorized_channel, wait_until

pytestmark = pytest.mark.integration

Factory = Callable[..., ControlPlane]
ALICE = Identity(name="alice", role=Role.OPERATOR, kind="token")


@pytest.fixture(scope="module")
def fuzz_code_server() -> Iterator[SpawnedCodeServer]:
    server = spawn_code_server(
        module_name="tests.fixtures.fuzz_location", working_directory=str(ROOT), location_name="fuzz"
    )
    yield server
    server.stop()


class ActingAs(aio.ServerInterceptor):  # type: ignore[misc]
    """What the authentication interceptor does, reduced to its effect: every handler runs as ``identity``."""

    def __init__(self, identity: Identity) -> None:
        self._identity = identity

    async def intercept_service(
        self, continuation: Callable[[Any], Awaitable[Any]], details: grpc.HandlerCallDetails
    ) -> Any:
        handler = await continuation(details)
        if handler is None or handler.unary_unary is None:
            return handler
        behavior, identity = handler.unary_unary, self._identity

        def serve(request: Any, context: Any) -> Any:
            with acting_as(identity):
                return behavior(request, context)

        return grpc.unary_unary_rpc_method_handler(
            serve, handler.request_deserializer, handler.response_serializer
        )


def _launch_request(dry_run: bool = False) -> backfills_pb2.LaunchBackfillRequest:
    return backfills_pb2.LaunchBackfillRequest(
        location_name="fuzz",
        target=requests_pb2.BackfillTarget(
            asset_selection=[asset_key_to_proto(AssetKey("a"))],
            ranges=partitions_pb2.PartitionKeyRanges(
                ranges=[partitions_pb2.PartitionKeyRange(start="2024-01-02", end="2024-01-03")]
            ),
        ),
        tags={"partita/k8s-config": '{"env": [{"name": "SECRET", "value": "hunter2"}]}'},
        dry_run=dry_run,
    )


def _code(call: Callable[[], object]) -> str:
    try:
        call()
    except grpc.RpcError as error:
        return error.code().name
    return "OK"


def _all_events(control_plane: ControlPlane, count: int) -> list[AuditEvent]:
    """The events, which must be ``count`` already: a call is logged before its caller hears how it
    ended (a refused one before its status goes out)."""
    events = _events(control_plane)
    assert len(events) == count, [(e.rpc, e.status) for e in events]
    return events


def _events(control_plane: ControlPlane, **where: str) -> list[AuditEvent]:
    return control_plane.list_audit_events(where=AuditFilter(**where), limit=1000)


@pytest.mark.parametrize("identity", [None, ALICE], ids=["token", "identity-set"])
def test_each_mutating_rpc_leaves_one_event_with_target_caller_peer_and_outcome(
    control_plane_factory: Factory, fuzz_code_server: SpawnedCodeServer, identity: Identity | None
) -> None:
    interceptors = [ActingAs(identity)] if identity else []
    control_plane = control_plane_factory({"fuzz": fuzz_code_server.address}, interceptors=interceptors)
    with authorized_channel(control_plane.address) as channel:
        stub = control_plane_pb2_grpc.ControlPlaneStub(channel)
        backfill_id = stub.LaunchBackfill(_launch_request()).backfill.backfill_id
        wait_until(
            lambda: bool(stub.ListRuns(runs_pb2.ListRunsRequest(backfill_id=backfill_id)).runs),
            "runs planned",
        )
        run_id = stub.ListRuns(runs_pb2.ListRunsRequest(backfill_id=backfill_id)).runs[0].run_id
        sensor = {"location_name": "fuzz", "sensor_name": "cursor_sensor"}
        schedule = {"location_name": "fuzz", "schedule_name": "nightly"}
        # (rpc, call, target kind, target id): the codes the client saw are what the log must say.
        calls: list[tuple[str, Callable[[], object], str, str]] = [
            ("PauseBackfill", lambda: stub.PauseBackfill(backfills_pb2.PauseBackfillRequest(backfill_id=backfill_id)), "backfill", backfill_id),
            ("ResumeBackfill", lambda: stub.ResumeBackfill(backfills_pb2.ResumeBackfillRequest(backfill_id=backfill_id)), "backfill", backfill_id),
            ("UpdateBackfillLimits", lambda: stub.UpdateBackfillLimits(backfills_pb2.UpdateBackfillLimitsRequest(backfill_id=backfill_id, max_concurrent_runs=3, priority=2)), "backfill", backfill_id),
            ("TerminateRun", lambda: stub.TerminateRun(runs_pb2.TerminateRunRequest(run_id=run_id)), "run", run_id),
            ("CancelBackfill", lambda: stub.CancelBackfill(backfills_pb2.CancelBackfillRequest(backfill_id=backfill_id)), "backfill", backfill_id),
            ("RetryBackfill", lambda: stub.RetryBackfill(backfills_pb2.RetryBackfillRequest(backfill_id=backfill_id)), "backfill", backfill_id),
            ("StartSensor", lambda: stub.StartSensor(ss.StartSensorRequest(**sensor)), "sensor", "cursor_sensor"),
            ("StopSensor", lambda: stub.StopSensor(ss.StopSensorRequest(**sensor)), "sensor", "cursor_sensor"),
            ("StartSchedule", lambda: stub.StartSchedule(ss.StartScheduleRequest(**schedule)), "schedule", "nightly"),
            ("StopSchedule", lambda: stub.StopSchedule(ss.StopScheduleRequest(**schedule)), "schedule", "nightly"),
        ]  # fmt: skip
        codes = {rpc: _code(call) for rpc, call, _, _ in calls}
        unknown = "0" * 32
        refused = _code(lambda: stub.CancelBackfill(backfills_pb2.CancelBackfillRequest(backfill_id=unknown)))

    assert refused == "NOT_FOUND"
    assert codes["PauseBackfill"] == codes["StartSensor"] == "OK"
    events = _all_events(control_plane, 1 + len(calls) + 1)
    callers = {(e.identity_name, e.identity_kind, e.role) for e in events}
    if identity:
        assert callers == {(identity.name, identity.kind, "operator")}
    else:  # the factory's admin token, as the authentication interceptor resolved it
        ((token_name, kind, role),) = callers
        assert token_name.startswith(DEV_TOKEN_PREFIX) and (kind, role) == ("token", "admin")
    assert all(e.peer.startswith("ipv4:127.0.0.1:") for e in events)

    (launch,) = _events(control_plane, rpc="LaunchBackfill")
    assert (launch.target_kind, launch.target_id, launch.location, launch.status) == (
        "backfill",
        backfill_id,
        "fuzz",
        "OK",
    )
    assert "assets a" in launch.summary and "2024-01-02..2024-01-03" in launch.summary
    assert "partita/k8s-config" in launch.summary and "hunter2" not in launch.summary
    for rpc, _, kind, target in calls:
        (event,) = [e for e in events if e.rpc == rpc and e.target_id == target]
        assert (event.target_kind, event.target_id, event.status) == (kind, target, codes[rpc]), rpc
        assert (event.error is None) == (codes[rpc] == "OK"), rpc
    (limits,) = _events(control_plane, rpc="UpdateBackfillLimits")
    assert limits.summary == "max_concurrent_runs=3 priority=2"
    assert [e.location for e in events if e.target_kind in ("sensor", "schedule")] == ["fuzz"] * 4
    (not_found,) = _events(control_plane, target_id=unknown)
    assert (not_found.rpc, not_found.status) == ("CancelBackfill", "NOT_FOUND")
    assert not_found.error is not None and unknown in not_found.error


def test_reads_and_dry_runs_leave_no_event_and_a_refused_launch_leaves_one(
    control_plane_factory: Factory, fuzz_code_server: SpawnedCodeServer
) -> None:
    control_plane = control_plane_factory({"fuzz": fuzz_code_server.address})
    with authorized_channel(control_plane.address) as channel:
        stub = control_plane_pb2_grpc.ControlPlaneStub(channel)
        assert stub.LaunchBackfill(_launch_request(dry_run=True)).HasField("plan")
        stub.ListBackfills(backfills_pb2.ListBackfillsRequest())
        stub.ListRuns(runs_pb2.ListRunsRequest())
        stub.ListSensors(ss.ListSensorsRequest())
        stub.PreviewSensor(ss.PreviewSensorRequest(location_name="fuzz", sensor_name="cursor_sensor"))
        stub.ListAuditEvents(audit_pb2.ListAuditEventsRequest())
        assert (
            _code(lambda: stub.GetBackfill(backfills_pb2.GetBackfillRequest(backfill_id="nope")))
            == "NOT_FOUND"
        )
        bad = _launch_request()
        bad.location_name = "elsewhere"
        assert _code(lambda: stub.LaunchBackfill(bad)) == "NOT_FOUND"
    # The refused launch is the one event: none of the reads before it left any.
    (event,) = _all_events(control_plane, 1)
    assert (event.rpc, event.status, event.target_kind, event.target_id, event.location) == (
        "LaunchBackfill",
        "NOT_FOUND",
        "backfill",
        None,
        "elsewhere",
    )


def test_list_audit_events_pages_newest_first_and_filters(
    control_plane_factory: Factory, fuzz_code_server: SpawnedCodeServer
) -> None:
    control_plane = control_plane_factory({"fuzz": fuzz_code_server.address})
    with authorized_channel(control_plane.address) as channel:
        stub = control_plane_pb2_grpc.ControlPlaneStub(channel)
        for index in range(5):
            _code(
                lambda i=index: stub.CancelBackfill(backfills_pb2.CancelBackfillRequest(backfill_id=f"b{i}"))
            )
        _code(lambda: stub.TerminateRun(runs_pb2.TerminateRunRequest(run_id="r1")))
        _all_events(control_plane, 6)

        seen: list[audit_pb2.AuditEvent] = []
        token = ""
        pages = 0
        while True:
            page = stub.ListAuditEvents(audit_pb2.ListAuditEventsRequest(page_size=2, page_token=token))
            seen.extend(page.events)
            pages += 1
            token = page.next_page_token
            if not token:
                break
        assert pages == 3
        assert [e.target_id for e in seen] == ["r1", "b4", "b3", "b2", "b1", "b0"]
        assert len({e.event_id for e in seen}) == 6
        times = [e.time.ToDatetime() for e in seen]
        assert times == sorted(times, reverse=True)
        assert all(
            e.status_code == "NOT_FOUND" and e.identity_name.startswith(DEV_TOKEN_PREFIX) for e in seen
        )
        caller = seen[0].identity_name

        def listed(**fields: str) -> list[str]:
            request = audit_pb2.ListAuditEventsRequest(**fields)
            return [e.target_id for e in stub.ListAuditEvents(request).events]

        assert listed(rpc="TerminateRun") == ["r1"]
        assert listed(target_kind="backfill", target_id="b2") == ["b2"]
        assert listed(target_kind="run") == ["r1"]
        assert listed(identity_name=caller, rpc="CancelBackfill") == ["b4", "b3", "b2", "b1", "b0"]
        assert listed(identity_name="alice") == []
        with pytest.raises(grpc.RpcError) as refused:
            stub.ListAuditEvents(audit_pb2.ListAuditEventsRequest(rpc=""))
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.RpcError) as forged:
            stub.ListAuditEvents(audit_pb2.ListAuditEventsRequest(page_token="bm9wZQ"))
        assert forged.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_the_retention_step_deletes_only_events_older_than_the_period(
    control_plane_factory: Factory, fuzz_code_server: SpawnedCodeServer
) -> None:
    control_plane = control_plane_factory({"fuzz": fuzz_code_server.address}, audit_retention_days=30)
    with authorized_channel(control_plane.address) as channel:
        stub = control_plane_pb2_grpc.ControlPlaneStub(channel)
        _code(lambda: stub.CancelBackfill(backfills_pb2.CancelBackfillRequest(backfill_id="recent")))
    (recent,) = _all_events(control_plane, 1)
    store = control_plane._audit
    now = datetime.now(UTC)
    for days, name in ((31, "old"), (29, "younger")):
        store.record(_copy(recent, id=name, target_id=name, at=now - timedelta(days=days)))
    assert control_plane.prune_audit_log() == 1
    assert sorted(e.target_id or "" for e in _events(control_plane)) == ["recent", "younger"]


def _copy(event: AuditEvent, **changes: Any) -> AuditEvent:
    from dataclasses import replace

    return replace(event, **changes)


def test_a_call_goes_ahead_when_its_event_cannot_be_written(
    control_plane_factory: Factory, fuzz_code_server: SpawnedCodeServer, caplog: pytest.LogCaptureFixture
) -> None:
    control_plane = control_plane_factory({"fuzz": fuzz_code_server.address})
    with control_plane.database.transaction() as connection:
        connection.execute(sa.text("DROP TABLE audit_events"))
    with authorized_channel(control_plane.address) as channel:
        stub = control_plane_pb2_grpc.ControlPlaneStub(channel)
        assert (
            _code(
                lambda: stub.StartSensor(
                    ss.StartSensorRequest(location_name="fuzz", sensor_name="cursor_sensor")
                )
            )
            == "OK"
        )
        assert (
            _code(lambda: stub.CancelBackfill(backfills_pb2.CancelBackfillRequest(backfill_id="x")))
            == "NOT_FOUND"
        )
    assert [r.getMessage() for r in caplog.records if r.name == "partita.control_plane.audit"] == [
        "Could not record StartSensor in the audit log; the call itself went ahead",
        "Could not record CancelBackfill in the audit log; the call itself went ahead",
    ]


def test_partita_audit_list_prints_the_log_as_a_table_and_as_json(
    control_plane_factory: Factory,
    fuzz_code_server: SpawnedCodeServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    control_plane = control_plane_factory({"fuzz": fuzz_code_server.address}, interceptors=[ActingAs(ALICE)])
    root = argparse.ArgumentParser(prog="partita")
    add_parsers(root.add_subparsers(dest="command", required=True))

    def partita(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        args = root.parse_args([*argv, "--control-plane", control_plane.address])
        code: int = args.handler(args)
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    assert partita("audit", "list") == (0, "No audit events.\n", "")
    assert partita("sensor", "start", "cursor_sensor", "--location", "fuzz")[0] == 0
    assert partita("backfill", "cancel", "nope")[0] == 1

    code, out, _ = partita("audit", "list")
    assert code == 0
    header, cancel, start = out.splitlines()
    assert header.split() == ["TIME", "IDENTITY", "RPC", "TARGET", "STATUS", "PEER", "SUMMARY"]
    assert "alice (operator)  CancelBackfill  backfill nope" in cancel and "NOT_FOUND: No backfill" in cancel
    assert "StartSensor" in start and "sensor fuzz/cursor_sensor" in start and "  OK  " in start

    code, out, _ = partita("audit", "list", "--json", "--rpc", "StartSensor")
    assert code == 0
    (event,) = json.loads(out)
    assert {k: v for k, v in event.items() if k not in ("id", "time", "peer")} == {
        "identity": "alice",
        "identity_kind": "token",
        "role": "operator",
        "rpc": "StartSensor",
        "target_kind": "sensor",
        "target_id": "cursor_sensor",
        "location": "fuzz",
        "summary": "",
        "status": "OK",
        "error": None,
    }
    assert event["time"].endswith("Z") and event["peer"].startswith("ipv4:127.0.0.1:")
    assert [e["rpc"] for e in json.loads(partita("audit", "list", "--json", "--limit", "1")[1])] == [
        "CancelBackfill"
    ]
    assert json.loads(partita("audit", "list", "--json", "--identity", "bob")[1]) == []
    assert partita("audit", "list", "--target-kind", "backfill", "--target", "nope")[1].count("\n") == 2
