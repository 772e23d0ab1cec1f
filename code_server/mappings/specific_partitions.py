"""Every downstream partition reads a fixed list of upstream partitions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from code_server.errors import DefinitionError
from code_server.mappings.base import PartitionMapping, UpstreamPartitionsResult, reject_single_string
from code_server.mappings.positions import position_function, split_by_existence
from code_server.partitions.base import DynamicPartitionsStore, PartitionsDefinition


@dataclass(frozen=True, init=False)
class SpecificPartitionsPartitionMapping(PartitionMapping):
    """Each downstream partition reads the upstream partitions ``partition_keys``.

    ``SpecificPartitionsPartitionMapping(["us"])``: every partition of the child reads the ``us``
    partition of the parent. Downstream, any of those keys maps to every downstream partition.
    """

    partition_keys: tuple[str, ...]

    def __init__(self, partition_keys: Sequence[str]) -> None:
        if isinstance(partition_keys, str) or not all(isinstance(key, str) for key in partition_keys):
            raise DefinitionError(
                f"SpecificPartitionsPartitionMapping takes a list of partition keys, got {partition_keys!r}."
            )
        object.__setattr__(self, "partition_keys", tuple(partition_keys))

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
        position_of = position_function(upstream_partitions_def, current_time, dynamic_partitions_store)
        existing, missing = split_by_existence(self.partition_keys, position_of)
        return UpstreamPartitionsResult(existing, missing)

    def get_downstream_partitions_for_partitions(
        self,
        upstream_partition_keys: Sequence[str],
        upstream_partitions_def: PartitionsDefinition,
        downstream_partitions_def: PartitionsDefinition | None,
        current_time: datetime | None = None,
        dynamic_partitions_store: DynamicPartitionsStore | None = None,
    ) -> Sequence[str]:
        reject_single_string(self, upstream_partition_keys, "upstream")
        if downstream_partitions_def is None or not set(self.partition_keys).intersection(
            upstream_partition_keys
        ):
            return ()
        return tuple(downstream_partitions_def.get_partition_keys(current_time, dynamic_partitions_store))
