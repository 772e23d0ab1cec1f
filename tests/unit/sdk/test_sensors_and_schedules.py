from datetime import UTC, datetime

import pytest

from code_server.asset_key import AssetKey
from code_server.assets import asset
from code_server.definitions import Definitions
from code_server.errors import DefinitionError, PartitionKeyError, UnknownAssetError, UnknownDefinitionError
from code_server.run_request import (
    AssetPartitionsTarget,
    PartitionsByAssetsTarget,
    RunRequest,
    SensorResult,
    SkipReason,
)
from code_server.schedules import DefaultScheduleStatus, ScheduleDefinition, schedule
from code_server.sensors import DefaultSensorStatus, sensor
from code_server.testing import (
    build_schedule_context,
    build_sensor_context,
    evaluate_schedule,
    evaluate_sensor,
)


@asset
def upstream():  # type: ignore[no-untyped-def]
    pass


@asset
def downstream(upstream):  # type: ignore[no-untyped-def]
    pass


def test_run_request_backfill_constructors() -> None:
    by_assets = RunRequest.from_partitions_by_assets({upstream: {"b", "a"}}, title="t", description="d")
    assert by_assets.requires_backfill
    assert by_assets.backfill == PartitionsByAssetsTarget({AssetKey("upstream"): ("a", "b")})
    assert by_assets.asset_selection == (AssetKey("upstream"),)
    assert (by_assets.title, by_assets.description) == ("t", "d")

    from_roots = RunRequest.from_asset_partitions(partition_names=["k"], tags={"x": "y"})
    assert from_roots.backfill == AssetPartitionsTarget(partition_names=("k",), all_partitions=False)
    assert from_roots.asset_selection is None and from_roots.tags == {"x": "y"}
    assert not RunRequest(run_key="r", partition_key="k").requires_backfill


def test_run_request_validation() -> None:
    with pytest.raises(DefinitionError, match="not both"):
        RunRequest.from_asset_partitions(partition_names=["a"], all_partitions=True)
    with pytest.raises(DefinitionError, match="needs partition_names or all_partitions"):
        RunRequest.from_asset_partitions()
    with pytest.raises(PartitionKeyError, match=r"contains '\.\.\.'"):
        RunRequest(partition_key="a...b")
    with pytest.raises(DefinitionError, match="must map a string to a string"):
        RunRequest(tags={"n": 1})  # type: ignore[dict-item]


def test_sensor_cursor_walks_and_target_fills_selection() -> None:
    @sensor(
        target=[upstream, downstream], minimum_interval_seconds=5, default_status=DefaultSensorStatus.RUNNING
    )
    def walking(context):  # type: ignore[no-untyped-def]
        seen = int(context.cursor or 0)
        context.update_cursor(str(seen + 1))
        yield RunRequest(run_key=f"k{seen}")

    defs = Definitions(assets=[upstream, downstream], sensors=[walking])
    first = evaluate_sensor(walking, defs)
    assert [request.run_key for request in first.run_requests] == ["k0"]
    assert first.run_requests[0].asset_selection == (AssetKey("upstream"), AssetKey("downstream"))
    assert first.cursor == "1"
    second = evaluate_sensor(walking, defs, build_sensor_context(cursor=first.cursor))
    assert [request.run_key for request in second.run_requests] == ["k1"] and second.cursor == "2"
    assert walking.minimum_interval_seconds == 5 and walking.default_status is DefaultSensorStatus.RUNNING


def test_sensor_result_and_skip_reason() -> None:
    @sensor(asset_selection=upstream)
    def skipping():  # type: ignore[no-untyped-def]
        return SkipReason("nothing new")

    @sensor(target=upstream)
    def result(context):  # type: ignore[no-untyped-def]
        return SensorResult(run_requests=[RunRequest()], cursor="c9")

    defs = Definitions(assets=[upstream], sensors=[skipping, result])
    skipped = evaluate_sensor(skipping, defs)
    assert skipped.run_requests == () and skipped.skip_reason == "nothing new"
    evaluated = evaluate_sensor(result, defs)
    assert evaluated.cursor == "c9" and evaluated.run_requests[0].asset_selection == (AssetKey("upstream"),)


def test_sensor_errors_are_clear() -> None:
    @sensor()
    def no_target():  # type: ignore[no-untyped-def]
        return RunRequest()

    @sensor(target=upstream)
    def wrong_type():  # type: ignore[no-untyped-def]
        return 42

    @sensor(target=upstream)
    def unknown_asset():  # type: ignore[no-untyped-def]
        return RunRequest(asset_selection=["nope"])

    defs = Definitions(assets=[upstream], sensors=[no_target, wrong_type, unknown_asset])
    with pytest.raises(DefinitionError, match="'no_target' returned a RunRequest without asset_selection"):
        evaluate_sensor(no_target, defs)
    with pytest.raises(DefinitionError, match="'wrong_type' returned int"):
        evaluate_sensor(wrong_type, defs)
    with pytest.raises(UnknownAssetError, match="'nope'"):
        evaluate_sensor(unknown_asset, defs)
    with pytest.raises(UnknownDefinitionError, match="Unknown sensor 'missing'; known sensors: no_target"):
        defs.get_sensor("missing")


def test_schedule_sees_its_tick_time() -> None:
    @schedule(cron_schedule="0 1 * * *", target=upstream, execution_timezone="Europe/Berlin")
    def nightly(context):  # type: ignore[no-untyped-def]
        return RunRequest(run_key=context.scheduled_execution_time.isoformat())

    defs = Definitions(assets=[upstream], schedules=[nightly])
    tick = datetime(2024, 3, 31, 1, tzinfo=UTC)
    evaluated = evaluate_schedule(nightly, defs, build_schedule_context(tick))
    assert evaluated.run_requests[0].run_key == tick.isoformat()
    assert nightly.execution_timezone == "Europe/Berlin"
    assert nightly.default_status is DefaultScheduleStatus.STOPPED


def test_schedule_without_function_requests_its_target() -> None:
    every_hour = ScheduleDefinition(name="hourly", cron_schedule="0 * * * *", target=None)
    defs = Definitions(assets=[upstream])
    with pytest.raises(DefinitionError, match="has no target"):
        evaluate_schedule(every_hour, defs)


def test_schedule_validation() -> None:
    with pytest.raises(DefinitionError, match="not a valid five-field cron"):
        schedule(cron_schedule="every day")(lambda: None)
    with pytest.raises(DefinitionError, match="unknown execution_timezone 'Mars/Base'"):
        schedule(cron_schedule="* * * * *", execution_timezone="Mars/Base")(lambda: None)
