"""Two-dimensional partitions: the cross product of two definitions (date x region, ...).

A key joins one key per dimension with ``|``, dimensions in the order of their names (as in
Dagster): with dimensions ``date`` and ``region`` the key of 2024-01-01 in ``us`` is ``2024-01-01|us``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from code_server.errors import DefinitionError, PartitionKeyError
from code_server.partitions.base import DynamicPartitionsStore, PartitionsDefinition
from code_server.partitions.dynamic import DynamicPartitionsDefinition
from code_server.partitions.keys import (
    MULTI_KEY_SEPARATOR,
    PartitionKeyRange,
    TimeWindow,
    validate_partition_key,
)
from code_server.partitions.static import StaticPartitionsDefinition
from code_server.partitions.time_window import TimeWindowPartitionsDefinition

_DIMENSION_TYPES = (StaticPartitionsDefinition, TimeWindowPartitionsDefinition, DynamicPartitionsDefinition)


class PartitionDimensionKey(NamedTuple):
    """The key of one dimension of a multi-partition key."""

    dimension_name: str
    partition_key: str


class PartitionDimensionDefinition(NamedTuple):
    """One named dimension of a :class:`MultiPartitionsDefinition`."""

    name: str
    partitions_def: PartitionsDefinition


class MultiPartitionKey(str):
    """A multi-partition key: a ``str`` (``"2024-01-01|us"``) that also knows its key in each dimension.

    Being a ``str`` lets it go wherever a partition key goes (sets, storage, the wire) unchanged.
    """

    _keys_by_dimension: dict[str, str]

    def __new__(cls, keys_by_dimension: Mapping[str, str]) -> MultiPartitionKey:
        if not keys_by_dimension:
            raise PartitionKeyError("A multi-partition key needs a key for at least one dimension.")
        names = sorted(keys_by_dimension)
        for name in names:
            key = keys_by_dimension[name]
            try:
                validate_partition_key(key, allow_pipe=False)
            except PartitionKeyError as exc:
                raise PartitionKeyError(f"Dimension {name!r} of a multi-partition key: {exc}") from None
        return cls._trusted({name: keys_by_dimension[name] for name in names})

    @classmethod
    def _trusted(cls, keys_by_dimension: dict[str, str]) -> MultiPartitionKey:
        """Build from valid keys already ordered by dimension name, skipping the checks."""
        instance = str.__new__(cls, MULTI_KEY_SEPARATOR.join(keys_by_dimension.values()))
        instance._keys_by_dimension = keys_by_dimension
        return instance

    @property
    def keys_by_dimension(self) -> Mapping[str, str]:
        """The key in each dimension, by dimension name (a copy: the key is immutable)."""
        return dict(self._keys_by_dimension)

    @property
    def dimension_keys(self) -> list[PartitionDimensionKey]:
        return [PartitionDimensionKey(name, key) for name, key in self._keys_by_dimension.items()]

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuild from the dimensions, not the joined string, so unpickled keys keep them.
        return (MultiPartitionKey, (dict(self._keys_by_dimension),))


class MultiPartitionsDefinition(PartitionsDefinition):
    """The cross product of two partitions definitions, one of which may be a time window.

    ``MultiPartitionsDefinition({"date": DailyPartitionsDefinition("2024-01-01"),
    "region": StaticPartitionsDefinition(["eu", "us"])})`` has keys ``2024-01-01|eu``,
    ``2024-01-01|us``, ``2024-01-02|eu``, ...: the first dimension (by name) varies slowest.
    """

    def __init__(self, partitions_defs: Mapping[str, PartitionsDefinition]) -> None:
        if not isinstance(partitions_defs, Mapping):
            raise DefinitionError(
                "MultiPartitionsDefinition takes a mapping of dimension name to partitions definition, "
                f"got {type(partitions_defs).__name__}."
            )
        if len(partitions_defs) != 2:
            raise DefinitionError(
                "MultiPartitionsDefinition needs exactly two dimensions, got "
                f"{len(partitions_defs)}: {sorted(map(str, partitions_defs))}."
            )
        dimensions = sorted(
            (_checked_dimension(name, partitions_def) for name, partitions_def in partitions_defs.items()),
            key=lambda dimension: dimension.name,
        )
        time_dimensions = [
            d.name for d in dimensions if isinstance(d.partitions_def, TimeWindowPartitionsDefinition)
        ]
        if len(time_dimensions) > 1:
            raise DefinitionError(
                f"MultiPartitionsDefinition has time-window partitions in dimensions {time_dimensions}; "
                "at most one dimension may be a time window."
            )
        self._dimensions = tuple(dimensions)

    @property
    def partitions_defs(self) -> Sequence[PartitionDimensionDefinition]:
        """The dimensions, ordered by name (the order of the keys within a multi-partition key)."""
        return self._dimensions

    @property
    def partition_dimension_names(self) -> list[str]:
        return [dimension.name for dimension in self._dimensions]

    def get_partitions_def_for_dimension(self, dimension_name: str) -> PartitionsDefinition:
        for dimension in self._dimensions:
            if dimension.name == dimension_name:
                return dimension.partitions_def
        raise DefinitionError(
            f"{self!r} has no dimension {dimension_name!r}; "
            f"its dimensions are {self.partition_dimension_names}."
        )

    @property
    def time_window_dimension(self) -> PartitionDimensionDefinition | None:
        """The time-window dimension, or ``None`` if neither dimension is a time window."""
        for dimension in self._dimensions:
            if isinstance(dimension.partitions_def, TimeWindowPartitionsDefinition):
                return dimension
        return None

    @property
    def has_time_window_dimension(self) -> bool:
        return self.time_window_dimension is not None

    def get_partition_key_from_str(self, partition_key_str: str) -> MultiPartitionKey:
        """Split ``"a|b"`` into its dimensions; raises :class:`PartitionKeyError` if it is not two keys."""
        if isinstance(partition_key_str, MultiPartitionKey) and set(
            partition_key_str.keys_by_dimension
        ) == set(self.partition_dimension_names):
            return partition_key_str
        if not isinstance(partition_key_str, str):
            raise PartitionKeyError(
                f"Partition key {partition_key_str!r} must be a string, "
                f"not {type(partition_key_str).__name__}."
            )
        parts = partition_key_str.split(MULTI_KEY_SEPARATOR)
        if len(parts) != len(self._dimensions) or not all(parts):
            names = MULTI_KEY_SEPARATOR.join(f"<{name}>" for name in self.partition_dimension_names)
            raise PartitionKeyError(
                f"Partition key {partition_key_str!r} is not a key of {self!r}: expected {names}, "
                f"e.g. {self._example_key()!r}."
            )
        return MultiPartitionKey(
            {dimension.name: part for dimension, part in zip(self._dimensions, parts, strict=True)}
        )

    def get_partition_keys(
        self,
        current_time: datetime | None = None,
        dynamic_partitions_store: DynamicPartitionsStore | None = None,
    ) -> Sequence[MultiPartitionKey]:
        keys_per_dimension = [
            _usable_keys(dimension.partitions_def.get_partition_keys(current_time, dynamic_partitions_store))
            for dimension in self._dimensions
        ]
        return list(self._product(keys_per_dimension))

    def get_partition_keys_in_range(
        self,
        partition_key_range: PartitionKeyRange,
        dynamic_partitions_store: DynamicPartitionsStore | None = None,
    ) -> Sequence[MultiPartitionKey]:
        """The keys in the rectangle spanned by the two ends, as in Dagster.

        ``2024-01-01|eu...2024-01-03|us`` is every date from the 1st to the 3rd in every region from
        ``eu`` to ``us``: a range in each dimension, crossed.
        """
        start = self.get_partition_key_from_str(partition_key_range.start)
        end = self.get_partition_key_from_str(partition_key_range.end)
        keys_per_dimension = [
            _usable_keys(
                dimension.partitions_def.get_partition_keys_in_range(
                    PartitionKeyRange(
                        start.keys_by_dimension[dimension.name], end.keys_by_dimension[dimension.name]
                    ),
                    dynamic_partitions_store=dynamic_partitions_store,
                )
            )
            for dimension in self._dimensions
        ]
        return list(self._product(keys_per_dimension))

    def has_partition_key(
        self,
        partition_key: str,
        current_time: datetime | None = None,
        dynamic_partitions_store: DynamicPartitionsStore | None = None,
    ) -> bool:
        try:
            key = self.get_partition_key_from_str(partition_key)
        except PartitionKeyError:
            return False
        return all(
            dimension.partitions_def.has_partition_key(
                key.keys_by_dimension[dimension.name], current_time, dynamic_partitions_store
            )
            for dimension in self._dimensions
        )

    def get_multipartition_keys_with_dimension_value(
        self,
        dimension_name: str,
        dimension_partition_key: str,
        current_time: datetime | None = None,
        dynamic_partitions_store: DynamicPartitionsStore | None = None,
    ) -> Sequence[MultiPartitionKey]:
        """Every key whose ``dimension_name`` key is ``dimension_partition_key``, in key order."""
        self.get_partitions_def_for_dimension(dimension_name)
        validate_partition_key(dimension_partition_key, allow_pipe=False)
        keys_per_dimension = [
            (dimension_partition_key,)
            if dimension.name == dimension_name
            else _usable_keys(
                dimension.partitions_def.get_partition_keys(current_time, dynamic_partitions_store)
            )
            for dimension in self._dimensions
        ]
        return list(self._product(keys_per_dimension))

    def time_window_for_partition_key(self, partition_key: str) -> TimeWindow:
        """The time window of the key's time-window dimension."""
        dimension = self.time_window_dimension
        if dimension is None:
            raise DefinitionError(f"{self!r} has no time-window dimension, so its keys have no time window.")
        assert isinstance(dimension.partitions_def, TimeWindowPartitionsDefinition)
        key = self.get_partition_key_from_str(partition_key)
        return dimension.partitions_def.time_window_for_partition_key(key.keys_by_dimension[dimension.name])

    def _product(self, keys_per_dimension: Sequence[Sequence[str]]) -> Iterator[MultiPartitionKey]:
        # The keys come from the dimensions, which were checked when the definition was built.
        first_name, second_name = self.partition_dimension_names
        for first, second in itertools.product(*keys_per_dimension):
            yield MultiPartitionKey._trusted({first_name: first, second_name: second})

    def _example_key(self) -> str:
        examples = []
        for dimension in self._dimensions:
            partitions_def = dimension.partitions_def
            if isinstance(partitions_def, StaticPartitionsDefinition) and partitions_def.partition_keys:
                examples.append(partitions_def.partition_keys[0])
            elif isinstance(partitions_def, TimeWindowPartitionsDefinition):
                examples.append(partitions_def.partition_key_at_index(0))
            else:
                examples.append(f"<{dimension.name}>")
        return MULTI_KEY_SEPARATOR.join(examples)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MultiPartitionsDefinition) and self._dimensions == other._dimensions

    def __hash__(self) -> int:
        return hash((MultiPartitionsDefinition, self._dimensions))

    def __repr__(self) -> str:
        dimensions = ", ".join(f"{d.name!r}: {d.partitions_def!r}" for d in self._dimensions)
        return f"MultiPartitionsDefinition({{{dimensions}}})"


def _checked_dimension(name: object, partitions_def: object) -> PartitionDimensionDefinition:
    if not isinstance(name, str) or not name:
        raise DefinitionError(
            f"MultiPartitionsDefinition dimension names must be non-empty strings, got {name!r}."
        )
    if not isinstance(partitions_def, _DIMENSION_TYPES):
        allowed = ", ".join(t.__name__ for t in _DIMENSION_TYPES)
        raise DefinitionError(
            f"Dimension {name!r} of a MultiPartitionsDefinition is {partitions_def!r}; "
            f"each dimension must be one of {allowed}."
        )
    if isinstance(partitions_def, StaticPartitionsDefinition):
        for key in partitions_def.partition_keys:
            try:
                validate_partition_key(key, allow_pipe=False)
            except PartitionKeyError as exc:
                raise DefinitionError(f"Dimension {name!r} of a MultiPartitionsDefinition: {exc}") from None
    if (
        isinstance(partitions_def, TimeWindowPartitionsDefinition)
        and MULTI_KEY_SEPARATOR in partitions_def.fmt
    ):
        raise DefinitionError(
            f"Dimension {name!r} of a MultiPartitionsDefinition formats its keys with "
            f"{partitions_def.fmt!r}, which contains '{MULTI_KEY_SEPARATOR}', the separator of the "
            "dimensions; choose another fmt."
        )
    return PartitionDimensionDefinition(name, partitions_def)


def _usable_keys(keys: Sequence[str]) -> Sequence[str]:
    # Dynamic keys are added at run time without knowing they end up in a multi key; one holding the
    # separator cannot be told apart from two dimensions, so (as Dagster does) it is left out.
    return [key for key in keys if MULTI_KEY_SEPARATOR not in key]
