"""Backfills and their per-partition progress rows."""

from __future__ import annotations

import builtins
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, CursorResult, and_, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from code_server.asset_key import AssetKey
from code_server.partitions.keys import PartitionKeyRange
from code_server.wire.automation import BackfillRequestSpec
from control_plane.records import (
    AssetPartitionColumns,
    BackfillPartition,
    BackfillRecord,
    BackfillStatus,
    PartitionStatus,
)
from control_plane.storage._sql import (
    chunks,
    insert_columns,
    insert_rows,
    key_of,
    key_text,
    matching,
    update_rows,
)
from control_plane.storage.database import Database
from control_plane.storage.errors import BackfillAlreadyExists, NotFound
from control_plane.storage.schema import (
    backfill_assets,
    backfill_partitions,
    backfill_request_parts,
    backfill_tags,
    backfills,
)

_P = backfill_partitions


class BackfillStore:
    def __init__(self, database: Database) -> None:
        self._database = database

    # --- backfills ----------------------------------------------------------------------------------

    def create(
        self,
        record: BackfillRecord,
        partitions: Sequence[BackfillPartition],
        *,
        request: BackfillRequestSpec,
        request_id: str | None = None,
        connection: Connection | None = None,
        partition_columns: Sequence[AssetPartitionColumns] = (),
    ) -> None:
        """The backfill, its assets, tags, request and every partition row, in one transaction.

        Rows come as records, or column by column (``partition_columns``, what a launch of thousands
        of partitions uses: one list per column instead of an object per partition).
        """
        with self._database.connect(connection) as conn:
            try:
                conn.execute(insert(backfills), [_backfill_row(record, request_id)])
            except IntegrityError as error:
                raise BackfillAlreadyExists(
                    f"Backfill {record.id} (request {request_id}) already exists."
                ) from error
            conn.execute(
                insert(backfill_assets),
                [
                    {"backfill_id": record.id, "ordinal": index, "asset_key": key_text(key)}
                    for index, key in enumerate(record.asset_keys)
                ],
            )
            if record.tags:
                conn.execute(
                    insert(backfill_tags),
                    [{"backfill_id": record.id, "key": k, "value": v} for k, v in record.tags.items()],
                )
            insert_rows(conn, backfill_request_parts, _request_rows(record.id, request))
            rows = [
                {
                    "backfill_id": p.backfill_id,
                    "asset_key": key_text(p.asset_key),
                    "partition_key": p.partition_key,
                    "position": p.position,
                    "status": p.status.value,
                    "run_id": p.run_id,
                }
                for p in partitions
            ]
            insert_rows(conn, _P, rows)
            for columns in partition_columns:
                count = len(columns.keys)
                queued, pending = PartitionStatus.QUEUED.value, PartitionStatus.PENDING.value
                insert_columns(
                    conn,
                    _P,
                    {
                        "backfill_id": [record.id] * count,
                        "asset_key": [key_text(columns.asset_key)] * count,
                        "partition_key": columns.keys,
                        "position": columns.positions,
                        "status": [pending if run_id is None else queued for run_id in columns.run_ids],
                        "run_id": columns.run_ids,
                    },
                )

    def get(self, backfill_id: str) -> BackfillRecord | None:
        found = self._records(backfills.c.id == backfill_id, limit=1)
        return found[0] if found else None

    def find_by_request_id(self, request_id: str) -> BackfillRecord | None:
        found = self._records(backfills.c.request_id == request_id, limit=1)
        return found[0] if found else None

    def list(
        self,
        *,
        statuses: Collection[BackfillStatus] | None = None,
        tags: Mapping[str, str] | None = None,
        location: str | None = None,
        limit: int = 100,
        before_created_at: datetime | None = None,
    ) -> builtins.list[BackfillRecord]:
        """Newest first."""
        conditions: builtins.list[ColumnElement[bool]] = []
        if statuses:
            conditions.append(backfills.c.status.in_([status.value for status in statuses]))
        if location:
            conditions.append(backfills.c.location == location)
        if before_created_at is not None:
            conditions.append(backfills.c.created_at < before_created_at)
        for key, value in (tags or {}).items():
            tagged = select(backfill_tags.c.backfill_id).where(
                backfill_tags.c.key == key, backfill_tags.c.value == value
            )
            conditions.append(backfills.c.id.in_(tagged))
        return self._records(and_(True, *conditions), limit=limit)

    def update_status(
        self,
        backfill_id: str,
        status: BackfillStatus,
        *,
        error: str | None = None,
        ended_at: datetime | None = None,
        clear_ended_at: bool = False,
        connection: Connection | None = None,
    ) -> None:
        values: dict[str, object] = {"status": status.value, "updated_at": self._database.clock()}
        if error is not None:
            values["error"] = error
        if ended_at is not None:
            values["ended_at"] = ended_at
        if clear_ended_at:
            values["ended_at"] = None
            values["error"] = None
        with self._database.connect(connection) as conn:
            _require_updated(
                conn.execute(update(backfills).where(backfills.c.id == backfill_id).values(**values)),
                backfill_id,
            )

    def update_limits(
        self, backfill_id: str, *, max_concurrent_runs: int | None = None, priority: int | None = None
    ) -> None:
        """``max_concurrent_runs=0`` removes the per-backfill limit; None leaves a value as it is."""
        values: dict[str, object] = {"updated_at": self._database.clock()}
        if max_concurrent_runs is not None:
            values["max_concurrent_runs"] = max_concurrent_runs or None
        if priority is not None:
            values["priority"] = priority
        with self._database.transaction() as conn:
            _require_updated(
                conn.execute(update(backfills).where(backfills.c.id == backfill_id).values(**values)),
                backfill_id,
            )

    def active_ids(self) -> builtins.list[str]:
        """Ids of the backfills that have not ended, oldest first."""
        unfinished = [status.value for status in BackfillStatus if not status.is_terminal]
        with self._database.read() as conn:
            return list(
                conn.execute(
                    select(backfills.c.id)
                    .where(backfills.c.status.in_(unfinished))
                    .order_by(backfills.c.created_at, backfills.c.id)
                ).scalars()
            )

    def get_request(self, backfill_id: str) -> BackfillRequestSpec:
        with self._database.read() as conn:
            assets = conn.execute(
                select(backfill_assets.c.asset_key)
                .where(backfill_assets.c.backfill_id == backfill_id)
                .order_by(backfill_assets.c.ordinal)
            ).scalars()
            asset_keys = tuple(key_of(text) for text in assets)
            parts = conn.execute(
                select(backfill_request_parts)
                .where(backfill_request_parts.c.backfill_id == backfill_id)
                .order_by(backfill_request_parts.c.ordinal)
            ).all()
        return _request_of(asset_keys, parts)

    # --- partitions -----------------------------------------------------------------------------------

    def partition_counts(self, backfill_id: str) -> dict[AssetKey, dict[PartitionStatus, int]]:
        query = (
            select(_P.c.asset_key, _P.c.status, func.count())
            .where(_P.c.backfill_id == backfill_id)
            .group_by(_P.c.asset_key, _P.c.status)
        )
        counts: dict[AssetKey, dict[PartitionStatus, int]] = {}
        with self._database.read() as conn:
            for asset_key, status, count in conn.execute(query):
                counts.setdefault(key_of(asset_key), {})[PartitionStatus(status)] = count
        return counts

    def count_partitions(self, backfill_id: str, *, statuses: Collection[PartitionStatus]) -> int:
        query = (
            select(func.count())
            .select_from(_P)
            .where(_P.c.backfill_id == backfill_id, _P.c.status.in_([s.value for s in statuses]))
        )
        with self._database.read() as conn:
            return int(conn.execute(query).scalar_one())

    def partitions(
        self,
        backfill_id: str,
        *,
        asset_key: AssetKey | None = None,
        statuses: Collection[PartitionStatus] | None = None,
        partition_keys: Sequence[str] | None = None,
    ) -> builtins.list[BackfillPartition]:
        """Rows ordered by (asset, position); ``partition_keys`` are looked up in bulk, never one by one."""
        conditions = [_P.c.backfill_id == backfill_id]
        if asset_key is not None:
            conditions.append(_P.c.asset_key == key_text(asset_key))
        if statuses:
            conditions.append(_P.c.status.in_([s.value for s in statuses]))
        rows = []
        with self._database.read() as conn:
            if partition_keys is None:
                rows = list(
                    conn.execute(select(_P).where(*conditions).order_by(_P.c.asset_key, _P.c.position))
                )
            else:
                for condition in matching(conn, _P.c.partition_key, list(partition_keys)):
                    rows += conn.execute(select(_P).where(*conditions, condition)).all()
                rows.sort(key=lambda row: (row.asset_key, row.position))
        return [_partition(row) for row in rows]

    def partitions_of_run(self, run_id: str) -> builtins.list[BackfillPartition]:
        with self._database.read() as conn:
            rows = conn.execute(
                select(_P).where(_P.c.run_id == run_id).order_by(_P.c.asset_key, _P.c.position)
            ).all()
        return [_partition(row) for row in rows]

    def set_partition_status(
        self,
        backfill_id: str,
        asset_key: AssetKey | None,
        partition_keys: Sequence[str] | None,
        status: PartitionStatus,
        *,
        only_from: Collection[PartitionStatus] | None = None,
        connection: Connection | None = None,
    ) -> int:
        """Set the status of many partitions (all of an asset, or of the backfill, when given None)."""
        conditions = [_P.c.backfill_id == backfill_id]
        if asset_key is not None:
            conditions.append(_P.c.asset_key == key_text(asset_key))
        if only_from is not None:
            conditions.append(_P.c.status.in_([s.value for s in only_from]))
        changed = 0
        with self._database.connect(connection) as conn:
            values = {"status": status.value, "change_seq": _next_change(conn, backfill_id)}
            if partition_keys is None:
                return int(conn.execute(update(_P).where(*conditions).values(**values)).rowcount)
            for condition in matching(conn, _P.c.partition_key, list(partition_keys)):
                statement = update(_P).where(*conditions, condition).values(**values)
                changed += int(conn.execute(statement).rowcount)
        return changed

    def assign_run(
        self,
        backfill_id: str,
        asset_key: AssetKey,
        partition_keys: Sequence[str],
        run_id: str,
        *,
        connection: Connection | None = None,
    ) -> int:
        """Queue these partitions of one asset in one run."""
        conditions = [_P.c.backfill_id == backfill_id, _P.c.asset_key == key_text(asset_key)]
        changed = 0
        with self._database.connect(connection) as conn:
            sequence = _next_change(conn, backfill_id)
            for condition in matching(conn, _P.c.partition_key, list(partition_keys)):
                statement = (
                    update(_P)
                    .where(*conditions, condition)
                    .values(status=PartitionStatus.QUEUED.value, run_id=run_id, change_seq=sequence)
                )
                changed += int(conn.execute(statement).rowcount)
        return changed

    def assign_runs(
        self,
        backfill_id: str,
        assignments: Iterable[tuple[AssetKey, str, str]],
        *,
        connection: Connection | None = None,
    ) -> int:
        """Queue each (asset, partition) in its run, each in one bulk statement; returns rows changed."""
        rows = [
            {"backfill_id": backfill_id, "asset_key": key_text(asset), "partition_key": key, "run_id": run_id}
            for asset, key, run_id in assignments
        ]
        if not rows:
            return 0
        with self._database.connect(connection) as conn:
            return update_rows(
                conn,
                _P,
                rows,
                keys=("backfill_id", "asset_key", "partition_key"),
                values={
                    "status": PartitionStatus.QUEUED.value,
                    "change_seq": _next_change(conn, backfill_id),
                },
            )

    def set_status_for_run(
        self,
        run_id: str,
        status: PartitionStatus,
        *,
        asset_key: AssetKey | None = None,
        only_from: Collection[PartitionStatus] | None = None,
        connection: Connection | None = None,
    ) -> int:
        conditions = [_P.c.run_id == run_id]
        if asset_key is not None:
            conditions.append(_P.c.asset_key == key_text(asset_key))
        if only_from is not None:
            conditions.append(_P.c.status.in_([s.value for s in only_from]))
        with self._database.connect(connection) as conn:
            backfill_id = conn.execute(
                select(_P.c.backfill_id).where(_P.c.run_id == run_id).limit(1)
            ).scalar()
            if backfill_id is None:
                return 0  # no partition rows: not a backfill's run
            values = {"status": status.value, "change_seq": _next_change(conn, backfill_id)}
            return int(conn.execute(update(_P).where(*conditions).values(**values)).rowcount)

    def reset_partitions(
        self,
        backfill_id: str,
        *,
        from_statuses: Collection[PartitionStatus],
        connection: Connection | None = None,
    ) -> int:
        """Back to pending, unassigned: what a retry does to failed partitions."""
        with self._database.connect(connection) as conn:
            statement = (
                update(_P)
                .where(_P.c.backfill_id == backfill_id, _P.c.status.in_([s.value for s in from_statuses]))
                .values(
                    status=PartitionStatus.PENDING.value,
                    run_id=None,
                    change_seq=_next_change(conn, backfill_id),
                )
            )
            return int(conn.execute(statement).rowcount)

    def partition_changes(
        self, backfill_id: str, *, after: int | None
    ) -> tuple[int, builtins.list[BackfillPartition]]:
        """The sequence now, and the rows changed after ``after`` (none when ``after`` is None).

        A watcher reads the sequence before its first snapshot and then asks for what came after:
        it never misses a change, and the cost is the number of rows that changed.
        """
        with self._database.read() as conn:
            sequence = conn.execute(
                select(backfills.c.partition_change_seq).where(backfills.c.id == backfill_id)
            ).scalar()
            if sequence is None:
                raise NotFound(f"No backfill with id {backfill_id!r}.")
            if after is None or after >= sequence:
                return int(sequence), []
            rows = conn.execute(
                select(_P)
                .where(_P.c.backfill_id == backfill_id, _P.c.change_seq > after, _P.c.change_seq <= sequence)
                .order_by(_P.c.asset_key, _P.c.position)
            ).all()
        return int(sequence), [_partition(row) for row in rows]

    def delete(self, backfill_id: str) -> None:
        with self._database.transaction() as conn:
            conn.execute(delete(backfills).where(backfills.c.id == backfill_id))

    # --- reading records ------------------------------------------------------------------------------

    def _records(self, condition: ColumnElement[bool], *, limit: int) -> builtins.list[BackfillRecord]:
        with self._database.read() as conn:
            rows = conn.execute(
                select(backfills)
                .where(condition)
                .order_by(backfills.c.created_at.desc(), backfills.c.id)
                .limit(limit)
            ).all()
            ids = [row.id for row in rows]
            assets: dict[str, list[AssetKey]] = {}
            tags: dict[str, dict[str, str]] = {}
            for chunk in chunks(ids):
                for row in conn.execute(
                    select(backfill_assets)
                    .where(backfill_assets.c.backfill_id.in_(chunk))
                    .order_by(backfill_assets.c.ordinal)
                ):
                    assets.setdefault(row.backfill_id, []).append(key_of(row.asset_key))
                for row in conn.execute(select(backfill_tags).where(backfill_tags.c.backfill_id.in_(chunk))):
                    tags.setdefault(row.backfill_id, {})[row.key] = row.value
        return [
            BackfillRecord(
                id=row.id,
                status=BackfillStatus(row.status),
                location=row.location,
                asset_keys=tuple(assets.get(row.id, ())),
                created_at=row.created_at,
                updated_at=row.updated_at,
                title=row.title,
                description=row.description,
                tags=tags.get(row.id, {}),
                max_concurrent_runs=row.max_concurrent_runs,
                priority=row.priority,
                ended_at=row.ended_at,
                error=row.error,
                origin=row.origin,
            )
            for row in rows
        ]


def _require_updated(result: CursorResult[Any], backfill_id: str) -> None:
    if not result.rowcount:
        raise NotFound(f"No backfill with id {backfill_id!r}; list them with `partita backfill list`.")


def _backfill_row(record: BackfillRecord, request_id: str | None) -> dict[str, object]:
    return {
        "id": record.id,
        "status": record.status.value,
        "location": record.location,
        "title": record.title,
        "description": record.description,
        "max_concurrent_runs": record.max_concurrent_runs,
        "priority": record.priority,
        "origin": record.origin,
        "request_id": request_id,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "ended_at": record.ended_at,
        "error": record.error,
    }


def _next_change(conn: Connection, backfill_id: str) -> int:
    """The sequence number of this write to the backfill's partitions (locks the backfill's row)."""
    conn.execute(
        update(backfills)
        .where(backfills.c.id == backfill_id)
        .values(partition_change_seq=backfills.c.partition_change_seq + 1)
    )
    return int(
        conn.execute(
            select(backfills.c.partition_change_seq).where(backfills.c.id == backfill_id)
        ).scalar_one()
    )


def _partition(row: object) -> BackfillPartition:
    return BackfillPartition(
        backfill_id=row.backfill_id,  # type: ignore[attr-defined]
        asset_key=key_of(row.asset_key),  # type: ignore[attr-defined]
        partition_key=row.partition_key,  # type: ignore[attr-defined]
        position=row.position,  # type: ignore[attr-defined]
        status=PartitionStatus(row.status),  # type: ignore[attr-defined]
        run_id=row.run_id,  # type: ignore[attr-defined]
    )


def _request_rows(backfill_id: str, request: BackfillRequestSpec) -> builtins.list[dict[str, object]]:
    parts: list[tuple[str, str | None, str | None, str | None]] = []
    if request.partitions_by_asset is not None:
        parts = [
            ("asset_keys", key_text(asset), key, None)
            for asset, keys in request.partitions_by_asset.items()
            for key in keys
        ]
    elif request.all_partitions:
        parts = [("all", None, None, None)]
    elif request.partition_ranges:
        parts = [("range", None, r.start, r.end) for r in request.partition_ranges]
    elif request.partition_keys:
        parts = [("keys", None, key, None) for key in request.partition_keys]
    else:
        parts = [("none", None, None, None)]
    return [
        {
            "backfill_id": backfill_id,
            "ordinal": index,
            "kind": kind,
            "asset_key": asset,
            "start_key": start,
            "end_key": end,
        }
        for index, (kind, asset, start, end) in enumerate(parts)
    ]


def _request_of(asset_keys: tuple[AssetKey, ...], parts: Sequence[object]) -> BackfillRequestSpec:
    kinds = {part.kind for part in parts}  # type: ignore[attr-defined]
    if "asset_keys" in kinds:
        by_asset: dict[AssetKey, list[str]] = {}
        for part in parts:
            by_asset.setdefault(key_of(part.asset_key), []).append(part.start_key)  # type: ignore[attr-defined]
        return BackfillRequestSpec(
            asset_keys=asset_keys, partitions_by_asset={k: tuple(v) for k, v in by_asset.items()}
        )
    if "all" in kinds:
        return BackfillRequestSpec(asset_keys=asset_keys, all_partitions=True)
    if "range" in kinds:
        ranges = tuple(PartitionKeyRange(p.start_key, p.end_key) for p in parts)  # type: ignore[attr-defined]
        return BackfillRequestSpec(asset_keys=asset_keys, partition_ranges=ranges)
    if "keys" in kinds:
        return BackfillRequestSpec(asset_keys=asset_keys, partition_keys=tuple(p.start_key for p in parts))  # type: ignore[attr-defined]
    return BackfillRequestSpec(asset_keys=asset_keys)
