"""``partita execute-run`` as a real process, reporting JSON-lines events."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def execute(
    tmp_path: Path, *arguments: str, env: dict[str, str] | None = None
) -> tuple[int, list[dict[str, Any]], list[dict[str, Any]], str]:
    """Run the worker; return its exit code, its events, what the assets recorded, and stderr."""
    output = tmp_path / "ran.jsonl"
    events = tmp_path / "events.jsonl"
    for path in (output, events):
        path.unlink(missing_ok=True)
    result = subprocess.run(
        [sys.executable, "-m", "partita.cli", "execute-run", "--events-file", str(events), *arguments],
        cwd=ROOT,
        env={**os.environ, "PARTITA_TEST_OUTPUT": str(output), **(env or {})},
        capture_output=True,
        text=True,
        check=False,
    )
    read = lambda path: [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []  # noqa: E731
    return result.returncode, read(events), read(output), result.stderr


def test_range_run_executes_chain_in_order_with_the_range(tmp_path: Path) -> None:
    code, events, ran, _ = execute(
        tmp_path, "-m", "tests.fixtures.worker_location", "--run-id", "r1",
        "--assets", "child,root", "--partition-range", "2024-01-30...2024-02-02",
    )  # fmt: skip
    assert code == 0
    assert [entry["asset"] for entry in ran] == ["root", "child"]
    assert ran[0]["keys"] == ["2024-01-30", "2024-01-31", "2024-02-01", "2024-02-02"]
    assert ran[1]["value"] == 4  # child received root's return value from the same run
    assert [event["event"] for event in events] == [
        "run_started", "partition_materialized", "partition_materialized", "run_finished",
    ]  # fmt: skip
    assert events[1]["partition_range"] == ["2024-01-30", "2024-02-02"] and events[-1]["success"] is True


def test_failure_fails_downstream_and_others_go_on(tmp_path: Path) -> None:
    code, events, ran, _ = execute(
        tmp_path, "-m", "tests.fixtures.worker_location", "--run-id", "r2",
        "--assets", "root,fragile,after_fragile,child", "--partition-range", "2024-01-01...2024-01-05",
    )  # fmt: skip
    assert code == 1
    assert sorted(entry["asset"] for entry in ran) == ["child", "root"]
    by_asset = {event.get("asset"): event for event in events if event["event"].startswith("partition")}
    assert by_asset["fragile"]["event"] == "partition_failed"
    assert by_asset["fragile"]["error"]["message"] == "bad data on 2024-01-03"
    assert "raise ValueError" in by_asset["fragile"]["error"]["traceback"]
    assert by_asset["after_fragile"]["upstream_failed"] is True
    assert "upstream asset 'fragile' failed" in by_asset["after_fragile"]["error"]["message"]
    assert by_asset["child"]["event"] == "partition_materialized"
    assert events[-1] == {"event": "run_finished", "run_id": "r2", "success": False}


def test_partition_key_in_range_run_fails_with_guidance(tmp_path: Path) -> None:
    code, events, _, _ = execute(
        tmp_path, "-m", "tests.fixtures.worker_location", "--run-id", "r3",
        "--assets", "single_key_only", "--partition-range", "2024-01-01...2024-01-02",
    )  # fmt: skip
    assert code == 1
    (failed,) = [event for event in events if event["event"] == "partition_failed"]
    assert "Use context.partition_key_range" in failed["error"]["message"]


def test_single_key_from_environment(tmp_path: Path) -> None:
    code, _, ran, _ = execute(
        tmp_path,
        env={
            "PARTITA_MODULE": "tests.fixtures.worker_location",
            "PARTITA_RUN_ID": "r4",
            "PARTITA_ASSETS": "single_key_only,unpartitioned",
            "PARTITA_PARTITION_KEY": "2024-02-29",
        },
    )
    assert code == 0
    assert sorted(ran, key=lambda entry: entry["asset"]) == [
        {"asset": "single_key_only", "keys": ["2024-02-29"], "value": "2024-02-29"},
        {"asset": "unpartitioned", "keys": [], "value": "whole"},
    ]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--assets", "root", "--partition-range", "2024-01-01...2099-01-01"], "'2099-01-01'"),
        (["--assets", "root", "--partition-range", "2024-01-01..2024-01-02"], "is not a partition"),
        (["--assets", "nope", "--partition-key", "2024-01-01"], "Unknown asset 'nope'"),
        (["--assets", "root"], "pass --partition-key or --partition-range"),
    ],
)
def test_bad_runs_fail_whole_with_a_clear_error(tmp_path: Path, arguments: list[str], message: str) -> None:
    code, events, ran, _ = execute(
        tmp_path, "-m", "tests.fixtures.worker_location", "--run-id", "bad", *arguments
    )
    assert code == 2 and ran == []
    assert events[-1]["event"] == "run_finished" and events[-1]["success"] is False
    assert message in events[-1]["error"]["message"]


def test_missing_arguments_are_named(tmp_path: Path) -> None:
    code, _, _, stderr = execute(tmp_path, "--assets", "root")
    assert code == 2 and "--run-id" in stderr and "--module" in stderr
