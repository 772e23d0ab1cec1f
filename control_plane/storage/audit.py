"""The audit log's rows: one insert per recorded call, newest-first pages, and bulk pruning."""

from __future__ import annotations

import builtins
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, insert, select

from control_plane.audit import EVERY_EVENT, AuditEvent, AuditFilter
from control_plane.records import PageCursor
from control_plane.storage._sql import after_cursor
from control_plane.storage.database import Database
from control_plane.storage.schema import audit_events as _A


def new_audit_event_id() -> str:
    """A fresh event id (random: events are ordered by time, then id, never by id alone)."""
    return uuid.uuid4().hex


class AuditStore:
    """Where the audit interceptor writes and ``ListAuditEvents`` reads."""

    def __init__(self, database: Database) -> None:
        self._database = database

    def record(self, event: AuditEvent) -> None:
        """Write one event: one INSERT in its own transaction."""
        with self._database.transaction() as connection:
            connection.execute(insert(_A).values(**_row(event)))

    def list(
        self,
        *,
        limit: int = 100,
        before: PageCursor | None = None,
        where: AuditFilter = EVERY_EVENT,
    ) -> builtins.list[AuditEvent]:
        """Newest first; ``before`` is where the previous page ended."""
        conditions: list[ColumnElement[bool]] = []
        for column, value in (
            (_A.c.identity_name, where.identity_name),
            (_A.c.rpc, where.rpc),
            (_A.c.target_kind, where.target_kind),
            (_A.c.target_id, where.target_id),
        ):
            if value is not None:
                conditions.append(column == value)
        if before is not None:
            conditions.append(after_cursor(_A.c.at, _A.c.id, before))
        query = select(_A).where(*conditions).order_by(_A.c.at.desc(), _A.c.id.desc()).limit(limit)
        with self._database.read() as connection:
            return [_event(row) for row in connection.execute(query)]

    def prune(self, older_than: datetime) -> int:
        """Delete every event from before ``older_than`` in one statement; returns how many went."""
        with self._database.transaction() as connection:
            return connection.execute(delete(_A).where(_A.c.at < older_than)).rowcount


def _row(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "at": event.at,
        "identity_name": event.identity_name,
        "identity_kind": event.identity_kind,
        "role": event.role,
        "peer": event.peer,
        "rpc": event.rpc,
        "target_kind": event.target_kind,
        "target_id": event.target_id,
        "location": event.location,
        "summary": event.summary,
        "status": event.status,
        "error": event.error,
    }


def _event(row: Any) -> AuditEvent:
    return AuditEvent(
        id=row.id,
        at=row.at,
        identity_name=row.identity_name,
        identity_kind=row.identity_kind,
        role=row.role,
        peer=row.peer,
        rpc=row.rpc,
        target_kind=row.target_kind,
        target_id=row.target_id,
        location=row.location,
        summary=row.summary,
        status=row.status,
        error=row.error,
    )
