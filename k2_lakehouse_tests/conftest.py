"""Engines start once per session; every test gets empty warm tables."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

# The real samples are from 2019 onwards; partitions must reach back that far before defs import.
os.environ.setdefault("K2_PARTITIONS_START", "2019-01-01-00:00")

DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


@pytest.fixture(scope="session")
def k2_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("k2home")
    os.environ["K2_HOME"] = str(home)
    os.environ["DAGSTER_HOME"] = str(home / "dagster")
    (home / "dagster").mkdir()
    os.environ.pop("K2_CLICKHOUSE_URL", None)
    return home


@pytest.fixture(scope="session")
def warm_url(k2_home: Path) -> str:
    return f"chdb://{k2_home / 'clickhouse'}"


@pytest.fixture(scope="session")
def _schema(warm_url: str) -> Client:
    from k2_lakehouse.warm.client import connect
    from k2_lakehouse.warm.schema import apply_schema

    client = connect(warm_url)
    apply_schema(client)
    return client


WARM_DATA_TABLES = (
    "trades_raw", "bronze_trades", "trades_skipped", "silver_trades", "silver_trades_dlq",
    "gold_ohlcv_1m", "gold_ohlcv_5m", "gold_ohlcv_15m", "gold_ohlcv_30m", "gold_ohlcv_1h", "gold_ohlcv_1d",
    "trades_raw_landing", "audit_results", "gold_replays",
)


@pytest.fixture
def warm(_schema: Client, warm_url: str) -> Iterator[Client]:
    """The session's embedded ClickHouse with every data table emptied."""
    from k2_lakehouse.warm.client import connect

    client = connect(warm_url)
    for table in WARM_DATA_TABLES:
        client.command(f"TRUNCATE TABLE k2.{table}")
    yield client


@pytest.fixture(scope="session")
def datasets() -> Path:
    if not DATASETS.is_dir():
        pytest.fail(f"the shared datasets are missing: expected them at {DATASETS}")
    return DATASETS
