"""The seam between the control plane and whatever runs a run: a process, a Kubernetes Job."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from code_server.asset_key import AssetKey
from code_server.partitions.keys import PartitionKeyRange


@dataclass(frozen=True, slots=True)
class CodeLocationTarget:
    """How to load a location's code where the run executes."""

    name: str
    module_name: str | None = None
    python_file: str | None = None
    working_directory: str | None = None
    #: The user-code image (Kubernetes); ignored by the local launcher.
    image: str | None = None


@dataclass(frozen=True, slots=True)
class LaunchRequest:
    """Everything a launcher needs to start one run; nothing else is read from storage."""

    run_id: str
    location: CodeLocationTarget
    asset_keys: tuple[AssetKey, ...]
    partition_range: PartitionKeyRange | None
    #: HOST:PORT the run worker reports to.
    control_plane_address: str
    backfill_id: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    #: The run attempt the worker claims before executing (``RunRecord.attempt``).
    attempt: int = 1
    #: Environment the worker needs to reach the control plane (``PARTITA_TLS_*``: paths as the
    #: worker sees them); every launcher sets it in the worker's environment.
    reporting_environment: Mapping[str, str] = field(default_factory=dict)
    #: What lets the worker claim and report on this attempt, and nothing else. Handed over in the
    #: worker's environment (``PARTITA_RUN_CREDENTIAL``), never in its arguments (``/proc/PID/cmdline``
    #: is world-readable), and never shown in a repr or log line.
    run_credential: str = field(default="", repr=False)

    def execute_run_arguments(self) -> list[str]:
        """The ``partita execute-run`` arguments for this run (the same for every launcher); the
        run credential is not one of them (see ``worker_secrets``)."""
        arguments = ["execute-run", "--run-id", self.run_id, "--attempt", str(self.attempt)]
        if self.location.module_name:
            arguments += ["-m", self.location.module_name]
        elif self.location.python_file:
            arguments += ["-f", self.location.python_file]
        if self.location.working_directory:
            arguments += ["--working-directory", self.location.working_directory]
        arguments += ["--assets", ",".join(key.to_user_string() for key in self.asset_keys)]
        if self.partition_range is not None:
            if self.partition_range.start == self.partition_range.end:
                arguments += ["--partition-key", self.partition_range.start]
            else:
                arguments += ["--partition-range", str(self.partition_range)]
        arguments += ["--control-plane", self.control_plane_address]
        return arguments


#: The environment variable the run worker reads its run credential from.
RUN_CREDENTIAL_VARIABLE = "PARTITA_RUN_CREDENTIAL"


def worker_secrets(request: LaunchRequest) -> dict[str, str]:
    """The environment variables that carry the run's secrets to its worker (its credential)."""
    return {RUN_CREDENTIAL_VARIABLE: request.run_credential} if request.run_credential else {}


class RunState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    #: The launcher has no trace of the run (process gone, Job deleted by hand).
    NOT_FOUND = "not_found"


class FailureKind(StrEnum):
    """Why a run failed (the API's RunFailureKind). Launchers report the infrastructure kinds; the
    control plane adds the asset kinds from the run worker's reports."""

    ASSET_FAILED = "asset_failed"
    ASSET_NOT_DEFINED = "asset_not_defined"
    LAUNCH_FAILED = "launch_failed"
    START_TIMEOUT = "start_timeout"
    MAX_RUNTIME_EXCEEDED = "max_runtime_exceeded"
    WORKER_EXITED = "worker_exited"
    WORKER_LOST = "worker_lost"
    IMAGE_PULL_FAILED = "image_pull_failed"
    CONTAINER_CONFIG_ERROR = "container_config_error"
    OUT_OF_MEMORY = "out_of_memory"
    EVICTED = "evicted"
    DEADLINE_EXCEEDED = "deadline_exceeded"


@dataclass(frozen=True, slots=True)
class RunHealth:
    """What the launcher knows about a run, with the reason a user needs when it went wrong.

    ``reason`` may be set on a pending run too (e.g. a pod that cannot be scheduled), so that a
    start timeout can say why the run never started.
    """

    state: RunState
    reason: str | None = None
    failure_kind: FailureKind | None = None


@dataclass(frozen=True, slots=True)
class WorkerIdentity:
    """The run worker process that claimed a run attempt, as it described itself in its claim."""

    worker_id: str
    hostname: str = ""
    pid: int = 0
    #: Its start time in clock ticks since boot (``code_server.process_identity``); None if unknown.
    process_start_ticks: int | None = None


#: Called with (run_id, line) for each line a run prints; the control plane stores them as its logs.
OutputHandler = Callable[[str, str], None]
#: How many lines of a run's output the control plane has stored (a launcher resumes after them).
StoredLines = Callable[[str], int]


class LauncherError(Exception):
    """A launcher could not start or stop a run; the message says why."""


class InvalidRunSettings(LauncherError):
    """A run's tags ask for launch settings that are malformed (the caller's mistake, said at launch)."""


class RunSettingsNotAllowed(LauncherError):
    """A run's tags ask for a launch setting the operator's configuration does not allow."""


class RunLauncher(ABC):
    """Starts runs, stops them, and tells how they are doing."""

    #: Short name stored on each run ("local", "k8s").
    kind: str

    @abstractmethod
    def launch(self, request: LaunchRequest) -> str:
        """Start the run; return a handle (pid, Job name) that ``terminate`` and ``check`` take."""

    @abstractmethod
    def terminate(self, run_id: str, handle: str) -> bool:
        """Stop the run now; False if it had already finished or does not exist."""

    @abstractmethod
    def check(self, run_id: str, handle: str) -> RunHealth:
        """Report the run's health as the launcher sees it."""

    def check_run_settings(self, location: str, tags: Mapping[str, str]) -> None:  # noqa: B027
        """Refuse, before a backfill is stored, tags that this launcher would refuse at launch.

        Raises InvalidRunSettings (malformed) or RunSettingsNotAllowed (a key the configuration does
        not allow for ``location``), so the caller of LaunchBackfill hears it, not a failed run later.
        A launcher that takes no settings from tags accepts anything.
        """

    def find(self, request: LaunchRequest) -> str | None:
        """The handle of a worker of this run that was started and not recorded (the control plane
        stopped between the launch and writing the handle), or None when there is no trace of one.

        How a launch cut off by a crash is recovered: by asking, not by guessing. A launcher that
        cannot look says None; the worker's claim then still keeps a second launch from executing.
        Raises ``LauncherError`` when it cannot tell now (its backend is unreachable).
        """
        return None

    def handle_for_worker(self, worker: WorkerIdentity) -> str | None:
        """The handle of the process that claimed a run, when it differs from the launch's own (the
        local launcher names processes by pid); None keeps the handle the launch returned."""
        return None

    def check_many(self, runs: Sequence[tuple[str, str]]) -> dict[str, RunHealth]:
        """``check`` for many (run id, handle) pairs at once; a launcher that can ask in bulk does."""
        return {run_id: self.check(run_id, handle) for run_id, handle in runs}

    def capture_output(self, handler: OutputHandler, stored_lines: StoredLines) -> None:  # noqa: B027
        """Send every line the runs print to ``handler`` (a launcher that cannot, doesn't). For a run
        it finds running after a restart, it skips the first ``stored_lines(run_id)`` lines."""

    def close(self) -> None:  # noqa: B027  (optional hook: most launchers hold nothing)
        """Release resources; running runs are left alone."""
