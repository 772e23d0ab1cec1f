"""The local launcher copies what a run prints to the control plane's handler, and stops at close."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from code_server.asset_key import AssetKey
from launcher.base import CodeLocationTarget, LaunchRequest, RunState
from launcher.local import LocalProcessLauncher
from tests.integration.conftest import wait_until

pytestmark = pytest.mark.integration


def _request(run_id: str) -> LaunchRequest:
    return LaunchRequest(
        run_id=run_id,
        location=CodeLocationTarget("tests", module_name="unused"),
        asset_keys=(AssetKey("a"),),
        partition_range=None,
        control_plane_address="127.0.0.1:1",
    )


def _fake_python(tmp_path: Path, script: str) -> str:
    """An executable standing in for Python: it ignores the execute-run arguments and runs ``script``."""
    path = tmp_path / "fake-python"
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(0o755)
    return str(path)


class Received:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def __call__(self, run_id: str, line: str) -> None:
        with self._lock:
            self.lines.append((run_id, line))

    def snapshot(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self.lines)


def test_each_printed_line_reaches_the_handler_once(tmp_path: Path) -> None:
    received = Received()
    launcher = LocalProcessLauncher(
        log_directory=tmp_path / "logs", python=_fake_python(tmp_path, "echo one; sleep 0.2; printf two")
    )
    launcher.capture_output(received, lambda run_id: 0)
    handle = launcher.launch(_request("r1"))
    wait_until(lambda: launcher.check("r1", handle).state is not RunState.RUNNING, "the run ended")
    wait_until(lambda: len(received.snapshot()) == 2, "both lines arrived", timeout=10)
    assert received.snapshot() == [("r1", "one"), ("r1", "two")]


def test_after_close_nothing_more_is_handed_over_and_the_log_file_keeps_it(tmp_path: Path) -> None:
    received = Received()
    launcher = LocalProcessLauncher(
        log_directory=tmp_path / "logs", python=_fake_python(tmp_path, "echo before; sleep 1; echo after")
    )
    launcher.capture_output(received, lambda run_id: 0)
    launcher.launch(_request("r2"))
    wait_until(lambda: received.snapshot() == [("r2", "before")], "the first line arrived")
    launcher.close()  # what the control plane does as it stops, before closing its database
    log = launcher.log_path("r2")
    wait_until(lambda: "after" in log.read_text(), "the run printed its last line", timeout=10)
    assert received.snapshot() == [("r2", "before")]


def test_a_restarted_control_plane_copies_what_it_had_not_stored_of_a_running_run(tmp_path: Path) -> None:
    before = Received()
    first = LocalProcessLauncher(
        log_directory=tmp_path / "logs",
        python=_fake_python(
            tmp_path, "echo stored; sleep 0.6; echo 'printed while down'; sleep 1; echo late"
        ),
    )
    first.capture_output(before, lambda run_id: 0)
    handle = first.launch(_request("r3"))
    wait_until(lambda: before.snapshot() == [("r3", "stored")], "the first line arrived")
    first.close()  # the control plane stops; the run goes on printing
    log = first.log_path("r3")
    wait_until(lambda: "while down" in log.read_text(), "the run printed while no one copied")

    after = Received()
    restarted = LocalProcessLauncher(log_directory=tmp_path / "logs")
    restarted.capture_output(
        after, lambda run_id: len([line for run, line in before.snapshot() if run == run_id])
    )
    assert restarted.check("r3", handle).state is RunState.RUNNING
    restarted.check("r3", handle)  # a second look does not copy twice
    wait_until(lambda: restarted.check("r3", handle).state is RunState.NOT_FOUND, "the run ended", timeout=10)
    wait_until(lambda: ("r3", "late") in after.snapshot(), "the last line arrived", timeout=5)
    assert after.snapshot() == [("r3", "printed while down"), ("r3", "late")]


def test_the_rest_of_a_run_that_ended_while_the_control_plane_was_down_is_copied_once(tmp_path: Path) -> None:
    before = Received()
    first = LocalProcessLauncher(
        log_directory=tmp_path / "logs", python=_fake_python(tmp_path, "echo stored; sleep 0.5; echo last")
    )
    first.capture_output(before, lambda run_id: 0)
    handle = first.launch(_request("r4"))
    wait_until(lambda: before.snapshot() == [("r4", "stored")], "the first line arrived")
    first.close()
    wait_until(lambda: "last" in first.log_path("r4").read_text(), "the run printed its last line")

    after = Received()
    restarted = LocalProcessLauncher(log_directory=tmp_path / "logs")
    restarted.capture_output(after, lambda run_id: 1)  # "stored" was stored before the stop
    wait_until(lambda: restarted.check("r4", handle).state is RunState.NOT_FOUND, "the run is seen gone")
    wait_until(lambda: after.snapshot() == [("r4", "last")], "the rest of its output arrived")
    restarted.check("r4", handle)  # looking again copies nothing again
    time.sleep(0.3)
    assert after.snapshot() == [("r4", "last")]
