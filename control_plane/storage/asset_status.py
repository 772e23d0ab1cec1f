"""The latest status of every asset partition, across all runs (what ``partita asset status`` shows)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, func, select

from code_server.asset_key import AssetKey
from control_plane.records import PartitionStatus
from control_plane.storage._sql import insert_rows, key_text, matching
from control_plane.storage.database import Database
from control_plane.storage.schema import asset_partition_status

_T = asset_partition_status


class AssetStatusStore:
    def __init__(self, database: Database) -> None:
        self._database = database

    def upsert(
        self,
        asset_key: AssetKey,
        partition_keys: Sequence[str],
        status: PartitionStatus,
        run_id: str | None,
        *,
        connection: Connection | None = None,
    ) -> None:
        """Insert or overwrite in one bulk statement (ON CONFLICT DO UPDATE on both databases)."""
        now = self._database.clock()
        # Distinct keys: PostgreSQL refuses to update one row twice in a statement.
        rows = [
            {
                "asset_key": key_text(asset_key),
                "partition_key": key,
                "status": status.value,
                "run_id": run_id,
                "updated_at": now,
            }
            for key in dict.fromkeys(partition_keys)
        ]
        with self._database.connect(connection) as conn:
            insert_rows(conn, _T, rows, upsert_on=("asset_key", "partition_key"))

    def get(
        self, asset_key: AssetKey, partition_keys: Sequence[str] | None = None
    ) -> dict[str, tuple[PartitionStatus, str | None]]:
        of_asset = _T.c.asset_key == key_text(asset_key)
        result: dict[str, tuple[PartitionStatus, str | None]] = {}
        with self._database.read() as conn:
            if partition_keys is None:
                batches = [conn.execute(select(_T).where(of_asset)).all()]
            else:
                batches = [
                    conn.execute(select(_T).where(of_asset, keys)).all()
                    for keys in matching(conn, _T.c.partition_key, list(partition_keys))
                ]
        for batch in batches:
            for row in batch:
                result[row.partition_key] = (PartitionStatus(row.status), row.run_id)
        return result

    def counts(self, asset_key: AssetKey) -> dict[PartitionStatus, int]:
        query = (
            select(_T.c.status, func.count())
            .where(_T.c.asset_key == key_text(asset_key))
            .group_by(_T.c.status)
        )
        with self._database.read() as conn:
            return {PartitionStatus(status): count for status, count in conn.execute(query)}
