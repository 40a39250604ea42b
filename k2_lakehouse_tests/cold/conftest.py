"""Cold-tier fixtures: a fresh SQLite catalog and warehouse per test, and sealed real samples in warm.

Two kinds of catalog: `catalog` holds the nine real cold tables (offload, verification, federation tests);
`silver_catalog` is bare, for the silver-shaped tables `make_silver` creates (compaction, retention tests).

Every test using either runs on both warehouses (`warehouse`): a local folder, and a prefix of a bucket on a
real S3-protocol server on loopback (moto, started once per session, only if an s3 test runs). K2_HOME is a
temporary folder outside the repository, and the tests run from yet another folder, so nothing depends on
the working directory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.table import Table

from k2_lakehouse.cold.catalog import load_catalog
from k2_lakehouse.cold.storage import ObjectStore
from k2_lakehouse.cold.tables import ensure_cold_tables
from k2_lakehouse.hours import HourRange
from k2_lakehouse.ingest.load import ingest_file
from k2_lakehouse.settings import Settings, load_settings
from k2_lakehouse_tests.support.cold import KRAKEN_HOURS, KRAKEN_TRADES, seal_all
from k2_lakehouse_tests.support.object_store import S3Server, start_s3_server
from k2_lakehouse_tests.support.silver_table import (
    SILVER_SCHEMA,
    SILVER_SPEC,
    TableMaker,
    TradeMaker,
    files_under,
    trades,
)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    server, s3 = start_s3_server()
    yield s3
    server.stop()


@pytest.fixture(params=["local", "s3"])
def warehouse(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """K2_ICEBERG_WAREHOUSE of the test: a local folder, or a fresh prefix on the S3 server (whose endpoint and
    credentials are then in the environment, as a deployment sets them, so subprocesses see them too)."""
    if request.param == "local":
        return f"file://{tmp_path / 'iceberg' / 'warehouse'}"
    s3: S3Server = request.getfixturevalue("s3_server")
    for name, value in s3.environment().items():
        monkeypatch.setenv(name, value)
    return s3.new_warehouse()


@pytest.fixture
def elsewhere(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The test's working directory: a folder holding neither K2_HOME nor the warehouse."""
    cwd = tmp_path_factory.mktemp("cwd")
    monkeypatch.chdir(cwd)
    return cwd


@pytest.fixture
def cold_settings(k2_home: Path, tmp_path: Path, warehouse: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    iceberg = tmp_path / "iceberg"
    monkeypatch.setenv("K2_ICEBERG_CATALOG_URI", f"sqlite:///{iceberg / 'catalog.db'}")
    monkeypatch.setenv("K2_ICEBERG_WAREHOUSE", warehouse)
    settings = load_settings()
    assert settings.iceberg_warehouse == warehouse
    return settings


@pytest.fixture
def catalog(cold_settings: Settings, elsewhere: Path) -> SqlCatalog:
    """A SqlCatalog on SQLite in this test's tmp_path, with the nine cold tables created, on `warehouse`."""
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
def silver_catalog(tmp_path: Path, warehouse: str, elsewhere: Path) -> SqlCatalog:
    """A bare SqlCatalog with the cold namespace and no tables, for the silver-shaped test tables."""
    store = ObjectStore.from_environment(load_settings().s3_endpoint)
    catalog = SqlCatalog("k2test", uri=f"sqlite:///{tmp_path / 'catalog.db'}", warehouse=warehouse,
                         **store.fileio_properties())
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
