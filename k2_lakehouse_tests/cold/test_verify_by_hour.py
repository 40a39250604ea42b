"""matches_warm per hour, with the range's verdict derived from the hours instead of compared again."""

from __future__ import annotations

from clickhouse_connect.driver.client import Client
from pyiceberg.catalog.sql import SqlCatalog

from k2_lakehouse.cold.tables import COLD_TABLES
from k2_lakehouse.cold.verify import matches_warm, matches_warm_by_hour
from k2_lakehouse.hours import HourRange
from k2_lakehouse_tests.support.cold import LATE_AT, LATE_HOUR, add_late_kraken_trade, offload_all


def test_the_derived_range_verdict_equals_the_range_compared_whole_for_every_table(
        warm: Client, catalog: SqlCatalog, kraken: HourRange) -> None:
    offload_all(warm, catalog, kraken)
    for name in COLD_TABLES:
        verified = matches_warm_by_hour(warm, catalog, name, kraken)
        assert verified.range == matches_warm(warm, catalog, name, kraken), name
        assert verified.per_hour == [(hour, matches_warm(warm, catalog, name, hour)) for hour in kraken.each_hour()], name


def test_a_late_trade_fails_its_own_hour_and_the_derived_range(warm: Client, catalog: SqlCatalog,
                                                               kraken: HourRange) -> None:
    offload_all(warm, catalog, kraken)
    add_late_kraken_trade(warm, LATE_AT)
    verified = matches_warm_by_hour(warm, catalog, "raw_trades", kraken)
    assert [hour for hour, check in verified.per_hour if not check.ok] == [LATE_HOUR]
    assert verified.range == matches_warm(warm, catalog, "raw_trades", kraken)
    assert not verified.range.ok
