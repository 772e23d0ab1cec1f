"""Code servers that hang, answer garbage or serve invalid definitions, against a real control plane.

Each bad server is a real gRPC server on a loopback port (``tests.fixtures.bad_code_server``);
the good location is a real code server process. What must hold: the bad location shows the
right status and reason within its deadline and a refresh; a backfill of the good location
completes meanwhile; the bad location recovers once its server is fixed.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from code_server.asset_key import AssetKey
from code_server.client import (
    CodeServerClient,
    CodeServerDeadlines,
    CodeServerUnavailable,
    InvalidDefinitions,
    UndecodableAnswer,
)
from code_server.partitions.keys import PartitionKeyRange
from code_server.server.spawn import SpawnedCodeServer, spawn_code_server
from code_server.wire.automation import BackfillRequestSpec
from control_plane.app import ControlPlane
from control_plane.cli import add_parsers
from control_plane.errors import LocationUnavailable
from control_plane.location_health import ProblemKind
from control_plane.records import BackfillStatus, PartitionStatus
from control_plane.views import BackfillView, CodeLocationView, LaunchOptions
from tests.fixtures.bad_code_server import INVALID_MODES, BadCodeServer
from tests.integration.conftest import ROOT, wait_for_end, wait_until

pytestmark = pytest.mark.integration
Factory = Callable[..., ControlPlane]

DEADLINES = CodeServerDeadlines(server_info=1.0, definitions=1.5)
REFRESH_SECONDS = 0.3
#: Deadline + a refresh, plus room for a loaded 2-core machine.
NOTICED_WITHIN = DEADLINES.server_info + DEADLINES.definitions + REFRESH_SECONDS + 3.0


def start_plane(factory: Factory, good: SpawnedCodeServer, bad_address: str) -> ControlPlane:
    return factory(
        {"tests": good.address, "bad": bad_address},
        code_server_deadlines=DEADLINES,
        location_refresh_seconds=REFRESH_SECONDS,
    )


def location(plane: ControlPlane, name: str) -> CodeLocationView:
    (view,) = [view for view in plane.code_locations() if view.name == name]
    return view


def launch(plane: ControlPlane, where: str, assets: list[str]) -> BackfillView:
    spec = BackfillRequestSpec(
        asset_keys=tuple(AssetKey(a) for a in assets),
        partition_ranges=(PartitionKeyRange("2024-03-01", "2024-03-03"),),
    )
    view = plane.launch_backfill(spec, LaunchOptions(location=where))
    assert isinstance(view, BackfillView)
    return view


def assert_good_backfill_completes(plane: ControlPlane, where: str = "tests") -> None:
    view = launch(plane, where, ["a", "b", "c"])
    final = wait_for_end(plane, view.record.id, timeout=60)
    assert final.record.status is BackfillStatus.COMPLETED_SUCCESS
    assert final.counts == {AssetKey(name): {PartitionStatus.MATERIALIZED: 3} for name in "abc"}


def replace_with_real_server(bad: BadCodeServer) -> SpawnedCodeServer:
    """Stop the bad server and start a real one for the same location on the same port."""
    bad.stop()
    return spawn_code_server(
        module_name="tests.fixtures.backfill_location",
        working_directory=str(ROOT),
        location_name="bad",
        port=bad.port,
    )


def cli_locations(plane: ControlPlane, capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    root = argparse.ArgumentParser(prog="partita")
    add_parsers(root.add_subparsers(dest="command", required=True))
    capsys.readouterr()
    args = root.parse_args(["locations", "list", *extra, "--control-plane", plane.address])
    assert args.handler(args) == 0
    return capsys.readouterr().out


# --- the client alone: deadlines and typed errors ------------------------------------------------


@pytest.mark.parametrize("mode", INVALID_MODES)
def test_client_rejects_invalid_definitions_with_the_reason(mode: str) -> None:
    server = BadCodeServer(mode=mode)
    try:
        with CodeServerClient(server.address, location_name="bad", deadlines=DEADLINES) as client:
            client.server_info()  # the server itself answers fine
            with pytest.raises(InvalidDefinitions) as invalid:
                client.list_definitions()
    finally:
        server.stop()
    expected = {
        "duplicate_asset": "Asset 'x' is defined twice",
        "unknown_partitions_kind": "no kind set",
        "unknown_dependency": "depends on 'nowhere', which is not defined",
    }[mode]
    assert expected in str(invalid.value) and invalid.value.rpc == "ListDefinitions"


def test_client_turns_garbage_bytes_into_an_undecodable_answer() -> None:
    server = BadCodeServer(mode="garbage")
    try:
        with CodeServerClient(server.address, location_name="bad", deadlines=DEADLINES) as client:
            with pytest.raises(UndecodableAnswer, match="not a GetServerInfo response"):
                client.server_info()
            with pytest.raises(UndecodableAnswer, match="not a ListDefinitions response"):
                client.list_definitions()
    finally:
        server.stop()


def test_a_hanging_call_costs_its_deadline_once_not_once_per_retry() -> None:
    server = BadCodeServer(mode="hang", hang_on=("GetServerInfo",))
    try:
        with CodeServerClient(server.address, location_name="bad", deadlines=DEADLINES, retries=2) as client:
            started = time.monotonic()
            with pytest.raises(CodeServerUnavailable, match="no answer to GetServerInfo within 1 s") as hung:
                client.server_info()
            elapsed = time.monotonic() - started
    finally:
        server.stop()
    assert hung.value.timed_out and 0.9 < elapsed < 1.9
    assert server.calls["GetServerInfo"] == 1


# --- a control plane with one good and one bad location ------------------------------------------


def test_hanging_server_is_shown_with_its_reason_and_does_not_hold_up_other_backfills(
    control_plane_factory: Factory,
    backfill_code_server: SpawnedCodeServer,
    output_file: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bad = BadCodeServer(mode="hang", hang_on=("GetServerInfo",))
    plane = start_plane(control_plane_factory, backfill_code_server, bad.address)
    fixed: SpawnedCodeServer | None = None
    try:
        wait_until(
            lambda: (
                location(plane, "bad").problem is not None
                and location(plane, "bad").problem.kind is ProblemKind.TIMED_OUT
            ),  # type: ignore[union-attr]
            "the hang was shown",
            timeout=NOTICED_WITHIN,
        )
        view = location(plane, "bad")
        assert view.status == "unavailable"
        assert view.error is not None and view.error.startswith(
            f"UNAVAILABLE — no answer within 1 s from {bad.address} (GetServerInfo); retrying every 0.3 s"
        )
        out = cli_locations(plane, capsys)
        assert f"bad: UNAVAILABLE — no answer within 1 s from {bad.address} (GetServerInfo)" in out
        shown = {entry["name"]: entry for entry in json.loads(cli_locations(plane, capsys, "--json"))}
        assert (
            shown["bad"]["problem"]["kind"] == "timed_out"
            and shown["bad"]["problem"]["deadline_seconds"] == 1
        )
        assert shown["tests"]["status"] == "loaded" and shown["tests"]["problem"] is None

        # The planning loop never waits for the hanging server: it keeps ticking (every 0.2 s idle)
        # while refreshes of the bad location each hang for their whole 1 s deadline.
        ticks = plane.daemon.ticks
        time.sleep(1.0)
        assert plane.daemon.ticks - ticks >= 3

        calls_before, started = bad.calls.get("GetServerInfo", 0), time.monotonic()
        assert_good_backfill_completes(plane)
        # One call in flight at a time: refreshes every 0.3 s never pile up on a server that hangs.
        assert bad.max_in_flight == 1
        window = time.monotonic() - started
        assert bad.calls["GetServerInfo"] - calls_before <= window / DEADLINES.server_info + 2

        with pytest.raises(LocationUnavailable, match="no loaded definitions: UNAVAILABLE — no answer"):
            launch(plane, "bad", ["a"])

        fixed = replace_with_real_server(bad)
        wait_until(
            lambda: plane.locations.is_available("bad"), "the fixed server was loaded", timeout=NOTICED_WITHIN
        )
        assert location(plane, "bad").error is None and location(plane, "bad").asset_count > 0
        assert_good_backfill_completes(plane, where="bad")
    finally:
        if fixed is not None:
            fixed.stop()
        bad.stop()


def test_garbage_answers_are_shown_as_invalid_and_the_location_recovers(
    control_plane_factory: Factory, backfill_code_server: SpawnedCodeServer, output_file: Path
) -> None:
    bad = BadCodeServer(mode="garbage")
    plane = start_plane(control_plane_factory, backfill_code_server, bad.address)
    fixed: SpawnedCodeServer | None = None
    try:
        wait_until(
            lambda: location(plane, "bad").status == "invalid", "garbage was shown", timeout=NOTICED_WITHIN
        )
        view = location(plane, "bad")
        assert view.problem is not None and view.problem.kind is ProblemKind.UNDECODABLE_ANSWER
        assert view.error is not None and view.error.startswith(
            f"INVALID — {bad.address} answered GetServerInfo with bytes that are not a GetServerInfo response"
        )
        assert_good_backfill_completes(plane)
        fixed = replace_with_real_server(bad)
        wait_until(
            lambda: plane.locations.is_available("bad"), "the fixed server was loaded", timeout=NOTICED_WITHIN
        )
    finally:
        if fixed is not None:
            fixed.stop()
        bad.stop()


@pytest.mark.parametrize("mode", INVALID_MODES)
def test_invalid_definitions_keep_the_last_good_ones_and_refuse_new_backfills(
    control_plane_factory: Factory, backfill_code_server: SpawnedCodeServer, output_file: Path, mode: str
) -> None:
    bad = BadCodeServer(mode="good")
    try:
        plane = start_plane(control_plane_factory, backfill_code_server, bad.address)
        assert plane.locations.is_available("bad")
        bad.mode = mode  # a redeploy whose definitions do not validate
        wait_until(
            lambda: location(plane, "bad").status == "invalid",
            "the bad deploy was shown",
            timeout=NOTICED_WITHIN,
        )
        view = location(plane, "bad")
        assert view.problem is not None and view.problem.kind is ProblemKind.INVALID_DEFINITIONS
        assert (
            view.problem.rpc == "ListDefinitions"
            and "answered ListDefinitions with invalid definitions" in (view.error or "")
        )
        # Planning keeps the definitions last loaded; new work is refused, saying why.
        assert view.using_last_good_definitions and view.asset_count == 2
        assert list(plane.locations.graph("bad").keys) == [AssetKey("x"), AssetKey("y")]
        with pytest.raises(LocationUnavailable, match=r"INVALID .* New backfills of it are refused"):
            launch(plane, "bad", ["x"])
        assert_good_backfill_completes(plane)

        bad.mode, bad.generation = "good", 2  # fixed and redeployed in place
        wait_until(lambda: plane.locations.is_available("bad"), "the fix was loaded", timeout=NOTICED_WITHIN)
        assert (
            location(plane, "bad").fingerprint == "good-2"
            and not location(plane, "bad").using_last_good_definitions
        )
    finally:
        bad.stop()


def test_a_server_that_hangs_on_definitions_after_a_redeploy_keeps_the_last_good_ones(
    control_plane_factory: Factory, backfill_code_server: SpawnedCodeServer, output_file: Path
) -> None:
    bad = BadCodeServer(mode="good", hang_on=("ListDefinitions",))
    try:
        plane = start_plane(control_plane_factory, backfill_code_server, bad.address)
        bad.mode = "hang"  # GetServerInfo answers with a new fingerprint; ListDefinitions never does
        wait_until(
            lambda: (
                location(plane, "bad").problem is not None
                and location(plane, "bad").problem.rpc == "ListDefinitions"
            ),  # type: ignore[union-attr]
            "the hang was shown",
            timeout=NOTICED_WITHIN,
        )
        view = location(plane, "bad")
        assert view.status == "unavailable" and "no answer within 1.5 s" in (view.error or "")
        assert view.using_last_good_definitions and view.fingerprint == "good-1"
        assert_good_backfill_completes(plane)
        bad.mode = "good"
        wait_until(lambda: plane.locations.is_available("bad"), "it answered again", timeout=NOTICED_WITHIN)
    finally:
        bad.stop()
