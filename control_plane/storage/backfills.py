"""Backfill records: the request, status, limits and tags of each backfill."""

from __future__ import annotations

import builtins
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, CursorResult, and_, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from code_server.asset_key import AssetKey
from code_server.partitions.keys import PartitionKeyRange
from code_server.wire.automation import BackfillRequestSpec
from control_plane.key_spaces import KeySpace
from control_plane.records import (
    BackfillPartition,
    BackfillRecord,
    BackfillStatus,
    PageCursor,
    PartitionSpan,
)
from control_plane.storage._sql import after_cursor, chunks, insert_rows, key_of, key_text, matching
from control_plane.storage.backfill_progress import BackfillProgressStore
from control_plane.storage.database import Database
from control_plane.storage.errors import BackfillAlreadyExists, NotFound
from control_plane.storage.schema import (
    backfill_assets,
    backfill_request_parts,
    backfill_tags,
    backfills,
)


class BackfillStore:
    """Backfill records: what was requested, its status, limits and tags (progress: ``BackfillProgressStore``)."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._progress = BackfillProgressStore(database)

    # --- backfills ----------------------------------------------------------------------------------

    def create(
        self,
        record: BackfillRecord,
        partitions: Sequence[BackfillPartition] = (),
        *,
        request: BackfillRequestSpec,
        request_id: str | None = None,
        connection: Connection | None = None,
        spans: Sequence[PartitionSpan] = (),
        key_spaces: Mapping[AssetKey, KeySpace] | None = None,
    ) -> None:
        """The backfill, its assets, tags, request and progress, in one transaction.

        Progress comes as spans with each asset's key space, or as one record per partition (see
        ``BackfillProgressStore.start``).
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
            self._progress.start(
                record.id, partitions=partitions, spans=spans, key_spaces=key_spaces, connection=conn
            )

    def get(self, backfill_id: str) -> BackfillRecord | None:
        found = self._records(backfills.c.id == backfill_id, limit=1)
        return found[0] if found else None

    def lock(self, backfill_ids: Sequence[str], *, connection: Connection | None = None) -> None:
        """Lock these backfills' rows until the transaction ends (PostgreSQL; SQLite's writers
        already take turns), in id order, so lockers of several never deadlock each other."""
        if not backfill_ids:
            return
        with self._database.connect(connection) as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(
                    select(backfills.c.id)
                    .where(backfills.c.id.in_(list(backfill_ids)))
                    .order_by(backfills.c.id)
                    .with_for_update()
                )

    def change_marks(self, backfill_ids: Sequence[str]) -> dict[str, tuple[object, ...]]:
        """For each backfill that exists, a value that changes whenever its view does (its record or
        its partition spans): what many watchers of many backfills compare, in one query."""
        marks: dict[str, tuple[object, ...]] = {}
        columns = (
            backfills.c.id,
            backfills.c.status,
            backfills.c.updated_at,
            backfills.c.partition_change_seq,
            backfills.c.max_concurrent_runs,
            backfills.c.priority,
            func.length(backfills.c.error),
        )
        with self._database.read() as conn:
            for condition in matching(conn, backfills.c.id, list(backfill_ids)):
                for row in conn.execute(select(*columns).where(condition)):
                    marks[row[0]] = tuple(row[1:])
        return marks

    def status_of(self, backfill_id: str) -> BackfillStatus | None:
        """Just the status (one query; ``get`` reads assets and tags too)."""
        with self._database.read() as conn:
            status = conn.execute(select(backfills.c.status).where(backfills.c.id == backfill_id)).scalar()
        return None if status is None else BackfillStatus(status)

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
        before: PageCursor | None = None,
    ) -> builtins.list[BackfillRecord]:
        """Newest first; ``before`` is where the previous page ended."""
        conditions: builtins.list[ColumnElement[bool]] = []
        if statuses:
            conditions.append(backfills.c.status.in_([status.value for status in statuses]))
        if location:
            conditions.append(backfills.c.location == location)
        if before is not None:
            conditions.append(after_cursor(backfills.c.created_at, backfills.c.id, before))
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

    def delete(self, backfill_id: str) -> None:
        with self._database.transaction() as conn:
            conn.execute(delete(backfills).where(backfills.c.id == backfill_id))
        self._progress.forget(backfill_id)

    # --- reading records ------------------------------------------------------------------------------

    def _records(self, condition: ColumnElement[bool], *, limit: int) -> builtins.list[BackfillRecord]:
        with self._database.read() as conn:
            rows = conn.execute(
                select(backfills)
                .where(condition)
                .order_by(backfills.c.created_at.desc(), backfills.c.id.desc())
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
