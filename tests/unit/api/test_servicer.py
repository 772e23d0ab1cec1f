"""The ControlPlane servicer in a real gRPC server over an in-memory service, called through the client.

These check the API layer only: status codes and messages, paging, streaming and conversions. The
service's behaviour is tested against the real service elsewhere.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import grpc
import pytest

from code_server.asset_key import AssetKey
from code_server.partitions.keys import PartitionKeyRange
from code_server.wire.assets import asset_key_to_proto
from code_server.wire.automation import BackfillRequestSpec
from control_plane.api.enums import (
    backfill_status_from_proto,
    partition_status_from_proto,
    run_status_from_proto,
)
from control_plane.api.status import ERROR_METADATA_KEY
from control_plane.client import (
    CodeLocationUnavailableError,
    ControlPlaneClient,
    ControlPlaneUnreachable,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
)
from control_plane.records import BackfillStatus, PartitionSpan, PartitionStatus, RunStatus
from control_plane.views import LaunchOptions
from partita.common.v1 import requests_pb2
from partita.controlplane.v1 import (
    backfills_pb2,
    control_plane_pb2_grpc,
    partition_status_pb2,
    runs_pb2,
    sensors_schedules_pb2,
)
from tests.fixtures.fake_control_plane import (
    DAYS,
    T0,
    FakeControlPlaneServer,
    FakeControlPlaneService,
    backfill_view,
    run_record,
)

A, B = AssetKey("a"), AssetKey("b")


@pytest.fixture
def service() -> FakeControlPlaneService:
    return FakeControlPlaneService()


@pytest.fixture
def server(service: FakeControlPlaneService) -> Iterator[FakeControlPlaneServer]:
    with FakeControlPlaneServer(service, log_page_size=3) as running:
        yield running


@pytest.fixture
def client(server: FakeControlPlaneServer) -> Iterator[ControlPlaneClient]:
    with ControlPlaneClient(server.address, timeout=10) as connected:
        yield connected


@pytest.fixture
def stub(server: FakeControlPlaneServer) -> Iterator[control_plane_pb2_grpc.ControlPlaneStub]:
    with grpc.insecure_channel(server.address) as channel:
        yield control_plane_pb2_grpc.ControlPlaneStub(channel)


# --- backfills --------------------------------------------------------------------------------------


def test_launch_passes_the_request_through_and_returns_the_backfill(
    client: ControlPlaneClient, service: FakeControlPlaneService
) -> None:
    spec = BackfillRequestSpec(asset_keys=(A, B), partition_ranges=(PartitionKeyRange(DAYS[0], DAYS[-1]),))
    options = LaunchOptions(
        location="guide", title="January", tags={"team": "data"}, max_concurrent_runs=4, priority=2
    )
    backfill = client.launch_backfill(spec, options)

    assert isinstance(backfill, backfills_pb2.Backfill)
    assert backfill.backfill_id == "bf1" and backfill.title == "January"
    assert backfill_status_from_proto(backfill.status) is BackfillStatus.RUNNING
    assert backfill.target.ranges.ranges[0].start == DAYS[0] and backfill.limits.max_concurrent_runs == 4
    ((received_spec, received_options),) = service.launched
    assert received_spec.asset_keys == (A, B)
    assert received_spec.partition_ranges == (PartitionKeyRange(DAYS[0], DAYS[-1]),)
    assert received_options.tags == {"team": "data"} and received_options.priority == 2
    # The client picks a request id so that a retried launch cannot make a second backfill.
    assert received_options.request_id


def test_dry_run_answers_with_the_plan(client: ControlPlaneClient, service: FakeControlPlaneService) -> None:
    plan = client.launch_backfill(
        BackfillRequestSpec(asset_keys=(A,), partition_keys=("2024-01-01", "2024-01-02")),
        LaunchOptions(location="guide", dry_run=True),
    )
    assert isinstance(plan, backfills_pb2.BackfillPlan)
    assert plan.partition_count == 2 and [run.partition_key for run in plan.runs] == [
        "2024-01-01",
        "2024-01-02",
    ]
    assert service.backfills == {}
    assert service.launched[0][1].request_id is None


def test_invalid_backfill_is_invalid_argument_with_the_services_message(client: ControlPlaneClient) -> None:
    with pytest.raises(InvalidArgumentError, match=r"Unknown assets \['unknown_x'\]") as raised:
        client.launch_backfill(
            BackfillRequestSpec(asset_keys=(AssetKey("unknown_x"),), all_partitions=True),
            LaunchOptions(location="guide"),
        )
    assert raised.value.status == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.error_type == "InvalidBackfillRequest"


def test_launch_without_partitions_is_rejected_before_the_service(
    stub: control_plane_pb2_grpc.ControlPlaneStub, service: FakeControlPlaneService
) -> None:
    request = backfills_pb2.LaunchBackfillRequest(
        location_name="guide", target=requests_pb2.BackfillTarget(asset_selection=[asset_key_to_proto(A)])
    )
    with pytest.raises(grpc.RpcError) as raised:
        stub.LaunchBackfill(request)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "target must name the partitions" in (raised.value.details() or "")
    assert service.launched == []


def test_unknown_location_is_not_found_and_a_down_one_unavailable(client: ControlPlaneClient) -> None:
    spec = BackfillRequestSpec(asset_keys=(A,), all_partitions=True)
    with pytest.raises(NotFoundError, match="No code location named 'nowhere'"):
        client.launch_backfill(spec, LaunchOptions(location="nowhere"))
    # UNAVAILABLE from the control plane itself is not mistaken for an unreachable control plane.
    with pytest.raises(CodeLocationUnavailableError, match="Code location 'down'") as raised:
        client.launch_backfill(spec, LaunchOptions(location="down"))
    assert raised.value.status == grpc.StatusCode.UNAVAILABLE


def test_unknown_backfill_is_not_found_with_trailing_error_type(
    stub: control_plane_pb2_grpc.ControlPlaneStub,
) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        stub.GetBackfill(backfills_pb2.GetBackfillRequest(backfill_id="nope"))
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert raised.value.details() == "No backfill with id 'nope'."
    metadata = {item.key: item.value for item in raised.value.trailing_metadata()}
    # grpc-stubs types metadata values as bytes; non-binary keys come back as str.
    assert metadata[ERROR_METADATA_KEY] == "BackfillNotFound"  # type: ignore[comparison-overlap]


def test_missing_id_is_invalid_argument(stub: control_plane_pb2_grpc.ControlPlaneStub) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        stub.CancelBackfill(backfills_pb2.CancelBackfillRequest())
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.details() == "backfill_id is required."


def test_unexpected_error_is_internal_and_points_to_the_log(client: ControlPlaneClient) -> None:
    with pytest.raises(Exception, match="Internal error in the control plane during GetBackfill") as raised:
        client.get_backfill("explode")
    assert getattr(raised.value, "status", None) == grpc.StatusCode.INTERNAL
    assert "see its log" in str(raised.value)


def test_list_backfills_pages_newest_first_without_gaps(
    client: ControlPlaneClient, service: FakeControlPlaneService
) -> None:
    for i in range(5):
        service.backfills[f"bf{i}"] = backfill_view(f"bf{i}", created_at=T0 + timedelta(minutes=i))
    seen, token, pages = [], "", 0
    while True:
        page = client.list_backfills(page_size=2, page_token=token)
        seen += [b.backfill_id for b in page.backfills]
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert seen == ["bf4", "bf3", "bf2", "bf1", "bf0"] and pages == 3


def test_list_backfills_filters_by_status_tag_and_location(
    client: ControlPlaneClient, service: FakeControlPlaneService
) -> None:
    service.backfills["done"] = backfill_view(
        "done", status=BackfillStatus.COMPLETED_SUCCESS, tags={"t": "1"}
    )
    service.backfills["failed"] = backfill_view(
        "failed", status=BackfillStatus.COMPLETED_FAILED, tags={"t": "1"}
    )
    service.backfills["other"] = backfill_view("other", status=BackfillStatus.COMPLETED_FAILED, location="x")

    failed = client.list_backfills(statuses=[BackfillStatus.COMPLETED_FAILED])
    assert sorted(b.backfill_id for b in failed.backfills) == ["failed", "other"]
    assert [b.backfill_id for b in client.list_backfills(tags={"t": "1"}, location="guide").backfills] in (
        ["done", "failed"],
        ["failed", "done"],
    )
    assert client.list_backfills(location="x").backfills[0].backfill_id == "other"


def test_a_page_token_the_server_did_not_issue_is_invalid_argument(client: ControlPlaneClient) -> None:
    with pytest.raises(InvalidArgumentError, match="not one this server issued"):
        client.list_backfills(page_token="garbage!")


def test_unspecified_status_filter_is_invalid_argument(stub: control_plane_pb2_grpc.ControlPlaneStub) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        stub.ListBackfills(
            backfills_pb2.ListBackfillsRequest(statuses=[backfills_pb2.BACKFILL_STATUS_UNSPECIFIED])
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_retry_needs_a_finished_backfill_and_reports_requeued_partitions(
    client: ControlPlaneClient, service: FakeControlPlaneService
) -> None:
    service.backfills["bf1"] = backfill_view("bf1")
    with pytest.raises(FailedPreconditionError, match="retry it once it ends"):
        client.retry_backfill("bf1")
    service.backfills["bf1"] = backfill_view(
        "bf1",
        status=BackfillStatus.COMPLETED_FAILED,
        counts={
            "a": {PartitionStatus.FAILED: 2, PartitionStatus.MATERIALIZED: 8},
            "b": {PartitionStatus.UPSTREAM_FAILED: 2},
        },
    )
    result = client.retry_backfill("bf1")
    assert result.requeued_partition_count == 4
    assert backfill_status_from_proto(result.backfill.status) is BackfillStatus.RUNNING


def test_pause_resume_cancel(client: ControlPlaneClient, service: FakeControlPlaneService) -> None:
    service.backfills["bf1"] = backfill_view("bf1")
    assert backfill_status_from_proto(client.pause_backfill("bf1").status) is BackfillStatus.PAUSED
    assert backfill_status_from_proto(client.resume_backfill("bf1").status) is BackfillStatus.RUNNING
    with pytest.raises(FailedPreconditionError, match="not paused"):
        client.resume_backfill("bf1")
    assert backfill_status_from_proto(client.cancel_backfill("bf1").status) is BackfillStatus.CANCELED


def test_update_limits_sends_only_what_changes(
    client: ControlPlaneClient, service: FakeControlPlaneService
) -> None:
    service.backfills["bf1"] = backfill_view("bf1", max_concurrent_runs=3)
    backfill = client.update_backfill_limits("bf1", priority=7)
    assert service.limit_updates == [("bf1", None, 7)]
    assert backfill.limits.priority == 7 and backfill.limits.max_concurrent_runs == 3
    assert client.update_backfill_limits("bf1", max_concurrent_runs=0).limits.max_concurrent_runs == 0
    assert service.limit_updates[-1] == ("bf1", 0, None)


def test_negative_limit_is_invalid_argument(
    stub: control_plane_pb2_grpc.ControlPlaneStub, service: FakeControlPlaneService
) -> None:
    service.backfills["bf1"] = backfill_view("bf1")
    with pytest.raises(grpc.RpcError) as raised:
        stub.UpdateBackfillLimits(
            backfills_pb2.UpdateBackfillLimitsRequest(backfill_id="bf1", max_concurrent_runs=-1)
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert service.limit_updates == []


def test_watch_streams_every_update_until_the_final_one(
    client: ControlPlaneClient, service: FakeControlPlaneService
) -> None:
    service.backfills["bf1"] = backfill_view("bf1")
    service.watch_script["bf1"] = [
        backfill_view("bf1", counts={"a": {PartitionStatus.MATERIALIZED: 5, PartitionStatus.RUNNING: 5}}),
        backfill_view(
            "bf1", status=BackfillStatus.COMPLETED_SUCCESS, counts={"a": {PartitionStatus.MATERIALIZED: 10}}
        ),
    ]
    updates = list(client.watch_backfill("bf1"))
    assert [backfill_status_from_proto(u.status) for u in updates] == [
        BackfillStatus.RUNNING,
        BackfillStatus.RUNNING,
        BackfillStatus.COMPLETED_SUCCESS,
    ]
    assert [u.partition_counts.materialized for u in updates] == [0, 5, 10]


def test_watch_with_partition_changes_says_what_changed_in_as_few_changes_as_it_can(
    client: ControlPlaneClient, service: FakeControlPlaneService
) -> None:
    service.backfills["bf1"] = backfill_view("bf1")
    service.watch_script["bf1"] = [
        backfill_view(
            "bf1", status=BackfillStatus.COMPLETED_SUCCESS, counts={"a": {PartitionStatus.MATERIALIZED: 3}}
        )
    ]
    a, b = AssetKey("a"), AssetKey("b")
    service.change_script["bf1"] = [
        [
            PartitionSpan(a, 0, 1, PartitionStatus.MATERIALIZED, "r1", DAYS[0], DAYS[1]),
            PartitionSpan(a, 2, 2, PartitionStatus.MATERIALIZED, "r1", DAYS[2], DAYS[2]),
            PartitionSpan(a, 4, 4, PartitionStatus.FAILED, "r2", DAYS[4], DAYS[4]),
            PartitionSpan(b, 0, 0, PartitionStatus.UPSTREAM_FAILED, None, "", ""),
        ]
    ]
    snapshot, final = list(client.watch_backfill_changes("bf1"))
    assert list(snapshot.changes) == []
    shown = [
        (
            change.asset_key.path[-1],
            change.WhichOneof("partition"),
            change.partition_key or (change.partition_range.start, change.partition_range.end),
            partition_status_from_proto(change.status),
            change.run_id,
        )
        for change in final.changes
    ]
    assert shown == [
        ("a", "partition_range", (DAYS[0], DAYS[2]), PartitionStatus.MATERIALIZED, "r1"),
        ("a", "partition_key", DAYS[4], PartitionStatus.FAILED, "r2"),
        ("b", None, ("", ""), PartitionStatus.UPSTREAM_FAILED, ""),
    ]


def test_watch_of_an_unknown_backfill_is_not_found(client: ControlPlaneClient) -> None:
    with pytest.raises(NotFoundError, match="No backfill with id 'nope'"):
        list(client.watch_backfill("nope"))


# --- runs ---------------------------------------------------------------------------------------------


def test_runs_list_pages_and_filters(client: ControlPlaneClient, service: FakeControlPlaneService) -> None:
    for i in range(4):
        status = RunStatus.FAILURE if i == 2 else RunStatus.SUCCESS
        service.runs[f"r{i}"] = run_record(f"r{i}", status=status, created_at=T0 + timedelta(seconds=i))
    service.runs["solo"] = run_record("solo", backfill_id=None, created_at=T0 - timedelta(hours=1))

    first = client.list_runs(page_size=3)
    second = client.list_runs(page_size=3, page_token=first.next_page_token)
    assert [r.run_id for r in first.runs + second.runs] == ["r3", "r2", "r1", "r0", "solo"]
    assert second.next_page_token == ""
    assert [r.run_id for r in client.list_runs(statuses=[RunStatus.FAILURE]).runs] == ["r2"]
    assert [r.run_id for r in client.list_runs(include_backfill_runs=False).runs] == ["solo"]
    assert len(client.list_runs(backfill_id="bf1", include_backfill_runs=False).runs) == 4


def test_get_and_terminate_run(client: ControlPlaneClient, service: FakeControlPlaneService) -> None:
    service.runs["r1"] = run_record("r1", status=RunStatus.STARTED)
    run = client.get_run("r1")
    assert run.partition_key == DAYS[0] and run.launcher_handle.local_process.pid == 4242
    assert run_status_from_proto(client.terminate_run("r1").status) is RunStatus.CANCELED
    with pytest.raises(FailedPreconditionError, match="already ended"):
        client.terminate_run("r1")
    with pytest.raises(NotFoundError, match="No run with id 'r9'"):
        client.get_run("r9")


def test_logs_come_in_pages_after_a_sequence(
    client: ControlPlaneClient, service: FakeControlPlaneService
) -> None:
    service.runs["r1"] = run_record("r1")
    service.log_script["r1"] = [[f"line {i}" for i in range(1, 8)]]  # 7 lines, pages of 3
    service.runs["r1"] = replace(service.runs["r1"], status=RunStatus.SUCCESS)

    entries = list(client.run_logs("r1"))
    assert [e.line.text for e in entries] == [f"line {i}" for i in range(1, 8)]
    assert [e.sequence for e in entries] == list(range(1, 8))
    assert [e.line.text for e in client.run_logs("r1", after_sequence=5)] == ["line 6", "line 7"]


def test_follow_keeps_streaming_until_the_run_ends(
    client: ControlPlaneClient, service: FakeControlPlaneService
) -> None:
    service.runs["r1"] = run_record("r1", status=RunStatus.STARTED)
    # One batch appears per poll; the fake's run ends once every batch has appeared.
    service.log_script["r1"] = [["starting"], [], ["a materialized", "b materialized"], ["done"]]
    texts = [entry.line.text for entry in client.run_logs("r1", follow=True)]
    assert texts == ["starting", "a materialized", "b materialized", "done"]


def test_logs_of_an_unknown_run_are_not_found(client: ControlPlaneClient) -> None:
    with pytest.raises(NotFoundError):
        list(client.run_logs("nope", follow=True))


# --- assets, locations, sensors ------------------------------------------------------------------------


def test_asset_partition_status_gathers_every_page(
    client: ControlPlaneClient, stub: control_plane_pb2_grpc.ControlPlaneStub
) -> None:
    first = stub.GetAssetPartitionStatus(
        partition_status_pb2.GetAssetPartitionStatusRequest(
            location_name="guide", asset_key=asset_key_to_proto(A), page_size=4
        )
    )
    assert len(first.ranges) == 4 and first.next_page_token
    assert first.counts.materialized == 5 and first.counts.missing == 5

    status = client.asset_partition_status("guide", AssetKey("a"))
    assert [r.range.start for r in status.ranges] == list(DAYS)
    assert [partition_status_from_proto(r.status) for r in status.ranges[:2]] == [
        PartitionStatus.MATERIALIZED,
        None,
    ]
    assert status.unpartitioned_status == partition_status_pb2.PARTITION_STATUS_UNSPECIFIED


def test_asset_status_of_an_unpartitioned_asset_and_the_only_location(
    client: ControlPlaneClient, service: FakeControlPlaneService
) -> None:
    status = client.asset_partition_status("", AssetKey("unpartitioned"), PartitionKeyRange("x", "y"))
    assert partition_status_from_proto(status.unpartitioned_status) is PartitionStatus.MATERIALIZED
    assert status.ranges == []
    # An empty location name means the only one there is.
    assert service.asset_status_calls == [("guide", AssetKey("unpartitioned"), PartitionKeyRange("x", "y"))]


def test_code_locations(client: ControlPlaneClient) -> None:
    (location,) = client.code_locations()
    assert location.name == "guide" and location.asset_count == 2 and location.last_seen_at.seconds


def test_sensor_and_schedule_rpcs_are_unimplemented_for_now(
    stub: control_plane_pb2_grpc.ControlPlaneStub,
) -> None:
    calls = (
        lambda: stub.ListSensors(sensors_schedules_pb2.ListSensorsRequest()),
        lambda: stub.StartSchedule(sensors_schedules_pb2.StartScheduleRequest(schedule_name="daily")),
    )
    for call in calls:
        with pytest.raises(grpc.RpcError) as raised:
            call()
        assert raised.value.code() == grpc.StatusCode.UNIMPLEMENTED
        assert "sensors and schedules arrive with the sensor and schedule daemon" in (
            raised.value.details() or ""
        )


def test_an_address_where_nothing_listens_is_unreachable_and_named() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with ControlPlaneClient(f"127.0.0.1:{port}", retries=1, retry_backoff=0.01) as client:
        with pytest.raises(
            ControlPlaneUnreachable, match=f"Cannot reach the control plane at 127.0.0.1:{port}"
        ) as raised:
            client.get_backfill("bf1")
        with pytest.raises(ControlPlaneUnreachable):
            list(client.watch_backfill("bf1"))
    assert raised.value.status == grpc.StatusCode.UNAVAILABLE


def test_get_run_logs_stream_messages_are_batches(
    stub: control_plane_pb2_grpc.ControlPlaneStub, service: FakeControlPlaneService
) -> None:
    service.runs["r1"] = run_record("r1")
    service.log_script["r1"] = [["1", "2", "3", "4"]]
    batches = list(stub.GetRunLogs(runs_pb2.GetRunLogsRequest(run_id="r1")))
    assert [len(batch.entries) for batch in batches] == [3, 1]


# --- streams do not starve the server -----------------------------------------------------------


def test_open_streams_take_no_threads_from_unary_calls(service: FakeControlPlaneService) -> None:
    service.backfills["bf1"] = backfill_view("bf1")  # running: its watches stay open
    with (
        FakeControlPlaneServer(service, max_open_streams=100) as running,
        grpc.insecure_channel(running.address) as channel,
    ):
        stub = control_plane_pb2_grpc.ControlPlaneStub(channel)
        # Far more streams than the server has threads for unary calls (8).
        watches = [
            stub.WatchBackfill(backfills_pb2.WatchBackfillRequest(backfill_id="bf1")) for _ in range(60)
        ]
        try:
            for watch in watches:
                assert next(watch).backfill.backfill_id == "bf1"
            answer = stub.GetBackfill(backfills_pb2.GetBackfillRequest(backfill_id="bf1"), timeout=5)
            assert answer.backfill.backfill_id == "bf1"
        finally:
            for watch in watches:
                watch.cancel()


def test_a_stream_beyond_the_limit_is_refused_clearly_and_unary_calls_go_on(
    service: FakeControlPlaneService,
) -> None:
    service.backfills["bf1"] = backfill_view("bf1")
    with (
        FakeControlPlaneServer(service, max_open_streams=2) as running,
        grpc.insecure_channel(running.address) as channel,
    ):
        stub = control_plane_pb2_grpc.ControlPlaneStub(channel)
        request = backfills_pb2.WatchBackfillRequest(backfill_id="bf1")
        held = [stub.WatchBackfill(request) for _ in range(2)]
        for watch in held:
            next(watch)
        with pytest.raises(grpc.RpcError) as refused:
            next(stub.GetRunLogs(runs_pb2.GetRunLogsRequest(run_id="r1", follow=True)))
        assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "--max-open-streams" in (refused.value.details() or "")
        assert stub.GetBackfill(backfills_pb2.GetBackfillRequest(backfill_id="bf1"), timeout=5)
        held.pop().cancel()
        # The place it held is free again (the server sees the cancel shortly).
        deadline = time.monotonic() + 5
        while True:
            again = stub.WatchBackfill(request)
            try:
                next(again)
                break
            except grpc.RpcError as error:
                assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
                assert time.monotonic() < deadline, "the canceled stream's place was never freed"
                time.sleep(0.05)
        again.cancel()
        for watch in held:
            watch.cancel()
