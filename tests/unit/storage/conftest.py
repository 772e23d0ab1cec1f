"""The storage contract suite runs every test on SQLite and on PostgreSQL.

PostgreSQL tests each get a fresh schema (selected through ``search_path``), dropped afterwards, so no
test sees another's rows. Without ``PARTITA_TEST_POSTGRES_URL`` they are skipped; with
``PARTITA_REQUIRE_POSTGRES=1`` an unreachable server fails them instead (CI must not pass by skipping).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from code_server.asset_key import AssetKey
from control_plane.records import BackfillRecord, BackfillStatus, RunRecord, RunStatus
from control_plane.storage import Database

POSTGRES_URL_VARIABLE = "PARTITA_TEST_POSTGRES_URL"
SKIP_REASON = f"{POSTGRES_URL_VARIABLE} is not set; .ci/run sets it"

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _require_postgres() -> bool:
    return os.environ.get("PARTITA_REQUIRE_POSTGRES") == "1"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[sa.Engine]:
    """An engine on the test server's database, used to create and drop per-test schemas."""
    url = os.environ.get(POSTGRES_URL_VARIABLE)
    if not url:
        if _require_postgres():
            pytest.fail(f"PARTITA_REQUIRE_POSTGRES=1 but {POSTGRES_URL_VARIABLE} is not set.")
        pytest.skip(SKIP_REASON)
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as error:
        engine.dispose()
        message = f"PostgreSQL at {POSTGRES_URL_VARIABLE}={url} is unreachable: {error.orig}"
        if _require_postgres():
            pytest.fail(message)
        pytest.skip(message)
    yield engine
    engine.dispose()


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty database: a temp SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'partita.db'}"
        return
    server: sa.Engine = request.getfixturevalue("postgres_server")
    schema = f"test_{uuid.uuid4().hex[:12]}"
    with server.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = server.url.update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with server.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))


_BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "database_url" in metafunc.fixturenames:
        metafunc.parametrize("database_url", _BACKENDS, indirect=True)


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    opened = Database.open(database_url)
    yield opened
    opened.dispose()


def backfill_record(
    backfill_id: str = "bf1",
    *,
    status: BackfillStatus = BackfillStatus.RUNNING,
    assets: tuple[str, ...] = ("a", "b"),
    created_at: datetime = T0,
    tags: dict[str, str] | None = None,
    location: str = "loc",
    **extra: object,
) -> BackfillRecord:
    return BackfillRecord(
        id=backfill_id,
        status=status,
        location=location,
        asset_keys=tuple(AssetKey.from_user_string(key) for key in assets),
        created_at=created_at,
        updated_at=created_at,
        tags=tags or {},
        **extra,  # type: ignore[arg-type]
    )


def run_record(
    run_id: str,
    *,
    status: RunStatus = RunStatus.QUEUED,
    backfill_id: str | None = None,
    assets: tuple[str, ...] = ("a",),
    created_at: datetime = T0,
    priority: int = 0,
    tags: dict[str, str] | None = None,
    run_key: str | None = None,
    location: str = "loc",
    **extra: object,
) -> RunRecord:
    return RunRecord(
        id=run_id,
        location=location,
        asset_keys=tuple(AssetKey.from_user_string(key) for key in assets),
        status=status,
        created_at=created_at,
        updated_at=created_at,
        backfill_id=backfill_id,
        priority=priority,
        tags=tags or {},
        run_key=run_key,
        **extra,  # type: ignore[arg-type]
    )


@pytest.fixture
def make_backfill() -> object:
    """The ``backfill_record`` factory (fixtures, because test modules cannot import this conftest)."""
    return backfill_record


@pytest.fixture
def make_run() -> object:
    """The ``run_record`` factory."""
    return run_record
