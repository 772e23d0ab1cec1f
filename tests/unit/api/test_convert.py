"""Records and views -> messages -> what the CLI shows, and requests both ways."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from code_server.asset_key import AssetKey
from code_server.partitions.keys import PartitionKeyRange
from code_server.wire.automation import BackfillRequestSpec
from control_plane.api.convert import (
    backfill_plan_to_proto,
    backfill_to_proto,
    code_location_to_proto,
    launch_request_from_proto,
    launch_request_to_proto,
    partition_counts_from_proto,
    partition_counts_to_proto,
    run_log_entry_to_proto,
    run_to_proto,
)
from control_plane.api.enums import (
    backfill_status_from_proto,
    backfill_status_to_proto,
    location_status_from_proto,
    location_status_to_proto,
    log_stream_name,
    partition_status_from_proto,
    partition_status_to_proto,
    run_failure_kind_from_proto,
    run_failure_kind_to_proto,
    run_status_from_proto,
    run_status_to_proto,
)
from control_plane.cli import format as fmt
from control_plane.cli import json_format
from control_plane.location_health import LocationProblem, ProblemKind
from control_plane.records import BackfillStatus, PartitionStatus, RunEventRecord, RunFailureKind, RunStatus
from control_plane.views import BackfillPlanView, CodeLocationView, LaunchOptions, PlannedRunView
from partita.common.v1 import assets_pb2, partitions_pb2, requests_pb2
from partita.controlplane.v1 import backfills_pb2, code_locations_pb2, runs_pb2
from tests.fixtures.fake_control_plane import DAYS, T0, backfill_view, run_record

A, B, C = AssetKey("a"), AssetKey(["warehouse", "b"]), AssetKey("c")


@pytest.mark.parametrize("status", list(BackfillStatus))
def test_backfill_status_round_trips(status: BackfillStatus) -> None:
    assert backfill_status_from_proto(backfill_status_to_proto(status)) is status


@pytest.mark.parametrize("status", list(RunStatus))
def test_run_status_round_trips(status: RunStatus) -> None:
    assert run_status_from_proto(run_status_to_proto(status)) is status


@pytest.mark.parametrize("kind", [*RunFailureKind, None])
def test_every_run_failure_kind_has_its_wire_value(kind: RunFailureKind | None) -> None:
    assert run_failure_kind_from_proto(run_failure_kind_to_proto(kind)) is kind


def test_a_failed_run_shows_why_as_a_kind() -> None:
    record = replace(run_record("r1", status=RunStatus.FAILURE), failure_kind=RunFailureKind.OUT_OF_MEMORY)
    message = run_to_proto(record)
    assert message.failure.kind == runs_pb2.RUN_FAILURE_KIND_OUT_OF_MEMORY
    assert json_format.run_json(message)["failure_kind"] == "out_of_memory"
    assert "failure:    [out_of_memory] ValueError: boom" in fmt.run_text(message)


@pytest.mark.parametrize("status", [*PartitionStatus, None])
def test_partition_status_round_trips_with_missing_for_none(status: PartitionStatus | None) -> None:
    assert partition_status_from_proto(partition_status_to_proto(status)) is status


@pytest.mark.parametrize("status", ["loaded", "unavailable", "load_error", "invalid"])
def test_location_status_round_trips(status: str) -> None:
    assert location_status_from_proto(location_status_to_proto(status)) == status


def test_unknown_wire_values_name_themselves() -> None:
    with pytest.raises(ValueError, match="Unknown backfill status 0"):
        backfill_status_from_proto(backfills_pb2.BACKFILL_STATUS_UNSPECIFIED)
    with pytest.raises(ValueError, match="Unknown run status 99"):
        run_status_from_proto(99)  # type: ignore[arg-type]


def test_partition_counts_round_trip_including_missing() -> None:
    counts = {PartitionStatus.MATERIALIZED: 3, PartitionStatus.UPSTREAM_FAILED: 2, None: 7}
    back = partition_counts_from_proto(partition_counts_to_proto(counts))
    assert {status: n for status, n in back.items() if n} == counts
    assert set(back) == {*PartitionStatus, None}


def test_backfill_shows_as_the_cli_prints_it() -> None:
    view = backfill_view(
        "bf1",
        status=BackfillStatus.COMPLETED_FAILED,
        assets=("c", "a"),
        counts={
            "a": {PartitionStatus.MATERIALIZED: 9, PartitionStatus.FAILED: 1},
            "c": {PartitionStatus.MATERIALIZED: 9, PartitionStatus.UPSTREAM_FAILED: 1},
        },
        tags={"team": "data"},
        title="January",
        max_concurrent_runs=None,
    )
    view = replace(view, record=replace(view.record, origin="sensor:new_files"))
    shown = json_format.backfill_json(backfill_to_proto(view))

    assert shown["id"] == "bf1" and shown["status"] == "completed_failed" and shown["title"] == "January"
    assert shown["location"] == "guide" and shown["tags"] == {"team": "data"}
    assert shown["max_concurrent_runs"] is None and shown["priority"] == 0
    assert shown["partition_count"] == 20
    assert shown["counts"]["materialized"] == 18 and shown["counts"]["upstream_failed"] == 1
    # Per-asset counts follow the backfill's selection order (parents first), not the dict's.
    assert [entry["asset"] for entry in shown["asset_counts"]] == ["c", "a"]
    assert shown["target"] == {"kind": "ranges", "ranges": [{"start": DAYS[0], "end": DAYS[-1]}]}
    assert shown["created_at"] == "2024-05-01T12:00:00Z" and shown["ended_at"] == "2024-05-01T12:05:00Z"
    assert shown["created_by"] == {"type": "sensor", "name": "new_files"}
    assert shown["error"] is None

    text = fmt.backfill_text(backfill_to_proto(view))
    assert text.startswith("Backfill bf1: completed_failed")
    assert "created by:  sensor new_files" in text
    assert "100%  20/20 done · 18 materialized · 1 failed · 1 upstream failed" in text


def test_backfill_failure_and_limits() -> None:
    view = backfill_view("bf2", status=BackfillStatus.FAILED, max_concurrent_runs=4)
    view = replace(view, record=replace(view.record, error="Location 'guide' lost asset 'a'."))
    message = backfill_to_proto(view)
    assert message.failure.message == "Location 'guide' lost asset 'a'."
    assert message.limits.max_concurrent_runs == 4
    assert json_format.backfill_json(message)["error"] == "Location 'guide' lost asset 'a'."


@pytest.mark.parametrize(
    "spec",
    [
        BackfillRequestSpec(asset_keys=(A, B), partition_keys=("2024-01-01", "2024-01-03")),
        BackfillRequestSpec(
            asset_keys=(A,),
            partition_ranges=(
                PartitionKeyRange("2024-01-01", "2024-01-31"),
                PartitionKeyRange("2024-03-01", "2024-03-02"),
            ),
        ),
        BackfillRequestSpec(asset_keys=(A, C), all_partitions=True),
        BackfillRequestSpec(asset_keys=(A, B), partitions_by_asset={A: ("2024-01-01",), B: ("x", "y")}),
    ],
    ids=["keys", "ranges", "all", "by-asset"],
)
def test_launch_request_round_trips(spec: BackfillRequestSpec) -> None:
    spec = replace(spec, tags={"k": "v"}, title="T", description="D")
    options = LaunchOptions(
        location="guide",
        title="T",
        description="D",
        tags={"k": "v"},
        max_concurrent_runs=3,
        priority=-1,
        dry_run=True,
        request_id="req-1",
    )
    assert launch_request_from_proto(launch_request_to_proto(spec, options)) == (spec, options)


def test_launch_request_defaults_survive_the_wire() -> None:
    spec = BackfillRequestSpec(asset_keys=(A,), all_partitions=True)
    options = LaunchOptions(location="guide")
    assert launch_request_from_proto(launch_request_to_proto(spec, options)) == (spec, options)


@pytest.mark.parametrize(
    ("message", "error"),
    [
        (backfills_pb2.LaunchBackfillRequest(), "location_name is required"),
        (backfills_pb2.LaunchBackfillRequest(location_name="guide"), "target must name the partitions"),
        (
            backfills_pb2.LaunchBackfillRequest(
                location_name="guide",
                target=requests_pb2.BackfillTarget(
                    asset_selection=[assets_pb2.AssetKey(path=["a"])],
                    all_partitions=partitions_pb2.AllPartitions(),
                ),
                limits=backfills_pb2.BackfillLimits(max_concurrent_runs=-2),
            ),
            "max_concurrent_runs must be 0",
        ),
    ],
)
def test_malformed_launch_requests_say_what_is_missing(
    message: backfills_pb2.LaunchBackfillRequest, error: str
) -> None:
    with pytest.raises(ValueError, match=error):
        launch_request_from_proto(message)


def test_run_with_one_key_and_with_a_range() -> None:
    one = run_to_proto(run_record("r1", status=RunStatus.FAILURE))
    shown = json_format.run_json(one)
    assert shown["partition_key"] == DAYS[0] and shown["partition_range"] is None
    assert shown["status"] == "failure" and shown["error"] == "ValueError: boom"
    assert shown["assets"] == ["a", "b"] and shown["backfill_id"] == "bf1"
    assert shown["launcher"]["kind"] == "local" and shown["launcher"]["pid"] == 4242
    assert shown["ended_at"] == "2024-05-01T12:00:30Z" and shown["started_at"] is None

    ranged = run_to_proto(
        run_record("r2", partition_range=PartitionKeyRange(DAYS[0], DAYS[-1]), backfill_id=None)
    )
    shown = json_format.run_json(ranged)
    assert shown["partition_key"] is None and shown["partition_range"] == {"start": DAYS[0], "end": DAYS[-1]}
    assert shown["backfill_id"] is None
    assert fmt.run_row(ranged)[4] == f"{DAYS[0]}...{DAYS[-1]}"

    unpartitioned = run_to_proto(run_record("r3", partition_range=None))
    assert unpartitioned.WhichOneof("partition") is None
    assert fmt.partition_text(unpartitioned) == "(unpartitioned)"


def test_plan_lists_keys_per_asset_and_runs() -> None:
    plan = BackfillPlanView(
        partitions_by_asset={A: ("2024-01-01", "2024-01-02"), C: ("",)},
        runs=(
            PlannedRunView((A,), PartitionKeyRange("2024-01-01", "2024-01-02")),
            PlannedRunView((C,), None),
        ),
        partition_count=3,
        run_count=150,
        runs_by_asset={A: 100, C: 50},
    )
    message = backfill_plan_to_proto(plan)
    shown = json_format.plan_json(message)
    # Every run is counted, the listed ones are the first of them.
    assert shown["partition_count"] == 3 and shown["run_count"] == 150
    assert shown["runs_by_asset"] == {"a": 100, "c": 50} and shown["runs_not_listed"] == 148
    text = fmt.plan_text(message)
    assert "Dry run: 3 partitions of 2 assets." in text
    assert "If every partition succeeds: 150 runs: a 100, c 50." in text
    assert "... and 148 more runs (the first 2 with --json)" in text
    # An unpartitioned asset is stored with the key "": it is shown with no keys at all.
    assert shown["assets"] == [
        {"asset": "a", "partition_keys": ["2024-01-01", "2024-01-02"]},
        {"asset": "c", "partition_keys": []},
    ]
    assert shown["runs"][0]["partition_range"] == {"start": "2024-01-01", "end": "2024-01-02"}
    assert shown["runs"][1] == {"assets": ["c"], "partition_key": None, "partition_range": None}


def test_code_location_errors_go_where_their_status_says() -> None:
    broken = code_location_to_proto(
        CodeLocationView(name="x", address="h:1", status="load_error", error="ImportError: no module named y")
    )
    assert broken.load_error.message == "ImportError: no module named y" and broken.unavailable_reason == ""
    down = code_location_to_proto(
        CodeLocationView(name="x", address="h:1", status="unavailable", error="UNAVAILABLE")
    )
    assert down.unavailable_reason == "UNAVAILABLE" and not down.HasField("load_error")
    shown = json_format.location_json(down)
    assert (
        shown["status"] == "unavailable" and shown["error"] == "UNAVAILABLE" and shown["last_seen_at"] is None
    )


@pytest.mark.parametrize(
    ("kind", "stream"),
    [
        ("stdout", "stdout"),
        ("stderr", "stderr"),
        ("control_plane", "control_plane"),
        ("partition_failed", "control_plane"),
    ],
)
def test_log_entries_keep_their_text_and_stream(kind: str, stream: str) -> None:
    entry = run_log_entry_to_proto(
        RunEventRecord("r1", 7, T0 + timedelta(seconds=1), kind, "a 2024-01-01: Failed")
    )
    assert entry.sequence == 7 and entry.line.text == "a 2024-01-01: Failed"
    assert log_stream_name(entry.line.stream) == stream
    assert json_format.log_entry_json(entry) == {
        "sequence": 7,
        "timestamp": "2024-05-01T12:00:01Z",
        "stream": stream,
        "text": "a 2024-01-01: Failed",
    }


def test_kubernetes_handle() -> None:
    record = run_record("r1")
    record = replace(record, launcher_kind="k8s", launcher_handle="runs/partita-run-r1")
    message = run_to_proto(record)
    assert message.launcher_handle.kubernetes_job == runs_pb2.KubernetesJobHandle(
        namespace="runs", job_name="partita-run-r1"
    )
    assert "Kubernetes Job runs/partita-run-r1" in fmt.run_text(message)


def test_code_location_problem_is_typed_on_the_wire_and_in_json() -> None:
    since = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
    problem = LocationProblem(
        ProblemKind.TIMED_OUT,
        "ListDefinitions",
        "no answer within 10 s from h:1 (ListDefinitions)",
        since,
        10.0,
        3,
    )
    message = code_location_to_proto(
        CodeLocationView(
            name="x",
            address="h:1",
            status="unavailable",
            error="UNAVAILABLE — no answer within 10 s from h:1 (ListDefinitions); retrying every 5 s",
            problem=problem,
            refresh_seconds=5.0,
            using_last_good_definitions=True,
            definitions_loaded_at=since,
        )
    )
    assert message.problem.kind == code_locations_pb2.CODE_LOCATION_PROBLEM_KIND_TIMED_OUT
    assert message.problem.deadline.seconds == 10 and message.refresh_interval.seconds == 5
    shown = json_format.location_json(message)
    assert shown["problem"] == {
        "kind": "timed_out",
        "rpc": "ListDefinitions",
        "message": "no answer within 10 s from h:1 (ListDefinitions)",
        "since": "2024-03-01T12:00:00Z",
        "deadline_seconds": 10.0,
        "consecutive_failures": 3,
    }
    assert shown["using_last_good_definitions"] is True and shown["refresh_interval_seconds"] == 5.0
    loaded = json_format.location_json(
        code_location_to_proto(CodeLocationView(name="x", address="h:1", status="loaded"))
    )
    assert loaded["problem"] is None and loaded["using_last_good_definitions"] is False
