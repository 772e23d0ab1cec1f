"""The embedded default's launcher: one ``partita execute-run`` subprocess per run.

A run's output goes to a log file of its own, not to a pipe into the control plane: a control plane
that is killed and restarted must not take its runs down with it (a write to a pipe whose reader
died fails), and the file keeps everything the run printed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from launcher.base import (
    FailureKind,
    LauncherError,
    LaunchRequest,
    OutputHandler,
    RunHealth,
    RunLauncher,
    RunState,
)

_TERMINATE_GRACE_SECONDS = 5.0
_FOLLOW_INTERVAL_SECONDS = 0.1
#: Where run logs go by default (beside the embedded default's database).
DEFAULT_LOG_DIRECTORY = Path(".partita/run-logs")


class LocalProcessLauncher(RunLauncher):
    """Runs each run as a child process in its own session, so terminate stops its children too."""

    kind = "local"

    def __init__(
        self,
        on_output: OutputHandler | None = None,
        *,
        log_directory: str | Path = DEFAULT_LOG_DIRECTORY,
        python: str = sys.executable,
        environment: Mapping[str, str] | None = None,
    ) -> None:
        self._on_output = on_output
        self._log_directory = Path(log_directory)
        self._python = python
        self._environment = dict(environment or {})
        self._processes: dict[str, subprocess.Popen[bytes]] = {}
        self._lock = threading.Lock()
        self._closed = threading.Event()

    def launch(self, request: LaunchRequest) -> str:
        command = [self._python, "-m", "partita.cli", *request.execute_run_arguments()]
        env = {**os.environ, **self._environment, "PYTHONUNBUFFERED": "1"}
        log_path = self.log_path(request.run_id)
        try:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            with log_path.open("ab") as log:
                process = subprocess.Popen(
                    command,
                    cwd=request.location.working_directory or None,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        except OSError as error:
            raise LauncherError(f"Could not start run {request.run_id}: {error}") from error
        with self._lock:
            self._processes[request.run_id] = process
        threading.Thread(
            target=self._follow_output,
            args=(request.run_id, process, log_path),
            name=f"run-output-{request.run_id}",
            daemon=True,
        ).start()
        return str(process.pid)

    def log_path(self, run_id: str) -> Path:
        return self._log_directory / f"{run_id}.log"

    def terminate(self, run_id: str, handle: str) -> bool:
        process = self._processes.get(run_id)
        if process is None:
            return _signal_orphan(int(handle), signal.SIGTERM)
        if process.poll() is not None:
            return False
        _signal_group(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=_TERMINATE_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            _signal_group(process.pid, signal.SIGKILL)
            process.wait()
        return True

    def check(self, run_id: str, handle: str) -> RunHealth:
        process = self._processes.get(run_id)
        if process is None:
            # Launched before this control plane started: all we can know is whether it lives.
            if _process_exists(int(handle)):
                return RunHealth(RunState.RUNNING)
            return RunHealth(
                RunState.NOT_FOUND,
                f"Run process {handle} is gone: it ended or was killed while the control plane was not watching.",
            )
        code = process.poll()
        if code is None:
            return RunHealth(RunState.RUNNING)
        if code == 0:
            return RunHealth(RunState.SUCCEEDED)
        if code < 0:
            name = signal.Signals(-code).name
            return RunHealth(
                RunState.FAILED, f"Run process {process.pid} was killed by {name}.", FailureKind.WORKER_LOST
            )
        return RunHealth(
            RunState.FAILED, f"Run process {process.pid} exited with code {code}.", FailureKind.WORKER_EXITED
        )

    def capture_output(self, handler: OutputHandler) -> None:
        self._on_output = handler

    def forget(self, run_id: str) -> None:
        """Drop a finished run's process record."""
        with self._lock:
            self._processes.pop(run_id, None)

    def close(self) -> None:
        """Stop copying output (the handler's database is about to close); runs keep running, and
        their log files keep what they print."""
        self._closed.set()
        with self._lock:
            self._processes.clear()

    def _follow_output(self, run_id: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
        """Hand each complete line of the run's log to ``on_output`` until the process has exited."""
        with log_path.open("rb") as log:
            pending = b""
            while not self._closed.is_set():
                exited = process.poll() is not None
                chunk = log.read()
                if chunk:
                    *lines, pending = (pending + chunk).split(b"\n")
                    for line in lines:
                        if self._on_output is not None:
                            self._on_output(run_id, line.decode(errors="replace"))
                elif exited:
                    if pending and self._on_output is not None:
                        self._on_output(run_id, pending.decode(errors="replace"))
                    return
                else:
                    time.sleep(_FOLLOW_INTERVAL_SECONDS)


def _signal_group(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signum)


def _signal_orphan(pid: int, signum: signal.Signals) -> bool:
    if not _process_exists(pid):
        return False
    _signal_group(pid, signum)
    return True


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
