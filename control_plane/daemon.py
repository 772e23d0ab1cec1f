"""The control plane's loop: plan what changed, launch what is queued, watch what runs.

Woken at once by anything that changes work (a launch, a run's report, a limit change); otherwise
it wakes every ``idle_seconds`` to ask code locations and launchers how things stand.

A database fault (unreachable, full, read-only) fails every step until it ends; the loop keeps
ticking and logs one line when the episode starts and one when the last failing step works again,
instead of a traceback per step per tick.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from control_plane.storage.errors import StorageFault

logger = logging.getLogger("partita.control_plane.daemon")


class Daemon:
    def __init__(self, *, name: str = "partita-daemon", idle_seconds: float = 1.0) -> None:
        self._name = name
        self._steps: list[tuple[str, Callable[[], object]]] = []
        self._periodic: list[tuple[str, float, Callable[[], object], list[float]]] = []
        self._idle_seconds = idle_seconds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.ticks = 0
        self.outage = StorageOutage(name)

    def add_step(self, name: str, step: Callable[[], object]) -> None:
        """Run ``step`` on every tick, in the order added."""
        self._steps.append((name, step))

    def add_periodic(self, name: str, interval: float, step: Callable[[], object]) -> None:
        """Run ``step`` on the first tick at least ``interval`` seconds after its last run."""
        self._periodic.append((name, interval, step, [0.0]))

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def tick(self) -> None:
        """One pass: every step, then the periodic ones that are due. Errors are logged, never fatal."""
        self.ticks += 1
        for name, step in self._steps:
            self._guarded(name, step)
        now = time.monotonic()
        for name, interval, step, last in self._periodic:
            if now - last[0] >= interval:
                last[0] = now
                self._guarded(name, step)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._idle_seconds)
            self._wake.clear()
            if self._stop.is_set():
                return
            self.tick()

    def _guarded(self, name: str, step: Callable[[], object]) -> None:
        try:
            step()
        except StorageFault as fault:
            self.outage.failed(name, fault)
        except Exception:
            logger.exception("Daemon step %s failed; it runs again next tick", name)
        else:
            self.outage.succeeded(name)


class StorageOutage:
    """One episode of database faults, as the steps of a loop see it: logged when it starts (or its
    kind changes) and when every step that failed in it has worked again."""

    def __init__(self, loop: str, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._loop = loop
        self._clock = clock
        self._failing: set[str] = set()
        self._since = 0.0
        self._started = ""
        self._kind: type[StorageFault] | None = None

    @property
    def ongoing(self) -> bool:
        return bool(self._failing)

    def failed(self, step: str, fault: StorageFault) -> None:
        if not self._failing:
            self._since = self._clock()
            self._started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        if type(fault) is not self._kind:
            self._kind = type(fault)
            logger.warning(
                "%s: database failing since %s (step %s): %s Retrying every tick until it is back.",
                self._loop,
                self._started,
                step,
                fault,
            )
        self._failing.add(step)

    def succeeded(self, step: str) -> None:
        if step not in self._failing:
            return
        self._failing.discard(step)
        if not self._failing:
            logger.warning("%s: database back after %.1f s", self._loop, self._clock() - self._since)
            self._kind = None
