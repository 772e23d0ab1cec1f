"""Per-asset partition status: the latest outcome of each partition, as ranges of equal status."""

from __future__ import annotations

from datetime import datetime

from code_server.assets import AssetNode
from code_server.partitions.keys import PartitionKeyRange
from control_plane.records import PartitionStatus
from control_plane.service import AssetPartitionStatusView, PartitionStatusRange
from control_plane.storage import AssetStatusStore, Database


def asset_partition_status(
    database: Database, node: AssetNode, partition_range: PartitionKeyRange | None, now: datetime
) -> AssetPartitionStatusView:
    store = AssetStatusStore(database)
    latest = {key: status for key, (status, _run_id) in store.get(node.key).items()}
    if node.partitions_def is None:
        status = latest.get("")
        return AssetPartitionStatusView(node.key, {status: 1}, (), unpartitioned_status=status)
    if partition_range is None:
        keys = node.partitions_def.get_partition_keys(now)
    else:
        keys = node.partitions_def.get_partition_keys_in_range(partition_range)
    counts: dict[PartitionStatus | None, int] = {}
    ranges: list[PartitionStatusRange] = []
    for key in keys:
        status = latest.get(key)
        counts[status] = counts.get(status, 0) + 1
        if ranges and ranges[-1].status == status:
            last = ranges[-1]
            ranges[-1] = PartitionStatusRange(
                PartitionKeyRange(last.partition_range.start, key), status, last.partition_count + 1
            )
        else:
            ranges.append(PartitionStatusRange(PartitionKeyRange(key, key), status, 1))
    return AssetPartitionStatusView(node.key, counts, ranges)
