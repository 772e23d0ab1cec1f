"""Database faults become StorageFaults that say what happened, and the database survives them.

SQLite's bad days (a full disk, a read-only file) are made for real (see ``disk_faults``); PostgreSQL's
(connections terminated by ``pg_terminate_backend``, a lock taken elsewhere, a read-only transaction)
are made on the test server, touching only this test's own connections.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa

from code_server.asset_key import AssetKey
from code_server.wire.automation import BackfillRequestSpec
from control_plane.api.status import status_for_error
from control_plane.daemon import Daemon
from control_plane.records import BackfillRecord
from control_plane.storage import (
    BackfillAlreadyExists,
    BackfillStore,
    Database,
    StorageConflict,
    StorageFault,
    StorageFull,
    StorageReadOnly,
    StorageUnavailable,
)
from control_plane.storage.retrying import retry_through_faults
from tests.unit.storage.disk_faults import FullDisk, make_read_only, make_writable

REQUEST = BackfillRequestSpec(asset_keys=(AssetKey("a"), AssetKey("b")), partition_keys=("k1", "k2"))


@pytest.fixture(params=["tmpfs", "max_page_count"])
def full_disk(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[FullDisk]:
    """Both kinds of full disk where this user can mount a tmpfs; SQLite's page limit elsewhere."""
    disk = FullDisk(tmp_path / "disk", tmpfs=request.param == "tmpfs")
    if disk.kind != request.param:
        disk.close()
        pytest.skip(f"cannot mount a tmpfs here; the {disk.kind} variant runs instead")
    yield disk
    disk.close()


@pytest.fixture
def on_full_disk(full_disk: FullDisk) -> Iterator[Database]:
    database = Database.open(full_disk.database_url)
    yield database
    database.dispose()


def _create_until_full(
    store: BackfillStore, make_backfill: Callable[..., BackfillRecord], prefix: str = "bf"
) -> tuple[list[str], StorageFull]:
    created: list[str] = []
    for index in range(20_000):
        backfill_id = f"{prefix}{index:05d}"
        try:
            store.create(make_backfill(backfill_id, tags={"note": "x" * 500}), request=REQUEST)
        except StorageFull as full:
            return created, full
        created.append(backfill_id)
    raise AssertionError(f"{len(created)} backfills were written to a full disk")


def test_a_full_sqlite_disk_refuses_writes_keeps_reads_and_recovers_when_space_returns(
    full_disk: FullDisk, on_full_disk: Database, make_backfill: Callable[..., BackfillRecord]
) -> None:
    store = BackfillStore(on_full_disk)
    store.create(make_backfill("before"), request=REQUEST)
    full_disk.fill(on_full_disk)

    created, full = _create_until_full(store, make_backfill)

    assert "database is full" in str(full) and str(full_disk.database_path) in str(full)
    assert "free disk space" in str(full) and "wrote nothing" in str(full)
    assert isinstance(full.__cause__, sqlite3.OperationalError)
    assert full.__cause__.sqlite_errorname == "SQLITE_FULL"
    # Reads work on a full disk, and see every commit made before it filled.
    assert store.get("before") is not None
    listed = {record.id for record in store.list(limit=100_000)}
    assert listed == {"before", *created}

    full_disk.free(on_full_disk)
    store.create(make_backfill("after"), request=REQUEST)
    assert {record.id for record in store.list(limit=100_000)} == {"before", "after", *created}


def test_a_read_only_sqlite_file_refuses_writes_keeps_reads_and_recovers_when_writable(
    tmp_path: Path, make_backfill: Callable[..., BackfillRecord]
) -> None:
    path = tmp_path / "partita.db"
    database = Database.open(f"sqlite:///{path}")
    store = BackfillStore(database)
    store.create(make_backfill("before"), request=REQUEST)
    database.dispose()
    make_read_only(path)
    try:
        # Opened (migrations find it up to date) and readable.
        database = Database.open(f"sqlite:///{path}")
        store = BackfillStore(database)
        assert store.get("before") is not None
        with pytest.raises(StorageReadOnly) as refused:
            store.create(make_backfill("refused"), request=REQUEST)
        assert "read-only" in str(refused.value) and str(path) in str(refused.value)
        assert "make it writable" in str(refused.value)
        assert [record.id for record in store.list()] == ["before"]
    finally:
        make_writable(path)
    # Writable again, without reopening the database.
    store.create(make_backfill("after"), request=REQUEST)
    assert {record.id for record in store.list()} == {"before", "after"}
    database.dispose()


def test_a_locked_sqlite_database_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "partita.db"
    database = Database.open(f"sqlite:///{path}")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with database.engine.connect() as connection:
            # Not the 30 s the control plane waits for its turn.
            connection.connection.driver_connection.execute("PRAGMA busy_timeout=50")  # type: ignore[union-attr]
            with pytest.raises(StorageUnavailable, match="database is locked"):
                connection.begin()
            connection.invalidate()
    finally:
        holder.rollback()
        holder.close()
        database.dispose()


def test_constraint_violations_stay_domain_errors(
    tmp_path: Path, make_backfill: Callable[..., BackfillRecord]
) -> None:
    database = Database.open(f"sqlite:///{tmp_path / 'partita.db'}")
    store = BackfillStore(database)
    store.create(make_backfill("bf"), request=REQUEST)
    with pytest.raises(BackfillAlreadyExists):
        store.create(make_backfill("bf"), request=REQUEST)
    database.dispose()


def test_a_daemon_logs_one_line_when_the_database_fails_and_one_when_it_is_back(
    full_disk: FullDisk,
    on_full_disk: Database,
    make_backfill: Callable[..., BackfillRecord],
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = BackfillStore(on_full_disk)
    ids = iter(range(100_000))
    written: list[str] = []

    def write() -> None:
        backfill_id = f"tick{next(ids):05d}"
        store.create(make_backfill(backfill_id, tags={"note": "x" * 500}), request=REQUEST)
        written.append(backfill_id)

    daemon = Daemon(name="test-daemon")
    daemon.add_step("write", write)
    daemon.add_step("read", lambda: store.list(limit=10))
    daemon.tick()
    full_disk.fill(on_full_disk)
    caplog.set_level(logging.INFO, logger="partita.control_plane.daemon")
    for _ in range(300):
        daemon.tick()
        if daemon.outage.ongoing:
            break
    assert daemon.outage.ongoing
    for _ in range(20):
        daemon.tick()  # still full: ticks go on, and log nothing more
    full_disk.free(on_full_disk)
    daemon.tick()

    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 2, lines
    assert lines[0].startswith("test-daemon: database failing since ") and "database is full" in lines[0]
    assert lines[1].startswith("test-daemon: database back after ")
    assert not daemon.outage.ongoing
    assert {record.id for record in store.list(limit=100_000)} == set(written)


def test_a_write_retried_through_a_short_fault_gets_through(
    full_disk: FullDisk, on_full_disk: Database, make_backfill: Callable[..., BackfillRecord]
) -> None:
    store = BackfillStore(on_full_disk)
    full_disk.fill(on_full_disk)
    _create_until_full(store, make_backfill)
    freed = threading.Timer(0.5, full_disk.free, args=(on_full_disk,))
    freed.start()
    started = time.monotonic()
    retry_through_faults(
        lambda: store.create(make_backfill("retried", tags={"note": "x" * 500}), request=REQUEST),
        what="a test backfill",
        give_up_after=30,
    )
    freed.join()
    assert time.monotonic() - started >= 0.4
    assert store.get("retried") is not None


def test_a_write_retried_gives_up_with_the_fault_after_its_bound(
    full_disk: FullDisk, on_full_disk: Database, make_backfill: Callable[..., BackfillRecord]
) -> None:
    store = BackfillStore(on_full_disk)
    full_disk.fill(on_full_disk)
    _create_until_full(store, make_backfill)
    with pytest.raises(StorageFull):
        retry_through_faults(
            lambda: store.create(make_backfill("never", tags={"note": "x" * 500}), request=REQUEST),
            what="a test backfill",
            give_up_after=0.3,
        )
    assert store.get("never") is None


# --- PostgreSQL ---------------------------------------------------------------------------------------


@pytest.fixture
def postgres_database(request: pytest.FixtureRequest) -> Iterator[tuple[Database, str]]:
    """A database on the session's PostgreSQL schema whose connections carry an application name of
    their own, so that the test terminates only them (other tests share the server)."""
    url = sa.make_url(request.getfixturevalue("postgres_migrated"))
    name = f"partita-faults-{uuid.uuid4().hex[:8]}"
    database = Database.open(url.update_query_dict({"application_name": name}).render_as_string(False))
    yield database, name
    database.dispose()


def _terminate(server: sa.Engine, application_name: str) -> int:
    with server.connect() as connection:
        return len(
            connection.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :name"
                ),
                {"name": application_name},
            ).all()
        )


@pytest.mark.postgres
def test_postgres_connections_terminated_between_calls_are_replaced(
    postgres_database: tuple[Database, str], postgres_server: sa.Engine
) -> None:
    database, name = postgres_database
    for _ in range(3):
        with database.read() as connection:
            assert connection.execute(sa.text("SELECT 1")).scalar_one() == 1
        assert _terminate(postgres_server, name) >= 1
        time.sleep(0.05)
    # The pool's pre-ping finds each dead connection and opens a new one: the call is served.
    with database.transaction() as connection:
        assert connection.execute(sa.text("SELECT 2")).scalar_one() == 2


@pytest.mark.postgres
def test_a_postgres_connection_terminated_mid_transaction_is_unavailable(
    postgres_database: tuple[Database, str], postgres_server: sa.Engine
) -> None:
    database, name = postgres_database
    with pytest.raises(StorageUnavailable) as lost, database.transaction() as connection:
        connection.execute(sa.text("SELECT 1"))
        _terminate(postgres_server, name)
        time.sleep(0.05)
        connection.execute(sa.text("SELECT 1"))
    assert "unavailable" in str(lost.value) and "retry" in str(lost.value)
    with database.read() as connection:  # and the next call gets a new connection
        assert connection.execute(sa.text("SELECT 1")).scalar_one() == 1


@pytest.mark.postgres
def test_a_postgres_lock_not_available_is_a_conflict(
    postgres_database: tuple[Database, str], make_backfill: Callable[..., BackfillRecord]
) -> None:
    database, _ = postgres_database
    backfill_id = f"lock-{uuid.uuid4().hex[:8]}"
    BackfillStore(database).create(make_backfill(backfill_id), request=REQUEST)
    lock = sa.text("SELECT id FROM backfills WHERE id = :id FOR UPDATE NOWAIT")
    with database.transaction() as holder:
        holder.execute(lock, {"id": backfill_id})
        with pytest.raises(StorageConflict, match="lost a race"), database.engine.begin() as other:
            other.execute(lock, {"id": backfill_id})


@pytest.mark.postgres
def test_a_read_only_postgres_transaction_is_read_only(postgres_database: tuple[Database, str]) -> None:
    database, _ = postgres_database
    with pytest.raises(StorageReadOnly, match="read-only"), database.transaction() as connection:
        connection.execute(sa.text("SET TRANSACTION READ ONLY"))
        connection.execute(sa.text("DELETE FROM backfills WHERE id = 'none'"))


def test_every_fault_is_a_storage_error_with_a_status_of_its_own() -> None:
    assert {fault: status_for_error(fault("x")) for fault in StorageFault.__subclasses__()} == {
        StorageUnavailable: grpc.StatusCode.UNAVAILABLE,
        StorageConflict: grpc.StatusCode.ABORTED,
        StorageFull: grpc.StatusCode.RESOURCE_EXHAUSTED,
        StorageReadOnly: grpc.StatusCode.FAILED_PRECONDITION,
    }
