"""Cold-tier fixtures: a fresh SQLite catalog and warehouse per test, and sealed real samples in warm."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client
from pyiceberg.catalog.sql import SqlCatalog

from k2_lakehouse.cold.catalog import load_catalog
from k2_lakehouse.cold.tables import ensure_cold_tables
from k2_lakehouse.cold.verify import PINNED_ICEBERG, pinned_snapshot, query_pinned
from k2_lakehouse.hours import HourRange
from k2_lakehouse.ingest.load import ingest_file
from k2_lakehouse.settings import Settings, load_settings
from k2_lakehouse.warm.seal import seal_bronze, seal_gold, seal_silver

KRAKEN_TRADES = Path("kraken") / "XBTUSDT-trades-2025-11-10.rest.json"
KRAKEN_HOURS = HourRange(datetime(2025, 11, 10, 17, tzinfo=UTC), datetime(2025, 11, 11, 1, tzinfo=UTC))
BINANCE_TRADES = Path("binance") / "XRPETH-aggTrades-2019-10-11_13.csv"
BINANCE_HOURS = HourRange(datetime(2019, 10, 11, tzinfo=UTC), datetime(2019, 10, 13, 12, tzinfo=UTC))


@pytest.fixture
def cold_settings(k2_home: Path, tmp_path: Path) -> Settings:
    iceberg = tmp_path / "iceberg"
    return dataclasses.replace(
        load_settings(), iceberg_catalog_uri=f"sqlite:///{iceberg / 'catalog.db'}",
        iceberg_warehouse=f"file://{iceberg / 'warehouse'}")


@pytest.fixture
def catalog(cold_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SqlCatalog:
    """A SqlCatalog on SQLite in this test's tmp_path, with the nine cold tables created.

    The test runs in tmp_path: embedded ClickHouse reads icebergLocal() only below the working directory.
    """
    monkeypatch.chdir(tmp_path)
    catalog = load_catalog(cold_settings)
    ensure_cold_tables(catalog)
    return catalog


def seal_all(client: Client, hours: HourRange) -> None:
    seal_bronze(client, hours)
    seal_silver(client, hours)
    seal_gold(client, hours)


@pytest.fixture
def kraken(warm: Client, datasets: Path) -> HourRange:
    """The real Kraken REST sample (1,000 trades over 8 hours) ingested and sealed; its hours."""
    ingest_file(warm, datasets / KRAKEN_TRADES)
    seal_all(warm, KRAKEN_HOURS)
    return KRAKEN_HOURS


def add_late_kraken_trade(client: Client, at: datetime, price: str = "104000.00000", volume: str = "0.50000000",
                          trade_id: int = 99_000_001, received_at: datetime | None = None) -> None:
    """A Kraken trade inserted now for an hour that may already be offloaded; received now, or at `received_at`
    (an ingest stamps its start on every batch, so a long one inserts rows received long ago)."""
    payload = f'["{price}","{volume}",{at.timestamp():.6f},"b","l","",{trade_id}]'
    client.insert(
        "k2.trades_raw",
        [["kraken", "kraken-rest", "late-trades", trade_id, 0, "XBTUSDT", payload, received_at or datetime.now(UTC)]],
        column_names=["exchange", "source_format", "source_name", "source_position", "source_element",
                      "source_symbol", "payload", "received_at"])


def cold_rows(client: Client, catalog: SqlCatalog, name: str, order_by: str) -> list[tuple]:
    """Every row of a cold table's current snapshot, read by ClickHouse, in a stable order."""
    pinned = pinned_snapshot(catalog.load_table(("cold", name)))
    if pinned is None:
        return []
    return query_pinned(client, pinned, f"SELECT * FROM {PINNED_ICEBERG} ORDER BY {order_by}", {})


ORDER_BY = {
    "raw_trades": "source_name, source_position, source_element",
    "bronze_trades": "exchange, trade_id",
    "silver_trades": "exchange, trade_id",
    **{f"gold_ohlcv_{tf}": "exchange, symbol, window_start" for tf in ("1m", "5m", "15m", "30m", "1h", "1d")},
}
