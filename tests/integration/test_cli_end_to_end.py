"""The client commands against a real control plane, code server and run processes, over gRPC."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from code_server.server.spawn import SpawnedCodeServer
from control_plane.app import ControlPlane
from control_plane.cli import add_parsers

pytestmark = pytest.mark.integration
Factory = Callable[..., ControlPlane]
Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def cli(
    control_plane_factory: Factory,
    backfill_code_server: SpawnedCodeServer,
    capsys: pytest.CaptureFixture[str],
) -> Cli:
    """Run ``partita ARGS...`` against a fresh control plane; returns (exit code, stdout, stderr)."""
    control_plane = control_plane_factory({"tests": backfill_code_server.address})
    root = argparse.ArgumentParser(prog="partita")
    add_parsers(root.add_subparsers(dest="command", required=True))

    def run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        args = root.parse_args([*argv, "--control-plane", control_plane.address])
        code: int = args.handler(args)
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def as_json(output: str) -> Any:
    return json.loads(output)


def test_launch_watch_and_inspect_a_backfill(cli: Cli) -> None:
    code, out, _ = cli(
        "backfill", "launch", "--location", "tests", "--select", "a,b,c",
        "--from", "2024-03-01", "--to", "2024-03-03", "--tag", "team=data", "--json",
    )  # fmt: skip
    assert code == 0
    launched = as_json(out)
    backfill_id = launched["id"]
    assert launched["assets"] == ["a", "b", "c"] and launched["partition_count"] == 9
    assert launched["tags"] == {"team": "data"}

    code, out, _ = cli("backfill", "status", backfill_id, "--watch")
    assert code == 0
    assert "completed_success  [##############################] 100%  9/9 done · 9 materialized" in out
    table = out[out.index("ASSET") :].splitlines()
    assert [line.split()[0] for line in table[1:]] == ["a", "b", "c"]
    assert all(line.split()[4] == "3" for line in table[1:])  # MATERIALIZED column

    code, out, _ = cli("runs", "list", "--backfill", backfill_id, "--json")
    runs = as_json(out)
    assert code == 0 and len(runs) == 3
    assert {run["status"] for run in runs} == {"success"}
    assert sorted(run["partition_key"] for run in runs) == ["2024-03-01", "2024-03-02", "2024-03-03"]

    code, out, _ = cli("runs", "logs", runs[0]["id"])
    assert code == 0 and "Run started" in out and "Materialized" in out

    code, out, _ = cli("backfill", "list", "--tag", "team=data", "--json")
    assert [b["id"] for b in as_json(out)] == [backfill_id]

    code, out, _ = cli(
        "asset", "status", "tests", "a", "--from", "2024-03-01", "--to", "2024-03-05", "--json"
    )
    status = as_json(out)
    assert status["counts"]["materialized"] == 3 and status["counts"]["missing"] == 2
    assert status["ranges"][0] == {
        "start": "2024-03-01", "end": "2024-03-03", "status": "materialized", "partition_count": 3,
    }  # fmt: skip

    code, out, _ = cli("locations", "list", "--json")
    (location,) = as_json(out)
    assert location["name"] == "tests" and location["status"] == "loaded" and location["asset_count"] > 0


def test_failed_backfill_watch_exits_1_and_retry_fixes_it(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing = tmp_path / "failing.txt"
    failing.write_text("2024-03-02")
    monkeypatch.setenv("PARTITA_TEST_FAILING", str(failing))
    code, out, _ = cli(
        "backfill", "launch", "--location", "tests", "--select", "flaky,flaky_child",
        "--partitions", "2024-03-01,2024-03-02", "--json",
    )  # fmt: skip
    backfill_id = as_json(out)["id"]

    code, out, _ = cli("backfill", "status", backfill_id, "--watch")
    assert code == 1 and "completed_failed" in out and "1 failed · 1 upstream failed" in out

    code, out, _ = cli("runs", "list", "--backfill", backfill_id, "--status", "failure", "--json")
    (failed,) = as_json(out)
    assert failed["partition_key"] == "2024-03-02"
    code, out, _ = cli("runs", "logs", failed["id"])
    assert code == 0 and "source data for 2024-03-02 is corrupt" in out

    failing.write_text("")
    code, out, _ = cli("backfill", "retry", backfill_id)
    assert code == 0 and "(2 partitions re-queued)" in out
    code, out, _ = cli("backfill", "status", backfill_id, "--watch", "--json")
    assert code == 0 and as_json(out.splitlines()[-1])["status"] == "completed_success"


def test_bad_requests_exit_2_and_dry_runs_write_nothing(cli: Cli) -> None:
    code, _, err = cli("backfill", "launch", "--location", "tests", "--select", "nope", "--all")
    assert code == 2 and err.startswith("error: ") and "'nope'" in err and err.count("\n") == 1

    code, _, err = cli("backfill", "launch", "--location", "elsewhere", "--select", "a", "--all")
    assert code == 1 and "elsewhere" in err

    code, out, _ = cli(
        "backfill", "launch", "--location", "tests", "--select", "ma", "--from", "2024-03-01", "--to", "2024-03-05",
        "--dry-run", "--json",
    )  # fmt: skip
    plan = as_json(out)
    assert code == 0 and plan["partition_count"] == 5 and plan["run_count"] == 3
    code, out, _ = cli("backfill", "list", "--json")
    assert as_json(out) == []

    # The guide's x + y: the dry run counts both assets' runs, as many as the real backfill makes.
    select = ("--location", "tests", "--select", "x,y", "--from", "2024-01-01", "--to", "2024-01-03")
    code, out, _ = cli("backfill", "launch", *select, "--dry-run")
    assert code == 0 and "If every partition succeeds: 6 runs: x 3, y 3." in out
    assert "Dry run: 6 partitions of 2 assets. Nothing was written." in out
    code, out, _ = cli("backfill", "launch", *select, "--json")
    backfill_id = as_json(out)["id"]
    code, out, _ = cli("backfill", "status", backfill_id, "--watch")
    assert code == 0
    code, out, _ = cli("runs", "list", "--backfill", backfill_id, "--json")
    assert len(as_json(out)) == 6

    code, _, err = cli("backfill", "status", "no-such-backfill")
    assert code == 1 and "no-such-backfill" in err
