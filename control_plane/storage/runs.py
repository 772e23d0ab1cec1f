"""Runs: what each run executes, its status, its launcher handle, its tags."""

from __future__ import annotations

import builtins
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from code_server.asset_key import AssetKey
from code_server.partitions.keys import PartitionKeyRange
from control_plane.records import PageCursor, RunFailureKind, RunRecord, RunStatus
from control_plane.storage._sql import after_cursor, chunks, insert_columns, key_of, key_text, matching
from control_plane.storage.database import Database
from control_plane.storage.errors import RunAlreadyExists, RunKeyAlreadyUsed
from control_plane.storage.schema import run_assets, run_tags, runs
from launcher.base import WorkerIdentity

_ACTIVE = [status.value for status in RunStatus if status.is_active]


class RunStore:
    def __init__(self, database: Database) -> None:
        self._database = database

    def create_many(self, records: Sequence[RunRecord], *, connection: Connection | None = None) -> None:
        """Insert runs with their assets and tags: three bulk statements whatever the count."""
        if not records:
            return
        with self._database.connect(connection) as conn:
            try:
                insert_columns(
                    conn,
                    runs,
                    {name: [value(record) for record in records] for name, value in _RUN_COLUMNS.items()},
                )
            except IntegrityError as error:
                if any(record.run_key for record in records) and "run_key" in str(error.orig):
                    raise RunKeyAlreadyUsed(
                        f"Run key already used: {[r.run_key for r in records if r.run_key]}"
                    ) from error
                raise RunAlreadyExists(
                    f"A run id among {[r.id for r in records[:5]]} already exists."
                ) from error
            # Column by column, like the runs: a launch of thousands of runs builds no row objects.
            asset_of = [
                (record.id, index, key) for record in records for index, key in enumerate(record.asset_keys)
            ]
            insert_columns(
                conn,
                run_assets,
                {
                    "run_id": [run_id for run_id, _, _ in asset_of],
                    "ordinal": [index for _, index, _ in asset_of],
                    "asset_key": [key_text(key) for _, _, key in asset_of],
                },
            )
            tag_of = [(record.id, key, value) for record in records for key, value in record.tags.items()]
            insert_columns(
                conn,
                run_tags,
                {
                    "run_id": [run_id for run_id, _, _ in tag_of],
                    "key": [key for _, key, _ in tag_of],
                    "value": [value for _, _, value in tag_of],
                },
            )

    def get(self, run_id: str) -> RunRecord | None:
        found = self._records(runs.c.id == run_id, limit=1)
        return found[0] if found else None

    def find_by_run_key(self, location: str, run_key: str) -> RunRecord | None:
        found = self._records(and_(runs.c.location == location, runs.c.run_key == run_key), limit=1)
        return found[0] if found else None

    def list(
        self,
        *,
        backfill_id: str | None = None,
        statuses: Collection[RunStatus] | None = None,
        tags: Mapping[str, str] | None = None,
        include_backfill_runs: bool = True,
        location: str | None = None,
        limit: int = 100,
        before: PageCursor | None = None,
    ) -> builtins.list[RunRecord]:
        """Newest first; ``before`` is where the previous page ended."""
        conditions: list[Any] = []
        if backfill_id is not None:
            conditions.append(runs.c.backfill_id == backfill_id)
        elif not include_backfill_runs:
            conditions.append(runs.c.backfill_id.is_(None))
        if statuses:
            conditions.append(runs.c.status.in_([s.value for s in statuses]))
        if location:
            conditions.append(runs.c.location == location)
        if before is not None:
            conditions.append(after_cursor(runs.c.created_at, runs.c.id, before))
        for key, value in (tags or {}).items():
            conditions.append(
                runs.c.id.in_(
                    select(run_tags.c.run_id).where(run_tags.c.key == key, run_tags.c.value == value)
                )
            )
        return self._records(and_(True, *conditions), limit=limit, newest_first=True)

    def queued_runs(
        self, *, limit: int, backfill_id: str | None = None, standalone_only: bool = False
    ) -> builtins.list[RunRecord]:
        """Queued runs, highest priority then oldest first: the order they launch in."""
        conditions: list[Any] = [runs.c.status == RunStatus.QUEUED.value]
        if backfill_id is not None:
            conditions.append(runs.c.backfill_id == backfill_id)
        elif standalone_only:
            conditions.append(runs.c.backfill_id.is_(None))
        return self._records(and_(*conditions), limit=limit, newest_first=False)

    def status_of(self, run_id: str) -> RunStatus | None:
        """Just the status (one query; ``get`` reads assets and tags too)."""
        with self._database.read() as conn:
            status = conn.execute(select(runs.c.status).where(runs.c.id == run_id)).scalar()
        return None if status is None else RunStatus(status)

    def statuses_of(self, run_ids: Sequence[str]) -> dict[str, RunStatus]:
        """The status of each run that exists, in one query per chunk of ids (followers of many runs)."""
        found: dict[str, RunStatus] = {}
        with self._database.read() as conn:
            for condition in matching(conn, runs.c.id, list(run_ids)):
                query = select(runs.c.id, runs.c.status).where(condition)
                found.update({run_id: RunStatus(status) for run_id, status in conn.execute(query)})
        return found

    def exists(self, *, backfill_id: str, statuses: Collection[RunStatus]) -> bool:
        """Whether the backfill has a run in one of ``statuses``: one index probe, not a count."""
        query = (
            select(runs.c.id)
            .where(runs.c.backfill_id == backfill_id, runs.c.status.in_([s.value for s in statuses]))
            .limit(1)
        )
        with self._database.read() as conn:
            return conn.execute(query).first() is not None

    def active_counts(self) -> tuple[int, dict[str, int]]:
        """Runs holding a slot: in total, and per backfill (one GROUP BY)."""
        query = (
            select(runs.c.backfill_id, func.count())
            .where(runs.c.status.in_(_ACTIVE))
            .group_by(runs.c.backfill_id)
        )
        per_backfill: dict[str, int] = {}
        total = 0
        with self._database.read() as conn:
            for backfill_id, count in conn.execute(query):
                total += count
                if backfill_id is not None:
                    per_backfill[backfill_id] = count
        return total, per_backfill

    def update_status(
        self,
        run_id: str,
        status: RunStatus,
        *,
        error: str | None = None,
        failure_kind: RunFailureKind | None = None,
        started_at: datetime | None = None,
        ended_at: datetime | None = None,
        launcher_kind: str | None = None,
        launcher_handle: str | None = None,
        only_from: Collection[RunStatus] | None = None,
        connection: Connection | None = None,
    ) -> bool:
        """Compare-and-set: False when the run was not in one of ``only_from`` (someone moved it first)."""
        values: dict[str, Any] = {"status": status.value, "updated_at": self._database.clock()}
        for name, value in (
            ("error", error),
            ("failure_kind", failure_kind.value if failure_kind else None),
            ("started_at", started_at),
            ("ended_at", ended_at),
            ("launcher_kind", launcher_kind),
            ("launcher_handle", launcher_handle),
        ):
            if value is not None:
                values[name] = value
        conditions: list[Any] = [runs.c.id == run_id]
        if only_from is not None:
            conditions.append(runs.c.status.in_([s.value for s in only_from]))
        with self._database.connect(connection) as conn:
            return bool(conn.execute(update(runs).where(*conditions).values(**values)).rowcount)

    def claim(
        self,
        run_id: str,
        attempt: int,
        worker: WorkerIdentity,
        *,
        now: datetime,
        handle: str | None = None,
        connection: Connection | None = None,
    ) -> bool:
        """Give the run's attempt to ``worker`` if nobody holds it and it is being launched
        (starting): the run becomes started, and ``handle`` (when given) names the worker's process.
        Compare-and-set: False when the run was not claimable, whoever holds it."""
        values: dict[str, Any] = {
            "worker_id": worker.worker_id,
            "worker_hostname": worker.hostname,
            "worker_pid": worker.pid,
            "worker_process_start": worker.process_start_ticks,
            "claimed_at": now,
            "status": RunStatus.STARTED.value,
            "started_at": now,
            "updated_at": self._database.clock(),
        }
        if handle is not None:
            values["launcher_handle"] = handle
        statement = (
            update(runs)
            .where(
                runs.c.id == run_id,
                runs.c.attempt == attempt,
                runs.c.worker_id.is_(None),
                runs.c.status == RunStatus.STARTING.value,
            )
            .values(**values)
        )
        with self._database.connect(connection) as conn:
            return bool(conn.execute(statement).rowcount)

    def record_launch(
        self, run_id: str, *, launcher_kind: str, handle: str, connection: Connection | None = None
    ) -> bool:
        """Record the handle a launch returned, unless the run has one already (its worker claimed it
        first and named its own process, or it ended): False then."""
        statement = (
            update(runs)
            .where(
                runs.c.id == run_id,
                runs.c.launcher_handle.is_(None),
                runs.c.status.in_(
                    [s.value for s in (RunStatus.STARTING, RunStatus.STARTED, RunStatus.CANCELING)]
                ),
            )
            .values(launcher_kind=launcher_kind, launcher_handle=handle, updated_at=self._database.clock())
        )
        with self._database.connect(connection) as conn:
            return bool(conn.execute(statement).rowcount)

    def unrecorded_launches(self, launcher_kind: str, *, limit: int = 10_000) -> builtins.list[RunRecord]:
        """Runs handed to ``launcher_kind`` whose handle was never recorded (the control plane stopped
        mid-launch): starting or claimed, with no handle."""
        return self._records(
            and_(
                runs.c.status.in_([RunStatus.STARTING.value, RunStatus.STARTED.value]),
                runs.c.launcher_handle.is_(None),
                or_(runs.c.launcher_kind == launcher_kind, runs.c.launcher_kind.is_(None)),
            ),
            limit=limit,
            newest_first=False,
        )

    def cancel_queued(
        self, backfill_id: str, *, ended_at: datetime, connection: Connection | None = None
    ) -> int:
        statement = (
            update(runs)
            .where(runs.c.backfill_id == backfill_id, runs.c.status == RunStatus.QUEUED.value)
            .values(status=RunStatus.CANCELED.value, ended_at=ended_at, updated_at=ended_at)
        )
        with self._database.connect(connection) as conn:
            return int(conn.execute(statement).rowcount)

    def set_priority_of_queued(self, backfill_id: str, priority: int) -> int:
        statement = (
            update(runs)
            .where(runs.c.backfill_id == backfill_id, runs.c.status == RunStatus.QUEUED.value)
            .values(priority=priority)
        )
        with self._database.transaction() as conn:
            return int(conn.execute(statement).rowcount)

    def _records(self, condition: Any, *, limit: int, newest_first: bool = True) -> builtins.list[RunRecord]:
        order = (
            [runs.c.created_at.desc(), runs.c.id.desc()]
            if newest_first
            # Runs planned together share created_at: launch them in partition order.
            else [runs.c.priority.desc(), runs.c.created_at, runs.c.partition_range_start, runs.c.id]
        )
        with self._database.read() as conn:
            rows = conn.execute(select(runs).where(condition).order_by(*order).limit(limit)).all()
            ids = [row.id for row in rows]
            assets: dict[str, list[AssetKey]] = {}
            tags: dict[str, dict[str, str]] = {}
            for chunk in chunks(ids):
                for row in conn.execute(
                    select(run_assets)
                    .where(run_assets.c.run_id.in_(chunk))
                    .order_by(run_assets.c.run_id, run_assets.c.ordinal)
                ):
                    assets.setdefault(row.run_id, []).append(key_of(row.asset_key))
                for row in conn.execute(select(run_tags).where(run_tags.c.run_id.in_(chunk))):
                    tags.setdefault(row.run_id, {})[row.key] = row.value
        return [_record(row, assets.get(row.id, []), tags.get(row.id, {})) for row in rows]


#: The runs table's columns, each read from a record.
_RUN_COLUMNS: dict[str, Callable[[RunRecord], Any]] = {
    "id": lambda record: record.id,
    "backfill_id": lambda record: record.backfill_id,
    "location": lambda record: record.location,
    "partition_range_start": lambda record: record.partition_range.start if record.partition_range else None,
    "partition_range_end": lambda record: record.partition_range.end if record.partition_range else None,
    "partition_count": lambda record: record.partition_count,
    "status": lambda record: record.status.value,
    "priority": lambda record: record.priority,
    "run_key": lambda record: record.run_key,
    "launcher_kind": lambda record: record.launcher_kind,
    "launcher_handle": lambda record: record.launcher_handle,
    "attempt": lambda record: record.attempt,
    "created_at": lambda record: record.created_at,
    "updated_at": lambda record: record.updated_at,
    "started_at": lambda record: record.started_at,
    "ended_at": lambda record: record.ended_at,
    "error": lambda record: record.error,
    "worker_id": lambda record: record.worker.worker_id if record.worker else None,
    "worker_hostname": lambda record: record.worker.hostname if record.worker else None,
    "worker_pid": lambda record: record.worker.pid if record.worker else None,
    "worker_process_start": lambda record: record.worker.process_start_ticks if record.worker else None,
    "claimed_at": lambda record: record.claimed_at,
}


def _record(row: Any, asset_keys: list[AssetKey], tags: dict[str, str]) -> RunRecord:
    key_range = (
        PartitionKeyRange(row.partition_range_start, row.partition_range_end)
        if row.partition_range_start is not None
        else None
    )
    worker = (
        WorkerIdentity(
            worker_id=row.worker_id,
            hostname=row.worker_hostname or "",
            pid=row.worker_pid or 0,
            process_start_ticks=row.worker_process_start,
        )
        if row.worker_id
        else None
    )
    return RunRecord(
        id=row.id,
        location=row.location,
        asset_keys=tuple(asset_keys),
        status=RunStatus(row.status),
        created_at=row.created_at,
        updated_at=row.updated_at,
        backfill_id=row.backfill_id,
        partition_range=key_range,
        partition_count=row.partition_count,
        tags=tags,
        priority=row.priority,
        run_key=row.run_key,
        launcher_kind=row.launcher_kind,
        launcher_handle=row.launcher_handle,
        attempt=row.attempt,
        started_at=row.started_at,
        ended_at=row.ended_at,
        error=row.error,
        failure_kind=RunFailureKind(row.failure_kind) if row.failure_kind else None,
        worker=worker,
        claimed_at=row.claimed_at,
    )
