"""Partition mappings: which partitions of a parent asset each partition of a child reads.

Every mapping answers in both directions (``get_upstream_mapped_partitions_result_for_partitions``
and ``get_downstream_partitions_for_partitions``) on plain partition keys, so the control plane
uses the same code as the SDK.
"""

from code_server.mappings.all_partitions import AllPartitionMapping
from code_server.mappings.base import PartitionMapping, UpstreamPartitionsResult
from code_server.mappings.identity import IdentityPartitionMapping
from code_server.mappings.inference import infer_partition_mapping
from code_server.mappings.last import LastPartitionMapping
from code_server.mappings.multi_to_single import MultiToSingleDimensionPartitionMapping
from code_server.mappings.specific_partitions import SpecificPartitionsPartitionMapping
from code_server.mappings.static import StaticPartitionMapping
from code_server.mappings.time_window import TimeWindowPartitionMapping

__all__ = [
    "AllPartitionMapping",
    "IdentityPartitionMapping",
    "LastPartitionMapping",
    "MultiToSingleDimensionPartitionMapping",
    "PartitionMapping",
    "SpecificPartitionsPartitionMapping",
    "StaticPartitionMapping",
    "TimeWindowPartitionMapping",
    "UpstreamPartitionsResult",
    "infer_partition_mapping",
]
