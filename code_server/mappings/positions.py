"""Where partition keys sit in their definition's order, and which of them exist.

Mappings return keys in the order of the definition they belong to, without duplicates, and set
apart the keys that do not exist (yet). Listing every key to find out would be slow for long
time-window definitions, so each kind of definition answers in its own way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from code_server.partitions.base import DynamicPartitionsStore, PartitionsDefinition
from code_server.partitions.keys import MULTI_KEY_SEPARATOR
from code_server.partitions.multi import MultiPartitionsDefinition
from code_server.partitions.static import StaticPartitionsDefinition
from code_server.partitions.time_window import TimeWindowPartitionsDefinition

#: A sortable position; tuples so that the two dimensions of a multi key sort lexicographically.
Position = tuple[int, ...]
#: Gives the position of an existing key, or ``None`` for a key that does not exist.
PositionOf = Callable[[str], Position | None]


def position_function(
    partitions_def: PartitionsDefinition,
    current_time: datetime | None = None,
    dynamic_partitions_store: DynamicPartitionsStore | None = None,
) -> PositionOf:
    """A function giving each key's position among the keys of ``partitions_def`` at ``current_time``."""
    if isinstance(partitions_def, TimeWindowPartitionsDefinition):
        return _time_window_positions(partitions_def, current_time)
    if isinstance(partitions_def, MultiPartitionsDefinition):
        return _multi_positions(partitions_def, current_time, dynamic_partitions_store)
    if isinstance(partitions_def, StaticPartitionsDefinition):
        keys: Iterable[str] = partitions_def.partition_keys
    else:
        keys = partitions_def.get_partition_keys(current_time, dynamic_partitions_store)
    positions = {key: (index,) for index, key in enumerate(keys)}
    return positions.get


def split_by_existence(
    keys: Iterable[str], position_of: PositionOf
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(existing keys in definition order, missing keys in first-seen order)``, each without duplicates."""
    existing: dict[str, Position] = {}
    missing: dict[str, None] = {}
    for key in keys:
        if key in existing or key in missing:
            continue
        position = position_of(key)
        if position is None:
            missing[key] = None
        else:
            existing[key] = position
    ordered = sorted(existing, key=existing.__getitem__)
    return tuple(ordered), tuple(missing)


def _time_window_positions(
    partitions_def: TimeWindowPartitionsDefinition, current_time: datetime | None
) -> PositionOf:
    count = partitions_def.num_partitions(current_time)

    def position_of(key: str) -> Position | None:
        try:
            # Raises for any key that is not exactly the key of a window ("2024-1-1" included).
            index = partitions_def.partition_key_index(key)
        except ValueError:
            return None
        return (index,) if 0 <= index < count else None

    return position_of


def _multi_positions(
    partitions_def: MultiPartitionsDefinition,
    current_time: datetime | None,
    dynamic_partitions_store: DynamicPartitionsStore | None,
) -> PositionOf:
    # Many multi keys share each dimension key (every region of one date), so look each up once.
    dimension_positions = [
        _memoized(position_function(dimension.partitions_def, current_time, dynamic_partitions_store))
        for dimension in partitions_def.partitions_defs
    ]

    def position_of(key: str) -> Position | None:
        parts = key.split(MULTI_KEY_SEPARATOR)
        if len(parts) != len(dimension_positions):
            return None
        position: Position = ()
        for part, dimension_position_of in zip(parts, dimension_positions, strict=True):
            part_position = dimension_position_of(part)
            if part_position is None:
                return None
            position += part_position
        return position

    return position_of


def _memoized(position_of: PositionOf) -> PositionOf:
    cache: dict[str, Position | None] = {}

    def cached(key: str) -> Position | None:
        if key not in cache:
            cache[key] = position_of(key)
        return cache[key]

    return cached
