"""Every downstream partition reads the latest upstream partition."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from code_server.mappings.base import PartitionMapping, UpstreamPartitionsResult, reject_single_string
from code_server.partitions.base import DynamicPartitionsStore, PartitionsDefinition


@dataclass(frozen=True)
class LastPartitionMapping(PartitionMapping):
    """Each downstream partition reads the last upstream partition that exists at ``current_time``.

    Downstream, only the last upstream partition matters: it maps to every downstream partition,
    and any other upstream partition maps to none.
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
        last = upstream_partitions_def.get_last_partition_key(current_time, dynamic_partitions_store)
        return UpstreamPartitionsResult(() if last is None else (last,))

    def get_downstream_partitions_for_partitions(
        self,
        upstream_partition_keys: Sequence[str],
        upstream_partitions_def: PartitionsDefinition,
        downstream_partitions_def: PartitionsDefinition | None,
        current_time: datetime | None = None,
        dynamic_partitions_store: DynamicPartitionsStore | None = None,
    ) -> Sequence[str]:
        reject_single_string(self, upstream_partition_keys, "upstream")
        if downstream_partitions_def is None or not upstream_partition_keys:
            return ()
        last = upstream_partitions_def.get_last_partition_key(current_time, dynamic_partitions_store)
        if last is None or last not in upstream_partition_keys:
            return ()
        return tuple(downstream_partitions_def.get_partition_keys(current_time, dynamic_partitions_store))
