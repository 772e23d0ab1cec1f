"""The interface every partitions definition implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from code_server.errors import PartitionKeyError, PartitionKeyRangeError
from code_server.partitions.keys import PartitionKeyRange


class DynamicPartitionsStore(Protocol):
    """Where the keys of dynamic partitions definitions come from (the control plane supplies them)."""

    def get_dynamic_partitions(self, partitions_def_name: str) -> Sequence[str]: ...


class PartitionsDefinition(ABC):
    """An ordered set of partition keys.

    Keys are ordered; ranges are taken in that order. Subclasses must be immutable and hashable
    with value equality, because definitions are compared to decide whether assets share partitions.
    """

    @abstractmethod
    def get_partition_keys(
        self,
        current_time: datetime | None = None,
        dynamic_partitions_store: DynamicPartitionsStore | None = None,
    ) -> Sequence[str]:
        """All keys that exist at ``current_time`` (default: now), in order."""

    def get_partition_keys_in_range(
        self,
        partition_key_range: PartitionKeyRange,
        dynamic_partitions_store: DynamicPartitionsStore | None = None,
    ) -> Sequence[str]:
        """The keys from ``partition_key_range.start`` to ``.end``, both included."""
        keys = self.get_partition_keys(dynamic_partitions_store=dynamic_partitions_store)
        start_index = self._index_of(keys, partition_key_range.start)
        end_index = self._index_of(keys, partition_key_range.end)
        if start_index > end_index:
            raise PartitionKeyRangeError(
                f"Partition range {partition_key_range} is reversed: {partition_key_range.start!r} "
                f"comes after {partition_key_range.end!r}."
            )
        return keys[start_index : end_index + 1]

    def has_partition_key(
        self,
        partition_key: str,
        current_time: datetime | None = None,
        dynamic_partitions_store: DynamicPartitionsStore | None = None,
    ) -> bool:
        return partition_key in self.get_partition_keys(current_time, dynamic_partitions_store)

    def validate_partition_key(
        self,
        partition_key: str,
        current_time: datetime | None = None,
        dynamic_partitions_store: DynamicPartitionsStore | None = None,
    ) -> None:
        """Raise :class:`PartitionKeyError` naming the key and the definition if the key is absent."""
        if not self.has_partition_key(partition_key, current_time, dynamic_partitions_store):
            raise PartitionKeyError(f"Partition key {partition_key!r} is not a partition of {self}.")

    def get_first_partition_key(
        self,
        current_time: datetime | None = None,
        dynamic_partitions_store: DynamicPartitionsStore | None = None,
    ) -> str | None:
        keys = self.get_partition_keys(current_time, dynamic_partitions_store)
        return keys[0] if keys else None

    def get_last_partition_key(
        self,
        current_time: datetime | None = None,
        dynamic_partitions_store: DynamicPartitionsStore | None = None,
    ) -> str | None:
        keys = self.get_partition_keys(current_time, dynamic_partitions_store)
        return keys[-1] if keys else None

    def _index_of(self, keys: Sequence[str], key: str) -> int:
        try:
            return keys.index(key)
        except ValueError:
            raise PartitionKeyError(f"Partition key {key!r} is not a partition of {self}.") from None
