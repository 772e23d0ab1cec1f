"""Sensor and schedule state (running or stopped, cursor, last tick) and their tick history.

A tick is written ``started`` before its requests are submitted and finished in one transaction
with the state it advances (cursor, last tick time), so the cursor moves only with its tick.
"""

from __future__ import annotations

import builtins
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from control_plane.records import PageCursor
from control_plane.storage._sql import after_cursor, chunks
from control_plane.storage.database import Database
from control_plane.storage.schema import instigator_state, instigator_tick_targets, instigator_ticks

_S = instigator_state
_T = instigator_ticks


class InstigatorType(StrEnum):
    SENSOR = "sensor"
    SCHEDULE = "schedule"


class InstigatorStatus(StrEnum):
    RUNNING = "running"
    STOPPED = "stopped"


class TickStatus(StrEnum):
    STARTED = "started"
    SKIPPED = "skipped"
    SUCCESS = "success"
    FAILURE = "failure"


@dataclass(frozen=True, slots=True)
class InstigatorRef:
    """A sensor or schedule, by code location, kind and name."""

    location: str
    instigator_type: InstigatorType
    name: str

    def __str__(self) -> str:
        return f"{self.instigator_type.value} {self.name!r} of code location {self.location!r}"


@dataclass(frozen=True, slots=True)
class InstigatorState:
    ref: InstigatorRef
    status: InstigatorStatus
    cursor: str | None = None
    #: Sensors: when the last tick began. Schedules: the cron time of the last tick.
    last_tick_at: datetime | None = None
    #: When it was last started (or first seen running).
    started_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class TickError:
    message: str
    #: "raised", "timed_out" or "launch_failed".
    kind: str
    class_name: str = ""
    traceback: str = ""


@dataclass(frozen=True, slots=True)
class TickRecord:
    id: str
    ref: InstigatorRef
    status: TickStatus
    started_at: datetime
    scheduled_at: datetime | None = None
    ended_at: datetime | None = None
    cursor_before: str | None = None
    cursor_after: str | None = None
    skip_reason: str | None = None
    error: TickError | None = None
    backfill_ids: tuple[str, ...] = ()
    run_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TickOutcome:
    """How a tick ended, and what it created."""

    status: TickStatus
    ended_at: datetime
    cursor_after: str | None = None
    skip_reason: str | None = None
    error: TickError | None = None
    backfill_ids: tuple[str, ...] = ()
    run_ids: tuple[str, ...] = ()
    #: Whether the instigator's cursor becomes ``cursor_after`` (sensors, on skip or success).
    save_cursor: bool = False
    #: The state's new ``last_tick_at``.
    last_tick_at: datetime | None = field(default=None)


class InstigatorStore:
    def __init__(self, database: Database) -> None:
        self._database = database

    # --- state ---------------------------------------------------------------------------------------

    def get_state(self, ref: InstigatorRef) -> InstigatorState | None:
        with self._database.read() as conn:
            row = conn.execute(select(_S).where(*_state_key(ref))).first()
        return _state(row) if row is not None else None

    def list_states(self, location: str | None = None) -> builtins.list[InstigatorState]:
        query = select(_S).order_by(_S.c.location, _S.c.instigator_type, _S.c.name)
        if location is not None:
            query = query.where(_S.c.location == location)
        with self._database.read() as conn:
            return [_state(row) for row in conn.execute(query)]

    def ensure_state(self, ref: InstigatorRef, status: InstigatorStatus, now: datetime) -> InstigatorState:
        """The stored state, or a new one in ``status`` (a first sighting: its default status)."""
        insert_ = postgresql.insert if self._database.dialect == "postgresql" else sqlite.insert
        statement = insert_(_S).values(
            **_key_values(ref),
            status=status.value,
            started_at=now if status is InstigatorStatus.RUNNING else None,
            updated_at=now,
        )
        with self._database.transaction() as conn:
            conn.execute(statement.on_conflict_do_nothing())
            row = conn.execute(select(_S).where(*_state_key(ref))).one()
        return _state(row)

    def set_status(self, ref: InstigatorRef, status: InstigatorStatus, now: datetime) -> InstigatorState:
        """Start or stop; starting stamps ``started_at`` so a schedule does not catch up on its stopped time."""
        insert_ = postgresql.insert if self._database.dialect == "postgresql" else sqlite.insert
        values: dict[str, Any] = {"status": status.value, "updated_at": now}
        if status is InstigatorStatus.RUNNING:
            values["started_at"] = now
        statement = insert_(_S).values(**_key_values(ref), **values)
        statement = statement.on_conflict_do_update(
            index_elements=[_S.c.location, _S.c.instigator_type, _S.c.name], set_=values
        )
        with self._database.transaction() as conn:
            conn.execute(statement)
            row = conn.execute(select(_S).where(*_state_key(ref))).one()
        return _state(row)

    # --- ticks ---------------------------------------------------------------------------------------

    def create_tick(self, tick: TickRecord) -> None:
        """Write a tick (normally ``started``) before anything it asks for is submitted."""
        with self._database.transaction() as conn:
            conn.execute(insert(_T), [_tick_row(tick)])

    def unfinished_tick(self, ref: InstigatorRef) -> TickRecord | None:
        """The tick a crash cut off, if any: it is resumed before any new one starts."""
        found = self._ticks(and_(*_tick_key(ref), _T.c.status == TickStatus.STARTED.value), limit=1)
        return found[0] if found else None

    def finish_tick(self, tick: TickRecord, outcome: TickOutcome) -> TickRecord:
        """End the tick, record what it created, and advance the state, in one transaction."""
        with self._database.transaction() as conn:
            error = outcome.error
            conn.execute(
                update(_T)
                .where(_T.c.id == tick.id)
                .values(
                    status=outcome.status.value,
                    ended_at=outcome.ended_at,
                    cursor_after=outcome.cursor_after,
                    skip_reason=outcome.skip_reason,
                    error=error.message if error else None,
                    error_kind=error.kind if error else None,
                    error_class=error.class_name if error else None,
                    error_traceback=error.traceback if error else None,
                )
            )
            targets = [("backfill", target) for target in outcome.backfill_ids] + [
                ("run", target) for target in outcome.run_ids
            ]
            if targets:
                conn.execute(
                    insert(instigator_tick_targets),
                    [
                        {"tick_id": tick.id, "ordinal": index, "kind": kind, "target_id": target}
                        for index, (kind, target) in enumerate(targets)
                    ],
                )
            values: dict[str, Any] = {"updated_at": outcome.ended_at}
            if outcome.last_tick_at is not None:
                values["last_tick_at"] = outcome.last_tick_at
            if outcome.save_cursor:
                values["cursor"] = outcome.cursor_after
            conn.execute(update(_S).where(*_state_key(tick.ref)).values(**values))
        finished = self.get_tick(tick.id)
        assert finished is not None
        return finished

    def get_tick(self, tick_id: str) -> TickRecord | None:
        found = self._ticks(_T.c.id == tick_id, limit=1)
        return found[0] if found else None

    def list_ticks(
        self,
        ref: InstigatorRef,
        *,
        statuses: Collection[TickStatus] = (),
        limit: int = 100,
        before: PageCursor | None = None,
    ) -> builtins.list[TickRecord]:
        """Newest first; ``before`` is where the previous page ended (``started_at`` and id)."""
        conditions: builtins.list[Any] = list(_tick_key(ref))
        if statuses:
            conditions.append(_T.c.status.in_([status.value for status in statuses]))
        if before is not None:
            conditions.append(after_cursor(_T.c.started_at, _T.c.id, before))
        return self._ticks(and_(*conditions), limit=limit)

    def latest_tick(self, ref: InstigatorRef) -> TickRecord | None:
        found = self.list_ticks(ref, limit=1)
        return found[0] if found else None

    def _ticks(self, condition: Any, *, limit: int) -> builtins.list[TickRecord]:
        query = select(_T).where(condition).order_by(_T.c.started_at.desc(), _T.c.id.desc()).limit(limit)
        with self._database.read() as conn:
            rows = conn.execute(query).all()
            targets: dict[str, builtins.list[tuple[str, str]]] = {}
            ids = [row.id for row in rows]
            for chunk in chunks(ids):
                for target in conn.execute(
                    select(instigator_tick_targets)
                    .where(instigator_tick_targets.c.tick_id.in_(chunk))
                    .order_by(instigator_tick_targets.c.tick_id, instigator_tick_targets.c.ordinal)
                ):
                    targets.setdefault(target.tick_id, []).append((target.kind, target.target_id))
        return [_tick(row, targets.get(row.id, [])) for row in rows]


def _key_values(ref: InstigatorRef) -> dict[str, str]:
    return {"location": ref.location, "instigator_type": ref.instigator_type.value, "name": ref.name}


def _state_key(ref: InstigatorRef) -> Sequence[Any]:
    return (
        _S.c.location == ref.location,
        _S.c.instigator_type == ref.instigator_type.value,
        _S.c.name == ref.name,
    )


def _tick_key(ref: InstigatorRef) -> Sequence[Any]:
    return (
        _T.c.location == ref.location,
        _T.c.instigator_type == ref.instigator_type.value,
        _T.c.name == ref.name,
    )


def _state(row: Any) -> InstigatorState:
    return InstigatorState(
        ref=InstigatorRef(row.location, InstigatorType(row.instigator_type), row.name),
        status=InstigatorStatus(row.status),
        cursor=row.cursor,
        last_tick_at=row.last_tick_at,
        started_at=row.started_at,
    )


def _tick_row(tick: TickRecord) -> dict[str, Any]:
    error = tick.error
    return {
        "id": tick.id,
        **_key_values(tick.ref),
        "status": tick.status.value,
        "scheduled_at": tick.scheduled_at,
        "started_at": tick.started_at,
        "ended_at": tick.ended_at,
        "cursor_before": tick.cursor_before,
        "cursor_after": tick.cursor_after,
        "skip_reason": tick.skip_reason,
        "error": error.message if error else None,
        "error_kind": error.kind if error else None,
        "error_class": error.class_name if error else None,
        "error_traceback": error.traceback if error else None,
    }


def _tick(row: Any, targets: Sequence[tuple[str, str]]) -> TickRecord:
    error = (
        TickError(row.error, row.error_kind or "raised", row.error_class or "", row.error_traceback or "")
        if row.error is not None
        else None
    )
    return TickRecord(
        id=row.id,
        ref=InstigatorRef(row.location, InstigatorType(row.instigator_type), row.name),
        status=TickStatus(row.status),
        started_at=row.started_at,
        scheduled_at=row.scheduled_at,
        ended_at=row.ended_at,
        cursor_before=row.cursor_before,
        cursor_after=row.cursor_after,
        skip_reason=row.skip_reason,
        error=error,
        backfill_ids=tuple(target for kind, target in targets if kind == "backfill"),
        run_ids=tuple(target for kind, target in targets if kind == "run"),
    )
