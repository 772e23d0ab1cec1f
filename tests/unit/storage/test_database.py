"""Opening, migrating and configuring the database, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from control_plane import storage
from control_plane.storage import DaemonCursorStore, Database, RunEventStore
from control_plane.storage.database import DEFAULT_DATABASE_URL, MIGRATIONS_DIRECTORY
from control_plane.storage.schema import daemon_cursors, metadata


def test_migrations_create_exactly_the_schema(database: Database) -> None:
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []


def test_database_is_at_the_latest_revision(database: Database) -> None:
    head = ScriptDirectory(str(MIGRATIONS_DIRECTORY)).get_current_head()
    with database.engine.connect() as connection:
        assert MigrationContext.configure(connection).get_current_revision() == head


def test_opening_a_migrated_database_again_keeps_its_rows(database_url: str) -> None:
    first = Database.open(database_url)
    with first.transaction() as connection:
        connection.execute(
            sa.insert(daemon_cursors).values(name="sensor", value="42", updated_at=datetime.now(UTC))
        )
    first.dispose()
    second = Database.open(database_url)
    with second.read() as connection:
        assert connection.execute(sa.select(daemon_cursors.c.value)).scalars().all() == ["42"]
    second.dispose()


def test_a_failed_transaction_writes_nothing(database: Database) -> None:
    with pytest.raises(RuntimeError), database.transaction() as connection:
        connection.execute(
            sa.insert(daemon_cursors).values(name="x", value="1", updated_at=datetime.now(UTC))
        )
        raise RuntimeError("abort")
    with database.read() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(daemon_cursors)).scalar_one() == 0


def test_a_joined_transaction_commits_with_its_owner(database: Database) -> None:
    with database.transaction() as outer, database.transaction(outer) as inner:
        assert inner is outer


def test_a_unit_of_work_groups_store_calls_into_one_transaction(database: Database) -> None:
    cursors = DaemonCursorStore(database)
    with pytest.raises(RuntimeError), database.unit_of_work():
        cursors.set("first", "1")
        assert cursors.get("first") == "1"  # reads inside see the unit's own writes
        with database.unit_of_work():  # a nested unit joins the outer one
            cursors.set("second", "2")
        raise RuntimeError("abort")
    assert (cursors.get("first"), cursors.get("second")) == (None, None)
    with database.unit_of_work():
        cursors.set("first", "1")
    assert cursors.get("first") == "1"


def test_a_unit_of_work_belongs_to_its_thread(database: Database) -> None:
    """Another thread's store calls keep their own transactions while a unit is open."""
    cursors = DaemonCursorStore(database)
    seen: list[str | None] = []
    with database.unit_of_work():
        cursors.set("mine", "1")
        thread = threading.Thread(target=lambda: seen.append(cursors.get("mine")))
        thread.start()
        thread.join()
    assert seen == [None]  # not committed yet when the other thread looked


def test_timestamps_come_back_aware_in_utc(database: Database) -> None:
    written = datetime(2024, 3, 10, 1, 30, tzinfo=timezone(timedelta(hours=-5)))
    with database.transaction() as connection:
        connection.execute(sa.insert(daemon_cursors).values(name="t", value="", updated_at=written))
    with database.read() as connection:
        read = connection.execute(sa.select(daemon_cursors.c.updated_at)).scalar_one()
    assert read == written
    assert read.tzinfo is not None and read.utcoffset() == timedelta(0)


def test_naive_timestamps_are_refused(database: Database) -> None:
    with pytest.raises(sa.exc.StatementError, match="naive"), database.transaction() as connection:
        connection.execute(
            sa.insert(daemon_cursors).values(name="t", value="", updated_at=datetime(2024, 1, 1))
        )


def test_sqlite_runs_in_wal_mode_with_busy_timeout_and_foreign_keys(tmp_path: Path) -> None:
    database = Database.open(f"sqlite:///{tmp_path / 'p.db'}")
    with database.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    database.dispose()


def test_the_default_url_creates_its_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    database = Database.open(DEFAULT_DATABASE_URL)
    database.dispose()
    assert (tmp_path / ".partita" / "partita.db").is_file()


def test_migrations_do_not_depend_on_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    database = Database.open(f"sqlite:///{tmp_path / 'db' / 'p.db'}")
    with database.read() as connection:
        assert "backfill_partition_spans" in sa.inspect(connection).get_table_names()
    database.dispose()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://user@host/db", "Unsupported database URL"),
        ("postgresql+psycopg2://user@host/db", "psycopg"),
    ],
)
def test_unsupported_urls_are_refused_with_what_to_use(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Database.open(url)


def test_stores_stamp_rows_with_the_databases_clock(database_url: str) -> None:
    now = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
    database = Database.open(database_url, clock=lambda: now)
    cursors = DaemonCursorStore(database)
    cursors.set("sensor", "1")
    RunEventStore(database).append("r1", [("stdout", "hello", None)])
    with database.read() as connection:
        assert connection.execute(sa.select(daemon_cursors.c.updated_at)).scalar_one() == now
    assert RunEventStore(database).list("r1")[0].timestamp == now
    database.dispose()


def test_the_public_names_are_pinned() -> None:
    assert sorted(storage.__all__) == [
        "AssetStatusStore",
        "AuditStore",
        "BackfillAlreadyExists",
        "BackfillProgressStore",
        "BackfillStore",
        "DaemonCursorStore",
        "Database",
        "InstigatorStore",
        "NotFound",
        "RunAlreadyExists",
        "RunEventStore",
        "RunKeyAlreadyUsed",
        "RunStore",
        "StorageConflict",
        "StorageError",
        "StorageFault",
        "StorageFull",
        "StorageReadOnly",
        "StorageUnavailable",
    ]
    assert all(
        issubclass(getattr(storage, name), storage.StorageError)
        for name in storage.__all__
        if "Already" in name
    )
