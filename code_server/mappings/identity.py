"""Each downstream partition reads the upstream partition with the same key."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from code_server.mappings.base import (
    PartitionMapping,
    UpstreamPartitionsResult,
    reject_single_string,
    require_downstream_def,
    require_downstream_keys,
)
from code_server.mappings.positions import position_function, split_by_existence
from code_server.partitions.base import DynamicPartitionsStore, PartitionsDefinition


@dataclass(frozen=True)
class IdentityPartitionMapping(PartitionMapping):
    """Downstream partition ``k`` reads upstream partition ``k``; the default between equal definitions.

    Keys missing upstream are reported as required but nonexistent; keys missing downstream are
    left out of the downstream partitions.
    """

    def get_upstream_mapped_partitions_result_for_partitions(
        self,
        downstream_partition_keys: Sequence[str] | None,
        downstream_partitions_def: PartitionsDefinition | None,
        upstream_partitions_def: PartitionsDefinition,
        current_time: datetime | None = None,
        dynamic_partitions_store: DynamicPartitionsStore | None = None,
    ) -> UpstreamPartitionsResult:
        keys, _ = require_downstream_keys(self, downstream_partition_keys, downstream_partitions_def)
        position_of = position_function(upstream_partitions_def, current_time, dynamic_partitions_store)
        existing, missing = split_by_existence(keys, position_of)
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
        downstream_def = require_downstream_def(self, downstream_partitions_def)
        position_of = position_function(downstream_def, current_time, dynamic_partitions_store)
        existing, _ = split_by_existence(upstream_partition_keys, position_of)
        return existing

    @property
    def is_identity_like(self) -> bool:
        return True
