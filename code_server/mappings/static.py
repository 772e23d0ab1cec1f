"""An explicit table from upstream keys to the downstream keys that read them."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from types import MappingProxyType

from code_server.errors import DefinitionError
from code_server.mappings.base import (
    PartitionMapping,
    UpstreamPartitionsResult,
    reject_single_string,
    require_downstream_def,
)
from code_server.mappings.positions import position_function, split_by_existence
from code_server.partitions.base import DynamicPartitionsStore, PartitionsDefinition
from code_server.partitions.static import StaticPartitionsDefinition


class StaticPartitionMapping(PartitionMapping):
    """Maps upstream keys to downstream keys by a table.

    ``StaticPartitionMapping({"a": "x", "b": {"y", "z"}})``: downstream ``x`` reads upstream ``a``;
    ``y`` and ``z`` read ``b``. A key the table does not mention maps to nothing. Between static
    definitions, a table naming keys that neither definition has is a :class:`DefinitionError`
    (a typo would otherwise silently drop data).
    """

    def __init__(
        self, downstream_partition_keys_by_upstream_partition_key: Mapping[str, str | Collection[str]]
    ) -> None:
        if not isinstance(downstream_partition_keys_by_upstream_partition_key, Mapping):
            raise DefinitionError(
                "StaticPartitionMapping takes a mapping of upstream key to downstream key(s), got "
                f"{downstream_partition_keys_by_upstream_partition_key!r}."
            )
        table: dict[str, frozenset[str]] = {}
        for upstream_key, downstream_keys in downstream_partition_keys_by_upstream_partition_key.items():
            if isinstance(downstream_keys, str):
                targets = frozenset({downstream_keys})
            elif isinstance(downstream_keys, Collection):
                targets = frozenset(downstream_keys)
            else:
                targets = frozenset({downstream_keys})  # rejected just below, with the others
            if not isinstance(upstream_key, str) or not all(isinstance(key, str) for key in targets):
                raise DefinitionError(
                    f"StaticPartitionMapping maps partition keys (strings), got {upstream_key!r}: "
                    f"{downstream_keys!r}."
                )
            table[upstream_key] = targets
        inverse: dict[str, set[str]] = {}
        for upstream_key, targets in table.items():
            for downstream_key in targets:
                inverse.setdefault(downstream_key, set()).add(upstream_key)
        self._table = table
        self._inverse = {key: frozenset(sources) for key, sources in inverse.items()}

    @property
    def downstream_partition_keys_by_upstream_partition_key(self) -> Mapping[str, frozenset[str]]:
        """The table, each value a set of downstream keys (read-only)."""
        return MappingProxyType(self._table)

    @property
    def is_identity_like(self) -> bool:
        return all(targets == {source} for source, targets in self._table.items())

    def validate_partition_mapping(
        self,
        upstream_partitions_def: PartitionsDefinition | None,
        downstream_partitions_def: PartitionsDefinition | None,
    ) -> None:
        self._check_keys(self._table, upstream_partitions_def, "upstream")
        self._check_keys(self._inverse, downstream_partitions_def, "downstream")

    def get_upstream_mapped_partitions_result_for_partitions(
        self,
        downstream_partition_keys: Sequence[str] | None,
        downstream_partitions_def: PartitionsDefinition | None,
        upstream_partitions_def: PartitionsDefinition,
        current_time: datetime | None = None,
        dynamic_partitions_store: DynamicPartitionsStore | None = None,
    ) -> UpstreamPartitionsResult:
        if downstream_partition_keys is None:
            return UpstreamPartitionsResult(())  # an unpartitioned child has no key to look up (as Dagster)
        reject_single_string(self, downstream_partition_keys, "downstream")
        self._check_keys(self._table, upstream_partitions_def, "upstream")
        sources = [
            source for key in downstream_partition_keys for source in self._inverse.get(key, frozenset())
        ]
        position_of = position_function(upstream_partitions_def, current_time, dynamic_partitions_store)
        existing, missing = split_by_existence(sources, position_of)
        return UpstreamPartitionsResult(existing, tuple(sorted(missing)))

    def get_downstream_partitions_for_partitions(
        self,
        upstream_partition_keys: Sequence[str],
        upstream_partitions_def: PartitionsDefinition,
        downstream_partitions_def: PartitionsDefinition | None,
        current_time: datetime | None = None,
        dynamic_partitions_store: DynamicPartitionsStore | None = None,
    ) -> Sequence[str]:
        reject_single_string(self, upstream_partition_keys, "upstream")
        downstream_def = require_downstream_def(self, downstream_partitions_def)
        self._check_keys(self._inverse, downstream_def, "downstream")
        targets = [target for key in upstream_partition_keys for target in self._table.get(key, frozenset())]
        position_of = position_function(downstream_def, current_time, dynamic_partitions_store)
        existing, _ = split_by_existence(targets, position_of)
        return existing

    def _check_keys(
        self, keys: Collection[str], partitions_def: PartitionsDefinition | None, role: str
    ) -> None:
        # Only static definitions know all their keys up front; dynamic ones are checked per call.
        if not isinstance(partitions_def, StaticPartitionsDefinition):
            return
        unknown = sorted(key for key in keys if not partitions_def.has_partition_key(key))
        if unknown:
            raise DefinitionError(
                f"{self!r} names {role} keys {unknown} that are not partitions of the {role} "
                f"{partitions_def!r}; fix the mapping or the partitions definition."
            )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StaticPartitionMapping) and self._table == other._table

    def __hash__(self) -> int:
        return hash((StaticPartitionMapping, frozenset(self._table.items())))

    def __repr__(self) -> str:
        entries = ", ".join(
            f"{source!r}: {_show_targets(targets)}" for source, targets in sorted(self._table.items())
        )
        return f"StaticPartitionMapping({{{entries}}})"


def _show_targets(targets: frozenset[str]) -> str:
    if len(targets) == 1:
        return repr(next(iter(targets)))
    return "{" + ", ".join(repr(target) for target in sorted(targets)) + "}"
