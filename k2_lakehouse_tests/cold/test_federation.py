"""Federated views: every row exactly once, whether its hour is in warm only, in both tiers, or in cold only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from clickhouse_connect.driver.client import Client
from pyiceberg.catalog.sql import SqlCatalog

from k2_lakehouse.cold.federation import refresh_federated_views, view_name
from k2_lakehouse.cold.offload import offload_hours
from k2_lakehouse.cold.storage import CLICKHOUSE_S3_COLLECTION, quote_path
from k2_lakehouse.cold.tables import COLD_TABLES
from k2_lakehouse.hours import HourRange
from k2_lakehouse.warm.tables import TIMEFRAMES
from k2_lakehouse_tests.support.cold import offload_all
from k2_lakehouse_tests.support.object_store import ACCESS_KEY_ID, LOCAL_WAREHOUSE_ONLY, SECRET_ACCESS_KEY

WARM_ONLY = datetime(2025, 11, 10, 17, tzinfo=UTC)  # never offloaded
BOTH = datetime(2025, 11, 10, 18, tzinfo=UTC)  # offloaded, still in warm
COLD_ONLY = datetime(2025, 11, 10, 19, tzinfo=UTC)  # offloaded, then gone from warm
OFFLOADED = HourRange(BOTH, datetime(2025, 11, 11, 1, tzinfo=UTC))

ORDER = {
    "raw_trades": "source_name, source_position, source_element",
    "bronze_trades": "exchange, trade_id",
    "silver_trades": "exchange, trade_id",
    **{f"gold_ohlcv_{tf}": "exchange, symbol, window_start" for tf in TIMEFRAMES},
}


def _warm_rows(warm: Client, name: str) -> list[tuple]:
    cold = COLD_TABLES[name]
    columns = ", ".join(c.name for c in cold.columns)
    return warm.query(f"SELECT {columns} FROM {cold.warm_source} ORDER BY {ORDER[name]}").result_rows


def _view_rows(warm: Client, name: str) -> list[tuple]:
    return warm.query(f"SELECT * FROM {view_name(COLD_TABLES[name])} ORDER BY {ORDER[name]}").result_rows


def _drop_hour_from_warm(warm: Client, hour: datetime) -> None:
    """What the TTL does to an expired hour, for one hour, in every warm table."""
    p = {"h": hour}
    for table in ("trades_raw", "bronze_trades", *(f"gold_ohlcv_{tf}" for tf in TIMEFRAMES)):
        warm.command(f"DELETE FROM k2.{table} WHERE event_hour = {{h:DateTime('UTC')}}", parameters=p)
    warm.command("DELETE FROM k2.silver_trades WHERE toStartOfHour(exchange_ts) = {h:DateTime('UTC')}", parameters=p)


def test_views_return_every_row_once_at_the_warm_cold_boundary(warm: Client, catalog: SqlCatalog,
                                                               kraken: HourRange) -> None:
    everything = {name: _warm_rows(warm, name) for name in COLD_TABLES}
    offload_all(warm, catalog, OFFLOADED)
    _drop_hour_from_warm(warm, COLD_ONLY)
    assert warm.command("SELECT count() FROM k2.trades_raw WHERE event_hour = {h:DateTime('UTC')}",
                        parameters={"h": COLD_ONLY}) == 0
    refresh_federated_views(warm, catalog)
    # The daily candle is whole only while warm holds all of its day or none of it (see federation.py).
    for name in [n for n in COLD_TABLES if n != "gold_ohlcv_1d"]:
        assert _view_rows(warm, name) == everything[name], name


# Which tier a window is read from is SQL; the boundary test reads S3 through the views.
@LOCAL_WAREHOUSE_ONLY
def test_a_daily_candle_comes_from_cold_once_warm_holds_none_of_its_hours(warm: Client, catalog: SqlCatalog,
                                                                          kraken: HourRange) -> None:
    daily = _warm_rows(warm, "gold_ohlcv_1d")
    offload_hours(warm, catalog, "gold_ohlcv_1d", kraken)
    warm.command("TRUNCATE TABLE k2.gold_ohlcv_1d")
    refresh_federated_views(warm, catalog)
    assert _view_rows(warm, "gold_ohlcv_1d") == daily


def test_views_read_the_pinned_snapshot_until_refreshed(warm: Client, catalog: SqlCatalog, kraken: HourRange) -> None:
    hour = HourRange(COLD_ONLY, COLD_ONLY + timedelta(hours=1))
    offload_hours(warm, catalog, "raw_trades", kraken)
    _drop_hour_from_warm(warm, COLD_ONLY)
    refresh_federated_views(warm, catalog)
    count = "SELECT count() FROM k2.raw_trades_all WHERE event_hour = {h:DateTime('UTC')}"
    in_cold = warm.command(count, parameters={"h": COLD_ONLY})
    assert in_cold > 0
    offload_hours(warm, catalog, "raw_trades", hour)  # warm is empty there now: cold's copy goes too
    assert warm.command(count, parameters={"h": COLD_ONLY}) == in_cold, "still the pinned snapshot"
    refresh_federated_views(warm, catalog)
    assert warm.command(count, parameters={"h": COLD_ONLY}) == 0


# Warm's own bookkeeping, not offloaded: raw's arrival stamp (the staleness sensor), the version that decides
# which copy of a trade bronze and silver keep, and bronze's validation verdict that version is built from
# (cold bronze holds only the copies kept; their verdict is silver or the DLQ, both offloaded).
WARM_BOOKKEEPING = {"inserted_at", "keep_priority", "reject_reason"}


# The views' columns come from the cold structure, the same SQL on both warehouses.
@LOCAL_WAREHOUSE_ONLY
def test_views_have_the_warm_columns_before_and_after_any_offload(warm: Client, catalog: SqlCatalog,
                                                                  kraken: HourRange) -> None:
    def columns(relation: str) -> list[tuple[str, str]]:
        return [(r[0], r[1].removeprefix("SimpleAggregateFunction(max, ").removeprefix("SimpleAggregateFunction(min, ")
                 .removesuffix(")") if r[1].startswith("SimpleAggregateFunction") else r[1])
                for r in warm.query(f"DESCRIBE {relation}").result_rows
                if r[0] not in WARM_BOOKKEEPING]

    refresh_federated_views(warm, catalog)
    before = {name: columns(view_name(cold)) for name, cold in COLD_TABLES.items()}
    offload_all(warm, catalog, kraken)
    pinned = refresh_federated_views(warm, catalog)
    assert all(snapshot is not None for snapshot in pinned.values())
    for name, cold in COLD_TABLES.items():
        warm_columns = columns(cold.warm_source.removesuffix(" FINAL"))
        assert before[name] == columns(view_name(cold)) == warm_columns, name


@pytest.mark.parametrize("path", [
    "relative/path", "/tmp/it's", "/tmp/a b", "/tmp/x') UNION ALL SELECT * FROM system.users --", "/tmp/../etc",
    "/tmp/*", "/tmp/a\\b", "/tmp/{a,b}",
])
def test_unsafe_paths_are_refused_in_view_ddl(path: str) -> None:
    with pytest.raises(ValueError, match="refusing"):
        quote_path(path)


def test_a_plain_absolute_path_is_quoted() -> None:
    assert quote_path("/tmp/pytest-of-root/pytest-1/x_y.z+1/warehouse") == "'/tmp/pytest-of-root/pytest-1/x_y.z+1/warehouse'"


@pytest.mark.parametrize("warehouse", ["s3"], indirect=True)
def test_views_over_object_storage_read_cold_and_name_no_credential(
        warm: Client, catalog: SqlCatalog, kraken: HourRange) -> None:
    offload_all(warm, catalog, kraken)
    refresh_federated_views(warm, catalog)
    count = f"SELECT count() FROM {view_name(COLD_TABLES['silver_trades'])}"
    in_warm = warm.command(count)
    warm.command("TRUNCATE TABLE k2.silver_trades")  # the hours are now read from cold, on S3

    assert warm.command(count) == in_warm > 0
    definitions = " ".join(str(warm.command(f"SHOW CREATE TABLE {view_name(cold)}")) for cold in COLD_TABLES.values())
    assert "s3(" in definitions
    assert SECRET_ACCESS_KEY not in definitions and ACCESS_KEY_ID not in definitions
    shown = warm.query(f"SELECT collection FROM system.named_collections WHERE name = '{CLICKHOUSE_S3_COLLECTION}'")
    assert SECRET_ACCESS_KEY not in str(shown.result_rows)
