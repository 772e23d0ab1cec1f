"""A SQLite database's bad days, made for real: a full disk and a read-only file.

As root, the disk is a small tmpfs that a ballast file fills (SQLite gets ENOSPC from the kernel) and
the file is made immutable (``chattr +i``, which root cannot write either). Otherwise the disk is
SQLite's own page limit (``PRAGMA max_page_count`` on every connection: the engine's real
SQLITE_FULL) and the file is ``chmod 0444``. Either way the database answers with its own error codes.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import subprocess
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import event

from control_plane.storage import Database

_UNLIMITED_PAGES = 1_073_741_823


def _is_root() -> bool:
    return os.geteuid() == 0


class FullDisk:
    """A directory for a SQLite file whose disk the test fills and frees."""

    def __init__(self, directory: Path, *, size_mb: int = 24, tmpfs: bool = True) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self._ballast = directory / "ballast"
        self._mounted = False
        self._page_limit: int | None = None
        self._limited: list[Database] = []
        if tmpfs and _is_root():
            mounted = subprocess.run(
                [
                    "mount",
                    "-t",
                    "tmpfs",
                    "-o",
                    f"size={size_mb}m",
                    f"partita-{uuid.uuid4().hex[:8]}",
                    str(directory),
                ],
                capture_output=True,
                text=True,
            )
            self._mounted = mounted.returncode == 0
        #: "tmpfs" (the kernel's ENOSPC) or "max_page_count" (SQLite's page limit).
        self.kind = "tmpfs" if self._mounted else "max_page_count"

    @property
    def database_path(self) -> Path:
        return self.directory / "partita.db"

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.database_path}"

    def fill(self, database: Database) -> None:
        """No more room: the next write that needs space fails."""
        if self._mounted:
            # Unbuffered, and in ever smaller writes down to a page, so that not a page is left.
            with self._ballast.open("ab", buffering=0) as ballast:
                size = 1 << 20
                while size >= 4096:
                    try:
                        ballast.write(b"\0" * size)
                    except OSError as error:
                        assert error.errno == errno.ENOSPC, error
                        size //= 2
            return
        with database.read() as connection:
            self._page_limit = int(connection.exec_driver_sql("PRAGMA page_count").scalar_one())
        if database not in self._limited:
            self._limited.append(database)
            event.listen(database.engine, "connect", self._limit_pages)
        database.dispose()  # every connection from now on has the limit

    def free(self, database: Database) -> None:
        """Room again, as when an operator deletes old files."""
        if self._mounted:
            self._ballast.unlink(missing_ok=True)
            return
        self._page_limit = None
        database.dispose()

    def close(self) -> None:
        if self._mounted:
            subprocess.run(["umount", "-l", str(self.directory)], check=False)

    def _limit_pages(self, dbapi_connection: Any, _record: Any) -> None:
        limit = self._page_limit if self._page_limit is not None else _UNLIMITED_PAGES
        dbapi_connection.execute(f"PRAGMA max_page_count={limit}")


def make_read_only(path: Path) -> None:
    """The database file accepts no writes (new connections open it read-only)."""
    if _is_root():
        subprocess.run(["chattr", "+i", str(path)], check=True)
    else:
        path.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)


def make_writable(path: Path) -> None:
    if _is_root():
        with contextlib.suppress(FileNotFoundError):
            subprocess.run(["chattr", "-i", str(path)], check=True)
    else:
        path.chmod(stat.S_IRUSR | stat.S_IWUSR | stat.S_IRGRP | stat.S_IROTH)
