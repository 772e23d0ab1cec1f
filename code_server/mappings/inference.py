"""The mapping an asset dependency uses when none is declared (Dagster's rules)."""

from __future__ import annotations

from code_server.errors import DefinitionError
from code_server.mappings.all_partitions import AllPartitionMapping
from code_server.mappings.base import PartitionMapping
from code_server.mappings.identity import IdentityPartitionMapping
from code_server.mappings.multi_to_single import MultiToSingleDimensionPartitionMapping
from code_server.mappings.time_window import TimeWindowPartitionMapping
from code_server.partitions.base import PartitionsDefinition
from code_server.partitions.multi import MultiPartitionsDefinition
from code_server.partitions.time_window import TimeWindowPartitionsDefinition


def infer_partition_mapping(
    partition_mapping: PartitionMapping | None,
    downstream_partitions_def: PartitionsDefinition | None,
    upstream_partitions_def: PartitionsDefinition | None,
) -> PartitionMapping:
    """The declared mapping if any; otherwise the one Dagster would infer.

    - either asset unpartitioned: :class:`AllPartitionMapping`;
    - both time windows: :class:`TimeWindowPartitionMapping` (overlapping windows);
    - one multi-partitioned, the other like one of its dimensions:
      :class:`MultiToSingleDimensionPartitionMapping`;
    - otherwise: :class:`IdentityPartitionMapping`.
    """
    if partition_mapping is not None:
        return partition_mapping
    if downstream_partitions_def is None or upstream_partitions_def is None:
        return AllPartitionMapping()
    if isinstance(downstream_partitions_def, TimeWindowPartitionsDefinition) and isinstance(
        upstream_partitions_def, TimeWindowPartitionsDefinition
    ):
        return TimeWindowPartitionMapping()
    if isinstance(downstream_partitions_def, MultiPartitionsDefinition) != isinstance(
        upstream_partitions_def, MultiPartitionsDefinition
    ):
        multi_to_single = MultiToSingleDimensionPartitionMapping()
        try:
            multi_to_single.match_dimension(upstream_partitions_def, downstream_partitions_def)
        except DefinitionError:
            pass  # no dimension matches: fall back to the identity, as Dagster does
        else:
            return multi_to_single
    return IdentityPartitionMapping()
