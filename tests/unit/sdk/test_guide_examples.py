"""The backfill guide's three examples, ported by changing the import, do what the guide says."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from code_server import AssetKey, BackfillPolicy, PartitionKeyRange, StaticPartitionMapping
from code_server.errors import ContextError
from code_server.loading import load_definitions
from code_server.run_request import AssetPartitionsTarget, PartitionsByAssetsTarget
from code_server.testing import (
    build_asset_context,
    build_schedule_context,
    evaluate_schedule,
    evaluate_sensor,
)


def test_single_run_events_asset_reads_the_whole_range_as_one_window(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PARTITA_EXAMPLE_DATA", str(tmp_path))
    defs = load_definitions(module_name="examples.single_run_backfill_asset")
    events = defs.get_asset(AssetKey("events"))
    assert events.backfill_policy == BackfillPolicy.single_run()
    assert defs.external_asset_keys == (AssetKey("raw_events"),)
    context = build_asset_context(events, partition_key_range=PartitionKeyRange("2020-01-01", "2020-01-31"))
    events(context)
    (written,) = (tmp_path / "events").iterdir()
    body = json.loads(written.read_text())
    assert (body["start"], body["end"]) == ("2020-01-01T00:00:00+00:00", "2020-02-01T00:00:00+00:00")
    assert len(body["counts"]) == 31 and set(body["counts"].values()) == {24}
    with pytest.raises(ContextError, match="partition_key_range"):
        _ = context.partition_key


def test_schedule_requests_one_backfill_of_both_assets() -> None:
    defs = load_definitions(module_name="examples.backfill_asset_from_asset_partitions")
    schedule = defs.get_schedule("launch_backfill_with_multiple_assets_selected")
    tick = build_schedule_context(datetime(2024, 5, 1, tzinfo=UTC))
    (request,) = evaluate_schedule(schedule, defs, tick).run_requests
    assert request.requires_backfill
    assert request.asset_selection == (AssetKey("asset_a"), AssetKey("asset_b"))
    assert request.backfill == AssetPartitionsTarget(partition_names=("foo_a",), all_partitions=False)
    assert request.tags == {"custom_tag_key": "custom_tag_value"}
    assert defs.asset_graph.partition_mapping(
        AssetKey("asset_b"), AssetKey("asset_a")
    ) == StaticPartitionMapping({"foo_a": "foo_b"})


def test_sensor_requests_a_single_run_backfill_of_five_days() -> None:
    defs = load_definitions(module_name="examples.backfill_asset_from_partitions_by_assets")
    sensor = defs.get_sensor("launch_backfill_with_single_run_backfill_policy")
    assert sensor.minimum_interval_seconds == 5
    (request,) = evaluate_sensor(sensor, defs).run_requests
    key = AssetKey("asset_with_single_run_backfill_policy")
    assert request.backfill == PartitionsByAssetsTarget(
        {key: ("2023-01-01", "2023-01-02", "2023-01-03", "2023-01-04", "2023-01-05")}
    )
    assert request.asset_selection == (key,)
