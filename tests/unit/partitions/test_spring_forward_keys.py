"""Keys on spring-forward days, as Dagster names them: a window's key is its real start.

A schedule that is not hourly fires a skipped wall time at the end of the gap (02:00 in
America/Chicago on 2020-03-08 fires at 03:00 CDT); that window's key shows 03:00, and the wall time
the clocks skip is no key at all, refused with an error naming the key to use instead.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from code_server.errors import PartitionKeyError
from code_server.partitions.keys import PartitionKeyRange, TimeWindow
from code_server.partitions.time_window import (
    DailyPartitionsDefinition,
    HourlyPartitionsDefinition,
    TimeWindowPartitionsDefinition,
)

CHICAGO = ZoneInfo("America/Chicago")
AFTER_SPRING_2020 = datetime(2020, 3, 11, tzinfo=UTC)


def chicago(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=CHICAGO)


def hours(window: TimeWindow) -> float:
    return (window.end.timestamp() - window.start.timestamp()) / 3600


def cron_at_two() -> TimeWindowPartitionsDefinition:
    return TimeWindowPartitionsDefinition(
        "0 2 * * *", start="2020-03-06-02:00", fmt="%Y-%m-%d-%H:%M", timezone="America/Chicago"
    )


def daily_at_two() -> DailyPartitionsDefinition:
    return DailyPartitionsDefinition(
        start_date="2020-03-06-02:00", hour_offset=2, timezone="America/Chicago", fmt="%Y-%m-%d-%H:%M"
    )


def assert_round_trips(definition: TimeWindowPartitionsDefinition, keys: list[str]) -> None:
    """Each key -> its window -> the same key, by timestamp and by index."""
    for index, key in enumerate(keys):
        window = definition.time_window_for_partition_key(key)
        assert definition.get_partition_key_for_timestamp(window.start) == key
        assert definition.partition_key_index(key) == index
        assert definition.partition_key_at_index(index) == key
        assert definition.time_window_at_index(index) == window


@pytest.mark.parametrize("make", [cron_at_two, daily_at_two], ids=["cron", "daily"])
def test_the_window_after_the_gap_is_keyed_by_its_real_start(
    make: type[TimeWindowPartitionsDefinition],
) -> None:
    definition = make()
    keys = list(definition.get_partition_keys(current_time=AFTER_SPRING_2020))

    assert keys == ["2020-03-06-02:00", "2020-03-07-02:00", "2020-03-08-03:00", "2020-03-09-02:00"]
    window = definition.time_window_for_partition_key("2020-03-08-03:00")
    assert window == TimeWindow(chicago(2020, 3, 8, 3), chicago(2020, 3, 9, 2))
    assert hours(window) == 23
    assert definition.get_partition_key_for_timestamp(chicago(2020, 3, 8, 12)) == "2020-03-08-03:00"
    assert definition.has_partition_key("2020-03-08-03:00", current_time=AFTER_SPRING_2020)
    assert_round_trips(definition, keys)


@pytest.mark.parametrize("make", [cron_at_two, daily_at_two], ids=["cron", "daily"])
def test_neighbouring_keys_and_windows_are_unchanged(make: type[TimeWindowPartitionsDefinition]) -> None:
    definition = make()

    before = definition.time_window_for_partition_key("2020-03-07-02:00")
    after = definition.time_window_for_partition_key("2020-03-09-02:00")
    assert before == TimeWindow(chicago(2020, 3, 7, 2), chicago(2020, 3, 8, 3))
    assert hours(before) == 24  # 02:00 CST to 03:00 CDT
    assert after == TimeWindow(chicago(2020, 3, 9, 2), chicago(2020, 3, 10, 2))
    assert definition.get_partition_keys_in_range(
        PartitionKeyRange("2020-03-07-02:00", "2020-03-09-02:00")
    ) == [
        "2020-03-07-02:00",
        "2020-03-08-03:00",
        "2020-03-09-02:00",
    ]


@pytest.mark.parametrize("make", [cron_at_two, daily_at_two], ids=["cron", "daily"])
def test_the_skipped_wall_time_is_refused_naming_the_real_key(
    make: type[TimeWindowPartitionsDefinition],
) -> None:
    definition = make()

    with pytest.raises(PartitionKeyError) as raised:
        definition.time_window_for_partition_key("2020-03-08-02:00")
    message = str(raised.value)
    assert message.startswith("'2020-03-08-02:00' is not a partition of ")
    assert "2020-03-08 02:00 does not exist in America/Chicago" in message
    assert message.endswith("has the key '2020-03-08-03:00'.")
    assert not definition.has_partition_key("2020-03-08-02:00", current_time=AFTER_SPRING_2020)
    # A key stored before keys were real starts is refused wherever it is read, with the same help.
    with pytest.raises(PartitionKeyError, match="has the key '2020-03-08-03:00'"):
        definition.get_partition_keys_in_range(PartitionKeyRange("2020-03-06-02:00", "2020-03-08-02:00"))


def test_a_daily_definition_with_a_date_key_keeps_its_key() -> None:
    # The real start is on the same day, so the date-only key is what it always was.
    days = DailyPartitionsDefinition(start_date="2020-03-06", hour_offset=2, timezone="America/Chicago")

    assert days.get_partition_keys(current_time=AFTER_SPRING_2020) == [
        "2020-03-06",
        "2020-03-07",
        "2020-03-08",
        "2020-03-09",
    ]
    assert days.time_window_for_partition_key("2020-03-08").start == chicago(2020, 3, 8, 3)


def test_a_half_hour_in_the_gap_is_keyed_at_the_end_of_the_gap() -> None:
    minutes = DailyPartitionsDefinition(
        start_date="2024-03-09 00:00",
        hour_offset=2,
        minute_offset=30,
        timezone="America/Chicago",
        fmt="%Y-%m-%d %H:%M",
    )
    keys = list(minutes.get_partition_keys(current_time=datetime(2024, 3, 12, 8, tzinfo=UTC)))

    assert keys == ["2024-03-09 02:30", "2024-03-10 03:00", "2024-03-11 02:30"]
    assert minutes.time_window_for_partition_key("2024-03-10 03:00") == TimeWindow(
        chicago(2024, 3, 10, 3), chicago(2024, 3, 11, 2, 30)
    )
    assert_round_trips(minutes, keys)
    with pytest.raises(PartitionKeyError, match="has the key '2024-03-10 03:00'"):
        minutes.partition_key_index("2024-03-10 02:30")


def test_wall_times_skipped_together_are_one_window_keyed_by_its_real_start() -> None:
    # 02:00 and 02:30 are both skipped and fire at 03:00, which the schedule names too.
    definition = TimeWindowPartitionsDefinition(
        "0,30 2,3 * * *", start="2020-03-07 02:00", fmt="%Y-%m-%d %H:%M", timezone="America/Chicago"
    )
    keys = list(definition.get_partition_keys(current_time=datetime(2020, 3, 9, 12, tzinfo=UTC)))

    assert keys[3:7] == ["2020-03-07 03:30", "2020-03-08 03:00", "2020-03-08 03:30", "2020-03-09 02:00"]
    assert_round_trips(definition, keys)
    for skipped in ("2020-03-08 02:00", "2020-03-08 02:30"):
        with pytest.raises(PartitionKeyError, match="has the key '2020-03-08 03:00'"):
            definition.time_window_for_partition_key(skipped)


def test_hourly_keys_over_spring_forward_are_unchanged() -> None:
    hourly = HourlyPartitionsDefinition(start_date="2020-03-08-00:00", timezone="America/Chicago")
    keys = list(hourly.get_partition_keys(current_time=chicago(2020, 3, 8, 5)))

    assert keys == ["2020-03-08-00:00", "2020-03-08-01:00", "2020-03-08-03:00", "2020-03-08-04:00"]
    assert hours(hourly.time_window_for_partition_key("2020-03-08-01:00")) == 1
    assert_round_trips(hourly, keys)
    with pytest.raises(PartitionKeyError) as raised:
        hourly.time_window_for_partition_key("2020-03-08-02:00")
    assert "2020-03-08 02:00 does not exist in America/Chicago" in str(raised.value)
    assert "'2020-03-08-03:00'" in str(raised.value)


def test_keys_with_an_offset_in_the_format_show_the_real_start_as_before() -> None:
    definition = TimeWindowPartitionsDefinition(
        "0 2 * * *", start="2020-03-07-02:00-0600", fmt="%Y-%m-%d-%H:%M%z", timezone="America/Chicago"
    )

    assert definition.get_partition_keys(current_time=AFTER_SPRING_2020)[:3] == [
        "2020-03-07-02:00-0600",
        "2020-03-08-03:00-0500",
        "2020-03-09-02:00-0500",
    ]


def test_a_gap_crossing_midnight_is_keyed_by_its_real_start_when_the_key_shows_the_time() -> None:
    # Nuuk skips 23:00-00:00 on 2024-03-30. With a time in the key the real start is unique; with a
    # date-only key it would repeat the 31st's, so that one keeps its date (test_time_window.py).
    nuuk = DailyPartitionsDefinition(
        start_date="2024-03-29-00:00", hour_offset=23, timezone="America/Nuuk", fmt="%Y-%m-%d-%H:%M"
    )
    keys = list(nuuk.get_partition_keys(current_time=datetime(2024, 4, 2, 2, tzinfo=UTC)))

    assert keys == ["2024-03-29-23:00", "2024-03-31-00:00", "2024-03-31-23:00"]
    assert_round_trips(nuuk, keys)
    with pytest.raises(PartitionKeyError, match="has the key '2024-03-31-00:00'"):
        nuuk.time_window_for_partition_key("2024-03-30-23:00")


def test_keys_kept_to_stay_unique_read_back_whatever_the_format() -> None:
    # "%b %d %Y" is read with strptime, not the fast path: the window after the one that keeps
    # its scheduled date must still be found from its own key.
    nuuk = DailyPartitionsDefinition(
        start_date="Mar 29 2024", hour_offset=23, timezone="America/Nuuk", fmt="%b %d %Y"
    )
    keys = list(nuuk.get_partition_keys(current_time=datetime(2024, 4, 2, 2, tzinfo=UTC)))

    assert keys == ["Mar 29 2024", "Mar 30 2024", "Mar 31 2024"]
    assert_round_trips(nuuk, keys)


def test_a_window_after_a_repeated_time_just_before_midnight_reads_back() -> None:
    # St. John's fell back at 00:01 in 1987: 23:30 on the 24th came twice, and its window (from the
    # second) ends at 23:30 on the 25th, whose date-only key reads back to that next window.
    days = DailyPartitionsDefinition(
        start_date="1987-10-23", hour_offset=23, minute_offset=30, timezone="America/St_Johns"
    )
    keys = list(days.get_partition_keys(current_time=datetime(1987, 10, 28, 12, tzinfo=UTC)))

    assert keys == ["1987-10-23", "1987-10-24", "1987-10-25", "1987-10-26"]
    assert_round_trips(days, keys)
