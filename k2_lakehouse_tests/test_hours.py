"""The shared hour vocabulary: ranges, partition keys, run tags, runs of consecutive hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from k2_lakehouse.hours import HourRange, contiguous_ranges, hour_of, partition_key, range_of_tags


def at(day: int, hour: int) -> datetime:
    return datetime(2025, 11, day, hour, tzinfo=UTC)


def test_a_partition_key_names_its_hour_and_back() -> None:
    assert partition_key(at(10, 7)) == "2025-11-10-07:00"
    assert hour_of("2025-11-10-07:00") == at(10, 7)


def test_a_malformed_partition_key_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match="'2025-11-10 07' is not an hourly partition key"):
        hour_of("2025-11-10 07")


def test_a_range_lists_its_hours_and_their_keys_end_exclusive() -> None:
    hours = HourRange(at(10, 22), at(11, 1))
    assert hours.hours() == [at(10, 22), at(10, 23), at(11, 0)]
    assert hours.partition_keys() == ["2025-11-10-22:00", "2025-11-10-23:00", "2025-11-11-00:00"]
    assert [h.start for h in hours.each_hour()] == hours.hours()


def test_run_tags_name_the_range_with_its_last_partition_inclusive() -> None:
    hours = HourRange(at(10, 22), at(11, 1))
    assert hours.tags() == {"dagster/asset_partition_range_start": "2025-11-10-22:00",
                            "dagster/asset_partition_range_end": "2025-11-11-00:00"}
    assert range_of_tags(hours.tags()) == hours


def test_one_partition_tag_is_a_one_hour_range_and_no_tag_is_none() -> None:
    assert range_of_tags({"dagster/partition": "2025-11-10-05:00"}) == HourRange(at(10, 5), at(10, 6))
    assert range_of_tags({"dagster/backfill": "x"}) is None


def test_consecutive_hours_group_into_ranges_in_order_whatever_the_input_order() -> None:
    hours = [at(10, 5), at(10, 3), at(10, 4), at(10, 9), at(10, 3)]
    assert contiguous_ranges(hours) == [HourRange(at(10, 3), at(10, 6)), HourRange(at(10, 9), at(10, 10))]


def test_an_empty_or_naive_range_is_refused() -> None:
    with pytest.raises(ValueError, match="empty hour range"):
        HourRange(at(10, 5), at(10, 5))
    with pytest.raises(ValueError, match="timezone-aware"):
        HourRange(datetime(2025, 11, 10), datetime(2025, 11, 10) + timedelta(hours=1))
