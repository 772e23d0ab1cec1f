"""TimeWindowPartitionMapping: overlapping windows, offsets, nonexistent partitions and DST."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from code_server.errors import DefinitionError, PartitionKeyError
from code_server.mappings import TimeWindowPartitionMapping, UpstreamPartitionsResult
from code_server.partitions.base import PartitionsDefinition
from code_server.partitions.static import StaticPartitionsDefinition
from code_server.partitions.time_window import DailyPartitionsDefinition, HourlyPartitionsDefinition

DAYS = DailyPartitionsDefinition(start_date="2024-01-01")
HOURS = HourlyPartitionsDefinition(start_date="2024-01-01-00:00")
NOW = datetime(2024, 2, 1, 6, tzinfo=UTC)  # every day of January has ended
YESTERDAY = TimeWindowPartitionMapping(start_offset=-1, end_offset=-1)

CHICAGO_DAYS = DailyPartitionsDefinition(start_date="2024-01-01", timezone="America/Chicago")
CHICAGO_HOURS = HourlyPartitionsDefinition(start_date="2024-01-01-00:00", timezone="America/Chicago")
AFTER_2024 = datetime(2025, 1, 1, 12, tzinfo=UTC)


def hours_of(day: str) -> list[str]:
    return [f"{day}-{hour:02d}:00" for hour in range(24)]


def upstream_of(
    mapping: TimeWindowPartitionMapping,
    keys: list[str],
    downstream: PartitionsDefinition,
    upstream: PartitionsDefinition,
    current_time: datetime = NOW,
) -> UpstreamPartitionsResult:
    return mapping.get_upstream_mapped_partitions_result_for_partitions(
        keys, downstream, upstream, current_time=current_time
    )


def downstream_of(
    mapping: TimeWindowPartitionMapping,
    keys: list[str],
    upstream: PartitionsDefinition,
    downstream: PartitionsDefinition,
    current_time: datetime = NOW,
) -> list[str]:
    return list(
        mapping.get_downstream_partitions_for_partitions(
            keys, upstream, downstream, current_time=current_time
        )
    )


def test_between_equal_definitions_it_is_the_identity_in_order() -> None:
    result = upstream_of(TimeWindowPartitionMapping(), ["2024-01-03", "2024-01-02", "2024-01-03"], DAYS, DAYS)

    assert result == UpstreamPartitionsResult(("2024-01-02", "2024-01-03"), ())
    assert downstream_of(TimeWindowPartitionMapping(), ["2024-01-03", "2024-01-02"], DAYS, DAYS) == [
        "2024-01-02",
        "2024-01-03",
    ]


def test_yesterday_reads_the_previous_day_and_feeds_the_next() -> None:
    assert upstream_of(YESTERDAY, ["2024-01-05"], DAYS, DAYS) == UpstreamPartitionsResult(("2024-01-04",), ())
    assert upstream_of(YESTERDAY, ["2024-01-05", "2024-01-06", "2024-01-07"], DAYS, DAYS).partition_keys == (
        "2024-01-04",
        "2024-01-05",
        "2024-01-06",
    )
    assert downstream_of(YESTERDAY, ["2024-01-04"], DAYS, DAYS) == ["2024-01-05"]
    assert downstream_of(YESTERDAY, ["2024-01-04", "2024-01-06"], DAYS, DAYS) == ["2024-01-05", "2024-01-07"]


def test_a_wider_window_reads_several_days() -> None:
    last_three_days = TimeWindowPartitionMapping(start_offset=-2)

    assert upstream_of(last_three_days, ["2024-01-05"], DAYS, DAYS).partition_keys == (
        "2024-01-03",
        "2024-01-04",
        "2024-01-05",
    )
    assert downstream_of(last_three_days, ["2024-01-03"], DAYS, DAYS) == [
        "2024-01-03",
        "2024-01-04",
        "2024-01-05",
    ]


def test_reaching_before_the_first_partition_is_required_but_nonexistent() -> None:
    result = upstream_of(YESTERDAY, ["2024-01-01", "2024-01-02"], DAYS, DAYS)

    assert result == UpstreamPartitionsResult(("2024-01-01",), ("2023-12-31",))


def test_allowing_nonexistent_upstream_partitions_drops_them() -> None:
    lenient = TimeWindowPartitionMapping(
        start_offset=-1, end_offset=-1, allow_nonexistent_upstream_partitions=True
    )

    assert upstream_of(lenient, ["2024-01-01"], DAYS, DAYS) == UpstreamPartitionsResult((), ())


def test_an_upstream_starting_later_requires_partitions_before_its_start() -> None:
    later = DailyPartitionsDefinition(start_date="2024-01-10")

    result = upstream_of(TimeWindowPartitionMapping(), ["2024-01-09", "2024-01-10"], DAYS, later)

    assert result == UpstreamPartitionsResult(("2024-01-10",), ("2024-01-09",))
    assert downstream_of(TimeWindowPartitionMapping(), ["2024-01-09", "2024-01-10"], DAYS, later) == [
        "2024-01-10"
    ]


def test_reaching_past_the_last_existing_partition_is_required_but_nonexistent() -> None:
    tomorrow_too = TimeWindowPartitionMapping(end_offset=1)

    result = upstream_of(tomorrow_too, ["2024-01-31"], DAYS, DAYS)

    assert result == UpstreamPartitionsResult(("2024-01-31",), ("2024-02-01",))


def test_downstream_partitions_that_have_not_ended_are_left_out() -> None:
    assert downstream_of(YESTERDAY, ["2024-01-31"], DAYS, DAYS) == []  # 2024-02-01 is still running
    assert downstream_of(YESTERDAY, ["2024-01-30"], DAYS, DAYS) == ["2024-01-31"]


def test_hourly_downstream_reads_its_day() -> None:
    assert upstream_of(TimeWindowPartitionMapping(), ["2024-01-02-05:00"], HOURS, DAYS).partition_keys == (
        "2024-01-02",
    )
    assert upstream_of(
        TimeWindowPartitionMapping(), ["2024-01-02-23:00", "2024-01-03-00:00"], HOURS, DAYS
    ).partition_keys == ("2024-01-02", "2024-01-03")
    assert downstream_of(TimeWindowPartitionMapping(), ["2024-01-02"], DAYS, HOURS) == hours_of("2024-01-02")


def test_a_day_not_yet_ended_is_required_but_nonexistent_for_its_hours() -> None:
    midday = datetime(2024, 1, 2, 12, tzinfo=UTC)

    result = upstream_of(TimeWindowPartitionMapping(), ["2024-01-02-05:00"], HOURS, DAYS, current_time=midday)

    assert result == UpstreamPartitionsResult((), ("2024-01-02",))


def test_daily_downstream_reads_its_24_hours() -> None:
    result = upstream_of(TimeWindowPartitionMapping(), ["2024-01-02"], DAYS, HOURS)

    assert result == UpstreamPartitionsResult(tuple(hours_of("2024-01-02")), ())
    assert downstream_of(
        TimeWindowPartitionMapping(), ["2024-01-02-23:00", "2024-01-02-00:00"], HOURS, DAYS
    ) == ["2024-01-02"]


def test_a_day_is_fed_by_its_hours_only_once_it_has_ended() -> None:
    evening = datetime(2024, 1, 2, 20, tzinfo=UTC)

    assert (
        downstream_of(TimeWindowPartitionMapping(), ["2024-01-02-05:00"], HOURS, DAYS, current_time=evening)
        == []
    )


def test_offsets_count_downstream_partitions_as_in_dagster() -> None:
    previous_and_this_day = TimeWindowPartitionMapping(start_offset=-1)

    result = upstream_of(previous_and_this_day, ["2024-01-04"], DAYS, HOURS)

    assert result.partition_keys == tuple(hours_of("2024-01-03") + hours_of("2024-01-04"))
    assert downstream_of(previous_and_this_day, ["2024-01-03-00:00"], HOURS, DAYS) == [
        "2024-01-03",
        "2024-01-04",
    ]
    assert downstream_of(YESTERDAY, ["2024-01-03-23:00"], HOURS, DAYS) == ["2024-01-04"]


def test_hourly_yesterday_from_daily_upstream() -> None:
    previous_hour = TimeWindowPartitionMapping(start_offset=-1, end_offset=-1)

    assert upstream_of(previous_hour, ["2024-01-04-00:00"], HOURS, DAYS).partition_keys == ("2024-01-03",)
    assert upstream_of(previous_hour, ["2024-01-04-01:00"], HOURS, DAYS).partition_keys == ("2024-01-04",)
    expected = [*hours_of("2024-01-04")[1:], "2024-01-05-00:00"]
    assert downstream_of(previous_hour, ["2024-01-04"], DAYS, HOURS) == expected


def test_the_short_dst_day_in_chicago_reads_23_hours() -> None:
    result = upstream_of(
        TimeWindowPartitionMapping(), ["2024-03-10"], CHICAGO_DAYS, CHICAGO_HOURS, AFTER_2024
    )

    assert len(result.partition_keys) == 23
    assert result.partition_keys[0] == "2024-03-10-00:00"
    assert result.partition_keys[-1] == "2024-03-10-23:00"
    assert "2024-03-10-02:00" not in result.partition_keys
    assert result.required_but_nonexistent_partition_keys == ()


def test_the_long_dst_day_in_chicago_reads_25_hours() -> None:
    result = upstream_of(
        TimeWindowPartitionMapping(), ["2024-11-03"], CHICAGO_DAYS, CHICAGO_HOURS, AFTER_2024
    )

    # The repeated 01:00 hour is a partition of its own (its key carries the UTC offset).
    assert len(result.partition_keys) == 25
    assert result.partition_keys[1:3] == ("2024-11-03-01:00", "2024-11-03-01:00-0600")
    first = CHICAGO_HOURS.time_window_for_partition_key(result.partition_keys[0])
    last = CHICAGO_HOURS.time_window_for_partition_key(result.partition_keys[-1])
    day = CHICAGO_DAYS.time_window_for_partition_key("2024-11-03")
    assert (first.start.timestamp(), last.end.timestamp()) == (day.start.timestamp(), day.end.timestamp())
    assert day.end.timestamp() - day.start.timestamp() == timedelta(hours=25).total_seconds()


def test_the_previous_hour_across_the_repeated_hour() -> None:
    previous_hour = TimeWindowPartitionMapping(start_offset=-1, end_offset=-1)

    result = upstream_of(previous_hour, ["2024-11-03-02:00"], CHICAGO_HOURS, CHICAGO_HOURS, AFTER_2024)
    feeds = downstream_of(previous_hour, ["2024-11-03-01:00"], CHICAGO_HOURS, CHICAGO_HOURS, AFTER_2024)

    assert result.partition_keys == ("2024-11-03-01:00-0600",)
    assert feeds == ["2024-11-03-01:00-0600"]


@pytest.mark.parametrize(
    ("hour", "day"),
    [
        ("2024-03-09-23:00", "2024-03-09"),
        ("2024-03-10-00:00", "2024-03-10"),
        ("2024-03-10-03:00", "2024-03-10"),
        ("2024-03-10-23:00", "2024-03-10"),
        ("2024-03-11-00:00", "2024-03-11"),
        ("2024-11-03-00:00", "2024-11-03"),
        ("2024-11-03-01:00-0600", "2024-11-03"),
        ("2024-11-03-23:00", "2024-11-03"),
    ],
)
def test_hours_across_dst_changes_map_to_their_chicago_day(hour: str, day: str) -> None:
    mapping = TimeWindowPartitionMapping()

    assert upstream_of(mapping, [hour], CHICAGO_HOURS, CHICAGO_DAYS, AFTER_2024).partition_keys == (day,)
    assert downstream_of(mapping, [hour], CHICAGO_HOURS, CHICAGO_DAYS, AFTER_2024) == [day]


def test_yesterday_across_the_dst_change_in_chicago() -> None:
    assert upstream_of(YESTERDAY, ["2024-03-11"], CHICAGO_DAYS, CHICAGO_DAYS, AFTER_2024).partition_keys == (
        "2024-03-10",
    )
    assert downstream_of(YESTERDAY, ["2024-03-10"], CHICAGO_DAYS, CHICAGO_DAYS, AFTER_2024) == ["2024-03-11"]


def test_non_time_window_definitions_are_a_definition_error_naming_them() -> None:
    regions = StaticPartitionsDefinition(["us"])

    with pytest.raises(DefinitionError) as raised:
        upstream_of(TimeWindowPartitionMapping(), ["us"], regions, DAYS)
    assert "TimeWindowPartitionMapping(" in str(raised.value)
    assert "downstream partitions definition is StaticPartitionsDefinition(['us'])" in str(raised.value)
    with pytest.raises(DefinitionError, match="upstream partitions definition"):
        downstream_of(TimeWindowPartitionMapping(), ["us"], regions, DAYS)
    with pytest.raises(DefinitionError, match="AllPartitionMapping"):
        TimeWindowPartitionMapping().get_upstream_mapped_partitions_result_for_partitions(None, None, DAYS)


def test_different_time_zones_are_a_definition_error() -> None:
    with pytest.raises(DefinitionError, match=r"'America/Chicago'.*'UTC'|'UTC'.*'America/Chicago'"):
        TimeWindowPartitionMapping().validate_partition_mapping(DAYS, CHICAGO_DAYS)


@pytest.mark.parametrize("key", ["yesterday", "2024-1-5", "2024-01-05-00:00"])
def test_a_malformed_key_names_the_mapping_the_key_and_the_definition(key: str) -> None:
    with pytest.raises(PartitionKeyError) as raised:
        upstream_of(YESTERDAY, [key], DAYS, DAYS)

    message = str(raised.value)
    assert "TimeWindowPartitionMapping(start_offset=-1" in message
    assert repr(key) in message
    assert "DailyPartitionsDefinition" in message
