"""The interface of partition mappings: which partitions of a parent a child partition reads."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from code_server.errors import DefinitionError
from code_server.partitions.base import DynamicPartitionsStore, PartitionsDefinition


@dataclass(frozen=True, slots=True)
class UpstreamPartitionsResult:
    """The upstream partitions some downstream partitions read.

    Attributes:
        partition_keys: Upstream keys that exist, in upstream order, without duplicates.
        required_but_nonexistent_partition_keys: Upstream keys the mapping asks for that do not
            exist (before the first partition, not yet ended, or not in the definition), so the
            caller can report them instead of waiting for them forever.
    """

    partition_keys: tuple[str, ...]
    required_but_nonexistent_partition_keys: tuple[str, ...] = ()


class PartitionMapping(ABC):
    """Says which upstream partitions each downstream partition depends on, in both directions.

    Subclasses are immutable values (equality, hash, a repr showing their constructor arguments)
    whose constructor arguments can be read back as attributes of the same names.
    """

    @abstractmethod
    def get_upstream_mapped_partitions_result_for_partitions(
        self,
        downstream_partition_keys: Sequence[str] | None,
        downstream_partitions_def: PartitionsDefinition | None,
        upstream_partitions_def: PartitionsDefinition,
        current_time: datetime | None = None,
        dynamic_partitions_store: DynamicPartitionsStore | None = None,
    ) -> UpstreamPartitionsResult:
        """The upstream partitions that ``downstream_partition_keys`` read.

        ``None`` keys and definition mean the downstream asset is not partitioned.
        """

    @abstractmethod
    def get_downstream_partitions_for_partitions(
        self,
        upstream_partition_keys: Sequence[str],
        upstream_partitions_def: PartitionsDefinition,
        downstream_partitions_def: PartitionsDefinition | None,
        current_time: datetime | None = None,
        dynamic_partitions_store: DynamicPartitionsStore | None = None,
    ) -> Sequence[str]:
        """The existing downstream partitions that read any of ``upstream_partition_keys``, in order."""

    @property
    def is_identity_like(self) -> bool:
        """True when each downstream key reads exactly the same upstream key.

        Then a parent and a child with the same partitions can compute a partition in one run.
        """
        return False

    def validate_partition_mapping(  # noqa: B027  (optional hook: most mappings accept any definitions)
        self,
        upstream_partitions_def: PartitionsDefinition | None,
        downstream_partitions_def: PartitionsDefinition | None,
    ) -> None:
        """Raise :class:`DefinitionError` if this mapping cannot map between these definitions."""


def require_downstream_def(
    mapping: PartitionMapping, downstream_partitions_def: PartitionsDefinition | None
) -> PartitionsDefinition:
    """The downstream definition, or a :class:`DefinitionError` for mappings that need one."""
    if downstream_partitions_def is None:
        raise DefinitionError(
            f"{mapping!r} maps between partitioned assets, but the downstream asset is not partitioned; "
            "give it a partitions definition or use AllPartitionMapping()."
        )
    return downstream_partitions_def


def require_downstream_keys(
    mapping: PartitionMapping,
    downstream_partition_keys: Sequence[str] | None,
    downstream_partitions_def: PartitionsDefinition | None,
) -> tuple[Sequence[str], PartitionsDefinition]:
    """The downstream keys and definition, for mappings that need a partitioned downstream asset."""
    partitions_def = require_downstream_def(mapping, downstream_partitions_def)
    if downstream_partition_keys is None:
        raise DefinitionError(
            f"{mapping!r} needs the downstream partition keys of {partitions_def!r}, got None "
            "(None means an unpartitioned downstream asset)."
        )
    reject_single_string(mapping, downstream_partition_keys, "downstream")
    return downstream_partition_keys, partitions_def


def reject_single_string(mapping: PartitionMapping, keys: Sequence[str], what: str) -> None:
    """A lone string is a sequence of characters; catch it before it maps each character."""
    if isinstance(keys, str):
        raise TypeError(
            f"{mapping!r} takes a sequence of {what} partition keys, got the string {keys!r}; "
            "wrap it in a list."
        )
