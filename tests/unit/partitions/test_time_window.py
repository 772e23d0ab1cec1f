"""Time-window partitions: keys, windows, bounds, offsets, formats, time zones and errors."""

from __future__ import annotations

import copy
import pickle
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from code_server.errors import DefinitionError, PartitionKeyError, PartitionKeyRangeError
from code_server.partitions.keys import PartitionKeyRange, TimeWindow
from code_server.partitions.time_window import (
    DailyPartitionsDefinition,
    HourlyPartitionsDefinition,
    MonthlyPartitionsDefinition,
    TimeWindowPartitionsDefinition,
    WeeklyPartitionsDefinition,
)

CHICAGO = ZoneInfo("America/Chicago")
BERLIN = ZoneInfo("Europe/Berlin")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def instants(window: TimeWindow) -> tuple[float, float]:
    """A window as timestamps: aware datetimes in a repeated (fall-back) hour compare unequal to
    datetimes in other zones (PEP 495), so such windows are compared by instant."""
    return window.start.timestamp(), window.end.timestamp()


def hours(window: TimeWindow) -> float:
    """The real length of a window (aware subtraction in one zone would give the wall-clock length)."""
    return (window.end.timestamp() - window.start.timestamp()) / 3600


# -- daily: existence, bounds, offsets --------------------------------------------------------------


def test_a_daily_partition_exists_once_its_day_has_ended() -> None:
    days = DailyPartitionsDefinition(start_date="2024-01-01")

    assert days.get_partition_keys(current_time=utc(2024, 1, 4)) == ["2024-01-01", "2024-01-02", "2024-01-03"]
    assert days.get_partition_keys(current_time=utc(2024, 1, 3, 23, 59)) == ["2024-01-01", "2024-01-02"]
    assert days.get_partition_keys(current_time=utc(2023, 12, 31)) == []
    assert days.num_partitions(current_time=utc(2024, 1, 4)) == 3


def test_first_and_last_keys_follow_the_current_time() -> None:
    days = DailyPartitionsDefinition(start_date="2024-01-01")

    assert days.get_first_partition_key(current_time=utc(2024, 3, 1)) == "2024-01-01"
    assert days.get_last_partition_key(current_time=utc(2024, 3, 1)) == "2024-02-29"
    assert days.get_first_partition_key(current_time=utc(2024, 1, 1, 12)) is None
    assert days.get_last_partition_key(current_time=utc(2024, 1, 1, 12)) is None


def test_end_date_is_exclusive_whatever_the_current_time() -> None:
    days = DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-01-05")

    assert days.get_partition_keys(current_time=utc(2030, 1, 1)) == [
        "2024-01-01",
        "2024-01-02",
        "2024-01-03",
        "2024-01-04",
    ]
    assert days.get_partition_keys(current_time=utc(2024, 1, 3)) == ["2024-01-01", "2024-01-02"]
    assert not days.has_partition_key("2024-01-05", current_time=utc(2030, 1, 1))


def test_an_end_before_or_at_the_start_means_no_partitions() -> None:
    assert (
        DailyPartitionsDefinition("2024-01-05", end_date="2024-01-05").get_partition_keys(utc(2030, 1, 1))
        == []
    )
    assert DailyPartitionsDefinition("2024-01-05", end_date="2024-01-01").num_partitions(utc(2030, 1, 1)) == 0


def test_a_positive_end_offset_adds_partitions_that_have_not_ended() -> None:
    now = utc(2024, 1, 3, 12)
    today = DailyPartitionsDefinition(start_date="2024-01-01", end_offset=1)
    tomorrow = DailyPartitionsDefinition(start_date="2024-01-01", end_offset=2)

    assert today.get_last_partition_key(current_time=now) == "2024-01-03"
    assert tomorrow.get_last_partition_key(current_time=now) == "2024-01-04"
    assert today.get_partition_keys(current_time=utc(2023, 12, 31, 12)) == []
    assert tomorrow.get_partition_keys(current_time=utc(2023, 12, 31, 12)) == ["2024-01-01"]


def test_a_positive_end_offset_stops_at_end_date() -> None:
    days = DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-01-03", end_offset=5)

    assert days.get_partition_keys(current_time=utc(2024, 1, 2, 12)) == ["2024-01-01", "2024-01-02"]


def test_a_negative_end_offset_removes_the_latest_partitions() -> None:
    days = DailyPartitionsDefinition(start_date="2024-01-01", end_offset=-2)

    assert days.get_partition_keys(current_time=utc(2024, 1, 5)) == ["2024-01-01", "2024-01-02"]
    assert days.get_partition_keys(current_time=utc(2024, 1, 3)) == []


def test_has_partition_key() -> None:
    days = DailyPartitionsDefinition(start_date="2024-01-01")
    now = utc(2024, 2, 1)

    assert days.has_partition_key("2024-01-31", current_time=now)
    assert not days.has_partition_key("2024-02-01", current_time=now)  # not ended yet
    assert not days.has_partition_key("2023-12-31", current_time=now)  # before start
    assert not days.has_partition_key("2024-1-5", current_time=now)  # not the format
    assert not days.has_partition_key("2024-02-30", current_time=now)


def test_a_daily_window_runs_midnight_to_midnight_in_utc_by_default() -> None:
    days = DailyPartitionsDefinition(start_date="2024-01-01")

    assert days.time_window_for_partition_key("2024-01-02") == TimeWindow(utc(2024, 1, 2), utc(2024, 1, 3))
    assert days.time_window_for_partition_key("2024-01-02").start.tzinfo is UTC
    # A window exists for any key on the grid, even one that is not a partition yet.
    assert days.time_window_for_partition_key("2031-07-01") == TimeWindow(utc(2031, 7, 1), utc(2031, 7, 2))


def test_hour_and_minute_offsets_move_the_daily_boundary_but_not_the_key() -> None:
    days = DailyPartitionsDefinition(start_date="2024-01-01", hour_offset=6, minute_offset=15)

    assert days.cron_schedule == "15 6 * * *"
    assert days.time_window_for_partition_key("2024-01-01") == TimeWindow(
        utc(2024, 1, 1, 6, 15), utc(2024, 1, 2, 6, 15)
    )
    assert days.get_partition_keys(current_time=utc(2024, 1, 3, 6, 15)) == ["2024-01-01", "2024-01-02"]
    assert days.get_partition_key_for_timestamp(utc(2024, 1, 2, 6, 14)) == "2024-01-01"


def test_start_is_the_first_boundary_at_or_after_start_date() -> None:
    hours_from_half_past = HourlyPartitionsDefinition(start_date="2024-01-01-00:30")
    assert hours_from_half_past.get_first_partition_key(current_time=utc(2024, 1, 2)) == "2024-01-01-01:00"

    on_boundary = HourlyPartitionsDefinition(start_date=datetime(2024, 1, 1, 5))
    assert on_boundary.get_first_partition_key(current_time=utc(2024, 1, 2)) == "2024-01-01-05:00"


# -- start dates, formats, zones of inputs ----------------------------------------------------------


def test_start_date_can_be_iso_a_string_in_fmt_or_a_datetime() -> None:
    from_iso = HourlyPartitionsDefinition(start_date="2024-01-01")
    from_fmt = HourlyPartitionsDefinition(start_date="2024-01-01-00:00")
    from_datetime = HourlyPartitionsDefinition(start_date=datetime(2024, 1, 1))

    assert from_iso == from_fmt == from_datetime
    assert from_iso.start == utc(2024, 1, 1)


def test_a_datetime_start_is_read_as_wall_clock_time_in_the_definitions_zone() -> None:
    # As in Dagster: the fields of the datetime count, not the zone it carries.
    days = DailyPartitionsDefinition(start_date=datetime(2024, 1, 1, tzinfo=UTC), timezone="America/Chicago")

    assert days.start == datetime(2024, 1, 1, tzinfo=CHICAGO)
    assert days.get_first_partition_key(current_time=utc(2024, 1, 3)) == "2024-01-01"


def test_an_iso_string_with_an_offset_is_that_instant() -> None:
    days = DailyPartitionsDefinition(start_date="2024-01-01T06:00:00+00:00", timezone="America/Chicago")

    assert days.start == datetime(2024, 1, 1, tzinfo=CHICAGO)


def test_a_naive_current_time_is_read_in_the_definitions_zone() -> None:
    days = DailyPartitionsDefinition(start_date="2024-01-01", timezone="America/Chicago")

    # 2024-01-03 00:30 in Chicago is 06:30 UTC: two days have ended there.
    assert days.num_partitions(current_time=datetime(2024, 1, 3, 0, 30)) == 2
    assert days.num_partitions(current_time=utc(2024, 1, 3, 0, 30)) == 1


def test_custom_formats_for_keys() -> None:
    compact = DailyPartitionsDefinition(start_date="20240101", fmt="%Y%m%d")
    european = DailyPartitionsDefinition(start_date="30/12/2023", fmt="%d/%m/%Y")
    hourly_iso = HourlyPartitionsDefinition(start_date="2024-01-01T00:00", fmt="%Y-%m-%dT%H:%M")
    named = DailyPartitionsDefinition(start_date="2024-01-01", fmt="%a %d %b %Y")
    now = utc(2024, 1, 3)

    assert compact.get_partition_keys(current_time=now) == ["20240101", "20240102"]
    assert european.get_partition_keys(current_time=now) == [
        "30/12/2023",
        "31/12/2023",
        "01/01/2024",
        "02/01/2024",
    ]
    assert hourly_iso.get_partition_keys(current_time=utc(2024, 1, 1, 2)) == [
        "2024-01-01T00:00",
        "2024-01-01T01:00",
    ]
    assert named.get_partition_keys(current_time=now) == ["Mon 01 Jan 2024", "Tue 02 Jan 2024"]
    assert european.time_window_for_partition_key("01/01/2024") == TimeWindow(
        utc(2024, 1, 1), utc(2024, 1, 2)
    )
    assert named.time_window_for_partition_key("Tue 02 Jan 2024").start == utc(2024, 1, 2)
    with pytest.raises(PartitionKeyError, match="2024-01-01"):
        compact.time_window_for_partition_key("2024-01-01")


def test_a_format_coarser_than_the_schedule_keys_each_window_by_its_start() -> None:
    # Daily at 07:00 keyed by date: "2024-01-02" is the window starting 2024-01-02 07:00.
    days = TimeWindowPartitionsDefinition("0 7 * * *", start="2024-01-01", fmt="%Y-%m-%d")

    assert days.time_window_for_partition_key("2024-01-02") == TimeWindow(
        utc(2024, 1, 2, 7), utc(2024, 1, 3, 7)
    )
    assert days.get_partition_keys(current_time=utc(2024, 1, 3, 7)) == ["2024-01-01", "2024-01-02"]


# -- hourly, weekly, monthly ---------------------------------------------------------------------------


def test_hourly_keys_and_minute_offset() -> None:
    plain = HourlyPartitionsDefinition(start_date="2024-01-01-00:00")
    half_past = HourlyPartitionsDefinition(start_date="2024-01-01-00:00", minute_offset=30)
    now = utc(2024, 1, 1, 3)

    assert plain.get_partition_keys(current_time=now) == [
        "2024-01-01-00:00",
        "2024-01-01-01:00",
        "2024-01-01-02:00",
    ]
    assert half_past.get_partition_keys(current_time=now) == ["2024-01-01-00:30", "2024-01-01-01:30"]
    assert half_past.time_window_for_partition_key("2024-01-01-01:30") == TimeWindow(
        utc(2024, 1, 1, 1, 30), utc(2024, 1, 1, 2, 30)
    )
    assert not half_past.has_partition_key("2024-01-01-01:00", current_time=now)


def test_weekly_partitions_start_on_sunday_by_default() -> None:
    weeks = WeeklyPartitionsDefinition(start_date="2024-01-03")  # a Wednesday

    assert weeks.get_partition_keys(current_time=utc(2024, 1, 28)) == [
        "2024-01-07",
        "2024-01-14",
        "2024-01-21",
    ]
    assert weeks.time_window_for_partition_key("2024-01-07") == TimeWindow(utc(2024, 1, 7), utc(2024, 1, 14))


def test_weekly_day_hour_and_minute_offsets() -> None:
    weeks = WeeklyPartitionsDefinition(start_date="2024-01-01", day_offset=1, hour_offset=3, minute_offset=15)

    assert weeks.cron_schedule == "15 3 * * 1"
    assert weeks.get_first_partition_key(current_time=utc(2024, 2, 1)) == "2024-01-01"
    assert weeks.time_window_for_partition_key("2024-01-08") == TimeWindow(
        utc(2024, 1, 8, 3, 15), utc(2024, 1, 15, 3, 15)
    )


def test_monthly_partitions_start_on_the_first_by_default() -> None:
    months = MonthlyPartitionsDefinition(start_date="2024-01-15")

    assert months.get_partition_keys(current_time=utc(2024, 5, 1)) == [
        "2024-02-01",
        "2024-03-01",
        "2024-04-01",
    ]
    assert months.time_window_for_partition_key("2024-02-01") == TimeWindow(utc(2024, 2, 1), utc(2024, 3, 1))


def test_monthly_day_hour_and_minute_offsets() -> None:
    months = MonthlyPartitionsDefinition(
        start_date="2024-01-01", day_offset=5, hour_offset=3, minute_offset=30
    )

    assert months.cron_schedule == "30 3 5 * *"
    assert months.get_partition_keys(current_time=utc(2024, 3, 5, 3, 30)) == ["2024-01-05", "2024-02-05"]
    assert months.time_window_for_partition_key("2024-02-05") == TimeWindow(
        utc(2024, 2, 5, 3, 30), utc(2024, 3, 5, 3, 30)
    )


def test_monthly_on_the_31st_skips_shorter_months_as_cron_does() -> None:
    months = MonthlyPartitionsDefinition(start_date="2024-01-01", day_offset=31)

    assert months.get_partition_keys(current_time=utc(2024, 8, 1)) == [
        "2024-01-31",
        "2024-03-31",
        "2024-05-31",
    ]


# -- any cron schedule ---------------------------------------------------------------------------------


def test_every_six_hours() -> None:
    quarters = TimeWindowPartitionsDefinition("0 */6 * * *", start="2024-01-01-00:00", fmt="%Y-%m-%d-%H:%M")

    assert quarters.get_partition_keys(current_time=utc(2024, 1, 2)) == [
        "2024-01-01-00:00",
        "2024-01-01-06:00",
        "2024-01-01-12:00",
        "2024-01-01-18:00",
    ]
    assert hours(quarters.time_window_for_partition_key("2024-01-01-18:00")) == 6


def test_weekday_mornings() -> None:
    mornings = TimeWindowPartitionsDefinition(
        "30 9 * * 1-5", start="2024-01-04", fmt="%Y-%m-%d"
    )  # a Thursday

    assert mornings.get_partition_keys(current_time=utc(2024, 1, 10, 9, 30)) == [
        "2024-01-04",
        "2024-01-05",
        "2024-01-08",
        "2024-01-09",
    ]
    friday = mornings.time_window_for_partition_key("2024-01-05")
    assert friday == TimeWindow(utc(2024, 1, 5, 9, 30), utc(2024, 1, 8, 9, 30))
    with pytest.raises(PartitionKeyError, match="'2024-01-06' is not a partition"):
        mornings.time_window_for_partition_key("2024-01-06")  # a Saturday


def test_schedules_croniter_walks() -> None:
    month_ends = TimeWindowPartitionsDefinition("0 0 L * *", start="2024-01-01", fmt="%Y-%m-%d")
    twice_monthly = TimeWindowPartitionsDefinition("0 12 1,15 * *", start="2024-01-01", fmt="%Y-%m-%d")

    assert month_ends.get_partition_keys(current_time=utc(2024, 5, 1)) == [
        "2024-01-31",
        "2024-02-29",
        "2024-03-31",
    ]
    assert month_ends.partition_key_at_index(-1) == "2023-12-31"
    assert twice_monthly.get_partition_keys(current_time=utc(2024, 2, 16)) == [
        "2024-01-01",
        "2024-01-15",
        "2024-02-01",
    ]


def test_cron_aliases_are_schedules_too() -> None:
    daily = TimeWindowPartitionsDefinition("@daily", start="2024-01-01", fmt="%Y-%m-%d")

    assert daily.get_partition_keys(current_time=utc(2024, 1, 3)) == ["2024-01-01", "2024-01-02"]


def test_every_fifteen_minutes() -> None:
    quarters = TimeWindowPartitionsDefinition("*/15 * * * *", start="2024-01-01 00:00", fmt="%Y-%m-%d %H:%M")

    assert quarters.get_partition_keys(current_time=utc(2024, 1, 1, 1)) == [
        "2024-01-01 00:00",
        "2024-01-01 00:15",
        "2024-01-01 00:30",
        "2024-01-01 00:45",
    ]


# -- daylight saving time ------------------------------------------------------------------------------


def test_chicago_spring_forward_has_no_key_for_the_skipped_hour() -> None:
    hourly = HourlyPartitionsDefinition(start_date="2024-03-10-00:00", timezone="America/Chicago")
    keys = hourly.get_partition_keys(current_time=datetime(2024, 3, 10, 5, tzinfo=CHICAGO))

    assert keys == ["2024-03-10-00:00", "2024-03-10-01:00", "2024-03-10-03:00", "2024-03-10-04:00"]
    assert hourly.time_window_for_partition_key("2024-03-10-01:00") == TimeWindow(
        datetime(2024, 3, 10, 1, tzinfo=CHICAGO), datetime(2024, 3, 10, 3, tzinfo=CHICAGO)
    )
    assert hours(hourly.time_window_for_partition_key("2024-03-10-01:00")) == 1
    with pytest.raises(
        PartitionKeyError, match="'2024-03-10-02:00' is not a partition of HourlyPartitionsDefinition"
    ):
        hourly.time_window_for_partition_key("2024-03-10-02:00")


def test_chicago_fall_back_suffixes_the_repeated_hour_with_its_offset() -> None:
    hourly = HourlyPartitionsDefinition(start_date="2024-11-03-00:00", timezone="America/Chicago")
    keys = hourly.get_partition_keys(current_time=datetime(2024, 11, 3, 3, tzinfo=CHICAGO))

    assert keys == ["2024-11-03-00:00", "2024-11-03-01:00", "2024-11-03-01:00-0600", "2024-11-03-02:00"]
    first, second = (hourly.time_window_for_partition_key(key) for key in keys[1:3])
    assert instants(first) == (utc(2024, 11, 3, 6).timestamp(), utc(2024, 11, 3, 7).timestamp())
    assert instants(second) == (utc(2024, 11, 3, 7).timestamp(), utc(2024, 11, 3, 8).timestamp())
    assert second.start.fold == 1 and second.start.utcoffset() == timedelta(hours=-6)
    assert hourly.get_partition_key_for_timestamp(utc(2024, 11, 3, 7, 30)) == "2024-11-03-01:00-0600"
    assert hourly.partition_key_index("2024-11-03-01:00-0600") == 2


def test_chicago_daily_windows_last_23_and_25_hours_on_transition_days() -> None:
    days = DailyPartitionsDefinition(start_date="2024-01-01", timezone="America/Chicago")

    assert hours(days.time_window_for_partition_key("2024-03-09")) == 24
    assert hours(days.time_window_for_partition_key("2024-03-10")) == 23
    assert hours(days.time_window_for_partition_key("2024-11-03")) == 25
    assert days.time_window_for_partition_key("2024-03-10") == TimeWindow(
        datetime(2024, 3, 10, tzinfo=CHICAGO), datetime(2024, 3, 11, tzinfo=CHICAGO)
    )


def test_berlin_both_ways() -> None:
    hourly = HourlyPartitionsDefinition(start_date="2024-01-01-00:00", timezone="Europe/Berlin")
    days = DailyPartitionsDefinition(start_date="2024-01-01", timezone="Europe/Berlin")

    spring = PartitionKeyRange("2024-03-31-01:00", "2024-03-31-03:00")
    assert hourly.get_partition_keys_in_range(spring) == ["2024-03-31-01:00", "2024-03-31-03:00"]
    autumn = PartitionKeyRange("2024-10-27-01:00", "2024-10-27-03:00")
    assert hourly.get_partition_keys_in_range(autumn) == [
        "2024-10-27-01:00",
        "2024-10-27-02:00",
        "2024-10-27-02:00+0100",
        "2024-10-27-03:00",
    ]
    assert (
        hourly.time_window_for_partition_key("2024-10-27-02:00+0100").start.timestamp()
        == utc(2024, 10, 27, 1).timestamp()
    )
    assert hours(days.time_window_for_partition_key("2024-03-31")) == 23
    assert hours(days.time_window_for_partition_key("2024-10-27")) == 25


def test_a_daily_time_skipped_by_spring_forward_starts_at_the_end_of_the_gap() -> None:
    # 02:30 does not exist in Chicago on 2024-03-10; the window starts at 03:00 (Dagster's rule).
    days = DailyPartitionsDefinition(
        start_date="2024-03-01", hour_offset=2, minute_offset=30, timezone="America/Chicago"
    )

    assert days.time_window_for_partition_key("2024-03-10") == TimeWindow(
        datetime(2024, 3, 10, 3, tzinfo=CHICAGO), datetime(2024, 3, 11, 2, 30, tzinfo=CHICAGO)
    )
    assert hours(days.time_window_for_partition_key("2024-03-09")) == 23.5


def test_a_gap_window_keeps_its_scheduled_key_if_its_start_repeats_the_next() -> None:
    # Nuuk skips 23:00-00:00 on 2024-03-30: that day's window starts at 00:00 on the 31st, whose
    # date-only key would be the 31st's window's (from 23:00) too, so it keeps its own (Dagster
    # repeats the key). Keys of real starts on spring-forward days: test_spring_forward_keys.py.
    nuuk = DailyPartitionsDefinition(start_date="2024-03-29", hour_offset=23, timezone="America/Nuuk")
    keys = nuuk.get_partition_keys(current_time=utc(2024, 4, 2, 2))
    assert keys == ["2024-03-29", "2024-03-30", "2024-03-31"]
    assert nuuk.time_window_for_partition_key("2024-03-30").start == utc(2024, 3, 31, 1)
    assert nuuk.time_window_for_partition_key("2024-03-31").start == utc(2024, 4, 1, 0)


def test_a_daily_time_repeated_by_fall_back_starts_at_its_second_instance() -> None:
    days = DailyPartitionsDefinition(
        start_date="2024-11-01", hour_offset=1, minute_offset=30, timezone="America/Chicago"
    )

    window = days.time_window_for_partition_key("2024-11-03")
    assert window.start.timestamp() == utc(2024, 11, 3, 7, 30).timestamp()  # 01:30 CST, not 01:30 CDT
    assert hours(days.time_window_for_partition_key("2024-11-02")) == 25


def test_a_week_of_daylight_saving_time_is_seen() -> None:
    # Recife kept summer time for one week in October 2000, starting at midnight.
    days = DailyPartitionsDefinition(start_date="2000-10-01", timezone="America/Recife")

    assert [hours(days.time_window_for_partition_key(f"2000-10-{day:02d}")) for day in range(7, 16)] == [
        24,
        23,
        24,
        24,
        24,
        24,
        24,
        25,
        24,
    ]
    assert days.time_window_for_partition_key("2000-10-08").start == utc(
        2000, 10, 8, 3
    )  # 01:00, after the gap


def test_keys_with_an_offset_in_the_format_need_no_suffix() -> None:
    hourly = HourlyPartitionsDefinition(
        start_date="2024-11-03-00:00-0500", timezone="America/Chicago", fmt="%Y-%m-%d-%H:%M%z"
    )
    keys = hourly.get_partition_keys(current_time=datetime(2024, 11, 3, 2, tzinfo=CHICAGO))

    assert keys == ["2024-11-03-00:00-0500", "2024-11-03-01:00-0500", "2024-11-03-01:00-0600"]
    assert (
        hourly.time_window_for_partition_key("2024-11-03-01:00-0600").start.timestamp()
        == utc(2024, 11, 3, 7).timestamp()
    )


def test_a_zone_with_a_half_hour_offset() -> None:
    hourly = HourlyPartitionsDefinition(start_date="2024-01-01-00:00", timezone="Asia/Kolkata")

    assert hourly.time_window_for_partition_key("2024-01-01-00:00").start == utc(2023, 12, 31, 18, 30)


# -- ranges, time windows and indices ------------------------------------------------------------------


def test_keys_in_a_range_include_both_ends() -> None:
    days = DailyPartitionsDefinition(start_date="2024-01-01")

    assert days.get_partition_keys_in_range(PartitionKeyRange("2024-01-30", "2024-02-02")) == [
        "2024-01-30",
        "2024-01-31",
        "2024-02-01",
        "2024-02-02",
    ]
    assert days.get_partition_keys_in_range(PartitionKeyRange("2024-01-05", "2024-01-05")) == ["2024-01-05"]


def test_a_reversed_range_is_an_error() -> None:
    days = DailyPartitionsDefinition(start_date="2024-01-01")

    with pytest.raises(PartitionKeyRangeError, match="reversed"):
        days.get_partition_keys_in_range(PartitionKeyRange("2024-01-05", "2024-01-04"))
    with pytest.raises(PartitionKeyRangeError, match="reversed"):
        days.time_window_for_partition_key_range(PartitionKeyRange("2024-01-05", "2024-01-04"))


def test_a_range_outside_start_or_end_date_is_an_error() -> None:
    days = DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-02-01")

    with pytest.raises(
        PartitionKeyError, match=r"'2023-12-31' is not a partition .* before the first partition"
    ):
        days.get_partition_keys_in_range(PartitionKeyRange("2023-12-31", "2024-01-02"))
    with pytest.raises(PartitionKeyError, match=r"'2024-02-01' is not a partition .* end_date"):
        days.get_partition_keys_in_range(PartitionKeyRange("2024-01-30", "2024-02-01"))


def test_time_window_of_a_range_spans_its_first_and_last_windows() -> None:
    days = DailyPartitionsDefinition(start_date="2024-01-01")

    assert days.time_window_for_partition_key_range(
        PartitionKeyRange("2024-01-02", "2024-01-04")
    ) == TimeWindow(utc(2024, 1, 2), utc(2024, 1, 5))


def test_keys_in_a_time_window_are_those_whose_windows_overlap_it() -> None:
    hourly = HourlyPartitionsDefinition(start_date="2024-01-01-00:00")
    months = MonthlyPartitionsDefinition(start_date="2024-01-01")

    assert hourly.get_partition_keys_in_time_window(
        TimeWindow(utc(2024, 1, 2, 22, 30), utc(2024, 1, 3, 1))
    ) == [
        "2024-01-02-22:00",
        "2024-01-02-23:00",
        "2024-01-03-00:00",
    ]
    assert months.get_partition_keys_in_time_window(TimeWindow(utc(2024, 3, 5), utc(2024, 3, 6))) == [
        "2024-03-01"
    ]
    assert months.get_partition_keys_in_time_window(TimeWindow(utc(2024, 3, 5), utc(2024, 3, 5))) == []


def test_indices_count_windows_from_start_in_both_directions() -> None:
    days = DailyPartitionsDefinition(start_date="2024-01-01")

    assert days.partition_key_index("2024-01-01") == 0
    assert days.partition_key_index("2023-12-30") == -2
    assert days.partition_key_at_index(-2) == "2023-12-30"
    assert days.partition_key_at_index(366) == "2025-01-01"
    assert days.time_window_at_index(1) == TimeWindow(utc(2024, 1, 2), utc(2024, 1, 3))
    assert days.index_of_time(utc(2024, 1, 2, 23, 59)) == 1
    assert days.index_of_time(utc(2023, 12, 31, 12)) == -1
    assert days.get_partition_key_for_timestamp(utc(2024, 1, 2, 12)) == "2024-01-02"


def test_indices_far_from_start() -> None:
    days = DailyPartitionsDefinition(start_date="2024-01-01", timezone="Europe/Berlin")

    far = days.partition_key_at_index(200_000)
    assert far == "2571-08-01"
    assert days.partition_key_index(far) == 200_000
    with pytest.raises(PartitionKeyError, match="out of range"):
        days.partition_key_at_index(10**8)


def test_an_off_grid_key_names_the_next_window() -> None:
    hourly = HourlyPartitionsDefinition(start_date="2024-01-01-00:00")

    with pytest.raises(
        PartitionKeyError, match=r"'2024-01-01-05:30' is not a partition .* '2024-01-01-06:00'"
    ):
        hourly.partition_key_index("2024-01-01-05:30")


def test_a_key_that_does_not_parse_names_itself_and_the_definition() -> None:
    days = DailyPartitionsDefinition(start_date="2024-01-01")

    with pytest.raises(
        PartitionKeyError,
        match=r"^'2024-13-01' is not a partition of DailyPartitionsDefinition\(start_date='2024-01-01'\): "
        r"it does not match the format '%Y-%m-%d'",
    ):
        days.time_window_for_partition_key("2024-13-01")
    with pytest.raises(PartitionKeyError, match="must be a string"):
        days.partition_key_index(20240101)  # type: ignore[arg-type]


# -- definitions: validation, identity -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: TimeWindowPartitionsDefinition("every day", "2024-01-01", "%Y-%m-%d"), "cron_schedule"),
        (lambda: TimeWindowPartitionsDefinition("0 0 * * * *", "2024-01-01", "%Y-%m-%d"), "five-field"),
        (lambda: TimeWindowPartitionsDefinition("0 0 30 2 *", "2024-01-01", "%Y-%m-%d"), "never fires"),
        (lambda: TimeWindowPartitionsDefinition("0 0 31 4 *", "2024-01-01", "%Y-%m-%d"), "no time after"),
        (lambda: DailyPartitionsDefinition("2024-01-01", timezone="Mars/Olympus"), "Mars/Olympus"),
        (lambda: DailyPartitionsDefinition("2024-01-01", fmt="daily"), "no date or time directive"),
        (lambda: DailyPartitionsDefinition("Jan 1st"), "'Jan 1st' matches neither"),
        (lambda: DailyPartitionsDefinition("2024-01-01", end_offset="1"), "end_offset"),  # type: ignore[arg-type]
        (lambda: HourlyPartitionsDefinition("2024-01-01", minute_offset=60), "minute_offset"),
        (lambda: DailyPartitionsDefinition("2024-01-01", hour_offset=24), "hour_offset"),
        (lambda: WeeklyPartitionsDefinition("2024-01-01", day_offset=7), "day_offset"),
        (lambda: MonthlyPartitionsDefinition("2024-01-01", day_offset=0), "day_offset"),
    ],
)
def test_invalid_definitions_are_rejected_with_the_reason(make: object, message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        make()  # type: ignore[operator]


def test_equal_definitions_are_equal_whatever_their_class() -> None:
    daily = DailyPartitionsDefinition(start_date="2024-01-01")
    generic = TimeWindowPartitionsDefinition("0 0 * * *", start="2024-01-01", fmt="%Y-%m-%d")

    assert daily == generic and hash(daily) == hash(generic)
    assert len({daily, generic, DailyPartitionsDefinition(start_date=datetime(2024, 1, 1))}) == 1
    assert daily != DailyPartitionsDefinition(start_date="2024-01-01", timezone="America/Chicago")
    assert daily != DailyPartitionsDefinition(start_date="2024-01-01", end_offset=1)
    assert daily != DailyPartitionsDefinition(start_date="2024-01-01", end_date="2025-01-01")
    assert daily != DailyPartitionsDefinition(start_date="2024-01-01", fmt="%Y%m%d")


def test_properties_and_repr() -> None:
    days = DailyPartitionsDefinition(
        start_date="2024-01-01",
        end_date="2024-06-01",
        hour_offset=6,
        timezone="America/Chicago",
        end_offset=1,
    )

    assert (days.cron_schedule, days.fmt, days.timezone, days.end_offset) == (
        "0 6 * * *",
        "%Y-%m-%d",
        "America/Chicago",
        1,
    )
    assert days.start == datetime(2024, 1, 1, tzinfo=CHICAGO)
    assert days.end == datetime(2024, 6, 1, tzinfo=CHICAGO)
    assert repr(days) == (
        "DailyPartitionsDefinition(start_date='2024-01-01', end_date='2024-06-01', hour_offset=6, "
        "timezone='America/Chicago', end_offset=1)"
    )
    generic = TimeWindowPartitionsDefinition("0 */6 * * *", start="2024-01-01-00:00", fmt="%Y-%m-%d-%H:%M")
    assert repr(generic) == (
        "TimeWindowPartitionsDefinition(cron_schedule='0 */6 * * *', start='2024-01-01-00:00', end=None, "
        "fmt='%Y-%m-%d-%H:%M', timezone='UTC', end_offset=0)"
    )


def test_definitions_survive_pickling_and_copying() -> None:
    hourly = HourlyPartitionsDefinition(start_date="2024-01-01-00:00", timezone="Europe/Berlin")
    now = utc(2024, 1, 2)
    expected = hourly.get_partition_keys(current_time=now)

    for clone in (pickle.loads(pickle.dumps(hourly)), copy.deepcopy(hourly), copy.copy(hourly)):
        assert clone == hourly
        assert clone.get_partition_keys(current_time=now) == expected
