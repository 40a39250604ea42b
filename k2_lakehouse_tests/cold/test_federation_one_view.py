"""Refreshing one table's federated view: the offload of one table moves its own view and no other."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from clickhouse_connect.driver.client import Client
from pyiceberg.catalog.sql import SqlCatalog

from k2_lakehouse.cold.federation import refresh_federated_view, refresh_federated_views
from k2_lakehouse.cold.offload import offload_hours
from k2_lakehouse.cold.tables import cold_table
from k2_lakehouse.hours import HourRange

GONE = datetime(2025, 11, 10, 19, tzinfo=UTC)  # offloaded, then dropped from warm: the views read it from cold
COUNT = "SELECT count() FROM k2.{name}_all WHERE toStartOfHour(toDateTime({column}, 'UTC')) = {{h:DateTime('UTC')}}"


def _drop_hour(warm: Client, hour: datetime) -> None:
    warm.command("DELETE FROM k2.trades_raw WHERE event_hour = {h:DateTime('UTC')}", parameters={"h": hour})
    warm.command("DELETE FROM k2.silver_trades WHERE toStartOfHour(exchange_ts) = {h:DateTime('UTC')}",
                 parameters={"h": hour})


def _rows(warm: Client, name: str, column: str) -> int:
    return int(warm.command(COUNT.format(name=name, column=column), parameters={"h": GONE}))


def test_refreshing_one_view_pins_its_table_anew_and_leaves_the_other_views_where_they_were(
        warm: Client, catalog: SqlCatalog, kraken: HourRange) -> None:
    for name in ("raw_trades", "silver_trades"):
        offload_hours(warm, catalog, name, kraken)
    _drop_hour(warm, GONE)
    refresh_federated_views(warm, catalog)
    raw, silver = _rows(warm, "raw_trades", "event_hour"), _rows(warm, "silver_trades", "exchange_ts")
    assert raw > 0 and silver > 0
    hour = HourRange(GONE, GONE + timedelta(hours=1))
    for name in ("raw_trades", "silver_trades"):  # warm is empty there now: cold's copy goes too
        offload_hours(warm, catalog, name, hour)
    pinned = refresh_federated_view(warm, catalog, cold_table("silver_trades"))
    assert pinned == catalog.load_table(("cold", "silver_trades")).current_snapshot().snapshot_id
    assert _rows(warm, "silver_trades", "exchange_ts") == 0
    assert _rows(warm, "raw_trades", "event_hour") == raw, "raw's view is still on its pinned snapshot"
