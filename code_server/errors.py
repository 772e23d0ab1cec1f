"""Errors raised by the Partita SDK.

Hierarchy::

    PartitaError
    ├── DefinitionError            a definition is malformed (cycle, unknown dep, bad cron, ...)
    │   └── PartitionsMismatchError  roots of a selection do not share one partitions definition
    ├── PartitionKeyError          a partition key is invalid or not in its partitions definition
    │   └── PartitionKeyRangeError   a range is malformed or its ends are out of order
    ├── UnknownDefinitionError     a name (sensor, schedule, asset) is not defined
    │   └── UnknownAssetError        an asset key is not defined
    ├── ContextError               a context property used where it has no meaning
    └── UserCodeLoadError          a user module could not be imported
"""

from __future__ import annotations


class PartitaError(Exception):
    """Root of every error the Partita SDK raises."""


class DefinitionError(PartitaError):
    """A definition (asset, partitions, schedule, sensor) is malformed."""


class PartitionsMismatchError(DefinitionError):
    """The most upstream assets of a selection do not share one partitions definition."""


class PartitionKeyError(PartitaError, ValueError):
    """A partition key is malformed or not part of its partitions definition."""


class PartitionKeyRangeError(PartitionKeyError):
    """A partition key range is malformed, or its start comes after its end."""


class UnknownDefinitionError(PartitaError, KeyError):
    """A name refers to no definition of its kind."""

    def __str__(self) -> str:  # KeyError quotes its argument; keep the message readable
        return str(self.args[0]) if self.args else ""


class UnknownAssetError(UnknownDefinitionError):
    """An asset key names no defined asset."""


class ContextError(PartitaError):
    """A context property was used where it has no meaning (e.g. a single key in a range run)."""


class UserCodeLoadError(PartitaError):
    """The user's module or file could not be loaded."""
