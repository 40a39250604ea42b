"""Real pyiceberg tables on a sqlite SqlCatalog per test, one real Spark session for the whole run."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.table import Table
from pyspark.sql import SparkSession

from k2_lakehouse_tests.support.silver_table import (
    SILVER_SCHEMA,
    SILVER_SPEC,
    TableMaker,
    TradeMaker,
    files_under,
    trades,
)


@pytest.fixture
def catalog(tmp_path: Path) -> SqlCatalog:
    catalog = SqlCatalog("k2test", uri=f"sqlite:///{tmp_path / 'catalog.db'}", warehouse=f"file://{tmp_path / 'wh'}")
    catalog.create_namespace("cold")
    return catalog


@pytest.fixture
def make_trades() -> TradeMaker:
    return trades


@pytest.fixture
def make_silver(catalog: SqlCatalog) -> TableMaker:
    """Create cold.<name> with the silver schema and spec (day(exchange_ts), exchange)."""

    def make(name: str = "silver_trades", properties: dict[str, str] | None = None) -> Table:
        return catalog.create_table(
            f"cold.{name}", SILVER_SCHEMA, partition_spec=SILVER_SPEC, properties=properties or {}
        )

    return make


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = (
        SparkSession.builder.master("local[2]")
        .appName("k2-maintenance-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture
def files_on_disk() -> Callable[[Table], set[str]]:
    return files_under
