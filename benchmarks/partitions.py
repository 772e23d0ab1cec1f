"""Benchmark of time-window partitions: key lists, one key's window, and key ranges.

Run as ``.venv/bin/python benchmarks/partitions.py [--repeats N] [--cpu]``. Prints the median (and
the best) of N repeats per measurement beside the same measurement of Dagster 1.13 on the reference
machine and the targets (5x faster, aiming at 10x); the speed-up is the median's.

* ``keys cold``: ``get_partition_keys`` on a definition created for that repeat, so nothing
  computed by an earlier call is reused. (The UTC-offset transitions of a time zone are cached per
  process, like ``zoneinfo``'s own cache; ``first use`` is the very first call, paying for them.)
* ``keys warm``: the same call again on the same definition.
* ``window / key``: ``time_window_for_partition_key`` per call, each key used once, on a new
  definition that has listed its keys once (which covers its span of time; no key is cached).
* ``range 10k``: ``get_partition_keys_in_range`` of a 10,000-key range, on a new definition.
"""

from __future__ import annotations

import argparse
import functools
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from code_server.partitions.keys import PartitionKeyRange
from code_server.partitions.time_window import (
    DailyPartitionsDefinition,
    HourlyPartitionsDefinition,
    TimeWindowPartitionsDefinition,
)

NOW = datetime(2025, 1, 1, tzinfo=UTC)
#: Dagster 1.13 on the reference machine, in seconds (UTC definitions).
DAGSTER = {
    "daily": {"keys": 59e-3, "window": 12e-6, "range": 52e-3},
    "hourly": {"keys": 236e-3, "window": 12e-6, "range": 52e-3},
}
WINDOW_KEYS = 2000


#: Wall-clock time by default; ``--cpu`` measures this process's CPU time instead, which other
#: processes competing for the cores disturb less.
_clock = time.perf_counter


def _timed(action: Callable[..., object], *arguments: object) -> float:
    began = _clock()
    action(*arguments)
    return _clock() - began


def _windows(definition: TimeWindowPartitionsDefinition, keys: list[str]) -> None:
    for key in keys:
        definition.time_window_for_partition_key(key)


def _keys(make: Callable[[], TimeWindowPartitionsDefinition]) -> None:
    make().get_partition_keys(NOW)


def _format(seconds: float) -> str:
    if seconds >= 1e-3:
        return f"{seconds * 1e3:8.2f} ms"
    return f"{seconds * 1e6:8.2f} us"


def _measure(make: Callable[[], TimeWindowPartitionsDefinition], repeats: int) -> dict[str, list[float]]:
    """Samples of every measure (one for ``first use``)."""
    first_use = _timed(_keys, make)
    cold = [_timed(_keys, make) for _ in range(repeats)]
    warm_definition = make()
    warm_definition.get_partition_keys(NOW)
    warm = [_timed(warm_definition.get_partition_keys, NOW) for _ in range(repeats)]

    keys = list(warm_definition.get_partition_keys(NOW))
    rng = random.Random(7)
    windows = []
    for _ in range(repeats):
        definition = make()
        definition.get_partition_keys(NOW)  # as a planner would; keys are not cached, only the timeline
        windows.append(_timed(_windows, definition, rng.sample(keys, WINDOW_KEYS)) / WINDOW_KEYS)

    ranges = []
    for _ in range(repeats):
        first = rng.randrange(len(keys) - 10_000)
        key_range = PartitionKeyRange(keys[first], keys[first + 9_999])
        definition = make()
        ranges.append(_timed(definition.get_partition_keys_in_range, key_range))
        assert list(definition.get_partition_keys_in_range(key_range)) == keys[first : first + 10_000]
    return {
        "count": [len(keys)],
        "keys cold": cold,
        "keys warm": warm,
        "first use": [first_use],
        "window / key": windows,
        "range 10k": ranges,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--cpu", action="store_true", help="measure CPU time instead of wall-clock time")
    options = parser.parse_args()
    repeats = options.repeats
    global _clock
    if options.cpu:
        _clock = time.process_time

    cases: list[tuple[str, str, Callable[[], TimeWindowPartitionsDefinition]]] = []
    for zone in ("UTC", "America/Chicago"):
        cases.append(
            (
                "daily",
                f"30-year daily, {zone}",
                functools.partial(DailyPartitionsDefinition, "1995-01-01", timezone=zone),
            )
        )
        cases.append(
            (
                "hourly",
                f"5-year hourly, {zone}",
                functools.partial(HourlyPartitionsDefinition, "2020-01-01-00:00", timezone=zone),
            )
        )

    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    clock = "CPU" if options.cpu else "wall-clock"
    print(f"Time-window partitions, current_time {NOW:%Y-%m-%d}, median of {repeats} repeats, {clock} time")
    print(f"(load average {load}: other processes on the machine slow every figure down)")
    header = (
        f"{'case':40} {'measure':13} {'median':>11} {'best':>11} {'dagster':>11} {'speed-up':>9} "
        f"{'target 5x':>11} {'10x':>11}"
    )
    print(header)
    print("-" * len(header))
    references = {"keys cold": "keys", "window / key": "window", "range 10k": "range"}
    for shape, title, make in cases:
        figures = _measure(make, repeats)
        title_with_count = f"{title} ({int(figures.pop('count')[0]):,})"
        for measure, samples in figures.items():
            value = statistics.median(samples)
            line = f"{title_with_count:40} {measure:13} {_format(value)} {_format(min(samples))}"
            if measure in references:
                reference = DAGSTER[shape][references[measure]]
                line += f" {_format(reference)} {reference / value:8.1f}x {_format(reference / 5)} {_format(reference / 10)}"
            print(line)
            title_with_count = ""
    print("Dagster figures are for UTC definitions; the same targets are applied to America/Chicago.")


if __name__ == "__main__":
    main()
