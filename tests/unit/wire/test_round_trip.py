"""Every partitions definition, mapping and asset node survives SDK -> message -> bytes -> SDK unchanged."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from code_server import (
    AllPartitionMapping,
    AssetKey,
    BackfillPolicy,
    DailyPartitionsDefinition,
    DynamicPartitionsDefinition,
    HourlyPartitionsDefinition,
    IdentityPartitionMapping,
    LastPartitionMapping,
    MonthlyPartitionsDefinition,
    MultiPartitionsDefinition,
    MultiToSingleDimensionPartitionMapping,
    SpecificPartitionsPartitionMapping,
    StaticPartitionMapping,
    StaticPartitionsDefinition,
    TimeWindowPartitionMapping,
    TimeWindowPartitionsDefinition,
    WeeklyPartitionsDefinition,
)
from code_server.assets import AssetDep, AssetNode
from code_server.mappings import PartitionMapping
from code_server.partitions.base import PartitionsDefinition
from code_server.wire.assets import asset_node_from_proto, asset_node_to_proto
from code_server.wire.partitions import (
    partition_mapping_from_proto,
    partition_mapping_to_proto,
    partitions_def_from_proto,
    partitions_def_to_proto,
)
from partita.common.v1 import assets_pb2, partitions_pb2

ZONES = ["UTC", "America/Chicago", "Europe/Berlin", "Asia/Kolkata", "Australia/Lord_Howe"]
keys = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=12)
days = st.dates(min_value=date(2000, 1, 1), max_value=date(2030, 12, 31))


@st.composite
def time_windows(draw: st.DrawFn) -> PartitionsDefinition:
    start = draw(days)
    zone = draw(st.sampled_from(ZONES))
    end_offset = draw(st.integers(-2, 2))
    end = draw(st.none() | st.integers(30, 4000).map(lambda n: start + timedelta(days=n)))
    kind = draw(st.sampled_from(["hourly", "daily", "weekly", "monthly", "cron"]))
    if kind == "hourly":
        return HourlyPartitionsDefinition(
            start_date=f"{start:%Y-%m-%d}-00:00",
            end_date=None if end is None else f"{end:%Y-%m-%d}-00:00",
            timezone=zone,
            minute_offset=draw(st.sampled_from([0, 15, 30])),
            end_offset=end_offset,
        )
    if kind == "daily":
        return DailyPartitionsDefinition(
            start_date=f"{start:%Y-%m-%d}",
            end_date=None if end is None else f"{end:%Y-%m-%d}",
            timezone=zone,
            hour_offset=draw(st.integers(0, 23)),
            end_offset=end_offset,
        )
    if kind == "weekly":
        return WeeklyPartitionsDefinition(
            start_date=f"{start:%Y-%m-%d}", timezone=zone, day_offset=draw(st.integers(0, 6))
        )
    if kind == "monthly":
        return MonthlyPartitionsDefinition(
            start_date=f"{start:%Y-%m-%d}", timezone=zone, day_offset=draw(st.integers(1, 28))
        )
    return TimeWindowPartitionsDefinition(
        cron_schedule=draw(st.sampled_from(["0 */6 * * *", "30 9 * * 1-5", "0 0 1,15 * *"])),
        start=f"{start:%Y-%m-%d}",
        fmt="%Y-%m-%d %H:%M",
        timezone=zone,
        end_offset=end_offset,
    )


statics = st.lists(keys, min_size=1, max_size=8, unique=True).map(StaticPartitionsDefinition)
dynamics = keys.map(DynamicPartitionsDefinition)
singles = st.one_of(statics, dynamics, time_windows())
multis = st.tuples(statics, st.one_of(time_windows(), statics, dynamics)).map(
    lambda pair: MultiPartitionsDefinition({"region": pair[0], "when": pair[1]})
)
partitions_defs = st.one_of(singles, multis)

mappings: st.SearchStrategy[PartitionMapping] = st.one_of(
    st.just(IdentityPartitionMapping()),
    st.just(AllPartitionMapping()),
    st.just(LastPartitionMapping()),
    st.tuples(st.integers(-5, 0), st.integers(0, 5), st.booleans()).map(
        lambda t: TimeWindowPartitionMapping(
            start_offset=t[0], end_offset=t[1], allow_nonexistent_upstream_partitions=t[2]
        )
    ),
    st.dictionaries(
        keys, st.one_of(keys, st.frozensets(keys, min_size=1, max_size=3)), min_size=1, max_size=5
    ).map(StaticPartitionMapping),
    st.lists(keys, min_size=1, max_size=5, unique=True).map(SpecificPartitionsPartitionMapping),
    st.one_of(st.none(), keys).map(
        lambda name: MultiToSingleDimensionPartitionMapping(partition_dimension_name=name)
    ),
)


def over_the_wire(message: partitions_pb2.PartitionsDefinition) -> partitions_pb2.PartitionsDefinition:
    return partitions_pb2.PartitionsDefinition.FromString(message.SerializeToString())


@settings(max_examples=150, deadline=None)
@given(partitions_defs)
def test_partitions_definitions_round_trip(definition: PartitionsDefinition) -> None:
    decoded = partitions_def_from_proto(over_the_wire(partitions_def_to_proto(definition)))
    assert decoded == definition and hash(decoded) == hash(definition)
    # Same keys too, not just equal parameters.
    if not isinstance(definition, DynamicPartitionsDefinition | MultiPartitionsDefinition):
        assert decoded.get_first_partition_key() == definition.get_first_partition_key()


@settings(max_examples=150, deadline=None)
@given(mappings)
def test_partition_mappings_round_trip(mapping: PartitionMapping) -> None:
    message = partitions_pb2.PartitionMapping.FromString(
        partition_mapping_to_proto(mapping).SerializeToString()
    )
    assert partition_mapping_from_proto(message) == mapping


@settings(max_examples=60, deadline=None)
@given(
    partitions=st.none() | partitions_defs,
    policy=st.sampled_from([None, BackfillPolicy.single_run(), BackfillPolicy.multi_run(7)]),
    mapping=st.none() | mappings,
    tags=st.dictionaries(keys, keys, max_size=3),
    external=st.booleans(),
)
def test_asset_nodes_round_trip(
    partitions: PartitionsDefinition | None,
    policy: BackfillPolicy | None,
    mapping: PartitionMapping | None,
    tags: dict[str, str],
    external: bool,
) -> None:
    node = AssetNode(
        key=AssetKey(["warehouse", "events"]),
        deps=(
            AssetDep(AssetKey("raw"), partition_mapping=mapping, input_name="raw"),
            AssetDep(AssetKey("other")),
        ),
        partitions_def=partitions,
        backfill_policy=policy,
        group_name="core",
        description="Events per day.",
        tags=tags,
        code_version="v3",
        is_external=external,
    )
    message = assets_pb2.AssetNode.FromString(asset_node_to_proto(node).SerializeToString())
    assert asset_node_from_proto(message) == node
