"""Code locations that come and go, and the run monitor, with real processes."""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from code_server.asset_key import AssetKey
from code_server.partitions.keys import PartitionKeyRange
from code_server.server.spawn import spawn_code_server
from code_server.wire.automation import BackfillRequestSpec
from control_plane.app import ControlPlane
from control_plane.records import BackfillStatus, PartitionStatus, RunStatus
from control_plane.views import BackfillView, LaunchOptions
from tests.integration.conftest import ROOT, wait_for_end, wait_until

pytestmark = pytest.mark.integration
Factory = Callable[..., ControlPlane]


def launch(plane: ControlPlane, assets: list[str], start: str, end: str, **options: object) -> BackfillView:
    spec = BackfillRequestSpec(
        asset_keys=tuple(AssetKey(a) for a in assets), partition_ranges=(PartitionKeyRange(start, end),)
    )
    view = plane.launch_backfill(spec, LaunchOptions(location="tests", **options))  # type: ignore[arg-type]
    assert isinstance(view, BackfillView)
    return view


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_run_process_killed_by_hand_is_failed_by_the_monitor_with_its_reason(
    control_plane_factory: Factory, output_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PARTITA_TEST_SLEEP", "60")
    server = spawn_code_server(module_name="tests.fixtures.backfill_location", working_directory=str(ROOT))
    try:
        plane = control_plane_factory({"tests": server.address})
        view = launch(plane, ["slow"], "2024-03-01", "2024-03-01")
        wait_until(
            lambda: bool(plane.list_runs(backfill_id=view.record.id, statuses=[RunStatus.STARTED])),
            "the run started",
        )
        (run,) = plane.list_runs(backfill_id=view.record.id)
        assert run.launcher_handle is not None
        os.kill(int(run.launcher_handle.partition(":")[0]), signal.SIGKILL)
        final = wait_for_end(plane, view.record.id, timeout=30)
    finally:
        server.stop()
    (failed,) = plane.list_runs(backfill_id=view.record.id)
    assert (
        failed.status is RunStatus.FAILURE
        and failed.error is not None
        and "killed by SIGKILL" in failed.error
    )
    assert final.record.status is BackfillStatus.COMPLETED_FAILED
    assert final.counts[AssetKey("slow")] == {PartitionStatus.FAILED: 1}  # so a retry picks it up


def test_max_runtime_tag_stops_and_fails_a_run(
    control_plane_factory: Factory, output_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PARTITA_TEST_SLEEP", "60")
    server = spawn_code_server(module_name="tests.fixtures.backfill_location", working_directory=str(ROOT))
    try:
        plane = control_plane_factory({"tests": server.address})
        view = launch(plane, ["slow"], "2024-03-01", "2024-03-01", tags={"partita/max_runtime": "1"})
        final = wait_for_end(plane, view.record.id, timeout=30)
    finally:
        server.stop()
    (run,) = plane.list_runs(backfill_id=view.record.id)
    assert run.status is RunStatus.FAILURE and "exceeded its max_runtime" in (run.error or "")
    assert final.record.status is BackfillStatus.COMPLETED_FAILED


def test_backfill_waits_for_a_location_that_is_down_and_continues_when_it_is_back(
    control_plane_factory: Factory, output_file: Path, tmp_path: Path
) -> None:
    port = free_port()
    address = f"127.0.0.1:{port}"
    server = spawn_code_server(
        module_name="tests.fixtures.backfill_location", working_directory=str(ROOT), port=port
    )
    plane_port = free_port()  # run workers report to the same address across the restart
    first = control_plane_factory({"tests": address}, max_concurrent_runs=1, port=plane_port)
    view = launch(first, ["a", "b", "c"], "2024-03-01", "2024-03-03")
    first.stop()
    server.stop()  # the code server goes away while the control plane is down too

    second = control_plane_factory({"tests": address}, location_refresh_seconds=0.3, port=plane_port)
    second.engine.note_full_plan(view.record.id)
    wait_until(
        lambda: second.get_backfill(view.record.id).record.status is BackfillStatus.WAITING_FOR_LOCATION,
        "the backfill waited for its location",
    )
    assert second.code_locations()[0].status == "unavailable"
    server = spawn_code_server(
        module_name="tests.fixtures.backfill_location", working_directory=str(ROOT), port=port
    )
    try:
        final = wait_for_end(second, view.record.id, timeout=60)
    finally:
        server.stop()
    assert final.record.status is BackfillStatus.COMPLETED_SUCCESS
    assert final.counts == {AssetKey(name): {PartitionStatus.MATERIALIZED: 3} for name in "abc"}


def test_asset_removed_from_its_location_fails_only_its_own_partitions(
    control_plane_factory: Factory, output_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = tmp_path / "gate"
    monkeypatch.setenv("PARTITA_TEST_GATE", str(gate))
    module = tmp_path / "changing_location.py"
    header = (
        "import os, time\nfrom pathlib import Path\n"
        "from code_server import AssetKey, BackfillPolicy, DailyPartitionsDefinition, asset\n"
        "daily = DailyPartitionsDefinition(start_date='2024-01-01', end_date='2025-01-01')\n"
        "@asset(partitions_def=daily)\n"
        "def first():\n"
        "    while not Path(os.environ['PARTITA_TEST_GATE']).exists():\n"
        "        time.sleep(0.1)\n"
        "@asset(partitions_def=daily)\n"
        "def other():\n"
        "    pass\n"
    )
    second_asset = "@asset(partitions_def=daily, deps=[first], backfill_policy=BackfillPolicy.single_run())\ndef second():\n    pass\n"
    module.write_text(header + second_asset)
    server = spawn_code_server(module_name="changing_location", working_directory=str(tmp_path))
    try:
        plane = control_plane_factory({"tests": server.address}, location_refresh_seconds=0.3)
        view = launch(plane, ["first", "second", "other"], "2024-03-01", "2024-03-02")
        module.write_text(header)  # `second` is gone in the redeployed code
        from code_server.client import CodeServerClient

        with CodeServerClient(server.address) as client:
            client.reload()
        wait_until(
            lambda: AssetKey("second") not in plane.locations.graph("tests"), "the redeploy was noticed"
        )
        gate.write_text("open")
        final = wait_for_end(plane, view.record.id, timeout=60)
    finally:
        server.stop()
    assert final.record.status is BackfillStatus.COMPLETED_FAILED
    assert final.counts[AssetKey("first")] == {PartitionStatus.MATERIALIZED: 2}
    assert final.counts[AssetKey("other")] == {PartitionStatus.MATERIALIZED: 2}
    assert final.counts[AssetKey("second")] == {PartitionStatus.FAILED: 2}
    assert "'second' were removed from code location 'tests'" in (final.record.error or "")
