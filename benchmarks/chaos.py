"""Chaos, the long variant of ``tests/integration/test_chaos.py``: many seeded trials of SIGKILLs of the
control plane, run workers and code server during backfills of a chain and a single_run asset, on
SQLite and PostgreSQL; prints faults, partitions, executions and problems per trial.

Run: ``make chaos`` or ``.venv/bin/python -m benchmarks.chaos [--trials 8] [--faults 12] [--postgres URL]``.
Exits 1 if any trial found a partition lost or run twice.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.backfill import DEFAULT_POSTGRES, fresh_postgres  # noqa: E402
from tests.fixtures.chaos import ChaosConfig, ChaosResult, run_trial  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=8, help="trials per database")
    parser.add_argument("--faults", type=int, default=12, help="faults per trial")
    parser.add_argument("--days", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1, help="seed of the first trial (then +1 each)")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="PostgreSQL URL ('' to skip)")
    args = parser.parse_args()
    totals: dict[str, ChaosResult] = {}
    failed = False
    with tempfile.TemporaryDirectory() as directory:
        for database in ("sqlite", "postgresql"):
            total = totals[database] = ChaosResult()
            for trial in range(args.trials):
                seed = args.seed + trial
                if database == "sqlite":
                    url: str | None = f"sqlite:///{directory}/chaos-{seed}.db"
                else:
                    url = fresh_postgres(args.postgres) if args.postgres else None
                if url is None:
                    break
                config = ChaosConfig(
                    database_url=url, directory=Path(directory), seed=seed, days=args.days, faults=args.faults
                )
                result = run_trial(config)
                print(
                    f"{database:<10} seed {seed:<4} faults {dict(result.faults)}  partitions {result.partitions}  "
                    f"executions {result.executions} (+{result.re_executions} after kills)  "
                    f"retries {result.retries}  {result.seconds:.0f} s  "
                    + ("OK" if not result.problems else "PROBLEMS: " + "; ".join(result.problems[:5])),
                    flush=True,
                )
                failed = failed or bool(result.problems)
                total.faults += result.faults
                total.partitions += result.partitions
                total.executions += result.executions
                total.re_executions += result.re_executions
                total.retries += result.retries
                total.problems += result.problems
    for database, total in totals.items():
        faults: Counter[str] = total.faults
        print(
            f"{database}: {sum(faults.values())} faults {dict(faults)}, {total.partitions} partitions, "
            f"{total.executions} executions ({total.re_executions} again after a kill), "
            f"{len(total.problems)} problems (target 0: no partition lost or run twice)"
        )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
