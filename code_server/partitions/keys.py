"""Partition keys, inclusive key ranges and closed-open time windows."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from code_server.errors import PartitionKeyError, PartitionKeyRangeError

#: Separates the two ends of a range on the command line and in environment variables.
KEY_RANGE_SEPARATOR = "..."
#: Separates the dimensions of a multi-partition key.
MULTI_KEY_SEPARATOR = "|"

_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


def validate_partition_key(key: str, *, allow_pipe: bool = True) -> str:
    """Return ``key`` if it can be carried safely through ranges, lists and multi keys.

    Keys containing ``...`` (the range separator), ``,`` (the list separator on the command line),
    control characters, or ``|`` where the key is a dimension of a multi-partition key, would be
    ambiguous once serialized, so they are rejected up front rather than misread later.
    """
    if not isinstance(key, str):
        raise PartitionKeyError(f"Partition key {key!r} must be a string, not {type(key).__name__}.")
    if not key:
        raise PartitionKeyError("Partition key must not be empty.")
    if KEY_RANGE_SEPARATOR in key:
        raise PartitionKeyError(
            f"Partition key {key!r} contains '{KEY_RANGE_SEPARATOR}', which separates the ends of a range."
        )
    if "," in key:
        raise PartitionKeyError(f"Partition key {key!r} contains ',', which separates keys in a list.")
    if _CONTROL_CHARACTERS.search(key):
        raise PartitionKeyError(f"Partition key {key!r} contains a control character.")
    if not allow_pipe and MULTI_KEY_SEPARATOR in key:
        raise PartitionKeyError(
            f"Partition key {key!r} contains '{MULTI_KEY_SEPARATOR}', which separates the dimensions "
            "of a multi-partition key."
        )
    return key


@dataclass(frozen=True, slots=True)
class PartitionKeyRange:
    """A range of partition keys, inclusive at both ends: ``PartitionKeyRange("2024-01-01", "2024-01-31")``."""

    start: str
    end: str

    def __str__(self) -> str:
        return f"{self.start}{KEY_RANGE_SEPARATOR}{self.end}"

    @classmethod
    def parse(cls, text: str) -> PartitionKeyRange:
        """Parse ``START...END`` (as passed on the command line); a lone key is a range of one."""
        if KEY_RANGE_SEPARATOR not in text:
            return cls(text, text)
        start, _, end = text.partition(KEY_RANGE_SEPARATOR)
        if not start or not end or KEY_RANGE_SEPARATOR in end:
            raise PartitionKeyRangeError(
                f"Malformed partition range {text!r}: expected START{KEY_RANGE_SEPARATOR}END, "
                f"e.g. 2024-01-01{KEY_RANGE_SEPARATOR}2024-01-31."
            )
        return cls(start, end)


class TimeWindow(NamedTuple):
    """A closed-open interval of time ``[start, end)``; unpacks as ``start, end = window``."""

    start: datetime
    end: datetime
