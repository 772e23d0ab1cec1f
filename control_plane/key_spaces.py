"""How a backfill turns an asset's partition positions into keys and back, fixed at launch.

Progress is stored as spans of positions, so each (backfill, asset) keeps the map between positions
and keys it was launched with. A time-window definition *is* such a map, and costs the same for ten
years as for a day: the backfill stores the definition itself. Any other definition (static,
dynamic, multi) stores its keys, which are few for those definitions, position by position.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from code_server.errors import PartitaError
from code_server.partitions import TimeWindowPartitionsDefinition
from code_server.partitions.base import PartitionsDefinition
from code_server.wire.partitions import partitions_def_from_proto, partitions_def_to_proto
from partita.common.v1 import partitions_pb2


class KeySpace(ABC):
    """Positions <-> keys of one asset of a backfill."""

    @abstractmethod
    def key_at(self, position: int) -> str:
        """The key at ``position`` (a position the backfill covers)."""

    @abstractmethod
    def position_of(self, key: str) -> int | None:
        """The position of ``key``, or None when it has none."""

    def keys_between(self, first: int, last: int) -> Iterator[str]:
        """Keys at ``first`` .. ``last``, both included."""
        return (self.key_at(position) for position in range(first, last + 1))

    @abstractmethod
    def encoded(self) -> EncodedKeySpace:
        """What storage keeps of it."""


@dataclass(frozen=True, slots=True)
class EncodedKeySpace:
    #: "time_window" (``definition`` holds the serialized definition) or "keys" (``keys`` holds JSON).
    kind: str
    definition: bytes | None = None
    keys: str | None = None


class TimeWindowKeySpace(KeySpace):
    """Positions are the definition's window indices: no key is stored."""

    def __init__(self, definition: TimeWindowPartitionsDefinition) -> None:
        self.definition = definition

    def key_at(self, position: int) -> str:
        return self.definition.partition_key_at_index(position)

    def position_of(self, key: str) -> int | None:
        try:
            return self.definition.partition_key_index(key)
        except PartitaError:
            return None

    def encoded(self) -> EncodedKeySpace:
        serialized = partitions_def_to_proto(self.definition).SerializeToString(deterministic=True)
        return EncodedKeySpace("time_window", definition=serialized)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TimeWindowKeySpace) and other.definition == self.definition

    def __hash__(self) -> int:
        return hash(self.definition)


class ExplicitKeySpace(KeySpace):
    """The backfill's keys of the asset, each with its position (ascending)."""

    def __init__(self, positions: Sequence[int], keys: Sequence[str]) -> None:
        if len(positions) != len(keys):
            raise ValueError("ExplicitKeySpace needs one position per key.")
        self._key_at = dict(zip(positions, keys, strict=True))
        self._position_of = dict(zip(keys, positions, strict=True))

    def key_at(self, position: int) -> str:
        try:
            return self._key_at[position]
        except KeyError:
            raise PartitaError(f"No partition at position {position} in this backfill.") from None

    def position_of(self, key: str) -> int | None:
        return self._position_of.get(key)

    def encoded(self) -> EncodedKeySpace:
        positions = sorted(self._key_at)
        return EncodedKeySpace(
            "keys", keys=json.dumps([positions, [self._key_at[position] for position in positions]])
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ExplicitKeySpace) and other._key_at == self._key_at

    def __hash__(self) -> int:
        return hash(tuple(self._key_at.items()))


def intervals(positions: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted, merged (first, last) intervals covering ``positions``: how targets and writes name positions."""
    return merged_intervals((position, position) for position in positions)


def merged_intervals(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """The union of (first, last) intervals, as sorted, disjoint intervals (touching ones joined)."""
    result: list[tuple[int, int]] = []
    for first, last in sorted(spans):
        if result and first <= result[-1][1] + 1:
            result[-1] = (result[-1][0], max(last, result[-1][1]))
        else:
            result.append((first, last))
    return result


def key_space_for(
    definition: PartitionsDefinition | None, positions: Sequence[int], keys: Sequence[str]
) -> KeySpace:
    """The smallest space that maps these keys: the definition when it is a time window."""
    if isinstance(definition, TimeWindowPartitionsDefinition):
        return TimeWindowKeySpace(definition)
    return ExplicitKeySpace(positions, keys)


def decoded_key_space(encoded: EncodedKeySpace) -> KeySpace:
    if encoded.kind == "time_window" and encoded.definition is not None:
        message = partitions_pb2.PartitionsDefinition.FromString(encoded.definition)
        definition = partitions_def_from_proto(message)
        if not isinstance(definition, TimeWindowPartitionsDefinition):
            raise ValueError("A stored time-window key space holds another kind of definition.")
        return TimeWindowKeySpace(definition)
    if encoded.kind == "keys" and encoded.keys is not None:
        positions, keys = json.loads(encoded.keys)
        return ExplicitKeySpace(positions, keys)
    raise ValueError(f"Unknown stored key space kind {encoded.kind!r}.")
