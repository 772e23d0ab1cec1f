"""What tells one process from another that later gets the same pid: its start time, read from /proc.

A pid is recycled once its process exits, so a pid stored by a control plane that restarts may name an
unrelated process by then. The pair (pid, start time) does not repeat until the host reboots. The run
worker reports its own pair when it claims a run; the local launcher checks the pair (and the run id in
the command line) before it reports on, or signals, a process it did not start itself.

Off Linux (no /proc) start times are unknown (``None``): callers fall back to the pid alone.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_PROC = Path("/proc")


@dataclass(frozen=True, slots=True)
class ProcessStat:
    """The parts of ``/proc/PID/stat`` that identify a process and say whether it still runs."""

    #: Single-letter state: R, S, D, Z (exited, not reaped), ...
    state: str
    #: When the process started, in clock ticks since boot (field 22).
    start_ticks: int

    @property
    def exited(self) -> bool:
        return self.state in ("Z", "X")


def process_stat(pid: int) -> ProcessStat | None:
    """The process's state and start time; None when there is no such process (or no /proc)."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except (OSError, ValueError):
        return None
    # "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ")".
    fields = text.rpartition(")")[2].split()
    try:
        return ProcessStat(state=fields[0], start_ticks=int(fields[19]))
    except (IndexError, ValueError):
        return None


def own_start_ticks() -> int | None:
    """This process's start time in clock ticks since boot, or None off Linux."""
    stat = process_stat(os.getpid())
    return stat.start_ticks if stat else None


def process_arguments(pid: int) -> list[str] | None:
    """The process's command line, argument by argument; None when unreadable or gone."""
    try:
        raw = (_PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def has_proc() -> bool:
    """Whether this host has a Linux-style /proc to read identities from."""
    return (_PROC / "self" / "stat").exists()


def live_pids() -> list[int]:
    """Every pid in /proc now (empty without /proc)."""
    try:
        return [int(entry.name) for entry in _PROC.iterdir() if entry.name.isdecimal()]
    except OSError:
        return []
