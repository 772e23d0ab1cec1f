"""Benchmark of the storage layer's bulk operations on a ten-year daily backfill.

Run as ``.venv/bin/python benchmarks/storage.py [--postgres URL] [--repeats N]``. Prints the median
of N repeats per operation, on SQLite (a temp file) and, given a URL, on PostgreSQL (a schema created
for the run and dropped afterwards). Each repeat starts from an empty migrated database.

* ``create backfill``: one backfill of 3 assets x 3,653 daily partitions (10,959 partition rows),
  with its assets, tags and request, in one transaction, given per partition (the slow path a
  launch does not take: it gives spans, a row per run and asset).
* ``create runs + assign``: 3,653 runs of one partition of the root asset (with assets and tags),
  and the assignment of their partitions, in one transaction: what planning a no-policy backfill
  writes.
* ``mark materialized``: 3,653 partitions of one asset set to materialized in one call.
* ``partition counts``: the per-asset, per-status counts of that backfill (one GROUP BY).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa

from code_server.asset_key import AssetKey
from code_server.partitions.keys import PartitionKeyRange
from code_server.wire.automation import BackfillRequestSpec
from control_plane.records import (
    BackfillPartition,
    BackfillRecord,
    BackfillStatus,
    PartitionSpan,
    PartitionStatus,
    RunRecord,
    RunStatus,
)
from control_plane.storage import BackfillProgressStore, BackfillStore, Database, RunStore

NOW = datetime(2025, 1, 1, tzinfo=UTC)
ASSETS = (AssetKey("a"), AssetKey("b"), AssetKey("c"))
KEYS = [(date(2015, 1, 1) + timedelta(days=n)).isoformat() for n in range(3_653)]
OPERATIONS = ("create backfill", "create runs + assign", "mark materialized", "partition counts")


def _backfill() -> tuple[BackfillRecord, list[BackfillPartition]]:
    record = BackfillRecord(
        id="bf",
        status=BackfillStatus.RUNNING,
        location="bench",
        asset_keys=ASSETS,
        created_at=NOW,
        updated_at=NOW,
        tags={"team": "data"},
    )
    partitions = [
        BackfillPartition("bf", asset, key, position) for asset in ASSETS for position, key in enumerate(KEYS)
    ]
    return record, partitions


def _runs() -> list[RunRecord]:
    return [
        RunRecord(
            id=f"run-{index:05d}",
            location="bench",
            asset_keys=(ASSETS[0],),
            status=RunStatus.QUEUED,
            created_at=NOW,
            updated_at=NOW,
            backfill_id="bf",
            partition_range=PartitionKeyRange(key, key),
            partition_count=1,
            tags={"team": "data", "partita/backfill_id": "bf"},
        )
        for index, key in enumerate(KEYS)
    ]


def _one_repeat(database: Database) -> dict[str, float]:
    backfills, progress, runs = BackfillStore(database), BackfillProgressStore(database), RunStore(database)
    record, partitions = _backfill()
    run_records = _runs()
    request = BackfillRequestSpec(asset_keys=ASSETS, partition_ranges=(PartitionKeyRange(KEYS[0], KEYS[-1]),))
    timings: dict[str, float] = {}

    def timed(name: str, operation: Callable[[], object]) -> None:
        start = time.perf_counter()
        operation()
        timings[name] = time.perf_counter() - start

    timed("create backfill", lambda: backfills.create(record, partitions, request=request))

    def create_and_assign() -> None:
        with database.transaction() as connection:
            runs.create_many(run_records, connection=connection)
            progress.assign_runs(
                "bf",
                [
                    PartitionSpan(ASSETS[0], position, position, PartitionStatus.QUEUED, run.id)
                    for position, run in enumerate(run_records)
                ],
                connection=connection,
            )

    timed("create runs + assign", create_and_assign)
    timed(
        "mark materialized",
        lambda: progress.set_partition_status("bf", ASSETS[0], KEYS, PartitionStatus.MATERIALIZED),
    )
    timed("partition counts", lambda: progress.partition_counts("bf"))
    counts = progress.partition_counts("bf")
    assert counts[ASSETS[0]] == {PartitionStatus.MATERIALIZED: len(KEYS)}, counts
    return timings


@contextmanager
def _sqlite() -> Iterator[Callable[[], Database]]:
    with tempfile.TemporaryDirectory() as directory:
        names = iter(range(1_000_000))
        yield lambda: Database.open(f"sqlite:///{directory}/bench-{next(names)}.db")


@contextmanager
def _postgres(url: str) -> Iterator[Callable[[], Database]]:
    server = sa.create_engine(url, poolclass=sa.NullPool)
    schemas: list[str] = []

    def fresh() -> Database:
        schema = f"bench_{uuid.uuid4().hex[:12]}"
        with server.begin() as connection:
            connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        schemas.append(schema)
        scoped = server.url.update_query_dict({"options": f"-csearch_path={schema}"})
        return Database.open(scoped.render_as_string(hide_password=False))

    try:
        yield fresh
    finally:
        with server.begin() as connection:
            for schema in schemas:
                connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        server.dispose()


def _measure(open_fresh: Callable[[], Database], repeats: int) -> dict[str, float]:
    samples: dict[str, list[float]] = {name: [] for name in OPERATIONS}
    for _ in range(repeats):
        database = open_fresh()
        try:
            for name, seconds in _one_repeat(database).items():
                samples[name].append(seconds)
        finally:
            database.dispose()
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--postgres", metavar="URL", help="also measure on PostgreSQL (postgresql+psycopg://...)"
    )
    parser.add_argument("--repeats", type=int, default=5)
    arguments = parser.parse_args()

    results: dict[str, dict[str, float]] = {}
    with _sqlite() as fresh:
        results["SQLite"] = _measure(fresh, arguments.repeats)
    if arguments.postgres:
        with _postgres(arguments.postgres) as fresh:
            results["PostgreSQL"] = _measure(fresh, arguments.repeats)

    print(f"3 assets x {len(KEYS):,} daily partitions; median of {arguments.repeats} repeats, in ms")
    header = f"{'operation':<24}" + "".join(f"{backend:>14}" for backend in results)
    print(header)
    print("-" * len(header))
    for name in OPERATIONS:
        print(f"{name:<24}" + "".join(f"{results[backend][name] * 1000:>14.1f}" for backend in results))


if __name__ == "__main__":
    main()
