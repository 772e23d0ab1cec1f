"""A small key/value table where daemons keep their cursors."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from control_plane.storage.database import Database
from control_plane.storage.schema import daemon_cursors


class DaemonCursorStore:
    def __init__(self, database: Database) -> None:
        self._database = database

    def get(self, name: str) -> str | None:
        with self._database.read() as conn:
            value: str | None = conn.execute(
                select(daemon_cursors.c.value).where(daemon_cursors.c.name == name)
            ).scalar_one_or_none()
        return value

    def set(self, name: str, value: str) -> None:
        """Insert or overwrite, atomically (ON CONFLICT DO UPDATE on both databases)."""
        insert = postgresql.insert if self._database.dialect == "postgresql" else sqlite.insert
        statement = insert(daemon_cursors).values(name=name, value=value, updated_at=self._database.clock())
        statement = statement.on_conflict_do_update(
            index_elements=[daemon_cursors.c.name],
            set_={"value": statement.excluded.value, "updated_at": statement.excluded.updated_at},
        )
        with self._database.transaction() as conn:
            conn.execute(statement)
