"""Cold-tier fixtures: a fresh SQLite catalog and warehouse per test, and sealed real samples in warm.

Two kinds of catalog: `catalog` holds the nine real cold tables (offload, verification, federation tests);
`silver_catalog` is bare, for the silver-shaped tables `make_silver` creates (compaction, retention tests).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.table import Table

from k2_lakehouse.cold.catalog import load_catalog
from k2_lakehouse.cold.tables import ensure_cold_tables
from k2_lakehouse.hours import HourRange
from k2_lakehouse.ingest.load import ingest_file
from k2_lakehouse.settings import Settings, load_settings
from k2_lakehouse_tests.support.cold import KRAKEN_HOURS, KRAKEN_TRADES, seal_all
from k2_lakehouse_tests.support.silver_table import (
    SILVER_SCHEMA,
    SILVER_SPEC,
    TableMaker,
    TradeMaker,
    files_under,
    trades,
)


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


@pytest.fixture
def kraken(warm: Client, datasets: Path) -> HourRange:
    """The real Kraken REST sample (1,000 trades over 8 hours) ingested and sealed; its hours."""
    ingest_file(warm, datasets / KRAKEN_TRADES)
    seal_all(warm, KRAKEN_HOURS)
    return KRAKEN_HOURS


@pytest.fixture
def silver_catalog(tmp_path: Path) -> SqlCatalog:
    """A bare SqlCatalog with the cold namespace and no tables, for the silver-shaped test tables."""
    catalog = SqlCatalog("k2test", uri=f"sqlite:///{tmp_path / 'catalog.db'}", warehouse=f"file://{tmp_path / 'wh'}")
    catalog.create_namespace("cold")
    return catalog


@pytest.fixture
def make_trades() -> TradeMaker:
    return trades


@pytest.fixture
def make_silver(silver_catalog: SqlCatalog) -> TableMaker:
    """Create cold.<name> with the silver schema and spec (day(exchange_ts), exchange)."""

    def make(name: str = "silver_trades", properties: dict[str, str] | None = None) -> Table:
        return silver_catalog.create_table(
            f"cold.{name}", SILVER_SCHEMA, partition_spec=SILVER_SPEC, properties=properties or {}
        )

    return make


@pytest.fixture
def files_on_disk() -> Callable[[Table], set[str]]:
    return files_under
