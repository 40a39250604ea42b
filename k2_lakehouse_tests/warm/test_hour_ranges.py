"""An hour range's predicate keeps every row of the range, including its last second, in any granule layout."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from clickhouse_connect.driver.client import Client

from k2_lakehouse.hours import HourRange, in_hours
from k2_lakehouse_tests.support.warm import utc

# Two rows per granule, so that granules hold only rows of a range's last second: the layout in which a
# DateTime upper bound made ClickHouse skip rows of a DateTime64 sorting-key column.
TABLE = """
CREATE TABLE default.hour_bounds (symbol String, ts DateTime64(6, 'UTC'))
ENGINE = MergeTree ORDER BY (symbol, ts) SETTINGS index_granularity = 2
"""
ROWS = [
    ("A", "2024-03-01 00:59:59.500000"), ("A", "2024-03-01 00:59:59.700000"),
    ("A", "2024-03-01 00:59:59.900000"), ("A", "2024-03-01 01:00:00.100000"),
    ("B", "2024-03-01 00:59:59.500000"), ("B", "2024-03-01 01:00:00.500000"),
    ("B", "2024-03-01 00:00:00.000000"),
]

END = "2024-03-01 01:00:00"  # the end of the hour the tests select, as the rows above spell times


def rows_before(end: str) -> list[tuple[str, str]]:
    """The rows in [00:00, end), judged in Python on their text: every row starts at 00:00 or later."""
    return [(symbol, ts) for symbol, ts in ROWS if ts < end]


@pytest.fixture
def hour_bounds(warm: Client) -> Iterator[Client]:
    warm.command("DROP TABLE IF EXISTS default.hour_bounds")
    warm.command(TABLE)
    values = ", ".join(f"('{symbol}', '{ts}')" for symbol, ts in ROWS)
    warm.command(f"INSERT INTO default.hour_bounds VALUES {values}")
    try:
        yield warm
    finally:
        warm.command("DROP TABLE IF EXISTS default.hour_bounds")


def test_an_hour_range_counts_every_row_of_its_last_second(hour_bounds: Client) -> None:
    hour = HourRange(utc(2024, 3, 1, 0), utc(2024, 3, 1, 1))

    found = hour_bounds.query(
        f"SELECT symbol, toString(ts) FROM default.hour_bounds WHERE {in_hours('ts')} ORDER BY ALL",
        parameters=hour.parameters).result_rows

    assert found == sorted(rows_before(END))


def test_named_bounds_select_the_same_rows_as_the_hour_range(hour_bounds: Client) -> None:
    start, end = utc(2024, 3, 1, 0), utc(2024, 3, 1, 1)

    count = hour_bounds.command(f"SELECT count() FROM default.hour_bounds WHERE {in_hours('ts', 'file_start', 'file_end')}",
                                parameters={"file_start": start, "file_end": end})

    assert count == len(rows_before(END))
