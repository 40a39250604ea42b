"""Hours: the unit every layer partitions, seals, offloads and checks by, in one place.

Warm, cold, ingest and the Dagster layer all speak of hours the same way: a half-open UTC range
`[start, end)` of whole hours, a Dagster partition key per hour (`2024-01-01-00:00`), runs of
consecutive hours as one range, the two tags Dagster puts on a ranged run, and the one SQL
predicate that selects a range. This module depends on nothing else in the project, so every layer
may import it without importing the code that writes another layer's data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

PARTITION_KEY_FORMAT = "%Y-%m-%d-%H:%M"
"""Dagster's hourly partition key, also the form of K2_PARTITIONS_START."""

ONE_HOUR = timedelta(hours=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
"""The tags of a ranged (single-run backfill) run; the end names the range's last partition, inclusive."""
PARTITION_TAG = "dagster/partition"


def partition_key(hour: datetime) -> str:
    """The partition key of the hour `hour` lies in, e.g. 2024-01-01-00:00."""
    return hour.astimezone(UTC).strftime(PARTITION_KEY_FORMAT)


def hour_of(key: str) -> datetime:
    """The UTC hour a partition key names; ValueError naming the key if it is not one."""
    try:
        return datetime.strptime(key.strip(), PARTITION_KEY_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise ValueError(f"{key!r} is not an hourly partition key of the form YYYY-MM-DD-HH:MM") from None


def start_of_hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class HourRange:
    """Hours [start, end), UTC; `end` is exclusive."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("HourRange needs timezone-aware datetimes (UTC)")
        if self.end <= self.start:
            raise ValueError(f"empty hour range: {self.start} .. {self.end}")

    @classmethod
    def of_hour(cls, hour: datetime) -> HourRange:
        return cls(hour, hour + ONE_HOUR)

    @classmethod
    def of_keys(cls, first: str, last: str) -> HourRange:
        """The range from partition `first` through partition `last`, both included."""
        return cls(hour_of(first), hour_of(last) + ONE_HOUR)

    @property
    def parameters(self) -> dict[str, object]:
        """The range as the bound parameters `in_hours` names."""
        return {"start": self.start, "end": self.end}

    @property
    def whole_hours(self) -> bool:
        return not any(t.minute or t.second or t.microsecond for t in (self.start, self.end))

    def hours(self) -> list[datetime]:
        """The start of every hour in the range (its bounds are whole hours, as partitions are)."""
        count = int((self.end - self.start) // ONE_HOUR)
        return [self.start + n * ONE_HOUR for n in range(count)]

    def each_hour(self) -> list[HourRange]:
        """The range as one-hour ranges."""
        return [HourRange.of_hour(hour) for hour in self.hours()]

    def partition_keys(self) -> list[str]:
        return [partition_key(hour) for hour in self.hours()]

    def tags(self) -> dict[str, str]:
        """The tags that make a run cover exactly this range."""
        return {RANGE_START_TAG: partition_key(self.start), RANGE_END_TAG: partition_key(self.end - ONE_HOUR)}


def range_of_tags(tags: Mapping[str, str]) -> HourRange | None:
    """The hours a run's tags name: a partition range, or one partition; None for neither."""
    if RANGE_START_TAG in tags and RANGE_END_TAG in tags:
        return HourRange.of_keys(tags[RANGE_START_TAG], tags[RANGE_END_TAG])
    if PARTITION_TAG in tags:
        return HourRange.of_hour(hour_of(tags[PARTITION_TAG]))
    return None


def contiguous_ranges(hours: Iterable[datetime]) -> list[HourRange]:
    """Hours grouped into ranges of consecutive hours, in order; repeats count once."""
    ranges: list[HourRange] = []
    for hour in sorted(set(hours)):
        if ranges and hour == ranges[-1].end:
            ranges[-1] = HourRange(ranges[-1].start, hour + ONE_HOUR)
        else:
            ranges.append(HourRange.of_hour(hour))
    return ranges


def in_hours(column: str, start: str = "start", end: str = "end") -> str:
    """ClickHouse predicate: `column` within [{start}, {end}), both bounds bound as DateTime64(6, 'UTC').

    DateTime64 whatever the column's type: ClickHouse (chdb 26.9) drops rows of a DateTime64 sorting-key
    column in the last second before a `DateTime` upper bound in some granule layouts (a silver day missed
    trades at hh:mm:59.x with `exchange_ts < {end:DateTime}`, and checksums taken with the same predicate
    agreed). A DateTime64 bound compares exactly and still prunes by the primary key.
    """
    return f"{column} >= {{{start}:DateTime64(6, 'UTC')}} AND {column} < {{{end}:DateTime64(6, 'UTC')}}"
