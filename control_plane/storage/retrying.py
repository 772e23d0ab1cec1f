"""Retrying a write through a short database fault, for callers that have nowhere to put it meanwhile.

The run output copier is one: a line it cannot store now is a line lost, unless it waits (the run's
log file holds what comes after, so waiting is the buffer). Waiting is bounded, so a database that
stays down ends in the fault, as it would without retries.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from control_plane.storage.errors import StorageFault

logger = logging.getLogger("partita.control_plane.storage")

T = TypeVar("T")

#: How long a write is retried before its fault is raised: long enough for a database restart.
DEFAULT_GIVE_UP_AFTER = 60.0


def retry_through_faults(
    write: Callable[[], T],
    *,
    what: str,
    give_up_after: float = DEFAULT_GIVE_UP_AFTER,
    sleep: Callable[[float], object] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """``write()``, retried with backoff (0.05 s doubling to 2 s) while it raises a ``StorageFault``.

    Logs one line when the first retry starts and one when the write got through; raises the last
    fault after ``give_up_after`` seconds.
    """
    deadline = clock() + give_up_after
    delay = 0.05
    started: float | None = None
    while True:
        try:
            result = write()
        except StorageFault as fault:
            now = clock()
            if now + delay > deadline:
                logger.error("Gave up storing %s after %.0f s: %s", what, give_up_after, fault)
                raise
            if started is None:
                started = now
                logger.warning(
                    "Could not store %s, retrying for up to %.0f s: %s", what, give_up_after, fault
                )
            sleep(delay)
            delay = min(delay * 2, 2.0)
            continue
        if started is not None:
            logger.warning("Stored %s after %.1f s of retries", what, clock() - started)
        return result
