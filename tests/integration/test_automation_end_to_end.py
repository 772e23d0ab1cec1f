"""Sensors and schedules end to end: real code servers, the control plane's daemon, run processes."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from code_server.asset_key import AssetKey
from code_server.partitions.keys import PartitionKeyRange
from code_server.server.spawn import SpawnedCodeServer, spawn_code_server
from control_plane.app import ControlPlane
from control_plane.cli import add_parsers
from control_plane.records import BackfillStatus
from control_plane.storage.instigators import (
    InstigatorRef,
    InstigatorStatus,
    InstigatorType,
    TickRecord,
    TickStatus,
)
from tests.integration.conftest import ROOT, wait_for_end

pytestmark = pytest.mark.integration
Factory = Callable[..., ControlPlane]


@pytest.fixture
def spawn() -> Iterator[Callable[[str, str], SpawnedCodeServer]]:
    servers: list[SpawnedCodeServer] = []

    def start(module: str, location: str) -> SpawnedCodeServer:
        server = spawn_code_server(module_name=module, working_directory=str(ROOT), location_name=location)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def cli(control_plane: ControlPlane, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    root = argparse.ArgumentParser(prog="partita")
    add_parsers(root.add_subparsers(dest="command", required=True))
    capsys.readouterr()
    args = root.parse_args([*argv, "--control-plane", control_plane.address])
    code: int = args.handler(args)
    return code, capsys.readouterr().out


def wait_for_tick(
    control_plane: ControlPlane,
    ref: InstigatorRef,
    accept: Callable[[TickRecord], bool],
    timeout: float = 30.0,
) -> TickRecord:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ticks = control_plane.automation.store.list_ticks(ref, limit=100)
        for tick in reversed(ticks):
            if accept(tick):
                return tick
        time.sleep(0.1)
    raise AssertionError(f"No matching tick of {ref} in {timeout}s: {ticks}")


def test_the_guide_sensor_launches_one_single_run_backfill(
    control_plane_factory: Factory,
    spawn: Callable[[str, str], SpawnedCodeServer],
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = spawn("examples.backfill_asset_from_partitions_by_assets", "guide")
    control_plane = control_plane_factory({"guide": server.address})
    name = "launch_backfill_with_single_run_backfill_policy"
    ref = InstigatorRef("guide", InstigatorType.SENSOR, name)
    tick = wait_for_tick(control_plane, ref, lambda t: t.status is not TickStatus.STARTED)
    code, _ = cli(control_plane, capsys, "sensor", "stop", name, "--location", "guide")
    assert code == 0
    assert tick.status is TickStatus.SUCCESS and len(tick.backfill_ids) == 1 and tick.run_ids == ()
    final = wait_for_end(control_plane, tick.backfill_ids[0])
    assert final.record.status is BackfillStatus.COMPLETED_SUCCESS and final.record.origin == f"sensor:{name}"
    (run,) = control_plane.list_runs(backfill_id=final.record.id)
    assert run.partition_range == PartitionKeyRange("2023-01-01", "2023-01-05")

    code, out = cli(control_plane, capsys, "sensor", "list", "--json")
    (listed,) = json.loads(out)
    assert (
        code == 0 and listed["definition"]["name"] == name and listed["status"] == "INSTIGATOR_STATUS_STOPPED"
    )
    code, out = cli(control_plane, capsys, "sensor", "ticks", name, "--json")
    assert code == 0 and json.loads(out)[-1]["backfill_ids"] == list(tick.backfill_ids)


def test_the_guide_schedule_launches_one_backfill_through_the_static_mapping(
    control_plane_factory: Factory,
    spawn: Callable[[str, str], SpawnedCodeServer],
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = spawn("examples.backfill_asset_from_asset_partitions", "guide")
    control_plane = control_plane_factory({"guide": server.address})
    name = "launch_backfill_with_multiple_assets_selected"
    ref = InstigatorRef("guide", InstigatorType.SCHEDULE, name)
    code, out = cli(control_plane, capsys, "schedule", "start", name, "--json")
    assert code == 0 and json.loads(out)["status"] == "INSTIGATOR_STATUS_RUNNING"
    # The schedule runs every minute: date its start back to just before the last minute, so that
    # exactly one cron time is due now instead of waiting for the next one.
    now = datetime.now(UTC)
    last_minute = now.replace(second=0, microsecond=0)
    control_plane.automation.store.set_status(
        ref, InstigatorStatus.RUNNING, last_minute - timedelta(seconds=1)
    )
    tick = wait_for_tick(
        control_plane, ref, lambda t: t.scheduled_at == last_minute and t.status is not TickStatus.STARTED
    )
    assert tick.status is TickStatus.SUCCESS and len(tick.backfill_ids) == 1
    view = control_plane.get_backfill(tick.backfill_ids[0])
    assert view.record.origin == f"schedule:{name}"
    assert view.record.tags["custom_tag_key"] == "custom_tag_value"
    partitions = {key: sum(counts.values()) for key, counts in view.counts.items()}
    assert partitions == {AssetKey("asset_a"): 1, AssetKey("asset_b"): 1}
    rows = control_plane._progress.partitions(view.record.id)
    assert {(row.asset_key, row.partition_key) for row in rows} == {
        (AssetKey("asset_a"), "foo_a"),
        (AssetKey("asset_b"), "foo_b"),
    }


def test_a_raising_sensor_records_failures_while_the_daemon_goes_on(
    control_plane_factory: Factory,
    spawn: Callable[[str, str], SpawnedCodeServer],
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = spawn("tests.fixtures.sensors_location", "tests")
    control_plane = control_plane_factory({"tests": server.address})
    for name in ("raising_sensor", "cursor_sensor"):
        assert cli(control_plane, capsys, "sensor", "start", name, "--location", "tests")[0] == 0
    failed = wait_for_tick(
        control_plane,
        InstigatorRef("tests", InstigatorType.SENSOR, "raising_sensor"),
        lambda t: t.status is TickStatus.FAILURE,
    )
    assert failed.error is not None and "the upstream API returned 500" in failed.error.message
    assert "RuntimeError" in failed.error.traceback
    succeeded = wait_for_tick(
        control_plane,
        InstigatorRef("tests", InstigatorType.SENSOR, "cursor_sensor"),
        lambda t: t.status is TickStatus.SUCCESS,
    )
    assert succeeded.cursor_after == "1" and len(succeeded.run_ids) == 1
    code, out = cli(control_plane, capsys, "sensor", "preview", "raising_sensor", "--location", "tests")
    assert code == 1 and "the upstream API returned 500" in out
    code, out = cli(control_plane, capsys, "sensor", "ticks", "raising_sensor")
    assert code == 0 and "failure" in out


def test_a_sensor_past_the_evaluation_timeout_fails_its_tick_as_timed_out_and_others_go_on(
    control_plane_factory: Factory,
    spawn: Callable[[str, str], SpawnedCodeServer],
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = spawn("tests.fixtures.sensors_location", "tests")
    control_plane = control_plane_factory({"tests": server.address}, evaluation_timeout_seconds=0.5)
    for name in ("slow_sensor", "cursor_sensor"):
        assert cli(control_plane, capsys, "sensor", "start", name, "--location", "tests")[0] == 0
    timed_out = wait_for_tick(
        control_plane,
        InstigatorRef("tests", InstigatorType.SENSOR, "slow_sensor"),
        lambda t: t.status is TickStatus.FAILURE,
    )
    assert timed_out.error is not None and timed_out.error.kind == "timed_out"
    assert "did not finish within its deadline" in timed_out.error.message
    # The slow sensor holds up no one: the other sensor ticks, and its cursor moves on.
    succeeded = wait_for_tick(
        control_plane,
        InstigatorRef("tests", InstigatorType.SENSOR, "cursor_sensor"),
        lambda t: t.status is TickStatus.SUCCESS,
    )
    assert succeeded.cursor_after == "1" and len(succeeded.run_ids) == 1
    code, out = cli(control_plane, capsys, "sensor", "ticks", "slow_sensor", "--json")
    assert code == 0 and json.loads(out)[-1]["error"]["kind"] == "USER_CODE_ERROR_KIND_TIMED_OUT"
