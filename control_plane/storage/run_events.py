"""Each run's event log (worker events, output lines, control-plane notes) and report deduplication."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, insert, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from code_server.asset_key import AssetKey
from control_plane.records import RunEventRecord
from control_plane.storage._sql import key_of, key_text, matching
from control_plane.storage.database import Database
from control_plane.storage.schema import reported_events, run_events

_ATTEMPTS = 5


class RunEventStore:
    def __init__(self, database: Database) -> None:
        self._database = database

    def append(self, run_id: str, events: Sequence[tuple[str, str, AssetKey | None]]) -> None:
        """Append (kind, message, asset) entries with the next sequence numbers.

        Sequences come from max+1 inside the inserting transaction, where writers to one run take
        turns (an advisory lock on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite); should a writer still
        take the same numbers, the insert fails on the primary key and is tried again.
        """
        if not events:
            return
        now = self._database.clock()
        for attempt in range(_ATTEMPTS):
            try:
                # A savepoint, so that a retry also works inside a caller's transaction.
                with self._database.transaction() as conn, conn.begin_nested():
                    if self._database.dialect == "postgresql":
                        # Writers to one run take turns (SQLite's BEGIN IMMEDIATE already serializes).
                        conn.execute(
                            text("SELECT pg_advisory_xact_lock(hashtextextended(:run_id, 0))"),
                            {"run_id": run_id},
                        )
                    last = conn.execute(
                        select(func.coalesce(func.max(run_events.c.sequence), 0)).where(
                            run_events.c.run_id == run_id
                        )
                    ).scalar_one()
                    conn.execute(
                        insert(run_events),
                        [
                            {
                                "run_id": run_id,
                                "sequence": last + index + 1,
                                "timestamp": now,
                                "kind": kind,
                                "asset_key": key_text(asset) if asset else None,
                                "message": message,
                            }
                            for index, (kind, message, asset) in enumerate(events)
                        ],
                    )
                return
            except IntegrityError:
                if attempt + 1 == _ATTEMPTS:
                    raise

    def last_sequences(self, run_ids: Sequence[str]) -> dict[str, int]:
        """The last sequence of each run's log (runs without entries are absent), in one query:
        how followers of many runs learn which have new entries."""
        last: dict[str, int] = {}
        with self._database.read() as conn:
            for condition in matching(conn, run_events.c.run_id, list(run_ids)):
                query = (
                    select(run_events.c.run_id, func.max(run_events.c.sequence))
                    .where(condition)
                    .group_by(run_events.c.run_id)
                )
                last.update({run_id: int(sequence) for run_id, sequence in conn.execute(query)})
        return last

    def count(self, run_id: str, *, kind: str) -> int:
        """How many events of ``kind`` the run has."""
        query = (
            select(func.count())
            .select_from(run_events)
            .where(run_events.c.run_id == run_id, run_events.c.kind == kind)
        )
        with self._database.read() as conn:
            return int(conn.execute(query).scalar_one())

    def list(self, run_id: str, *, after_sequence: int = 0, limit: int = 1000) -> list[RunEventRecord]:
        query = (
            select(run_events)
            .where(run_events.c.run_id == run_id, run_events.c.sequence > after_sequence)
            .order_by(run_events.c.sequence)
            .limit(limit)
        )
        with self._database.read() as conn:
            rows = conn.execute(query).all()
        return [
            RunEventRecord(
                run_id=row.run_id,
                sequence=row.sequence,
                timestamp=row.timestamp,
                kind=row.kind,
                message=row.message,
                asset_key=key_of(row.asset_key) if row.asset_key else None,
            )
            for row in rows
        ]

    def mark_reported(self, run_id: str, event_id: str) -> bool:
        """Record that a worker's event was applied; False if it had been already (a duplicate)."""
        if self._database.dialect == "postgresql":
            # psycopg reports no row count for INSERT .. ON CONFLICT DO NOTHING: ask for the row back.
            returning = (
                postgresql.insert(reported_events)
                .values(run_id=run_id, event_id=event_id)
                .on_conflict_do_nothing()
                .returning(reported_events.c.run_id)
            )
            with self._database.transaction() as conn:
                return conn.execute(returning).first() is not None
        statement = (
            sqlite.insert(reported_events).values(run_id=run_id, event_id=event_id).on_conflict_do_nothing()
        )
        with self._database.transaction() as conn:
            return bool(conn.execute(statement).rowcount)
