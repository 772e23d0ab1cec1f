"""A real code server process on a loopback port, called through the typed client."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from code_server.asset_key import AssetKey
from code_server.backfill_policy import BackfillPolicy
from code_server.client import (
    CodeServerClient,
    CodeServerUnavailable,
    DefinitionNotFound,
    InvalidRequest,
    UserCodeError,
    UserCodeLoadFailed,
)
from code_server.mappings import StaticPartitionMapping
from code_server.partitions.keys import PartitionKeyRange
from code_server.server.spawn import SpawnedCodeServer, spawn_code_server

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def guide_sensor_server() -> Iterator[SpawnedCodeServer]:
    server = spawn_code_server(
        module_name="examples.backfill_asset_from_partitions_by_assets",
        working_directory=str(ROOT),
        location_name="guide",
        image="registry.example/guide:1",
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def sensors_server() -> Iterator[SpawnedCodeServer]:
    server = spawn_code_server(module_name="tests.fixtures.sensors_location", working_directory=str(ROOT))
    yield server
    server.stop()


def test_server_info_and_definitions(guide_sensor_server: SpawnedCodeServer) -> None:
    with CodeServerClient(guide_sensor_server.address, location_name="guide") as client:
        info = client.server_info()
        assert info.location_name == "guide" and info.image == "registry.example/guide:1"
        assert info.module_name == "examples.backfill_asset_from_partitions_by_assets"
        assert info.load_error is None and len(info.definitions_fingerprint) == 16
        snapshot = client.list_definitions()
    assert snapshot.fingerprint == info.definitions_fingerprint
    (node,) = snapshot.assets
    assert node.key == AssetKey("asset_with_single_run_backfill_policy")
    assert node.backfill_policy == BackfillPolicy.single_run()
    assert node.partitions_def is not None and node.partitions_def.get_first_partition_key() == "2023-01-01"
    (sensor,) = snapshot.sensors
    assert sensor.name == "launch_backfill_with_single_run_backfill_policy"
    assert sensor.minimum_interval_seconds == 5 and sensor.default_running
    assert sensor.asset_keys == (node.key,)


def test_guide_sensor_yields_one_backfill_request(guide_sensor_server: SpawnedCodeServer) -> None:
    with CodeServerClient(guide_sensor_server.address) as client:
        result = client.evaluate_sensor("launch_backfill_with_single_run_backfill_policy")
    assert result.run_requests == () and result.skip_reason is None
    (backfill,) = result.backfill_requests
    assert backfill.partitions_by_asset == {
        AssetKey("asset_with_single_run_backfill_policy"): (
            "2023-01-01", "2023-01-02", "2023-01-03", "2023-01-04", "2023-01-05",
        )
    }  # fmt: skip


def test_partition_keys_streamed_with_range_and_as_of(guide_sensor_server: SpawnedCodeServer) -> None:
    key = AssetKey("asset_with_single_run_backfill_policy")
    with CodeServerClient(guide_sensor_server.address) as client:
        as_of = client.partition_keys(key, as_of=datetime(2023, 1, 4, 12, tzinfo=UTC))
        in_range = client.partition_keys(key, partition_range=PartitionKeyRange("2023-01-30", "2023-02-02"))
        everything = client.partition_keys(key)
    assert as_of == ["2023-01-01", "2023-01-02", "2023-01-03"]
    assert in_range == ["2023-01-30", "2023-01-31", "2023-02-01", "2023-02-02"]
    # A daily partition exists once its day has ended: every day from the start up to yesterday (UTC).
    assert len(everything) == (datetime.now(UTC).date() - date(2023, 1, 1)).days
    assert everything[0] == "2023-01-01"


def test_bad_input_is_named(guide_sensor_server: SpawnedCodeServer) -> None:
    with CodeServerClient(guide_sensor_server.address) as client:
        with pytest.raises(DefinitionNotFound, match="Unknown asset 'nope'") as unknown_asset:
            client.partition_keys(AssetKey("nope"))
        assert unknown_asset.value.status == grpc.StatusCode.NOT_FOUND
        with pytest.raises(DefinitionNotFound, match="Unknown sensor 'missing'"):
            client.evaluate_sensor("missing")
        with pytest.raises(DefinitionNotFound, match="Unknown schedule 'missing'"):
            client.evaluate_schedule("missing", datetime.now(UTC))
        with pytest.raises(InvalidRequest, match="'1999-01-01'") as bad_key:
            client.partition_keys(
                AssetKey("asset_with_single_run_backfill_policy"),
                partition_range=PartitionKeyRange("1999-01-01", "2023-01-02"),
            )
        assert bad_key.value.status == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(InvalidRequest, match=r"reversed|after"):
            client.partition_keys(
                AssetKey("asset_with_single_run_backfill_policy"),
                partition_range=PartitionKeyRange("2023-01-05", "2023-01-02"),
            )


def test_guide_schedule_maps_through_static_mapping() -> None:
    server = spawn_code_server(
        module_name="examples.backfill_asset_from_asset_partitions", working_directory=str(ROOT)
    )
    try:
        with CodeServerClient(server.address) as client:
            snapshot = client.list_definitions()
            result = client.evaluate_schedule(
                "launch_backfill_with_multiple_assets_selected", datetime(2024, 5, 1, tzinfo=UTC)
            )
    finally:
        server.stop()
    nodes = {node.key: node for node in snapshot.assets}
    (dep,) = nodes[AssetKey("asset_b")].deps
    assert dep.partition_mapping == StaticPartitionMapping({"foo_a": "foo_b"})
    (schedule,) = snapshot.schedules
    assert schedule.cron_schedule == "* * * * *" and not schedule.default_running
    (backfill,) = result.backfill_requests
    assert backfill.asset_keys == (AssetKey("asset_a"), AssetKey("asset_b"))
    assert backfill.partition_keys == ("foo_a",)
    assert backfill.tags == {"custom_tag_key": "custom_tag_value"}


def test_raising_and_slow_sensors_are_typed_errors(sensors_server: SpawnedCodeServer) -> None:
    with CodeServerClient(sensors_server.address) as client:
        with pytest.raises(UserCodeError, match=r"RuntimeError.*the upstream API returned 500") as raised:
            client.evaluate_sensor("raising_sensor")
        assert "raise RuntimeError" in raised.value.traceback and not raised.value.timed_out
        with pytest.raises(UserCodeError, match="did not finish within its deadline") as slow:
            client.evaluate_sensor("slow_sensor", timeout=0.5)
        assert slow.value.timed_out
        # The server is still healthy after both.
        first = client.evaluate_sensor("cursor_sensor")
        second = client.evaluate_sensor("cursor_sensor", cursor=first.cursor)
    assert [r.run_key for r in first.run_requests + second.run_requests] == ["k0", "k1"]
    assert second.run_requests[0].partition_key == "2024-01-02" and second.cursor == "2"


def test_schedule_sees_tick_in_its_time_zone(sensors_server: SpawnedCodeServer) -> None:
    with CodeServerClient(sensors_server.address) as client:
        # 2024-01-10 03:00 in Chicago is 09:00 UTC.
        result = client.evaluate_schedule("nightly", datetime(2024, 1, 10, 9, tzinfo=UTC))
    (backfill,) = result.backfill_requests
    assert backfill.partition_keys == ("2024-01-10",)


def test_health_and_reflection(sensors_server: SpawnedCodeServer) -> None:
    with grpc.insecure_channel(sensors_server.address) as channel:
        response = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="partita.codeserver.v1.CodeServer"), timeout=5
        )
        assert response.status == health_pb2.HealthCheckResponse.SERVING
        from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        answers = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        names = {service.name for answer in answers for service in answer.list_services_response.service}
    assert "partita.codeserver.v1.CodeServer" in names and "grpc.health.v1.Health" in names


def test_module_that_fails_to_import_still_serves_its_error() -> None:
    server = spawn_code_server(module_name="tests.fixtures.broken_location", working_directory=str(ROOT))
    try:
        with CodeServerClient(server.address, location_name="broken") as client:
            info = client.server_info()
            assert info.load_error is not None and "missing credentials file" in str(info.load_error)
            with pytest.raises(UserCodeLoadFailed, match="missing credentials file") as listing:
                client.list_definitions()
            assert "broken_location.py" in listing.value.traceback
            with pytest.raises(UserCodeLoadFailed):
                client.evaluate_sensor("anything")
    finally:
        assert server.stop() == 0  # SIGTERM shuts it down cleanly


def test_reload_picks_up_changed_code(tmp_path: Path) -> None:
    module = tmp_path / "reloadable.py"
    module.write_text("from code_server import asset\n@asset\ndef first():\n    pass\n")
    server = spawn_code_server(module_name="reloadable", working_directory=str(tmp_path))
    try:
        with CodeServerClient(server.address) as client:
            before = client.server_info()
            module.write_text(
                "from code_server import asset\n@asset\ndef first():\n    pass\n@asset\ndef second_one():\n    pass\n"
            )
            after = client.reload()
            keys = [node.key for node in client.list_definitions().assets]
    finally:
        server.stop()
    assert after.server_id == before.server_id
    assert after.definitions_fingerprint != before.definitions_fingerprint
    assert keys == [AssetKey("first"), AssetKey("second_one")]


def test_large_location_streams_definitions() -> None:
    server = spawn_code_server(
        module_name="tests.fixtures.generated_location",
        working_directory=str(ROOT),
        environment={"PARTITA_GENERATED_ASSETS": "2000"},
    )
    try:
        with CodeServerClient(server.address) as client:
            snapshot = client.list_definitions()
            result = client.evaluate_sensor("partitioned_run_sensor")
    finally:
        server.stop()
    assert len(snapshot.assets) == 2000
    assert snapshot.asset_graph.parents(AssetKey("asset_00001")) == (AssetKey("asset_00000"),)
    assert result.run_requests[0].partition_key == "2024-01-01"


def test_unreachable_server_fails_fast_with_its_name() -> None:
    with (
        CodeServerClient("127.0.0.1:1", location_name="warehouse", timeout=2, retries=1) as client,
        pytest.raises(CodeServerUnavailable, match=r"code location 'warehouse' at 127\.0\.0\.1:1") as raised,
    ):
        client.server_info()
    assert raised.value.status == grpc.StatusCode.UNAVAILABLE


def test_cli_help_lists_commands() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "partita.cli", "--help"], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert "code-server" in result.stdout and "execute-run" in result.stdout
