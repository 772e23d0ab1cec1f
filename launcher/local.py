"""The embedded default's launcher: one ``partita execute-run`` subprocess per run.

A run's output goes to a log file of its own, not to a pipe into the control plane: a control plane
that is killed and restarted must not take its runs down with it (a write to a pipe whose reader
died fails), and the file keeps everything the run printed.

A run's handle is ``PID:START`` (the process's start time in clock ticks since boot, see
``code_server.process_identity``). A process this launcher did not start itself (one launched before
a restart) is taken for the run's only while its pid, start time and the run id in its command line
all match: a recycled pid is never reported on, or signalled, as the run's.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from code_server.process_identity import has_proc, live_pids, process_arguments, process_stat
from launcher.base import (
    FailureKind,
    LauncherError,
    LaunchRequest,
    OutputHandler,
    RunHealth,
    RunLauncher,
    RunState,
    StoredLines,
    WorkerIdentity,
    worker_secrets,
)
from launcher.worker_env import worker_environment

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
        worker_env: Sequence[str] = (),
    ) -> None:
        """``environment``: settings every worker gets; ``worker_env``: the names (or ``PREFIX*``) of
        this process's variables workers may see besides the base ones (``launcher.worker_env``)."""
        #: Set by ``capture_output``; until then output stays in the run's log file only.
        self._on_output: OutputHandler | None = None
        self._log_directory = Path(log_directory)
        self._python = python
        self._environment = dict(environment or {})
        self._worker_env = tuple(worker_env)
        self._processes: dict[str, subprocess.Popen[bytes]] = {}
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._stored_lines: StoredLines = lambda run_id: 0
        #: Runs whose output is being copied now, and runs whose output was copied to its end.
        self._following: set[str] = set()
        self._copied: OrderedDict[str, None] = OrderedDict()

    def launch(self, request: LaunchRequest) -> str:
        command = [self._python, "-m", "partita.cli", *request.execute_run_arguments()]
        # Never the control plane's whole environment: its database URL and secrets stay here.
        env = worker_environment(
            self._worker_env,
            settings={
                **self._environment,
                **request.reporting_environment,
                "PYTHONUNBUFFERED": "1",
                **worker_secrets(request),
            },
        )
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
        return process_handle(process.pid)

    def log_path(self, run_id: str) -> Path:
        return self._log_directory / f"{run_id}.log"

    def terminate(self, run_id: str, handle: str) -> bool:
        process = self._own_process(run_id, handle)
        if process is None:
            identity = _RunProcess.parse(run_id, handle)
            if identity.alive_as_run() is not None:
                return False
            _signal_group(identity.pid, signal.SIGTERM)
            return True
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
        process = self._own_process(run_id, handle)
        if process is None:
            # Not started by this launcher (before a restart, or a worker that claimed the run from
            # another launch): all we can know is whether that very process still lives.
            identity = _RunProcess.parse(run_id, handle)
            gone = identity.alive_as_run()
            log_path = self.log_path(run_id)
            if log_path.exists():
                # Copy what it printed that the control plane has not stored (it stopped meanwhile),
                # to its end if the run ended meanwhile too.
                self._start_following(
                    run_id,
                    log_path,
                    lambda: identity.alive_as_run() is None,
                    skip_lines=lambda: self._stored_lines(run_id),
                )
            if gone is None:
                return RunHealth(RunState.RUNNING)
            return RunHealth(RunState.NOT_FOUND, gone)
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

    def find(self, request: LaunchRequest) -> str | None:
        """The handle of a live ``execute-run`` process of this run (started by an earlier control
        plane that stopped before recording it), found by its command line in /proc."""
        for pid in live_pids():
            arguments = process_arguments(pid)
            stat = process_stat(pid)
            if arguments is None or stat is None or stat.exited:
                continue
            if _runs_run(arguments, request.run_id):
                return process_handle(pid, stat.start_ticks)
        return None

    def handle_for_worker(self, worker: WorkerIdentity) -> str | None:
        """A worker on this host is named by its own pid and start time."""
        if worker.pid <= 0 or worker.hostname != socket.gethostname():
            return None
        return process_handle(worker.pid, worker.process_start_ticks)

    def capture_output(self, handler: OutputHandler, stored_lines: StoredLines) -> None:
        self._on_output = handler
        self._stored_lines = stored_lines

    def _own_process(self, run_id: str, handle: str) -> subprocess.Popen[bytes] | None:
        """The child this launcher started for the run, if ``handle`` names it (a claim by another
        launch's worker can move a run's handle to that worker)."""
        process = self._processes.get(run_id)
        if process is None:
            return None
        if _RunProcess.parse(run_id, handle).pid != process.pid:
            process.poll()  # reap it if it exited (a worker refused its claim exits at once)
            return None
        return process

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


def process_handle(pid: int, start_ticks: int | None = None) -> str:
    """The handle of a run's process: ``PID:START`` (``PID`` alone where start times are unknown)."""
    if start_ticks is None:
        stat = process_stat(pid)
        start_ticks = stat.start_ticks if stat else None
    return str(pid) if start_ticks is None else f"{pid}:{start_ticks}"


@dataclass(frozen=True, slots=True)
class _RunProcess:
    """A run's process as its handle names it."""

    run_id: str
    pid: int
    #: None for a handle stored without one (older control planes, hosts without /proc).
    start_ticks: int | None

    @classmethod
    def parse(cls, run_id: str, handle: str) -> _RunProcess:
        pid_text, _, start_text = handle.partition(":")
        try:
            return cls(run_id, int(pid_text), int(start_text) if start_text else None)
        except ValueError:
            raise LauncherError(f"Not a local run handle (PID or PID:START): {handle!r}") from None

    def alive_as_run(self) -> str | None:
        """None while this very process lives and runs the run; otherwise why it is not the run's."""
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return self._gone("it ended or was killed while the control plane was not watching")
        except PermissionError:
            pass  # it exists, owned by someone else: the checks below decide whose it is
        stat = process_stat(self.pid)
        if stat is None:
            # No /proc (not Linux), or it went away meanwhile: the signal said it lived.
            return None if not has_proc() else self._gone("it just ended")
        if stat.exited:
            return self._gone("it exited")
        if self.start_ticks is not None and stat.start_ticks != self.start_ticks:
            return self._gone(f"pid {self.pid} now belongs to another process, started later")
        arguments = process_arguments(self.pid)
        if arguments is not None and not _runs_run(arguments, self.run_id):
            return self._gone(f"pid {self.pid} now belongs to another process ({' '.join(arguments)[:80]})")
        return None

    def _gone(self, why: str) -> str:
        return f"Run process {self.pid} is gone: {why}."


def _runs_run(arguments: list[str], run_id: str) -> bool:
    """Whether a command line is ``partita execute-run`` for ``run_id``."""
    if "execute-run" not in arguments:
        return False
    return (
        any(
            argument == "--run-id" and index + 1 < len(arguments) and arguments[index + 1] == run_id
            for index, argument in enumerate(arguments)
        )
        or f"--run-id={run_id}" in arguments
    )


def _signal_group(pid: int, signum: signal.Signals) -> None:
    """Signal the run's process group (its worker and what it started); just the process when it
    leads no group (a worker started by other means)."""
    with contextlib.suppress(ProcessLookupError):
        if os.getpgid(pid) == pid:
            os.killpg(pid, signum)
        else:
            os.kill(pid, signum)
