"""MultiPartitionsDefinition and MultiPartitionKey: two dimensions, keys joined with '|' by dimension name."""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from code_server.errors import DefinitionError, PartitionKeyError
from code_server.partitions.dynamic import DynamicPartitionsDefinition, DynamicPartitionsStoreRequiredError
from code_server.partitions.keys import PartitionKeyRange
from code_server.partitions.multi import (
    MultiPartitionKey,
    MultiPartitionsDefinition,
    PartitionDimensionDefinition,
)
from code_server.partitions.static import StaticPartitionsDefinition
from code_server.partitions.time_window import DailyPartitionsDefinition, HourlyPartitionsDefinition

DAYS = DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-01-04")
REGIONS = StaticPartitionsDefinition(["us", "eu"])


class DictStore:
    def __init__(self, keys_by_name: dict[str, Sequence[str]]) -> None:
        self.keys_by_name = keys_by_name

    def get_dynamic_partitions(self, partitions_def_name: str) -> Sequence[str]:
        return self.keys_by_name.get(partitions_def_name, [])


def date_by_region() -> MultiPartitionsDefinition:
    # Given in reverse name order on purpose: the key order follows the names, not the dict.
    return MultiPartitionsDefinition({"region": REGIONS, "date": DAYS})


def test_keys_join_dimensions_in_name_order_and_vary_the_last_dimension_fastest() -> None:
    keys = date_by_region().get_partition_keys()

    assert list(keys) == [
        "2024-01-01|us",
        "2024-01-01|eu",
        "2024-01-02|us",
        "2024-01-02|eu",
        "2024-01-03|us",
        "2024-01-03|eu",
    ]
    assert all(isinstance(key, MultiPartitionKey) for key in keys)
    assert keys[1].keys_by_dimension == {"date": "2024-01-01", "region": "eu"}


def test_dimensions_are_exposed_sorted_by_name() -> None:
    multi = date_by_region()

    assert multi.partition_dimension_names == ["date", "region"]
    assert list(multi.partitions_defs) == [
        PartitionDimensionDefinition("date", DAYS),
        PartitionDimensionDefinition("region", REGIONS),
    ]
    assert multi.get_partitions_def_for_dimension("region") == REGIONS
    assert multi.time_window_dimension == PartitionDimensionDefinition("date", DAYS)
    with pytest.raises(DefinitionError, match="no dimension 'color'"):
        multi.get_partitions_def_for_dimension("color")


def test_static_by_static_has_no_time_window_dimension() -> None:
    multi = MultiPartitionsDefinition({"a": StaticPartitionsDefinition(["1"]), "b": REGIONS})

    assert multi.time_window_dimension is None
    with pytest.raises(DefinitionError, match="no time-window dimension"):
        multi.time_window_for_partition_key("1|us")


def test_multi_partition_key_is_a_str_with_its_dimensions() -> None:
    key = MultiPartitionKey({"region": "us", "date": "2024-01-02"})

    assert key == "2024-01-02|us"
    assert isinstance(key, str)
    assert {"2024-01-02|us": 1}[key] == 1
    assert key.keys_by_dimension == {"date": "2024-01-02", "region": "us"}
    assert [(d.dimension_name, d.partition_key) for d in key.dimension_keys] == [
        ("date", "2024-01-02"),
        ("region", "us"),
    ]


def test_multi_partition_key_survives_pickling_with_its_dimensions() -> None:
    key = MultiPartitionKey({"region": "us", "date": "2024-01-02"})

    copy = pickle.loads(pickle.dumps(key))

    assert isinstance(copy, MultiPartitionKey)
    assert copy == key
    assert copy.keys_by_dimension == key.keys_by_dimension


def test_multi_partition_key_rejects_a_pipe_in_a_dimension() -> None:
    with pytest.raises(PartitionKeyError, match="Dimension 'region'"):
        MultiPartitionKey({"region": "us|eu", "date": "2024-01-02"})


def test_get_partition_key_from_str_splits_by_dimension() -> None:
    key = date_by_region().get_partition_key_from_str("2024-01-02|eu")

    assert isinstance(key, MultiPartitionKey)
    assert key.keys_by_dimension == {"date": "2024-01-02", "region": "eu"}


@pytest.mark.parametrize("text", ["2024-01-02", "2024-01-02|eu|x", "|eu", "2024-01-02|"])
def test_get_partition_key_from_str_names_the_expected_shape(text: str) -> None:
    with pytest.raises(PartitionKeyError) as raised:
        date_by_region().get_partition_key_from_str(text)

    message = str(raised.value)
    assert repr(text) in message
    assert "<date>|<region>" in message
    assert "'2024-01-01|us'" in message


def test_has_partition_key_checks_every_dimension() -> None:
    multi = date_by_region()

    assert multi.has_partition_key("2024-01-03|eu")
    assert not multi.has_partition_key("2024-01-04|eu")  # after end_date
    assert not multi.has_partition_key("2024-01-03|asia")
    assert not multi.has_partition_key("2024-01-03")
    assert not multi.has_partition_key("eu|2024-01-03")


def test_has_partition_key_respects_current_time() -> None:
    multi = MultiPartitionsDefinition({"date": DailyPartitionsDefinition("2024-01-01"), "region": REGIONS})

    assert multi.has_partition_key("2024-01-02|us", current_time=datetime(2024, 1, 3, tzinfo=UTC))
    assert not multi.has_partition_key("2024-01-02|us", current_time=datetime(2024, 1, 2, 12, tzinfo=UTC))


def test_a_range_is_the_rectangle_between_its_ends() -> None:
    multi = MultiPartitionsDefinition({"date": DAYS, "region": StaticPartitionsDefinition(["a", "b", "c"])})

    keys = multi.get_partition_keys_in_range(PartitionKeyRange("2024-01-02|b", "2024-01-03|c"))

    assert list(keys) == ["2024-01-02|b", "2024-01-02|c", "2024-01-03|b", "2024-01-03|c"]


def test_time_window_of_a_key_is_its_date_window() -> None:
    window = date_by_region().time_window_for_partition_key("2024-01-02|us")

    assert (window.start.timestamp(), window.end.timestamp()) == (
        datetime(2024, 1, 2, tzinfo=UTC).timestamp(),
        datetime(2024, 1, 3, tzinfo=UTC).timestamp(),
    )


def test_dynamic_dimension_reads_the_store_and_leaves_out_keys_with_a_pipe() -> None:
    multi = MultiPartitionsDefinition({"file": DynamicPartitionsDefinition("files"), "region": REGIONS})
    store = DictStore({"files": ["a.csv", "bad|name"]})

    assert list(multi.get_partition_keys(dynamic_partitions_store=store)) == ["a.csv|us", "a.csv|eu"]
    assert multi.has_partition_key("a.csv|eu", dynamic_partitions_store=store)
    with pytest.raises(DynamicPartitionsStoreRequiredError, match="'files'"):
        multi.get_partition_keys()


@pytest.mark.parametrize("count", [1, 3])
def test_exactly_two_dimensions(count: int) -> None:
    dimensions = {f"d{i}": StaticPartitionsDefinition(["x"]) for i in range(count)}

    with pytest.raises(DefinitionError, match=f"exactly two dimensions, got {count}"):
        MultiPartitionsDefinition(dimensions)


def test_static_keys_may_not_contain_a_pipe() -> None:
    with pytest.raises(DefinitionError, match=r"Dimension 'region'.*'us\|east'"):
        MultiPartitionsDefinition({"date": DAYS, "region": StaticPartitionsDefinition(["us|east"])})


def test_at_most_one_time_window_dimension() -> None:
    hours = HourlyPartitionsDefinition(start_date="2024-01-01-00:00")

    with pytest.raises(DefinitionError, match="at most one dimension may be a time window"):
        MultiPartitionsDefinition({"date": DAYS, "hour": hours})


def test_a_time_window_format_with_a_pipe_is_rejected() -> None:
    piped = DailyPartitionsDefinition(start_date="2024|01|01", fmt="%Y|%m|%d")

    with pytest.raises(DefinitionError, match=r"Dimension 'date'.*fmt"):
        MultiPartitionsDefinition({"date": piped, "region": REGIONS})


def test_dimensions_cannot_nest() -> None:
    with pytest.raises(DefinitionError, match="Dimension 'inner'"):
        MultiPartitionsDefinition({"inner": date_by_region(), "region": REGIONS})


def test_value_equality_ignores_the_order_of_the_mapping() -> None:
    same = MultiPartitionsDefinition({"date": DAYS, "region": StaticPartitionsDefinition(["us", "eu"])})
    other = MultiPartitionsDefinition({"date": DAYS, "region": StaticPartitionsDefinition(["eu", "us"])})

    assert date_by_region() == same
    assert hash(date_by_region()) == hash(same)
    assert date_by_region() != other
    assert repr(same).startswith("MultiPartitionsDefinition({'date': ")
    assert "'region': StaticPartitionsDefinition(['us', 'eu'])" in repr(same)


def test_keys_with_one_dimension_value_vary_the_other_dimension() -> None:
    multi = date_by_region()

    assert list(multi.get_multipartition_keys_with_dimension_value("region", "eu")) == [
        "2024-01-01|eu",
        "2024-01-02|eu",
        "2024-01-03|eu",
    ]
    assert list(multi.get_multipartition_keys_with_dimension_value("date", "2024-01-02")) == [
        "2024-01-02|us",
        "2024-01-02|eu",
    ]
    with pytest.raises(PartitionKeyError, match="separates the dimensions"):
        multi.get_multipartition_keys_with_dimension_value("region", "us|eu")
