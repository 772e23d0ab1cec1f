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
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path

from launcher.base import (
    FailureKind,
    LauncherError,
    LaunchRequest,
    OutputHandler,
    RunHealth,
    RunLauncher,
    RunState,
    StoredLines,
)

_TERMINATE_GRACE_SECONDS = 5.0
_FOLLOW_INTERVAL_SECONDS = 0.1
#: Runs remembered as copied to their end (the latest ones), so their output is not copied again.
_REMEMBERED_RUNS = 10_000
#: Where run logs go by default (beside the embedded default's database).
DEFAULT_LOG_DIRECTORY = Path(".partita/run-logs")


class LocalProcessLauncher(RunLauncher):
    """Runs each run as a child process in its own session, so terminate stops its children too."""

    kind = "local"

    def __init__(
        self,
        *,
        log_directory: str | Path = DEFAULT_LOG_DIRECTORY,
        python: str = sys.executable,
        environment: Mapping[str, str] | None = None,
    ) -> None:
        #: Set by ``capture_output``; until then output stays in the run's log file only.
        self._on_output: OutputHandler | None = None
        self._log_directory = Path(log_directory)
        self._python = python
        self._environment = dict(environment or {})
        self._processes: dict[str, subprocess.Popen[bytes]] = {}
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._stored_lines: StoredLines = lambda run_id: 0
        #: Runs whose output is being copied now, and runs whose output was copied to its end.
        self._following: set[str] = set()
        self._copied: OrderedDict[str, None] = OrderedDict()

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
        self._start_following(request.run_id, log_path, lambda: process.poll() is None, skip_lines=lambda: 0)
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
            pid = int(handle)
            alive = _process_exists(pid)
            log_path = self.log_path(run_id)
            if log_path.exists():
                # Copy what it printed that the control plane has not stored (it stopped meanwhile),
                # to its end if the run ended meanwhile too.
                self._start_following(
                    run_id,
                    log_path,
                    lambda: _process_exists(pid),
                    skip_lines=lambda: self._stored_lines(run_id),
                )
            if alive:
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

    def capture_output(self, handler: OutputHandler, stored_lines: StoredLines) -> None:
        self._on_output = handler
        self._stored_lines = stored_lines

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

    def _start_following(
        self, run_id: str, log_path: Path, alive: Callable[[], bool], *, skip_lines: Callable[[], int]
    ) -> None:
        """Copy the run's output in a thread of its own, once per run: not again once copied to its end."""
        with self._lock:
            if run_id in self._following or run_id in self._copied or self._closed.is_set():
                return
            self._following.add(run_id)
        threading.Thread(
            target=self._follow_output,
            args=(run_id, log_path, alive, skip_lines),
            name=f"run-output-{run_id}",
            daemon=True,
        ).start()

    def _follow_output(
        self, run_id: str, log_path: Path, alive: Callable[[], bool], skip_lines: Callable[[], int]
    ) -> None:
        """Hand each line of the run's log after the first ``skip_lines()`` to ``on_output``, until
        the process has exited."""
        try:
            skip = skip_lines()
            with log_path.open("rb") as log:
                pending = b""
                while not self._closed.is_set():
                    exited = not alive()
                    chunk = log.read()
                    if chunk:
                        *lines, pending = (pending + chunk).split(b"\n")
                        for line in lines:
                            if skip:
                                skip -= 1
                            else:
                                self._emit(run_id, line)
                    elif exited:
                        if pending and not skip:
                            self._emit(run_id, pending)
                        return
                    else:
                        time.sleep(_FOLLOW_INTERVAL_SECONDS)
        finally:
            with self._lock:
                self._following.discard(run_id)
                if not self._closed.is_set():
                    self._copied[run_id] = None
                    while len(self._copied) > _REMEMBERED_RUNS:
                        self._copied.popitem(last=False)

    def _emit(self, run_id: str, line: bytes) -> None:
        if self._on_output is not None:
            self._on_output(run_id, line.decode(errors="replace"))


def _signal_group(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signum)


def _signal_orphan(pid: int, signum: signal.Signals) -> bool:
    if not _process_exists(pid):
        return False
    _signal_group(pid, signum)
    return True


def _process_exists(pid: int) -> bool:
    """Whether ``pid`` is a live process; one that has exited but not been reaped yet (a zombie,
    which a run started by this very process becomes) is not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        # /proc/PID/stat: "pid (comm) state ...", and comm may hold spaces or parentheses.
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return True  # no /proc (not Linux), or it went away meanwhile: the signal said it lived
    return state != "Z"
