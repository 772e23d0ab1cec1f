"""Partitions given as a fixed list of keys (regions, customers, ...)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime

from code_server.errors import DefinitionError
from code_server.partitions.base import DynamicPartitionsStore, PartitionsDefinition
from code_server.partitions.keys import validate_partition_key


class StaticPartitionsDefinition(PartitionsDefinition):
    """A fixed, ordered list of partition keys: ``StaticPartitionsDefinition(["us", "eu"])``."""

    def __init__(self, partition_keys: Sequence[str]) -> None:
        keys = tuple(validate_partition_key(key) for key in partition_keys)
        duplicates = sorted(key for key, count in Counter(keys).items() if count > 1)
        if duplicates:
            raise DefinitionError(f"StaticPartitionsDefinition has duplicate keys: {duplicates}.")
        self._keys = keys
        self._positions = {key: index for index, key in enumerate(keys)}

    @property
    def partition_keys(self) -> tuple[str, ...]:
        return self._keys

    def get_partition_keys(
        self,
        current_time: datetime | None = None,
        dynamic_partitions_store: DynamicPartitionsStore | None = None,
    ) -> Sequence[str]:
        return self._keys

    def has_partition_key(
        self,
        partition_key: str,
        current_time: datetime | None = None,
        dynamic_partitions_store: DynamicPartitionsStore | None = None,
    ) -> bool:
        return partition_key in self._positions

    def _index_of(self, keys: Sequence[str], key: str) -> int:
        if key not in self._positions:
            return super()._index_of(keys, key)
        return self._positions[key]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StaticPartitionsDefinition) and self._keys == other._keys

    def __hash__(self) -> int:
        return hash((StaticPartitionsDefinition, self._keys))

    def __repr__(self) -> str:
        shown = ", ".join(repr(key) for key in self._keys[:5])
        more = f", ... ({len(self._keys)} keys)" if len(self._keys) > 5 else ""
        return f"StaticPartitionsDefinition([{shown}{more}])"
