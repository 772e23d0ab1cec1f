"""The one place that reads database drivers' error codes, and turns them into ``StorageFault``s.

``install_fault_translation(engine)`` hooks SQLAlchemy's ``handle_error`` event, so every statement,
commit and connect of the engine raises a ``StorageUnavailable``, ``StorageConflict``, ``StorageFull``
or ``StorageReadOnly`` (``from`` the driver's error) instead of a driver ``OperationalError``. Errors
that say something about the statement (constraint violations, bad data) pass through untouched: the
stores turn those into their own domain errors.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.engine import URL, ExceptionContext

from control_plane.storage.errors import (
    StorageConflict,
    StorageFault,
    StorageFull,
    StorageReadOnly,
    StorageUnavailable,
)

# SQLite primary result codes (https://sqlite.org/rescode.html); extended codes keep them in the low byte.
_SQLITE_FAULTS: dict[int, type[StorageFault]] = {
    5: StorageUnavailable,  # SQLITE_BUSY: "database is locked" after the busy timeout
    6: StorageUnavailable,  # SQLITE_LOCKED: a table locked by another statement of the connection
    7: StorageUnavailable,  # SQLITE_NOMEM
    8: StorageReadOnly,  # SQLITE_READONLY: "attempt to write a readonly database"
    10: StorageUnavailable,  # SQLITE_IOERR: the OS failed a read or write
    13: StorageFull,  # SQLITE_FULL: "database or disk is full" (also max_page_count reached)
    14: StorageUnavailable,  # SQLITE_CANTOPEN: the file (or its directory) cannot be opened
    15: StorageUnavailable,  # SQLITE_PROTOCOL: a WAL locking race
}

# PostgreSQL SQLSTATEs (https://www.postgresql.org/docs/current/errcodes-appendix.html).
_POSTGRES_FAULTS: dict[str, type[StorageFault]] = {
    "40001": StorageConflict,  # serialization_failure
    "40P01": StorageConflict,  # deadlock_detected
    "55P03": StorageConflict,  # lock_not_available
    "53100": StorageFull,  # disk_full
    "53200": StorageUnavailable,  # out_of_memory
    "53300": StorageUnavailable,  # too_many_connections
    "57014": StorageUnavailable,  # query_canceled (a statement timeout, an operator's cancel)
    "57P01": StorageUnavailable,  # admin_shutdown, and what pg_terminate_backend sends
    "57P02": StorageUnavailable,  # crash_shutdown
    "57P03": StorageUnavailable,  # cannot_connect_now (starting up, in recovery)
    "25006": StorageReadOnly,  # read_only_sql_transaction (a hot standby, default_transaction_read_only)
}


def classify(error: BaseException, *, is_disconnect: bool = False) -> type[StorageFault] | None:
    """Which fault a driver error is, or None when it is about the statement rather than the database."""
    if isinstance(error, sqlite3.Error):
        code = getattr(error, "sqlite_errorcode", None)
        return _SQLITE_FAULTS.get(code & 0xFF) if isinstance(code, int) else None
    sqlstate = getattr(error, "sqlstate", None)
    if isinstance(sqlstate, str):
        if sqlstate in _POSTGRES_FAULTS:
            return _POSTGRES_FAULTS[sqlstate]
        if sqlstate.startswith("08"):  # connection_exception and its subclasses
            return StorageUnavailable
    if is_disconnect:
        return StorageUnavailable
    # psycopg raises OperationalError without a SQLSTATE when the server never answered (refused,
    # unreachable, the connection dropped mid-query).
    if sqlstate is None and type(error).__name__ == "OperationalError":
        return StorageUnavailable
    return None


def describe(url: URL) -> str:
    """Where the database is, for messages: ``sqlite file /x/y.db`` or ``postgresql host:port/db``."""
    if url.get_backend_name() == "sqlite":
        return (
            f"sqlite file {url.database}"
            if url.database not in (None, "", ":memory:")
            else "sqlite in memory"
        )
    port = f":{url.port}" if url.port else ""
    return f"postgresql {url.host or 'localhost'}{port}/{url.database or ''}"


def fault_message(fault: type[StorageFault], where: str, detail: str) -> str:
    """What happened and what to do about it, as a client (or an operator reading a log) needs it."""
    if fault is StorageFull:
        return (
            f"The control plane's database is full ({where}: {detail}): free disk space (or raise the "
            "database's size limit); this call wrote nothing, reads still work, retry once there is room."
        )
    if fault is StorageReadOnly:
        return (
            f"The control plane's database is read-only ({where}: {detail}): make it writable again (file "
            "and directory permissions, the mount, or the server's read-only mode); this call wrote "
            "nothing, reads still work, retry once it is writable."
        )
    if fault is StorageConflict:
        return (
            f"The control plane's database aborted this call's transaction ({where}: {detail}): it lost a "
            "race with another; it wrote nothing, retry the call."
        )
    return (
        f"The control plane's database is unavailable ({where}: {detail}): this call wrote nothing; "
        "retry with backoff until the database is back."
    )


def install_fault_translation(engine: Engine) -> None:
    """Make every error of ``engine`` that is the database's fault raise a ``StorageFault``."""
    where = describe(engine.url)

    def translate(context: ExceptionContext) -> BaseException | None:
        if context.is_pre_ping:
            return None  # the pool answers a dead connection by opening a new one
        fault = classify(context.original_exception, is_disconnect=context.is_disconnect)
        if fault is None:
            return None
        return fault(fault_message(fault, where, _first_line(context.original_exception)))

    listener: Any = translate
    event.listen(engine, "handle_error", listener)


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
