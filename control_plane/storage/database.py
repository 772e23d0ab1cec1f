"""The database: one engine for SQLite (embedded default) or PostgreSQL, migrated before use.

SQLite runs in WAL mode with a 30 s busy timeout, and every write transaction starts with
``BEGIN IMMEDIATE``: the control plane writes from several threads, and a deferred transaction that
reads and then writes can fail with "database is locked" without waiting, where an immediate one
waits its turn. Reads use ``read()``, a deferred transaction that sees one consistent snapshot and
never blocks writers.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.pool import StaticPool

from control_plane.storage.faults import install_fault_translation

logger = logging.getLogger("partita.control_plane.storage")

DEFAULT_DATABASE_URL = "sqlite:///.partita/partita.db"

#: Rows (or bound keys) per statement in bulk operations; keeps well under SQLite's parameter limit.
CHUNK_SIZE = 1000

MIGRATIONS_DIRECTORY = Path(__file__).resolve().parent / "migrations"

#: Serializes concurrent migrations of one PostgreSQL database (control planes starting together).
_MIGRATION_LOCK_KEY = 0x7061727469746131  # "partita1"

_READ_ONLY = "partita_read_only"
_OPENED_READ_ONLY = "partita_opened_read_only"

Clock = Callable[[], datetime]
T = TypeVar("T")


def utc_now() -> datetime:
    return datetime.now(UTC)


def chunked(items: Sequence[T], size: int = CHUNK_SIZE) -> Iterator[Sequence[T]]:
    """Consecutive slices of at most ``size`` items (none for an empty sequence)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Database:
    """An engine on a migrated database, and the transactions the stores run in.

    Build it with ``Database.open(url)``. ``clock`` stamps ``updated_at`` and event times, so tests
    and the control plane can inject theirs.
    """

    def __init__(self, engine: Engine, *, clock: Clock = utc_now) -> None:
        self._engine = engine
        self.clock = clock
        #: The connection of this thread's ``unit_of_work``, which store calls without one join.
        self._ambient: ContextVar[Connection | None] = ContextVar(
            f"partita_unit_of_work_{id(self)}", default=None
        )

    @classmethod
    def open(cls, url: str = DEFAULT_DATABASE_URL, *, clock: Clock = utc_now) -> Database:
        """Connect to ``url`` and migrate the schema to the latest revision before returning.

        Args:
            url: ``sqlite:///path/to.db`` (the directory is created) or
                ``postgresql+psycopg://user@host:port/db``.
            clock: Source of the timestamps the stores write.
        """
        engine = _create_engine(make_url(url))
        database = cls(engine, clock=clock)
        try:
            database.migrate()
        except Exception:
            engine.dispose()
            raise
        return database

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._engine.dialect.name

    @contextmanager
    def transaction(self, connection: Connection | None = None) -> Iterator[Connection]:
        """A write transaction, committed when the block ends without an exception.

        Given the ``connection`` of an enclosing transaction, joins it instead, so store methods
        can be grouped by their caller; inside a ``unit_of_work`` it joins that.
        """
        joining = connection if connection is not None else self._ambient.get()
        if joining is not None:
            yield joining
            return
        with self._engine.begin() as joined:
            yield joined

    @contextmanager
    def unit_of_work(self) -> Iterator[Connection]:
        """One transaction for every store call this thread makes inside the block, reads included.

        For a caller that makes many small calls (applying a batch of run reports): one commit
        instead of one per call, and all or nothing. Nested units join the outer one.
        """
        with self.transaction() as connection:
            if self._ambient.get() is not None:
                yield connection
                return
            token = self._ambient.set(connection)
            try:
                yield connection
            finally:
                self._ambient.reset(token)

    @contextmanager
    def connect(self, connection: Connection | None = None) -> Iterator[Connection]:
        """Same as ``transaction()``: joins ``connection`` when given, else a new write transaction."""
        with self.transaction(connection) as joined:
            yield joined

    @contextmanager
    def read(self, connection: Connection | None = None) -> Iterator[Connection]:
        """A read-only transaction on one snapshot; joins ``connection`` (or the unit of work) when given."""
        joining = connection if connection is not None else self._ambient.get()
        if joining is not None:
            yield joining
            return
        with self._engine.connect() as opened:
            opened.execution_options(**{_READ_ONLY: True})
            with opened.begin():
                yield opened

    def migrate(self) -> None:
        """Bring the schema to the latest Alembic revision (a no-op when it is there already)."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIRECTORY))
        with self._engine.begin() as connection:
            if self.dialect == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def dispose(self) -> None:
        """Close every pooled connection (the object stays usable: it reconnects on demand)."""
        self._engine.dispose()


def _create_engine(url: URL) -> Engine:
    engine = _create_dialect_engine(url)
    install_fault_translation(engine)
    return engine


def _create_dialect_engine(url: URL) -> Engine:
    backend = url.get_backend_name()
    if backend == "sqlite":
        return _create_sqlite_engine(url)
    if backend == "postgresql":
        if url.get_driver_name() not in ("psycopg", "psycopg_async"):
            raise ValueError(
                f"Unsupported PostgreSQL driver {url.get_driver_name()!r} in the database URL: "
                "use postgresql+psycopg://user@host:port/database (psycopg 3)."
            )
        return create_engine(url, pool_size=5, max_overflow=15, pool_pre_ping=True, pool_recycle=1800)
    raise ValueError(
        f"Unsupported database URL {url.render_as_string(hide_password=True)!r}: use sqlite:///path/to.db "
        "or postgresql+psycopg://user@host:port/database."
    )


def _create_sqlite_engine(url: URL) -> Engine:
    in_memory = url.database in (None, "", ":memory:")
    options: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": 30}}
    if in_memory:
        # One shared connection, or every pooled connection would see its own empty database.
        options["poolclass"] = StaticPool
    else:
        assert url.database is not None
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, **options)
    path = None if in_memory else Path(str(url.database)).expanduser()

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, record: Any) -> None:
        # SQLite opens a file it may not write read-only, and the connection stays so.
        record.info[_OPENED_READ_ONLY] = path is not None and not os.access(path, os.W_OK)
        # Take over transaction control from the sqlite3 module, which would emit a deferred BEGIN.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            if not in_memory:
                cursor.execute("PRAGMA journal_mode=WAL")
                # Durable against a crashed process (the WAL is fsynced at checkpoints); fast enough
                # for a backfill's bulk writes.
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "checkout")
    def _reopen_if_writable(_dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        # A file made writable again (space freed, permissions fixed) gets writable connections
        # without a restart: the pool replaces one opened read-only.
        if record.info.get(_OPENED_READ_ONLY) and path is not None and os.access(path, os.W_OK):
            raise DisconnectionError(f"{path} is writable again")

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        read_only = connection.get_execution_options().get(_READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine
