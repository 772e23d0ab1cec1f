"""Backfill benchmark: launch + planning until every run is queued, and one backfill end to end.

Daily chains a -> b -> c with no policy, single_run and multi_run(100), over 1 and 10 years, on
SQLite and PostgreSQL (``--postgres URL``; default the local server, skipped if unreachable). The
launcher records launches without executing them, to isolate orchestration. Then the cost of one
run outcome (its reports and the planning they wake) in a 1-year and a 10-year backfill, which
must be the same; the last figure runs a 1-year single_run backfill for real with the local launcher.
Run: ``.venv/bin/python benchmarks/backfill.py``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy  # noqa: E402

from code_server.asset_key import AssetKey  # noqa: E402
from code_server.partitions.keys import PartitionKeyRange  # noqa: E402
from code_server.server.spawn import spawn_code_server  # noqa: E402
from code_server.wire.automation import BackfillRequestSpec  # noqa: E402
from control_plane.app import ControlPlane, ControlPlaneConfig  # noqa: E402
from control_plane.records import PartitionStatus, RunRecord, RunStatus  # noqa: E402
from control_plane.runs.reports import PartitionOutcomeReport, RunFinishedReport, RunStartedReport  # noqa: E402
from control_plane.storage import BackfillProgressStore, RunStore  # noqa: E402
from control_plane.views import BackfillView, LaunchOptions  # noqa: E402
from launcher.base import LaunchRequest, RunHealth, RunLauncher, RunState, WorkerIdentity  # noqa: E402

ONE_YEAR = PartitionKeyRange("2024-01-01", "2024-12-31")
TEN_YEARS = PartitionKeyRange("2015-01-01", "2024-12-31")
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


class RecordingLauncher(RunLauncher):
    """Accepts every launch and runs nothing: the benchmark measures orchestration alone."""

    kind = "recording"

    def __init__(self) -> None:
        self.launched: list[str] = []

    def launch(self, request: LaunchRequest) -> str:
        self.launched.append(request.run_id)
        return request.run_id

    def terminate(self, run_id: str, handle: str) -> bool:
        return True

    def check(self, run_id: str, handle: str) -> RunHealth:
        return RunHealth(RunState.RUNNING)


@contextmanager
def control_plane(
    database_url: str, code_server: str, launcher: RunLauncher | None
) -> Iterator[ControlPlane]:
    plane = ControlPlane(
        ControlPlaneConfig(
            database_url=database_url, code_servers={"bench": code_server}, port=0, max_concurrent_runs=10
        ),
        launcher=launcher,
    )
    plane.start()
    try:
        yield plane
    finally:
        plane.stop()


def measure_launch(
    plane: ControlPlane, prefix: str, key_range: PartitionKeyRange
) -> tuple[float, int, int, float]:
    """Seconds to launch (resolve, plan, write every run as queued: the LaunchBackfill call), runs
    queued, partitions, and the launch's peak Python memory in MB (measured on a second, untimed
    launch, because tracing allocations slows everything down)."""
    spec = BackfillRequestSpec(
        asset_keys=tuple(AssetKey(f"{prefix}{name}") for name in "abc"), partition_ranges=(key_range,)
    )
    started = time.perf_counter()
    backfill_id = plane.engine.launch(spec, LaunchOptions(location="bench"))
    elapsed = time.perf_counter() - started
    assert isinstance(backfill_id, str)
    tracemalloc.start()
    plane.engine.launch(spec, LaunchOptions(location="bench"))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    view = plane.get_backfill(backfill_id)
    queued = len(plane.list_runs(backfill_id=backfill_id, limit=1_000_000))
    partitions = sum(sum(per_asset.values()) for per_asset in view.counts.values())
    return elapsed, queued, partitions, peak / 1e6


def planned_backfill(
    database_url: str, code_server: str, prefix: str, key_range: PartitionKeyRange
) -> tuple[ControlPlane, str, list[RunRecord]]:
    """A control plane (not serving; the caller stops it) that has launched and planned chain
    ``prefix`` over ``key_range``, and its runs in partition order."""
    plane = ControlPlane(
        ControlPlaneConfig(database_url=database_url, code_servers={"bench": code_server}, port=0),
        launcher=RecordingLauncher(),
    )
    plane.locations.refresh()
    spec = BackfillRequestSpec(
        asset_keys=tuple(AssetKey(f"{prefix}{name}") for name in "abc"), partition_ranges=(key_range,)
    )
    backfill_id = plane.engine.launch(spec, LaunchOptions(location="bench"))
    assert isinstance(backfill_id, str)
    plane.engine.tick()
    runs = sorted(
        plane.list_runs(backfill_id=backfill_id, limit=1_000_000), key=lambda run: str(run.partition_range)
    )
    return plane, backfill_id, runs


def measure_outcomes(
    database_url: str, code_server: str, key_range: PartitionKeyRange, count: int = 100
) -> float:
    """Milliseconds per run outcome: apply a run's started, materialized and finished reports for
    its partition of a, then plan (the next run, of b, is queued). On chain "u", whose assets are
    in separate units. It must not grow with the size of the backfill."""
    plane, backfill_id, runs = planned_backfill(database_url, code_server, "u", key_range)
    try:
        first_runs = runs[:count]
        now = datetime.now(UTC)
        started = time.perf_counter()
        for run in first_runs:
            play_run(plane, run, AssetKey("ua"), now)
            plane.engine.tick()
        elapsed = time.perf_counter() - started
        queued_b = [
            run
            for run in plane.list_runs(backfill_id=backfill_id, limit=1_000_000)
            if run.asset_keys == (AssetKey("ub"),)
        ]
        assert len(queued_b) == count, len(queued_b)
        return elapsed / count * 1000
    finally:
        plane.stop()


def play_run(plane: ControlPlane, run: RunRecord, asset: AssetKey, now: datetime) -> None:
    """What the queue and the run's worker do for a run that materializes ``asset``: mark it
    starting, claim it, report started, materialized and finished."""
    worker = WorkerIdentity(f"w-{run.id}", "bench", 1, None)
    RunStore(plane.database).update_status(run.id, RunStatus.STARTING, only_from=(RunStatus.QUEUED,))
    plane.reports.claim(run.id, run.attempt, worker, handle=None, now=now)
    plane.reports.apply(
        [
            RunStartedReport(run.id, worker.worker_id, 1, now),
            PartitionOutcomeReport(run.id, worker.worker_id, 2, now, asset, materialized=True),
            RunFinishedReport(run.id, worker.worker_id, 3, now, success=True),
        ]
    )


def measure_held(
    database_url: str, code_server: str, key_range: PartitionKeyRange, count: int = 100
) -> tuple[float, float]:
    """Chain "h" (``hb`` on single_run() below per-day ``ha``): milliseconds per outcome of ``ha``
    while ``hb`` holds (it must not grow with the backfill), then the milliseconds of the outcome
    that settles ``hb`` and plans its one run (the other days of ``ha`` are marked materialized
    directly, untimed)."""
    plane, backfill_id, runs = planned_backfill(database_url, code_server, "h", key_range)
    try:
        now = datetime.now(UTC)

        def finish(run: RunRecord) -> None:
            play_run(plane, run, AssetKey("ha"), now)
            plane.engine.tick()

        started = time.perf_counter()
        for run in runs[:count]:
            finish(run)
        held = (time.perf_counter() - started) / count * 1000
        assert len(plane.list_runs(backfill_id=backfill_id, limit=1_000_000)) == len(runs)
        rest = [run.partition_range.start for run in runs[count:-1] if run.partition_range is not None]
        BackfillProgressStore(plane.database).set_partition_status(
            backfill_id, AssetKey("ha"), rest, PartitionStatus.MATERIALIZED
        )
        started = time.perf_counter()
        finish(runs[-1])
        settling = (time.perf_counter() - started) * 1000
        planned_b = [
            run
            for run in plane.list_runs(backfill_id=backfill_id, limit=1_000_000)
            if run.asset_keys == (AssetKey("hb"),)
        ]
        assert [run.partition_range for run in planned_b] == [key_range], planned_b
        return held, settling
    finally:
        plane.stop()


def end_to_end(database_url: str, code_server: str) -> float:
    with control_plane(database_url, code_server, None) as plane:
        spec = BackfillRequestSpec(
            asset_keys=(AssetKey("sa"), AssetKey("sb"), AssetKey("sc")), partition_ranges=(ONE_YEAR,)
        )
        started = time.perf_counter()
        view = plane.launch_backfill(spec, LaunchOptions(location="bench"))
        assert isinstance(view, BackfillView)
        while not plane.get_backfill(view.record.id).record.status.is_terminal:
            time.sleep(0.02)
        elapsed = time.perf_counter() - started
        assert plane.list_runs(backfill_id=view.record.id)[0].status is RunStatus.SUCCESS
        return elapsed


def fresh_postgres(url: str) -> str | None:
    """A new empty schema for this run (dropped by nobody: the benchmark database is scratch)."""
    try:
        engine = sqlalchemy.create_engine(url)
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        with engine.begin() as connection:
            connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
        engine.dispose()
    except sqlalchemy.exc.OperationalError as error:
        print(f"PostgreSQL skipped ({url} unreachable: {error.orig})")
        return None
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options=-csearch_path%3D{schema}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="PostgreSQL URL ('' to skip)")
    args = parser.parse_args()
    server = spawn_code_server(module_name="benchmarks.chain_location", working_directory=str(ROOT))
    rows: list[tuple[str, ...]] = []
    outcomes: dict[tuple[str, str], float] = {}
    held: dict[tuple[str, str], tuple[float, float]] = {}
    try:
        with tempfile.TemporaryDirectory() as directory:
            databases = {"sqlite": f"sqlite:///{directory}/bench.db"}
            if args.postgres and (url := fresh_postgres(args.postgres)):
                databases["postgresql"] = url
            for name, url in databases.items():
                with control_plane(url, server.address, RecordingLauncher()) as plane:
                    for label, prefix, key_range in (
                        ("no policy, 1 year", "", ONE_YEAR),
                        ("no policy, 10 years", "", TEN_YEARS),
                        ("single_run, 10 years", "s", TEN_YEARS),
                        ("multi_run(100), 10 years", "m", TEN_YEARS),
                    ):
                        elapsed, queued, partitions, peak = measure_launch(plane, prefix, key_range)
                        rate = f"{queued / elapsed:,.0f} runs/s" if queued > 1 else "-"
                        rows.append(
                            (
                                name,
                                label,
                                f"{partitions:,}",
                                f"{queued:,}",
                                f"{elapsed * 1000:,.1f} ms",
                                rate,
                                f"{peak:.1f} MB",
                            )
                        )
                for label, key_range in (("1 year", ONE_YEAR), ("10 years", TEN_YEARS)):
                    outcomes[name, label] = measure_outcomes(url, server.address, key_range)
                    held[name, label] = measure_held(url, server.address, key_range)
            e2e = end_to_end(f"sqlite:///{directory}/end_to_end.db", server.address)
    finally:
        server.stop()
    header = (
        "database",
        "backfill (a -> b -> c)",
        "partitions",
        "runs queued",
        "launch+plan",
        "rate",
        "peak mem",
    )
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)))
    print("\nper run outcome (3 reports + planning the next run), a -> b -> c in three units:")
    for (name, label), milliseconds in outcomes.items():
        print(f"  {name:<10}  {label:<9} backfill  {milliseconds:.2f} ms")
    print("\nsingle_run() b below per-day a: per outcome of a while b holds; the outcome that plans b's run:")
    for (name, label), (holding, settling) in held.items():
        print(f"  {name:<10}  {label:<9} backfill  {holding:.2f} ms while held, {settling:.1f} ms to settle")
    print(f"\nend to end, 1-year single_run backfill with the local launcher (SQLite): {e2e:.2f} s")
    print(
        "Targets: >= 1,000 runs/s queued; 10 years with no policy < 5 s; single_run 10 years < 50 ms; "
        "multi_run(100) 10 years < 200 ms.\nDagster 1.13: ~10 runs/s; 38 s (SQLite) for 366 runs; "
        "single_run 10 years 66 s; multi_run(100) 70 s."
    )


if __name__ == "__main__":
    main()
