"""Backfill progress: partition spans and the key space of each asset, fixed at launch.

Progress is stored as spans (``backfill_partition_spans``): positions first..last of one asset that
share a status and run. Reads answer key by key, expanding only the spans they touch; writes over part
of a span replace the spans they overlap with their pieces (``_spans``), in bulk statements, under
the backfill's row lock. See docs/architecture.md, "State".
"""

from __future__ import annotations

import builtins
from bisect import bisect_left, bisect_right
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, delete, func, insert, select, update

from code_server.asset_key import AssetKey
from control_plane.key_spaces import (
    EncodedKeySpace,
    ExplicitKeySpace,
    KeySpace,
    decoded_key_space,
    intervals,
    merged_intervals,
)
from control_plane.records import BackfillPartition, PartitionSpan, PartitionStatus, RunStatus
from control_plane.storage._spans import Edit, Span, rewrite, spans_of
from control_plane.storage._sql import chunks, insert_columns, key_of, key_text
from control_plane.storage.database import Database
from control_plane.storage.errors import NotFound
from control_plane.storage.schema import backfill_key_spaces, backfill_partition_spans, backfills, runs

_S = backfill_partition_spans
_K = backfill_key_spaces
_SPAN_LENGTH = _S.c.last_position - _S.c.first_position + 1
#: Backfills whose key spaces a store keeps decoded.
_CACHED_BACKFILLS = 256


class BackfillProgressStore:
    """The status and run of every partition of every backfill."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._spaces: dict[str, dict[str, KeySpace]] = {}
        self._intervals: dict[tuple[str, str], builtins.list[tuple[int, int]]] = {}

    def start(
        self,
        backfill_id: str,
        *,
        partitions: Sequence[BackfillPartition] = (),
        spans: Sequence[PartitionSpan] = (),
        key_spaces: Mapping[AssetKey, KeySpace] | None = None,
        connection: Connection | None = None,
    ) -> None:
        """A new backfill's progress: spans with each asset's key space (what a launch writes: a row
        per run and asset, not per partition), or one record per partition (their keys and positions
        become the key space)."""
        spaces = dict(key_spaces or {})
        span_list = list(spans)
        if partitions:
            spaces_of_rows, spans_of_rows = _progress_of_partitions(partitions)
            spaces.update(spaces_of_rows)
            span_list += spans_of_rows
        with self._database.connect(connection) as conn:
            if spaces:  # a row per asset, some holding bytes: a plain executemany
                conn.execute(
                    insert(_K), [_key_space_row(backfill_id, key, space) for key, space in spaces.items()]
                )
            self.add_spans(backfill_id, span_list, connection=conn)

    def add_spans(
        self, backfill_id: str, spans: Sequence[PartitionSpan], *, connection: Connection | None = None
    ) -> None:
        """Insert spans over positions the backfill has no span at yet (what a launch writes)."""
        with self._database.connect(connection) as conn:
            insert_columns(
                conn,
                _S,
                {
                    "backfill_id": [backfill_id] * len(spans),
                    "asset_key": [key_text(span.asset_key) for span in spans],
                    "first_position": [span.first_position for span in spans],
                    "last_position": [span.last_position for span in spans],
                    "status": [span.status.value for span in spans],
                    "run_id": [span.run_id for span in spans],
                },
            )

    def partition_counts(self, backfill_id: str) -> dict[AssetKey, dict[PartitionStatus, int]]:
        query = (
            select(_S.c.asset_key, _S.c.status, func.sum(_SPAN_LENGTH))
            .where(_S.c.backfill_id == backfill_id)
            .group_by(_S.c.asset_key, _S.c.status)
        )
        counts: dict[AssetKey, dict[PartitionStatus, int]] = {}
        with self._database.read() as conn:
            for asset_key, status, count in conn.execute(query):
                counts.setdefault(key_of(asset_key), {})[PartitionStatus(status)] = int(count)
        return counts

    def has_partitions(
        self,
        backfill_id: str,
        *,
        statuses: Collection[PartitionStatus],
        asset_key: AssetKey | None = None,
        between: tuple[int, int] | None = None,
    ) -> bool:
        """Whether any partition (of ``asset_key``, at positions ``between``) has one of ``statuses``:
        one probe, not a count."""
        conditions = [_S.c.backfill_id == backfill_id, _status_in(statuses)]
        if asset_key is not None:
            conditions.append(_S.c.asset_key == key_text(asset_key))
            if between is not None:
                conditions += [_S.c.first_position <= between[1], _S.c.last_position >= between[0]]
        query = select(_S.c.first_position).where(*conditions).limit(1)
        with self._database.read() as conn:
            return conn.execute(query).first() is not None

    def asset_intervals(self, backfill_id: str, asset_key: AssetKey) -> builtins.list[tuple[int, int]]:
        """The asset's positions in the backfill, as sorted disjoint intervals: its spans merged.

        Spans change status but never cover other positions, so this is read once and cached.
        """
        cache_key = (backfill_id, key_text(asset_key))
        cached = self._intervals.get(cache_key)
        if cached is not None:
            return cached
        query = select(_S.c.first_position, _S.c.last_position).where(
            _S.c.backfill_id == backfill_id, _S.c.asset_key == cache_key[1]
        )
        with self._database.read() as conn:
            merged = merged_intervals((row.first_position, row.last_position) for row in conn.execute(query))
        if merged:  # not cached before the backfill's rows are committed
            if len(self._intervals) >= _CACHED_BACKFILLS * 8:
                self._intervals.pop(next(iter(self._intervals)))
            self._intervals[cache_key] = merged
        return merged

    def key_space(self, backfill_id: str, asset_key: AssetKey) -> KeySpace | None:
        """The asset's key space in the backfill (None when the asset is not in it)."""
        with self._database.read() as conn:
            return self._key_spaces(conn, backfill_id, [asset_key]).get(key_text(asset_key))

    def partitions(
        self,
        backfill_id: str,
        *,
        asset_key: AssetKey | None = None,
        statuses: Collection[PartitionStatus] | None = None,
        partition_keys: Sequence[str] | None = None,
    ) -> builtins.list[BackfillPartition]:
        """Partitions ordered by (asset, position), one per key: expanded from the spans that hold
        them. ``partition_keys`` become positions and select only the spans around them."""
        conditions = [_S.c.backfill_id == backfill_id]
        if asset_key is not None:
            conditions.append(_S.c.asset_key == key_text(asset_key))
        if statuses:
            conditions.append(_status_in(statuses))
        result: builtins.list[BackfillPartition] = []
        with self._database.read() as conn:
            spaces = self._key_spaces(conn, backfill_id, None if asset_key is None else [asset_key])
            if partition_keys is None:
                for row in conn.execute(
                    select(_S).where(*conditions).order_by(_S.c.asset_key, _S.c.first_position)
                ):
                    space = spaces[row.asset_key]
                    result.extend(
                        _expanded(backfill_id, row, space, range(row.first_position, row.last_position + 1))
                    )
                return result
            keys = list(dict.fromkeys(partition_keys))
            for asset_text in sorted(spaces):
                space = spaces[asset_text]
                positions = sorted(p for p in map(space.position_of, keys) if p is not None)
                if not positions:
                    continue
                rows = conn.execute(
                    select(_S)
                    .where(*conditions, *_overlapping(backfill_id, asset_text, positions[0], positions[-1]))
                    .order_by(_S.c.first_position)
                )
                for row in rows:
                    low = bisect_left(positions, row.first_position)
                    high = bisect_right(positions, row.last_position)
                    result.extend(_expanded(backfill_id, row, space, positions[low:high]))
        return result

    def ended_runs_with_open_partitions(self, *, limit: int = 10_000) -> builtins.list[str]:
        """Runs that ended while partitions of theirs are still queued or running: what a crash
        between the two writes left before they became one transaction (one query over the open
        spans only)."""
        ended = [status.value for status in RunStatus if status.is_terminal]
        open_statuses = [PartitionStatus.QUEUED.value, PartitionStatus.RUNNING.value]
        query = (
            select(_S.c.run_id)
            .join(runs, runs.c.id == _S.c.run_id)
            .where(_S.c.status.in_(open_statuses), runs.c.status.in_(ended))
            .distinct()
            .limit(limit)
        )
        with self._database.read() as conn:
            return [str(run_id) for (run_id,) in conn.execute(query)]

    def partitions_of_run(self, run_id: str) -> builtins.list[BackfillPartition]:
        with self._database.read() as conn:
            rows = conn.execute(
                select(_S).where(_S.c.run_id == run_id).order_by(_S.c.asset_key, _S.c.first_position)
            ).all()
            if not rows:
                return []
            spaces = self._key_spaces(conn, rows[0].backfill_id, None)
        return [
            partition
            for row in rows
            for partition in _expanded(
                row.backfill_id, row, spaces[row.asset_key], range(row.first_position, row.last_position + 1)
            )
        ]

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
        """Set the status of many partitions (all of an asset, or of the backfill, when given None);
        returns how many changed."""
        conditions = [_S.c.backfill_id == backfill_id]
        if asset_key is not None:
            conditions.append(_S.c.asset_key == key_text(asset_key))
        if only_from is not None:
            conditions.append(_status_in(only_from))
        with self._database.connect(connection) as conn:
            sequence = _next_change(conn, backfill_id)
            if partition_keys is None:
                conditions.append(_S.c.status != status.value)
                return _update_whole_spans(conn, conditions, {"status": status.value, "change_seq": sequence})
            spaces = self._key_spaces(conn, backfill_id, None if asset_key is None else [asset_key])
            edits_by_asset = {}
            for asset_text, space in spaces.items():
                positions = [p for p in map(space.position_of, partition_keys) if p is not None]
                edits_by_asset[asset_text] = [
                    Edit(first, last, status.value) for first, last in intervals(positions)
                ]
            return _rewrite_spans(conn, backfill_id, edits_by_asset, conditions, sequence)

    def assign_runs(
        self,
        backfill_id: str,
        spans: Sequence[PartitionSpan],
        *,
        connection: Connection | None = None,
    ) -> int:
        """Queue each span's partitions in its run (``span.run_id``); returns how many changed."""
        edits_by_asset: dict[str, builtins.list[Edit]] = {}
        for span in spans:
            edits_by_asset.setdefault(key_text(span.asset_key), []).append(
                Edit(span.first_position, span.last_position, PartitionStatus.QUEUED.value, span.run_id)
            )
        if not edits_by_asset:
            return 0
        with self._database.connect(connection) as conn:
            sequence = _next_change(conn, backfill_id)
            conditions = [_S.c.backfill_id == backfill_id]
            return _rewrite_spans(conn, backfill_id, edits_by_asset, conditions, sequence)

    def set_status_for_run(
        self,
        run_id: str,
        status: PartitionStatus,
        *,
        asset_key: AssetKey | None = None,
        only_from: Collection[PartitionStatus] | None = None,
        backfill_id: str | None = None,
        connection: Connection | None = None,
    ) -> int:
        """A run's partitions are whole spans (a run is planned over whole ranges): no span splits.

        ``backfill_id`` (the run's, when the caller knows it) saves looking it up.
        """
        conditions = [_S.c.run_id == run_id, _S.c.status != status.value]
        if asset_key is not None:
            conditions.append(_S.c.asset_key == key_text(asset_key))
        if only_from is not None:
            conditions.append(_status_in(only_from))
        with self._database.connect(connection) as conn:
            if backfill_id is None:
                backfill_id = conn.execute(
                    select(_S.c.backfill_id).where(_S.c.run_id == run_id).limit(1)
                ).scalar()
            if backfill_id is None:
                return 0  # no partitions: not a backfill's run
            values = {"status": status.value, "change_seq": _next_change(conn, backfill_id)}
            return _update_whole_spans(conn, conditions, values)

    def reset_partitions(
        self,
        backfill_id: str,
        *,
        from_statuses: Collection[PartitionStatus],
        connection: Connection | None = None,
    ) -> int:
        """Back to pending, unassigned: what a retry does to failed partitions."""
        with self._database.connect(connection) as conn:
            values = {
                "status": PartitionStatus.PENDING.value,
                "run_id": None,
                "change_seq": _next_change(conn, backfill_id),
            }
            conditions = [_S.c.backfill_id == backfill_id, _status_in(from_statuses)]
            return _update_whole_spans(conn, conditions, values)

    def partition_changes(
        self, backfill_id: str, *, after: int | None
    ) -> tuple[int, builtins.list[PartitionSpan]]:
        """The sequence now, and the spans changed after ``after`` (none when ``after`` is None).

        A watcher reads the sequence before its first snapshot and then asks for what came after:
        it never misses a change, and the cost is the number of spans that changed.
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
                select(_S)
                .where(_S.c.backfill_id == backfill_id, _S.c.change_seq > after, _S.c.change_seq <= sequence)
                .order_by(_S.c.asset_key, _S.c.first_position)
            ).all()
            spaces = self._key_spaces(conn, backfill_id, None) if rows else {}
        return int(sequence), [_span(row, spaces[row.asset_key]) for row in rows]

    def _key_spaces(
        self, conn: Connection, backfill_id: str, asset_keys: Sequence[AssetKey] | None
    ) -> dict[str, KeySpace]:
        """The backfill's key spaces by asset key text (fixed at launch, so cached)."""
        cached = self._spaces.get(backfill_id)
        if cached is None:
            rows = conn.execute(select(_K).where(_K.c.backfill_id == backfill_id)).all()
            cached = {
                row.asset_key: decoded_key_space(EncodedKeySpace(row.kind, row.definition, row.keys))
                for row in rows
            }
            if len(self._spaces) >= _CACHED_BACKFILLS:
                self._spaces.pop(next(iter(self._spaces)))
            if cached:  # not cached before the backfill's rows are committed
                self._spaces[backfill_id] = cached
        if asset_keys is None:
            return cached
        wanted = [key_text(key) for key in asset_keys]
        return {text: cached[text] for text in wanted if text in cached}

    def forget(self, backfill_id: str) -> None:
        """Drop the cached key spaces and intervals of a deleted backfill."""
        self._spaces.pop(backfill_id, None)
        for cache_key in [key for key in self._intervals if key[0] == backfill_id]:
            del self._intervals[cache_key]


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


def _overlapping(
    backfill_id: str, asset_text: str, first: int, last: int
) -> builtins.list[ColumnElement[bool]]:
    """Conditions selecting the asset's spans that overlap positions ``first`` .. ``last``.

    Spans are disjoint, so they start within the range, or are the one span starting last before
    it: two seeks on the primary key, never a scan of the spans before the range.
    """
    asset = (_S.c.backfill_id == backfill_id, _S.c.asset_key == asset_text)
    start_before = (
        select(_S.c.first_position)
        .where(*asset, _S.c.first_position <= first)
        .order_by(_S.c.first_position.desc())
        .limit(1)
        .scalar_subquery()
    )
    return [
        *asset,
        _S.c.first_position >= func.coalesce(start_before, first),
        _S.c.first_position <= last,
        _S.c.last_position >= first,
    ]


def _status_in(statuses: Collection[PartitionStatus]) -> ColumnElement[bool]:
    return _S.c.status.in_([status.value for status in statuses])


def _count(conn: Connection, *conditions: ColumnElement[bool]) -> int:
    return int(conn.execute(select(func.coalesce(func.sum(_SPAN_LENGTH), 0)).where(*conditions)).scalar_one())


def _update_whole_spans(
    conn: Connection, conditions: Sequence[ColumnElement[bool]], values: Mapping[str, object]
) -> int:
    """Update every span matching ``conditions``; returns the partitions they hold."""
    changed = _count(conn, *conditions)
    if changed:
        conn.execute(update(_S).where(*conditions).values(**values))
    return changed


def _rewrite_spans(
    conn: Connection,
    backfill_id: str,
    edits_by_asset: Mapping[str, Sequence[Edit]],
    conditions: Sequence[ColumnElement[bool]],
    sequence: int,
) -> int:
    """Apply edits to the spans they overlap (among those matching ``conditions``): the touched
    spans are deleted and their pieces inserted, a statement each for all assets' spans."""
    removed: dict[str, builtins.list[int]] = {}
    added: builtins.list[tuple[str, Span]] = []
    changed = 0
    for asset_text, edits in edits_by_asset.items():
        if not edits:
            continue
        ordered = sorted(edits, key=lambda edit: edit.first)
        rows = conn.execute(
            select(_S)
            .where(
                *conditions,
                *_overlapping(backfill_id, asset_text, ordered[0].first, max(e.last for e in ordered)),
            )
            .order_by(_S.c.first_position)
        )
        spans = [Span(r.first_position, r.last_position, r.status, r.run_id, r.change_seq) for r in rows]
        result = rewrite(spans, ordered, sequence)
        changed += result.changed
        if result.removed:
            removed[asset_text] = result.removed
            added.extend((asset_text, span) for span in result.added)
    for asset_text, firsts in removed.items():
        for chunk in chunks(firsts):
            conn.execute(
                delete(_S).where(
                    _S.c.backfill_id == backfill_id,
                    _S.c.asset_key == asset_text,
                    _S.c.first_position.in_(chunk),
                )
            )
    insert_columns(
        conn,
        _S,
        {
            "backfill_id": [backfill_id] * len(added),
            "asset_key": [asset_text for asset_text, _ in added],
            "first_position": [span.first for _, span in added],
            "last_position": [span.last for _, span in added],
            "status": [span.status for _, span in added],
            "run_id": [span.run_id for _, span in added],
            "change_seq": [span.change_seq for _, span in added],
        },
    )
    return changed


def _progress_of_partitions(
    partitions: Sequence[BackfillPartition],
) -> tuple[dict[AssetKey, KeySpace], builtins.list[PartitionSpan]]:
    """Key spaces and spans of per-partition records."""
    by_asset: dict[AssetKey, builtins.list[BackfillPartition]] = {}
    for partition in partitions:
        by_asset.setdefault(partition.asset_key, []).append(partition)
    spaces: dict[AssetKey, KeySpace] = {}
    spans: builtins.list[PartitionSpan] = []
    for asset_key, rows in by_asset.items():
        spaces[asset_key] = ExplicitKeySpace([r.position for r in rows], [r.partition_key for r in rows])
        for span in spans_of((r.position, r.status.value, r.run_id) for r in rows):
            spans.append(
                PartitionSpan(asset_key, span.first, span.last, PartitionStatus(span.status), span.run_id)
            )
    return spaces, spans


def _key_space_row(backfill_id: str, asset_key: AssetKey, space: KeySpace) -> dict[str, object]:
    encoded = space.encoded()
    return {
        "backfill_id": backfill_id,
        "asset_key": key_text(asset_key),
        "kind": encoded.kind,
        "definition": encoded.definition,
        "keys": encoded.keys,
    }


def _expanded(
    backfill_id: str, row: Any, space: KeySpace, positions: Iterable[int]
) -> Iterator[BackfillPartition]:
    asset_key, status = key_of(row.asset_key), PartitionStatus(row.status)
    for position in positions:
        yield BackfillPartition(backfill_id, asset_key, space.key_at(position), position, status, row.run_id)


def _span(row: Any, space: KeySpace) -> PartitionSpan:
    return PartitionSpan(
        asset_key=key_of(row.asset_key),
        first_position=row.first_position,
        last_position=row.last_position,
        status=PartitionStatus(row.status),
        run_id=row.run_id,
        first_key=space.key_at(row.first_position),
        last_key=space.key_at(row.last_position),
    )
