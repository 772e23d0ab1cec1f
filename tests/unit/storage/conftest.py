"""The storage contract suite runs every test on SQLite and on PostgreSQL.

Each test starts from a migrated database with no rows: a copy of a migrated SQLite file, or a
PostgreSQL schema of this session (selected through ``search_path``) emptied before the test, so no
test sees another's rows. Tests of the migrations themselves take ``database_url``: an empty file, or a
fresh schema per test, dropped afterwards. Without ``PARTITA_TEST_POSTGRES_URL`` they are skipped; with
``PARTITA_REQUIRE_POSTGRES=1`` an unreachable server fails them instead (CI must not pass by skipping).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from code_server.asset_key import AssetKey
from control_plane.records import BackfillRecord, BackfillStatus, RunRecord, RunStatus
from control_plane.storage import Database
from control_plane.storage.schema import metadata

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


_BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


@pytest.fixture(params=_BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Every test that uses a database runs once per backend."""
    return str(request.param)


@contextmanager
def _fresh_schema(server: sa.Engine) -> Iterator[str]:
    """A new, empty PostgreSQL schema, and a URL whose connections use it; dropped afterwards."""
    schema = f"test_{uuid.uuid4().hex[:12]}"
    with server.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = server.url.update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with server.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty, never migrated database: a temp SQLite file, or a fresh PostgreSQL schema."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'partita.db'}"
        return
    with _fresh_schema(request.getfixturevalue("postgres_server")) as url:
        yield url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file that each test copies, instead of migrating its own."""
    path = tmp_path_factory.mktemp("template") / "migrated.db"
    Database.open(f"sqlite:///{path}").dispose()
    return path


@pytest.fixture(scope="session")
def postgres_migrated(postgres_server: sa.Engine) -> Iterator[str]:
    """A migrated PostgreSQL schema for this session (each pytest-xdist worker has its own)."""
    with _fresh_schema(postgres_server) as url:
        Database.open(url).dispose()
        yield url


@pytest.fixture
def database(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A migrated database with no rows: a copy of the SQLite template, or the session's schema emptied."""
    if backend == "sqlite":
        path = tmp_path / "partita.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        opened = Database.open(f"sqlite:///{path}")
    else:
        opened = Database.open(request.getfixturevalue("postgres_migrated"))
        # Emptied before (not after) the test, so that rows a failed test left never reach the next.
        with opened.transaction() as connection:
            for table in reversed(metadata.sorted_tables):
                connection.execute(table.delete())
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
def make_backfill() -> Callable[..., BackfillRecord]:
    """The ``backfill_record`` factory (fixtures, because test modules cannot import this conftest)."""
    return backfill_record


@pytest.fixture
def make_run() -> Callable[..., RunRecord]:
    """The ``run_record`` factory."""
    return run_record
