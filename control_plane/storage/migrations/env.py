"""Alembic environment: migrations run on the connection the control plane hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from control_plane.storage.schema import metadata

config = context.config
connection: Connection | None = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("Partita runs its migrations programmatically: use Database.open(url).")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
