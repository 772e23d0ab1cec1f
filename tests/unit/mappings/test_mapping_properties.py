"""Properties of identity and time-window mappings, over random definitions, offsets and keys.

- Round trip: each upstream partition of a downstream key maps back downstream to a set holding it.
- Results come in the order of their definition, without duplicates.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from code_server.mappings import IdentityPartitionMapping, PartitionMapping, TimeWindowPartitionMapping
from code_server.mappings.positions import position_function
from code_server.partitions.base import PartitionsDefinition
from code_server.partitions.static import StaticPartitionsDefinition
from code_server.partitions.time_window import (
    DailyPartitionsDefinition,
    HourlyPartitionsDefinition,
    TimeWindowPartitionsDefinition,
    WeeklyPartitionsDefinition,
)

NOW = datetime(2024, 12, 1, tzinfo=UTC)


def time_window_defs(timezone: str) -> list[TimeWindowPartitionsDefinition]:
    # Start dates differ so that offsets and overlaps reach before some definitions' first partition;
    # Chicago's 2024 DST changes (March 10, November 3) fall inside the ranges.
    return [
        DailyPartitionsDefinition(start_date="2024-03-01", timezone=timezone),
        DailyPartitionsDefinition(start_date="2024-03-08", end_date="2024-11-10", timezone=timezone),
        HourlyPartitionsDefinition(
            start_date="2024-03-05-00:00", end_date="2024-03-15-00:00", timezone=timezone
        ),
        HourlyPartitionsDefinition(
            start_date="2024-10-30-00:00", end_date="2024-11-06-00:00", timezone=timezone
        ),
        WeeklyPartitionsDefinition(start_date="2024-02-04", timezone=timezone),
    ]


DEFS = {timezone: time_window_defs(timezone) for timezone in ("UTC", "America/Chicago")}
STATIC = StaticPartitionsDefinition([f"k{i}" for i in range(12)])
STATIC_SUBSET = StaticPartitionsDefinition([f"k{i}" for i in range(12) if i % 3])


@st.composite
def time_window_cases(
    draw: st.DrawFn,
) -> tuple[
    TimeWindowPartitionMapping, TimeWindowPartitionsDefinition, TimeWindowPartitionsDefinition, list[str]
]:
    defs = DEFS[draw(st.sampled_from(sorted(DEFS)))]
    downstream = draw(st.sampled_from(defs))
    upstream = draw(st.sampled_from(defs))
    start_offset = draw(st.integers(-3, 2))
    end_offset = draw(st.integers(start_offset, 3))
    count = downstream.num_partitions(NOW)
    if draw(st.booleans()):  # a whole range in order, as a backfill passes it
        first = draw(st.integers(0, count - 1))
        indices = list(range(first, min(first + draw(st.integers(1, 60)), count)))
    else:
        indices = draw(st.lists(st.integers(0, count - 1), min_size=1, max_size=4))
    keys = [downstream.partition_key_at_index(index) for index in indices]
    return TimeWindowPartitionMapping(start_offset, end_offset), downstream, upstream, keys


@st.composite
def identity_cases(
    draw: st.DrawFn,
) -> tuple[IdentityPartitionMapping, PartitionsDefinition, PartitionsDefinition, list[str]]:
    downstream = draw(st.sampled_from([STATIC, STATIC_SUBSET]))
    upstream = draw(st.sampled_from([STATIC, STATIC_SUBSET]))
    keys = draw(st.lists(st.sampled_from(list(downstream.get_partition_keys())), min_size=1, max_size=5))
    return IdentityPartitionMapping(), downstream, upstream, keys


def assert_in_definition_order(keys: Sequence[str], partitions_def: PartitionsDefinition) -> None:
    positions: list[tuple[int, ...]]
    if isinstance(partitions_def, TimeWindowPartitionsDefinition):
        positions = [(partitions_def.partition_key_index(key),) for key in keys]
    else:
        position_of = position_function(partitions_def)
        positions = [position_of(key) or (-1,) for key in keys]
    assert positions == sorted(positions), keys
    assert len(set(keys)) == len(keys), keys


def check_round_trip(
    mapping: PartitionMapping,
    downstream: PartitionsDefinition,
    upstream: PartitionsDefinition,
    keys: list[str],
) -> None:
    result = mapping.get_upstream_mapped_partitions_result_for_partitions(keys, downstream, upstream, NOW)
    assert_in_definition_order(result.partition_keys, upstream)
    assert_in_definition_order(result.required_but_nonexistent_partition_keys, upstream)
    assert not set(result.partition_keys) & set(result.required_but_nonexistent_partition_keys)

    for key in keys:
        for upstream_key in mapping.get_upstream_mapped_partitions_result_for_partitions(
            [key], downstream, upstream, NOW
        ).partition_keys:
            back = mapping.get_downstream_partitions_for_partitions([upstream_key], upstream, downstream, NOW)
            assert key in back, (key, upstream_key, back)

    if result.partition_keys:
        back = mapping.get_downstream_partitions_for_partitions(
            result.partition_keys, upstream, downstream, NOW
        )
        assert_in_definition_order(back, downstream)


@settings(max_examples=150, deadline=None)
@given(time_window_cases())
def test_time_window_mapping_round_trips_in_order(
    case: tuple[
        TimeWindowPartitionMapping, TimeWindowPartitionsDefinition, TimeWindowPartitionsDefinition, list[str]
    ],
) -> None:
    check_round_trip(*case)


@settings(max_examples=100, deadline=None)
@given(identity_cases())
def test_identity_mapping_round_trips_in_order(
    case: tuple[IdentityPartitionMapping, PartitionsDefinition, PartitionsDefinition, list[str]],
) -> None:
    check_round_trip(*case)


@settings(max_examples=100, deadline=None)
@given(time_window_cases())
def test_nonexistent_upstream_keys_lie_outside_the_existing_partitions(
    case: tuple[
        TimeWindowPartitionMapping, TimeWindowPartitionsDefinition, TimeWindowPartitionsDefinition, list[str]
    ],
) -> None:
    mapping, downstream, upstream, keys = case

    result = mapping.get_upstream_mapped_partitions_result_for_partitions(keys, downstream, upstream, NOW)

    count = upstream.num_partitions(NOW)
    assert all(0 <= upstream.partition_key_index(key) < count for key in result.partition_keys)
    assert all(
        not 0 <= upstream.partition_key_index(key) < count
        for key in result.required_but_nonexistent_partition_keys
    )


@settings(max_examples=100, deadline=None)
@given(time_window_cases())
def test_mapping_keys_together_is_the_union_of_mapping_each(
    case: tuple[
        TimeWindowPartitionMapping, TimeWindowPartitionsDefinition, TimeWindowPartitionsDefinition, list[str]
    ],
) -> None:
    mapping, downstream, upstream, keys = case

    together = mapping.get_upstream_mapped_partitions_result_for_partitions(keys, downstream, upstream, NOW)
    each = [
        mapping.get_upstream_mapped_partitions_result_for_partitions([key], downstream, upstream, NOW)
        for key in keys
    ]
    assert set(together.partition_keys) == {k for result in each for k in result.partition_keys}
    assert set(together.required_but_nonexistent_partition_keys) == {
        k for result in each for k in result.required_but_nonexistent_partition_keys
    }

    upstream_keys = list(together.partition_keys)
    back_together = mapping.get_downstream_partitions_for_partitions(upstream_keys, upstream, downstream, NOW)
    back_each = {
        k
        for key in upstream_keys
        for k in mapping.get_downstream_partitions_for_partitions([key], upstream, downstream, NOW)
    }
    assert set(back_together) == back_each
