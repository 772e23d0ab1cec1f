"""Every downstream partition reads every upstream partition (e.g. a daily asset read whole)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from code_server.mappings.base import PartitionMapping, UpstreamPartitionsResult, reject_single_string
from code_server.partitions.base import DynamicPartitionsStore, PartitionsDefinition


@dataclass(frozen=True)
class AllPartitionMapping(PartitionMapping):
    """Each downstream partition reads all upstream partitions that exist.

    The default when either asset is unpartitioned. An empty set of keys maps to nothing, so a
    backfill that selects no partition of one asset adds none of the other.
    """

    def get_upstream_mapped_partitions_result_for_partitions(
        self,
        downstream_partition_keys: Sequence[str] | None,
        downstream_partitions_def: PartitionsDefinition | None,
        upstream_partitions_def: PartitionsDefinition,
        current_time: datetime | None = None,
        dynamic_partitions_store: DynamicPartitionsStore | None = None,
    ) -> UpstreamPartitionsResult:
        if downstream_partition_keys is not None:
            reject_single_string(self, downstream_partition_keys, "downstream")
            if not downstream_partition_keys:
                return UpstreamPartitionsResult(())
        keys = upstream_partitions_def.get_partition_keys(current_time, dynamic_partitions_store)
        return UpstreamPartitionsResult(tuple(keys))

    def get_downstream_partitions_for_partitions(
        self,
        upstream_partition_keys: Sequence[str],
        upstream_partitions_def: PartitionsDefinition,
        downstream_partitions_def: PartitionsDefinition | None,
        current_time: datetime | None = None,
        dynamic_partitions_store: DynamicPartitionsStore | None = None,
    ) -> Sequence[str]:
        reject_single_string(self, upstream_partition_keys, "upstream")
        if not upstream_partition_keys or downstream_partitions_def is None:
            # An unpartitioned downstream asset has no partition keys: it depends as a whole.
            return ()
        return tuple(downstream_partitions_def.get_partition_keys(current_time, dynamic_partitions_store))
