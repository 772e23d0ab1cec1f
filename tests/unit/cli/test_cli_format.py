"""The client commands: argument parsing, output (text and --json), exit codes and error lines.

Commands run in-process against the real servicer over an in-memory service on a loopback port.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
from collections.abc import Iterator
from datetime import timedelta

import pytest

from code_server.asset_key import AssetKey
from code_server.partitions.keys import PartitionKeyRange
from control_plane.cli import add_parsers
from control_plane.cli.backfills import launch_request, watch
from control_plane.cli.command import UsageError
from control_plane.client import ControlPlaneClient
from control_plane.records import BackfillStatus, PartitionStatus, RunStatus
from control_plane.views import CodeLocationView
from tests.fixtures.fake_control_plane import (
    DAYS,
    T0,
    FakeControlPlaneServer,
    FakeControlPlaneService,
    backfill_view,
    run_record,
)

BACKFILL_KEYS = {
    "id", "status", "location", "title", "description", "assets", "target", "tags", "max_concurrent_runs",
    "priority", "partition_count", "counts", "asset_counts", "created_at", "updated_at", "ended_at", "error",
    "created_by",
}  # fmt: skip
RUN_KEYS = {
    "id", "status", "backfill_id", "location", "assets", "partition_key", "partition_range", "tags", "attempt",
    "run_key", "launcher", "created_at", "started_at", "ended_at", "updated_at", "error",
    "failure_kind",
}  # fmt: skip


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="partita")
    add_parsers(root.add_subparsers(dest="command", required=True))
    return root


@pytest.fixture
def service() -> FakeControlPlaneService:
    fake = FakeControlPlaneService()
    fake.backfills["bf1"] = backfill_view(
        "bf1",
        counts={
            "a": {PartitionStatus.MATERIALIZED: 6, PartitionStatus.RUNNING: 2, PartitionStatus.QUEUED: 2},
            "b": {PartitionStatus.MATERIALIZED: 4, PartitionStatus.PENDING: 6},
        },
        title="January",
    )
    fake.runs["r1"] = run_record("r1", status=RunStatus.FAILURE)
    fake.runs["r2"] = run_record("r2", status=RunStatus.STARTED, created_at=T0 + timedelta(seconds=1))
    return fake


@pytest.fixture
def server(
    service: FakeControlPlaneService, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FakeControlPlaneServer]:
    with FakeControlPlaneServer(service) as running:
        # Commands find the control plane through the environment unless --control-plane is given.
        monkeypatch.setenv("PARTITA_CONTROL_PLANE", running.address)
        yield running


def run(*argv: str) -> int:
    args = parser().parse_args(argv)
    code: int = args.handler(args)
    return code


# --- argument parsing ------------------------------------------------------------------------------


def test_launch_arguments_become_the_request() -> None:
    args = parser().parse_args(
        ["backfill", "launch", "--location", "guide", "--select", "a, warehouse/b", "--from", "2024-01-01",
         "--to", "2024-01-31", "--tag", "team=data", "--tag", "note=a=b", "--title", "Jan",
         "--max-concurrent-runs", "4", "--priority", "-1", "--dry-run"]
    )  # fmt: skip
    spec, options = launch_request(args)
    assert spec.asset_keys == (AssetKey("a"), AssetKey(["warehouse", "b"]))
    assert spec.partition_ranges == (PartitionKeyRange("2024-01-01", "2024-01-31"),)
    assert options.tags == {"team": "data", "note": "a=b"} and spec.tags == options.tags
    assert (options.location, options.title, options.max_concurrent_runs, options.priority, options.dry_run) == (
        "guide", "Jan", 4, -1, True,
    )  # fmt: skip


def test_partitions_by_asset_names_the_selection() -> None:
    args = parser().parse_args(
        [
            "backfill",
            "launch",
            "--location",
            "g",
            "--partitions-by-asset",
            "a=k1,k2",
            "--partitions-by-asset",
            "x/b=k3",
        ]
    )
    spec, _ = launch_request(args)
    assert spec.asset_keys == (AssetKey("a"), AssetKey(["x", "b"]))
    assert spec.partitions_by_asset == {AssetKey("a"): ("k1", "k2"), AssetKey(["x", "b"]): ("k3",)}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--select", "a"], "got none"),
        (["--select", "a", "--all", "--partitions", "k"], "got --partitions and --all"),
        (["--select", "a", "--from", "k"], "--from and --to go together"),
        (["--all"], "--select is required"),
        (["--select", "a", "--all", "--tag", "novalue"], "--tag 'novalue' is not KEY=VALUE"),
        (["--select", "a b", "--all"], "--select: Invalid asset key part 'a b'"),
        (["--partitions-by-asset", "a"], "is not ASSET=K1,K2"),
        (["--partitions-by-asset", "a=k", "--partitions-by-asset", "a=j"], "names 'a' twice"),
        (["--select", "a", "--partitions", ",,"], "--partitions needs at least one partition key"),
    ],
)
def test_bad_launch_arguments_are_usage_errors(extra: list[str], message: str) -> None:
    args = parser().parse_args(["backfill", "launch", "--location", "guide", *extra])
    with pytest.raises(UsageError, match=message):
        launch_request(args)


def test_usage_errors_exit_2_with_one_error_line(
    server: FakeControlPlaneServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("backfill", "launch", "--location", "guide", "--select", "a") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: name the partitions exactly one way") and err.count("\n") == 1
    assert run("backfill", "limits", "bf1") == 2
    assert "give --max-concurrent-runs N" in capsys.readouterr().err


def test_argparse_rejects_missing_and_malformed_options() -> None:
    for argv in (["backfill", "launch", "--select", "a"], ["backfill", "limits", "bf1", "--max-concurrent-runs", "-3"],
                 ["backfill", "list", "--status", "bogus"]):  # fmt: skip
        with pytest.raises(SystemExit) as exited:
            parser().parse_args(argv)
        assert exited.value.code == 2


# --- backfill commands ---------------------------------------------------------------------------------


def test_launch_prints_the_id_and_how_to_follow_it(
    server: FakeControlPlaneServer, service: FakeControlPlaneService, capsys: pytest.CaptureFixture[str]
) -> None:
    service.backfills.clear()
    assert run("backfill", "launch", "--location", "guide", "--select", "a,b", "--all") == 0
    out = capsys.readouterr().out
    assert "Launched backfill bf1: 20 partitions of 2 assets in location guide." in out
    assert "partita backfill status bf1 --watch" in out
    assert service.launched[0][0].all_partitions is True


def test_launch_dry_run_text_and_json(
    server: FakeControlPlaneServer, service: FakeControlPlaneService, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        run(
            "backfill", "launch", "--location", "guide", "--select", "a", "--partitions", "k1,k2", "--dry-run"
        )
        == 0
    )
    out = capsys.readouterr().out
    assert out.startswith(
        "Dry run: 2 partitions of 1 asset. Nothing was written.\nIf every partition succeeds: 2 runs: a 2.\n"
    )
    assert "k1" in out and "k2" in out
    assert (
        run(
            "backfill",
            "launch",
            "--location",
            "guide",
            "--select",
            "a",
            "--partitions",
            "k1",
            "--dry-run",
            "--json",
        )
        == 0
    )
    shown = json.loads(capsys.readouterr().out)
    assert shown["dry_run"] is True and shown["runs"] == [
        {"assets": ["a"], "partition_key": "k1", "partition_range": None}
    ]
    assert shown["run_count"] == 1 and shown["runs_by_asset"] == {"a": 1} and shown["runs_not_listed"] == 0
    assert len(service.backfills) == 1  # only the fixture's


def test_server_side_invalid_argument_exits_2(
    server: FakeControlPlaneServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("backfill", "launch", "--location", "guide", "--select", "unknown_x", "--all") == 2
    assert capsys.readouterr().err == "error: Unknown assets ['unknown_x'] in location 'guide'.\n"


def test_status_text_shows_progress_and_per_asset_counts(
    server: FakeControlPlaneServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("backfill", "status", "bf1") == 0
    out = capsys.readouterr().out
    assert out.startswith("Backfill bf1: running\n  title:       January\n")
    assert "[###############...............]  50%  10/20 done · 10 materialized · 2 running · 2 queued" in out
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("ASSET"))
    assert header.split() == [
        "ASSET",
        "PENDING",
        "QUEUED",
        "RUNNING",
        "MATERIALIZED",
        "FAILED",
        "UPSTREAM_FAILED",
        "CANCELED",
    ]
    assert next(line for line in lines if line.startswith("a ")).split() == [
        "a",
        "0",
        "2",
        "2",
        "6",
        "0",
        "0",
        "0",
    ]


def test_status_json_has_stable_keys(
    server: FakeControlPlaneServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("backfill", "status", "bf1", "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert set(shown) == BACKFILL_KEYS
    assert shown["counts"] == {
        "pending": 6, "queued": 2, "running": 2, "materialized": 10, "failed": 0, "upstream_failed": 0, "canceled": 0,
    }  # fmt: skip


def test_not_found_exits_1_with_the_servers_message(
    server: FakeControlPlaneServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("backfill", "status", "nope") == 1
    assert capsys.readouterr().err == "error: No backfill with id 'nope'.\n"


@pytest.mark.parametrize(
    ("final", "code"),
    [
        (BackfillStatus.COMPLETED_SUCCESS, 0),
        (BackfillStatus.COMPLETED_FAILED, 1),
        (BackfillStatus.CANCELED, 1),
    ],
)
def test_watch_without_a_terminal_prints_lines_and_exits_by_outcome(
    server: FakeControlPlaneServer, service: FakeControlPlaneService, capsys: pytest.CaptureFixture[str],
    final: BackfillStatus, code: int,
) -> None:  # fmt: skip
    service.watch_script["bf1"] = [
        backfill_view(
            "bf1",
            counts={
                "a": {PartitionStatus.MATERIALIZED: 9, PartitionStatus.RUNNING: 1},
                "b": {PartitionStatus.MATERIALIZED: 10},
            },
        ),
        backfill_view(
            "bf1",
            status=final,
            counts={"a": {PartitionStatus.MATERIALIZED: 10}, "b": {PartitionStatus.MATERIALIZED: 10}},
        ),
    ]
    assert run("backfill", "status", "bf1", "--watch") == code
    out = capsys.readouterr().out
    assert "\x1b[" not in out
    lines = out.splitlines()
    assert lines[0].endswith(
        "running  [###############...............]  50%  10/20 done · 10 materialized · 2 running · 2 queued  |  a 6/10, b 4/10"
    )
    assert f"{final.value}  [##############################] 100%  20/20 done" in out
    assert f"Backfill bf1: {final.value}" in out  # the final block, per-asset table included
    assert "MATERIALIZED" in out


def test_watch_json_prints_one_object_per_update(
    server: FakeControlPlaneServer, service: FakeControlPlaneService, capsys: pytest.CaptureFixture[str]
) -> None:
    service.watch_script["bf1"] = [backfill_view("bf1", status=BackfillStatus.COMPLETED_SUCCESS)]
    assert run("backfill", "status", "bf1", "--watch", "--json") == 0
    updates = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [u["status"] for u in updates] == ["running", "completed_success"]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_watch_on_a_terminal_redraws_one_block_in_place(
    server: FakeControlPlaneServer, service: FakeControlPlaneService
) -> None:
    service.watch_script["bf1"] = [
        backfill_view(
            "bf1", status=BackfillStatus.COMPLETED_SUCCESS, counts={"a": {PartitionStatus.MATERIALIZED: 10}}
        )
    ]
    out = _Terminal()
    with ControlPlaneClient(server.address) as client:
        assert watch(client, "bf1", as_json=False, out=out, terminal=os.terminal_size((100, 40))) == 0
    first, redraw = out.getvalue().split("\x1b[", 1)
    # The cursor goes back up over exactly the previous block, which is cleared and redrawn.
    assert first.startswith("Backfill bf1: running")
    assert redraw.startswith(f"{first.count(chr(10))}F\x1b[J" + "Backfill bf1: completed_success")


def test_watch_on_a_small_terminal_shows_only_the_asset_rows_that_fit(
    server: FakeControlPlaneServer, service: FakeControlPlaneService
) -> None:
    assets = [f"asset_{i}" for i in range(40)]
    service.backfills["wide"] = backfill_view("wide", assets=assets, status=BackfillStatus.COMPLETED_SUCCESS)
    out = _Terminal()
    with ControlPlaneClient(server.address) as client:
        watch(client, "wide", as_json=False, out=out, terminal=os.terminal_size((100, 20)))
    block = out.getvalue()
    assert len(block.splitlines()) <= 19
    assert "asset_0 " in block and "asset_39 " not in block
    shown_rows = sum(1 for line in block.splitlines() if line.startswith("asset_"))
    assert f"... and {40 - shown_rows} more assets" in block


def test_list_table_and_json(
    server: FakeControlPlaneServer, service: FakeControlPlaneService, capsys: pytest.CaptureFixture[str]
) -> None:
    for i in range(3):
        service.backfills[f"old{i}"] = backfill_view(
            f"old{i}", status=BackfillStatus.COMPLETED_SUCCESS, created_at=T0 - timedelta(days=i + 1)
        )
    assert run("backfill", "list", "--limit", "3") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ID", "STATUS", "LOCATION", "MATERIALIZED", "FAILED", "CREATED", "TITLE"]
    assert [line.split()[0] for line in lines[1:]] == ["bf1", "old0", "old1"]
    assert lines[1].split()[:5] == ["bf1", "running", "guide", "10/20", "0"]
    assert run("backfill", "list", "--status", "completed_success", "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert [b["id"] for b in shown] == ["old0", "old1", "old2"] and set(shown[0]) == BACKFILL_KEYS


def test_actions_print_the_new_status(
    server: FakeControlPlaneServer, service: FakeControlPlaneService, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("backfill", "pause", "bf1") == 0
    assert capsys.readouterr().out == "Backfill bf1: paused\n"
    assert run("backfill", "resume", "bf1") == 0
    assert run("backfill", "resume", "bf1") == 1
    assert "error: Backfill bf1 is not paused." in capsys.readouterr().err
    assert run("backfill", "limits", "bf1", "--max-concurrent-runs", "5", "--priority", "3") == 0
    assert capsys.readouterr().out == "Backfill bf1: running (5 concurrent-run limit, priority 3)\n"
    assert run("backfill", "cancel", "bf1") == 0
    assert run("backfill", "retry", "bf1") == 0
    assert capsys.readouterr().out.splitlines()[-1] == "Backfill bf1: running (0 partitions re-queued)"


# --- runs, locations, assets ------------------------------------------------------------------------------


def test_runs_list_get_and_terminate(
    server: FakeControlPlaneServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("runs", "list", "--backfill", "bf1") == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:3] for line in lines[1:]] == [["r2", "started", "bf1"], ["r1", "failure", "bf1"]]
    assert run("runs", "list", "--status", "failure", "--json") == 0
    (shown,) = json.loads(capsys.readouterr().out)
    assert set(shown) == RUN_KEYS and shown["id"] == "r1" and shown["error"] == "ValueError: boom"
    assert run("runs", "get", "r1") == 0
    out = capsys.readouterr().out
    assert (
        out.startswith("Run r1: failure\n")
        and "failure:    ValueError: boom" in out
        and f"partitions: {DAYS[0]}" in out
    )
    assert run("runs", "terminate", "r2") == 0
    assert capsys.readouterr().out == "Run r2: canceled\n"


def test_runs_logs_follow_and_json(
    server: FakeControlPlaneServer, service: FakeControlPlaneService, capsys: pytest.CaptureFixture[str]
) -> None:
    service.log_script["r2"] = [["starting"], ["a materialized"]]
    assert run("runs", "logs", "r2", "--follow") == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(maxsplit=3)[2:] for line in lines] == [
        ["stdout", "starting"],
        ["stdout", "a materialized"],
    ]
    assert run("runs", "logs", "r2", "--after", "1", "--json") == 0
    (entry,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert entry == {
        "sequence": 2,
        "timestamp": "2024-05-01T12:00:00Z",
        "stream": "stdout",
        "text": "a materialized",
    }


def test_locations_list_shows_errors_below_the_table(
    server: FakeControlPlaneServer, service: FakeControlPlaneService, capsys: pytest.CaptureFixture[str]
) -> None:
    service.locations.append(
        CodeLocationView(name="broken", address="h:2", status="load_error", error="ImportError: y")
    )
    assert run("locations", "list") == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:3] == ["NAME", "STATUS", "ADDRESS"]
    assert out.rstrip().endswith("broken: ImportError: y")
    assert run("locations", "list", "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert [(loc["name"], loc["status"], loc["error"]) for loc in shown] == [
        ("broken", "load_error", "ImportError: y"),
        ("guide", "loaded", None),
    ]


def test_asset_status_text_and_json(
    server: FakeControlPlaneServer, service: FakeControlPlaneService, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("asset", "status", "guide", "a", "--from", DAYS[0], "--to", DAYS[-1]) == 0
    out = capsys.readouterr().out
    assert out.startswith("guide/a: 10 partitions (5 materialized, 5 missing)")
    assert service.asset_status_calls[-1][2] == PartitionKeyRange(DAYS[0], DAYS[-1])
    assert run("asset", "status", "guide", "unpartitioned", "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["unpartitioned_status"] == "materialized" and shown["ranges"] == []
    assert run("asset", "status", "guide", "a", "--from", DAYS[0]) == 2


def test_an_unreachable_control_plane_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert run("runs", "list", "--control-plane", f"127.0.0.1:{port}") == 1
    err = capsys.readouterr().err
    assert (
        err.startswith(f"error: Cannot reach the control plane at 127.0.0.1:{port}") and err.count("\n") == 1
    )
