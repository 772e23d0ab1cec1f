"""Asset keys, nodes and backfill policies <-> ``partita.common.v1`` messages."""

from __future__ import annotations

from code_server.asset_key import AssetKey
from code_server.assets import AssetDep, AssetNode
from code_server.backfill_policy import BackfillPolicy
from code_server.wire.partitions import (
    partition_mapping_from_proto,
    partition_mapping_to_proto,
    partitions_def_from_proto,
    partitions_def_to_proto,
)
from partita.common.v1 import assets_pb2 as pb


def asset_key_to_proto(key: AssetKey) -> pb.AssetKey:
    return pb.AssetKey(path=key.path)


def asset_key_from_proto(message: pb.AssetKey) -> AssetKey:
    return AssetKey(list(message.path))


def backfill_policy_to_proto(policy: BackfillPolicy) -> pb.BackfillPolicy:
    if policy.max_partitions_per_run is None:
        return pb.BackfillPolicy(kind=pb.BACKFILL_POLICY_KIND_SINGLE_RUN)
    return pb.BackfillPolicy(
        kind=pb.BACKFILL_POLICY_KIND_MULTI_RUN, max_partitions_per_run=policy.max_partitions_per_run
    )


def backfill_policy_from_proto(message: pb.BackfillPolicy) -> BackfillPolicy:
    if message.kind == pb.BACKFILL_POLICY_KIND_MULTI_RUN:
        return BackfillPolicy.multi_run(message.max_partitions_per_run)
    return BackfillPolicy.single_run()


def asset_node_to_proto(node: AssetNode) -> pb.AssetNode:
    message = pb.AssetNode(
        key=asset_key_to_proto(node.key),
        deps=[_dependency_to_proto(dep) for dep in node.deps],
        group_name=node.group_name,
        tags=dict(node.tags),
        is_external=node.is_external,
    )
    if node.partitions_def is not None:
        message.partitions_def.CopyFrom(partitions_def_to_proto(node.partitions_def))
    if node.backfill_policy is not None:
        message.backfill_policy.CopyFrom(backfill_policy_to_proto(node.backfill_policy))
    if node.description is not None:
        message.description = node.description
    if node.code_version is not None:
        message.code_version = node.code_version
    return message


def asset_node_from_proto(message: pb.AssetNode) -> AssetNode:
    return AssetNode(
        key=asset_key_from_proto(message.key),
        deps=tuple(_dependency_from_proto(dep) for dep in message.deps),
        partitions_def=partitions_def_from_proto(message.partitions_def)
        if message.HasField("partitions_def")
        else None,
        backfill_policy=(
            backfill_policy_from_proto(message.backfill_policy)
            if message.HasField("backfill_policy")
            else None
        ),
        group_name=message.group_name,
        description=message.description if message.HasField("description") else None,
        tags=dict(message.tags),
        code_version=message.code_version if message.HasField("code_version") else None,
        is_external=message.is_external,
    )


def _dependency_to_proto(dep: AssetDep) -> pb.AssetDependency:
    message = pb.AssetDependency(key=asset_key_to_proto(dep.asset_key))
    if dep.partition_mapping is not None:
        message.partition_mapping.CopyFrom(partition_mapping_to_proto(dep.partition_mapping))
    if dep.input_name is not None:
        message.input_name = dep.input_name
    return message


def _dependency_from_proto(message: pb.AssetDependency) -> AssetDep:
    return AssetDep(
        asset_key_from_proto(message.key),
        partition_mapping=(
            partition_mapping_from_proto(message.partition_mapping)
            if message.HasField("partition_mapping")
            else None
        ),
        input_name=message.input_name if message.HasField("input_name") else None,
    )
