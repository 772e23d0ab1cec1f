"""Between a two-dimensional asset and an asset partitioned like one of its dimensions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from code_server.errors import DefinitionError
from code_server.mappings.base import (
    PartitionMapping,
    UpstreamPartitionsResult,
    reject_single_string,
    require_downstream_def,
    require_downstream_keys,
)
from code_server.mappings.identity import IdentityPartitionMapping
from code_server.mappings.positions import position_function, split_by_existence
from code_server.mappings.time_window import TimeWindowPartitionMapping
from code_server.partitions.base import DynamicPartitionsStore, PartitionsDefinition
from code_server.partitions.keys import MULTI_KEY_SEPARATOR
from code_server.partitions.multi import MultiPartitionKey, MultiPartitionsDefinition
from code_server.partitions.time_window import TimeWindowPartitionsDefinition


class DimensionMatch(NamedTuple):
    """Which dimension of the multi side corresponds to the single side, and how its keys map."""

    multi_def: MultiPartitionsDefinition
    dimension_name: str
    dimension_def: PartitionsDefinition
    single_def: PartitionsDefinition
    upstream_is_multi: bool
    dimension_mapping: PartitionMapping


@dataclass(frozen=True)
class MultiToSingleDimensionPartitionMapping(PartitionMapping):
    """Single key ``x`` corresponds to every multi key whose ``partition_dimension_name`` key is ``x``.

    Works with the multi-partitioned asset upstream or downstream. Without a dimension name, the
    dimension whose definition equals the single-dimension definition is used; failing that, the
    only time-window dimension when the other side is a time window too (keys then map by
    overlapping windows, as TimeWindowPartitionMapping does).
    """

    partition_dimension_name: str | None = None

    def __post_init__(self) -> None:
        if self.partition_dimension_name is not None and not isinstance(self.partition_dimension_name, str):
            raise DefinitionError(
                "MultiToSingleDimensionPartitionMapping partition_dimension_name must be a string or None, "
                f"got {self.partition_dimension_name!r}."
            )

    def validate_partition_mapping(
        self,
        upstream_partitions_def: PartitionsDefinition | None,
        downstream_partitions_def: PartitionsDefinition | None,
    ) -> None:
        self.match_dimension(upstream_partitions_def, require_downstream_def(self, downstream_partitions_def))

    def match_dimension(
        self,
        upstream_partitions_def: PartitionsDefinition | None,
        downstream_partitions_def: PartitionsDefinition,
    ) -> DimensionMatch:
        """Find the dimension that links the two definitions; :class:`DefinitionError` if none or several."""
        multi_sides = [
            partitions_def
            for partitions_def in (upstream_partitions_def, downstream_partitions_def)
            if isinstance(partitions_def, MultiPartitionsDefinition)
        ]
        if len(multi_sides) != 1 or upstream_partitions_def is None:
            raise DefinitionError(
                f"{self!r} maps between one MultiPartitionsDefinition and one single-dimension definition, "
                f"got upstream {upstream_partitions_def!r} and downstream {downstream_partitions_def!r}."
            )
        multi_def = multi_sides[0]
        upstream_is_multi = multi_def is upstream_partitions_def
        single_def = downstream_partitions_def if upstream_is_multi else upstream_partitions_def
        dimensions = list(multi_def.partitions_defs)
        if self.partition_dimension_name is not None:
            dimensions = [d for d in dimensions if d.name == self.partition_dimension_name]
            if not dimensions:
                raise DefinitionError(
                    f"{self!r} names dimension {self.partition_dimension_name!r}, but {multi_def!r} has "
                    f"dimensions {multi_def.partition_dimension_names}."
                )
        equal = [d for d in dimensions if d.partitions_def == single_def]
        if len(equal) > 1:
            raise DefinitionError(
                f"{self!r}: dimensions {[d.name for d in equal]} of {multi_def!r} both equal {single_def!r}; "
                "pass partition_dimension_name to say which one."
            )
        mapping: PartitionMapping
        if equal:
            dimension, mapping = equal[0], IdentityPartitionMapping()
        else:
            time_dimensions = [
                d for d in dimensions if isinstance(d.partitions_def, TimeWindowPartitionsDefinition)
            ]
            if len(time_dimensions) == 1 and isinstance(single_def, TimeWindowPartitionsDefinition):
                dimension, mapping = time_dimensions[0], TimeWindowPartitionMapping()
            elif self.partition_dimension_name is not None:
                dimension, mapping = dimensions[0], IdentityPartitionMapping()
            else:
                raise DefinitionError(
                    f"{self!r}: no dimension of {multi_def!r} has the partitions of {single_def!r}; "
                    "make one dimension's definition equal to it, or pass partition_dimension_name."
                )
        return DimensionMatch(
            multi_def, dimension.name, dimension.partitions_def, single_def, upstream_is_multi, mapping
        )

    def get_upstream_mapped_partitions_result_for_partitions(
        self,
        downstream_partition_keys: Sequence[str] | None,
        downstream_partitions_def: PartitionsDefinition | None,
        upstream_partitions_def: PartitionsDefinition,
        current_time: datetime | None = None,
        dynamic_partitions_store: DynamicPartitionsStore | None = None,
    ) -> UpstreamPartitionsResult:
        keys, downstream_def = require_downstream_keys(
            self, downstream_partition_keys, downstream_partitions_def
        )
        match = self.match_dimension(upstream_partitions_def, downstream_def)
        if not match.upstream_is_multi:
            # Downstream multi keys read the single upstream partition of their dimension's key.
            values = _dimension_values(match, keys)
            return match.dimension_mapping.get_upstream_mapped_partitions_result_for_partitions(
                values, match.dimension_def, match.single_def, current_time, dynamic_partitions_store
            )
        # Single downstream keys read every upstream multi key that has their key in the dimension.
        dimension_result = match.dimension_mapping.get_upstream_mapped_partitions_result_for_partitions(
            keys, match.single_def, match.dimension_def, current_time, dynamic_partitions_store
        )
        existing = _widen(match, dimension_result.partition_keys, current_time, dynamic_partitions_store)
        missing = _widen(
            match,
            dimension_result.required_but_nonexistent_partition_keys,
            current_time,
            dynamic_partitions_store,
        )
        position_of = position_function(match.multi_def, current_time, dynamic_partitions_store)
        ordered, _ = split_by_existence(existing, position_of)
        return UpstreamPartitionsResult(ordered, tuple(dict.fromkeys(missing)))

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
        match = self.match_dimension(upstream_partitions_def, downstream_def)
        if match.upstream_is_multi:
            values = _dimension_values(match, upstream_partition_keys)
            return match.dimension_mapping.get_downstream_partitions_for_partitions(
                values, match.dimension_def, match.single_def, current_time, dynamic_partitions_store
            )
        dimension_keys = match.dimension_mapping.get_downstream_partitions_for_partitions(
            upstream_partition_keys,
            match.single_def,
            match.dimension_def,
            current_time,
            dynamic_partitions_store,
        )
        widened = _widen(match, dimension_keys, current_time, dynamic_partitions_store)
        position_of = position_function(match.multi_def, current_time, dynamic_partitions_store)
        ordered, _ = split_by_existence(widened, position_of)
        return ordered


def _dimension_values(match: DimensionMatch, multi_keys: Sequence[str]) -> list[str]:
    """The matched dimension's key of each multi key, without duplicates."""
    values = (
        match.multi_def.get_partition_key_from_str(key).keys_by_dimension[match.dimension_name]
        for key in multi_keys
    )
    return list(dict.fromkeys(values))


def _widen(
    match: DimensionMatch,
    dimension_keys: Sequence[str],
    current_time: datetime | None,
    dynamic_partitions_store: DynamicPartitionsStore | None,
) -> list[MultiPartitionKey]:
    """Every multi key whose matched dimension holds one of ``dimension_keys``."""
    if not dimension_keys:
        return []
    other = next(d for d in match.multi_def.partitions_defs if d.name != match.dimension_name)
    other_keys = [
        key
        for key in other.partitions_def.get_partition_keys(current_time, dynamic_partitions_store)
        if MULTI_KEY_SEPARATOR not in key
    ]
    return [
        MultiPartitionKey({match.dimension_name: dimension_key, other.name: other_key})
        for dimension_key in dimension_keys
        for other_key in other_keys
    ]
