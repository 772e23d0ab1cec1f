"""Partitions definitions, key ranges and mappings <-> ``partita.common.v1`` messages."""

from __future__ import annotations

import functools

import pendulum

from code_server.errors import DefinitionError
from code_server.mappings import (
    AllPartitionMapping,
    IdentityPartitionMapping,
    LastPartitionMapping,
    MultiToSingleDimensionPartitionMapping,
    PartitionMapping,
    SpecificPartitionsPartitionMapping,
    StaticPartitionMapping,
    TimeWindowPartitionMapping,
)
from code_server.partitions.base import PartitionsDefinition
from code_server.partitions.dynamic import DynamicPartitionsDefinition
from code_server.partitions.keys import PartitionKeyRange
from code_server.partitions.multi import MultiPartitionsDefinition
from code_server.partitions.static import StaticPartitionsDefinition
from code_server.partitions.time_window import TimeWindowPartitionsDefinition
from code_server.wire.timestamps import timestamp_from_proto, timestamp_to_proto
from partita.common.v1 import partitions_pb2 as pb


def key_range_to_proto(key_range: PartitionKeyRange) -> pb.PartitionKeyRange:
    return pb.PartitionKeyRange(start=key_range.start, end=key_range.end)


def key_range_from_proto(message: pb.PartitionKeyRange) -> PartitionKeyRange:
    return PartitionKeyRange(message.start, message.end)


def partitions_def_to_proto(definition: PartitionsDefinition) -> pb.PartitionsDefinition:
    if isinstance(definition, MultiPartitionsDefinition):
        dimensions = [
            pb.PartitionDimension(
                name=dimension.name, partitions_def=_dimension_to_proto(dimension.partitions_def)
            )
            for dimension in definition.partitions_defs
        ]
        return pb.PartitionsDefinition(multi=pb.MultiPartitions(dimensions=dimensions))
    dimension = _dimension_to_proto(definition)
    kind = dimension.WhichOneof("kind")
    return pb.PartitionsDefinition(**{kind: getattr(dimension, kind)})  # type: ignore[arg-type]


def partitions_def_from_proto(message: pb.PartitionsDefinition) -> PartitionsDefinition:
    """Decode a definition; identical messages share one (immutable) object.

    A location's assets mostly share a handful of definitions, and building a time-window
    definition is the costly part of decoding a snapshot, so each distinct one is built once.
    """
    return _decoded(message.SerializeToString(deterministic=True))


@functools.lru_cache(maxsize=4096)
def _decoded(serialized: bytes) -> PartitionsDefinition:
    message = pb.PartitionsDefinition.FromString(serialized)
    kind = message.WhichOneof("kind")
    if kind == "multi":
        return MultiPartitionsDefinition(
            {
                dimension.name: _dimension_from_proto(dimension.partitions_def)
                for dimension in message.multi.dimensions
            }
        )
    if kind is None:
        raise DefinitionError("PartitionsDefinition message has no kind set.")
    return _dimension_from_proto(message)  # the same oneof field names as DimensionPartitions


def _dimension_to_proto(definition: PartitionsDefinition) -> pb.DimensionPartitions:
    if isinstance(definition, StaticPartitionsDefinition):
        return pb.DimensionPartitions(static=pb.StaticPartitions(partition_keys=definition.partition_keys))
    if isinstance(definition, DynamicPartitionsDefinition):
        return pb.DimensionPartitions(dynamic=pb.DynamicPartitions(name=definition.name))
    if isinstance(definition, TimeWindowPartitionsDefinition):
        time_window = pb.TimeWindowPartitions(
            cron_schedule=definition.cron_schedule,
            start=timestamp_to_proto(definition.start),
            fmt=definition.fmt,
            timezone=definition.timezone,
            end_offset=definition.end_offset,
        )
        if definition.end is not None:
            time_window.end.CopyFrom(timestamp_to_proto(definition.end))
        return pb.DimensionPartitions(time_window=time_window)
    raise DefinitionError(f"{definition!r} cannot be sent to the control plane: unsupported partitions kind.")


def _dimension_from_proto(message: pb.DimensionPartitions | pb.PartitionsDefinition) -> PartitionsDefinition:
    kind = message.WhichOneof("kind")
    if kind == "static":
        return StaticPartitionsDefinition(list(message.static.partition_keys))
    if kind == "dynamic":
        return DynamicPartitionsDefinition(message.dynamic.name)
    if kind == "time_window":
        time_window = message.time_window
        zone = pendulum.timezone(time_window.timezone or "UTC")
        end = timestamp_from_proto(time_window.end).astimezone(zone) if time_window.HasField("end") else None
        return TimeWindowPartitionsDefinition(
            cron_schedule=time_window.cron_schedule,
            start=timestamp_from_proto(time_window.start).astimezone(zone),
            fmt=time_window.fmt,
            end=end,
            timezone=time_window.timezone or "UTC",
            end_offset=time_window.end_offset,
        )
    raise DefinitionError(f"Unsupported partitions definition kind {kind!r} in a dimension.")


def partition_mapping_to_proto(mapping: PartitionMapping) -> pb.PartitionMapping:
    if isinstance(mapping, IdentityPartitionMapping):
        return pb.PartitionMapping(identity=pb.IdentityPartitionMapping())
    if isinstance(mapping, TimeWindowPartitionMapping):
        return pb.PartitionMapping(
            time_window=pb.TimeWindowPartitionMapping(
                start_offset=mapping.start_offset,
                end_offset=mapping.end_offset,
                allow_nonexistent_upstream_partitions=mapping.allow_nonexistent_upstream_partitions,
            )
        )
    if isinstance(mapping, AllPartitionMapping):
        return pb.PartitionMapping(all=pb.AllPartitionMapping())
    if isinstance(mapping, LastPartitionMapping):
        return pb.PartitionMapping(last=pb.LastPartitionMapping())
    if isinstance(mapping, StaticPartitionMapping):
        table = mapping.downstream_partition_keys_by_upstream_partition_key
        entries = [
            pb.StaticPartitionMappingEntry(
                upstream_partition_key=key, downstream_partition_keys=sorted(table[key])
            )
            for key in sorted(table)
        ]
        return pb.PartitionMapping(static=pb.StaticPartitionMapping(entries=entries))
    if isinstance(mapping, SpecificPartitionsPartitionMapping):
        return pb.PartitionMapping(
            specific_partitions=pb.SpecificPartitionsPartitionMapping(partition_keys=mapping.partition_keys)
        )
    if isinstance(mapping, MultiToSingleDimensionPartitionMapping):
        message = pb.MultiToSingleDimensionPartitionMapping()
        if mapping.partition_dimension_name is not None:
            message.partition_dimension_name = mapping.partition_dimension_name
        return pb.PartitionMapping(multi_to_single_dimension=message)
    raise DefinitionError(f"{mapping!r} cannot be sent to the control plane: unsupported partition mapping.")


def partition_mapping_from_proto(message: pb.PartitionMapping) -> PartitionMapping:
    kind = message.WhichOneof("kind")
    if kind == "identity":
        return IdentityPartitionMapping()
    if kind == "time_window":
        return TimeWindowPartitionMapping(
            start_offset=message.time_window.start_offset,
            end_offset=message.time_window.end_offset,
            allow_nonexistent_upstream_partitions=message.time_window.allow_nonexistent_upstream_partitions,
        )
    if kind == "all":
        return AllPartitionMapping()
    if kind == "last":
        return LastPartitionMapping()
    if kind == "static":
        return StaticPartitionMapping(
            {
                entry.upstream_partition_key: set(entry.downstream_partition_keys)
                for entry in message.static.entries
            }
        )
    if kind == "specific_partitions":
        return SpecificPartitionsPartitionMapping(list(message.specific_partitions.partition_keys))
    if kind == "multi_to_single_dimension":
        inner = message.multi_to_single_dimension
        name = inner.partition_dimension_name if inner.HasField("partition_dimension_name") else None
        return MultiToSingleDimensionPartitionMapping(partition_dimension_name=name)
    raise DefinitionError(f"Unsupported partition mapping kind {kind!r}.")
