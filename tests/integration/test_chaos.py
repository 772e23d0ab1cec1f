"""Chaos in the suite: seeded SIGKILLs of the control plane, workers and code server during backfills of
a chain and a single_run asset, on SQLite and PostgreSQL; no partition lost or run twice.

Short here (one trial per database, a few faults); ``make chaos`` runs ``benchmarks.chaos``, with more
trials and faults. The seed is printed, so a failing trial can be replayed (PARTITA_CHAOS_SEED).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.fixtures.chaos import ChaosConfig, run_trial
from tests.unit.storage.conftest import _fresh_schema, postgres_server  # noqa: F401  (a fixture)

pytestmark = pytest.mark.integration

SEED = int(os.environ.get("PARTITA_CHAOS_SEED", "11"))


@pytest.fixture
def postgres_url(postgres_server: sa.Engine) -> Iterator[str]:  # noqa: F811
    with _fresh_schema(postgres_server) as url:
        yield url


def _trial(database_url: str, directory: Path) -> None:
    config = ChaosConfig(database_url=database_url, directory=directory, seed=SEED, faults=6)
    result = run_trial(config)
    print(
        f"chaos seed {SEED}: {sum(result.faults.values())} faults {dict(result.faults)}, "
        f"{result.partitions} partitions, {result.executions} executions "
        f"({result.re_executions} again after a kill), {result.retries} retries, {result.seconds:.0f} s"
    )
    assert result.problems == [], f"seed {SEED}: " + "; ".join(result.problems[:20])
    assert sum(result.faults.values()) >= 3, result.faults  # the faults landed during the backfills


def test_chaos_on_sqlite(tmp_path: Path) -> None:
    _trial(f"sqlite:///{tmp_path / 'chaos.db'}", tmp_path)


@pytest.mark.postgres
def test_chaos_on_postgres(postgres_url: str, tmp_path: Path) -> None:
    _trial(postgres_url, tmp_path)
