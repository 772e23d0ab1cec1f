"""DynamicPartitionsDefinition: keys come from the control plane's store, never from the definition."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from code_server.errors import DefinitionError, PartitaError
from code_server.partitions.dynamic import DynamicPartitionsDefinition, DynamicPartitionsStoreRequiredError
from code_server.partitions.keys import PartitionKeyRange


class DictStore:
    def __init__(self, keys_by_name: dict[str, Sequence[str]]) -> None:
        self.keys_by_name = keys_by_name

    def get_dynamic_partitions(self, partitions_def_name: str) -> Sequence[str]:
        return self.keys_by_name.get(partitions_def_name, [])


def test_keys_come_from_the_store_in_its_order() -> None:
    files = DynamicPartitionsDefinition("files")
    store = DictStore({"files": ["b.csv", "a.csv"], "other": ["x"]})

    assert list(files.get_partition_keys(dynamic_partitions_store=store)) == ["b.csv", "a.csv"]
    assert files.has_partition_key("a.csv", dynamic_partitions_store=store)
    assert not files.has_partition_key("x", dynamic_partitions_store=store)
    assert files.get_last_partition_key(dynamic_partitions_store=store) == "a.csv"


def test_keys_added_to_the_store_later_are_seen() -> None:
    files = DynamicPartitionsDefinition(name="files")
    store = DictStore({"files": ["a"]})
    assert list(files.get_partition_keys(dynamic_partitions_store=store)) == ["a"]

    store.keys_by_name["files"] = ["a", "b"]

    assert list(files.get_partition_keys(dynamic_partitions_store=store)) == ["a", "b"]


def test_ranges_are_taken_in_store_order() -> None:
    files = DynamicPartitionsDefinition("files")
    store = DictStore({"files": ["c", "a", "b", "d"]})

    keys = files.get_partition_keys_in_range(PartitionKeyRange("a", "d"), dynamic_partitions_store=store)

    assert list(keys) == ["a", "b", "d"]


def test_without_a_store_the_error_names_the_definition_and_the_store() -> None:
    files = DynamicPartitionsDefinition("files")

    with pytest.raises(DynamicPartitionsStoreRequiredError) as raised:
        files.get_partition_keys()

    assert isinstance(raised.value, PartitaError)
    assert "'files'" in str(raised.value)
    assert "dynamic_partitions_store" in str(raised.value)


@pytest.mark.parametrize("name", ["", "  ", None, 3])
def test_name_is_required(name: object) -> None:
    with pytest.raises(DefinitionError, match="non-empty name"):
        DynamicPartitionsDefinition(name)  # type: ignore[arg-type]


def test_value_equality_is_on_the_name() -> None:
    assert DynamicPartitionsDefinition("files") == DynamicPartitionsDefinition(name="files")
    assert hash(DynamicPartitionsDefinition("files")) == hash(DynamicPartitionsDefinition("files"))
    assert DynamicPartitionsDefinition("files") != DynamicPartitionsDefinition("tables")
    assert DynamicPartitionsDefinition("files") != "files"
    assert repr(DynamicPartitionsDefinition("files")) == "DynamicPartitionsDefinition(name='files')"
