"""The control plane's own secrets, generated once and kept in the database (never logged)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from control_plane.storage.database import Database
from control_plane.storage.schema import control_plane_secrets


class SecretStore:
    """Secrets by name, so that every control plane on one database shares them and a restart keeps them."""

    def __init__(self, database: Database) -> None:
        self._database = database

    def get(self, name: str) -> str | None:
        """The secret ``name``, or None before it was made."""
        with self._database.read() as conn:
            value: str | None = conn.execute(
                select(control_plane_secrets.c.value).where(control_plane_secrets.c.name == name)
            ).scalar_one_or_none()
        return value

    def get_or_create(self, name: str, generate: Callable[[], str]) -> str:
        """The secret ``name``; the first caller stores ``generate()``, and every caller (control
        planes starting together included) gets the one value that was stored first."""
        stored = self.get(name)
        if stored is not None:
            return stored  # without a write: a read-only database still serves
        insert = postgresql.insert if self._database.dialect == "postgresql" else sqlite.insert
        statement = insert(control_plane_secrets).values(
            name=name, value=generate(), created_at=self._database.clock()
        )
        with self._database.transaction() as conn:
            conn.execute(statement.on_conflict_do_nothing(index_elements=[control_plane_secrets.c.name]))
            value: str = conn.execute(
                select(control_plane_secrets.c.value).where(control_plane_secrets.c.name == name)
            ).scalar_one()
        return value
