"""Fixtures for tests that run the Dagster definitions against real warm and cold stores."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
from clickhouse_connect.driver.client import Client

from k2_lakehouse.ingest.load import ingest_file
from k2_lakehouse_tests.support.cold import KRAKEN_TRADES
from k2_lakehouse_tests.support.defs import KRAKEN_RANGE, run_job


@pytest.fixture
def cold_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh Iceberg catalog under the working directory (embedded ClickHouse reads only below it)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("K2_ICEBERG_CATALOG_URI", f"sqlite:///{tmp_path / 'iceberg' / 'catalog.db'}")
    monkeypatch.setenv("K2_ICEBERG_WAREHOUSE", f"file://{tmp_path / 'iceberg' / 'warehouse'}")
    return tmp_path


@pytest.fixture
def instance() -> dg.DagsterInstance:
    return dg.DagsterInstance.ephemeral()


@pytest.fixture
def offloaded(warm: Client, datasets: Path, cold_env: Path, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    """The real Kraken sample ingested and offloaded by one ranged run of offload_job."""
    ingest_file(warm, datasets / KRAKEN_TRADES)
    return run_job(instance, "offload_job", KRAKEN_RANGE)
