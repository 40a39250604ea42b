"""Dagster resources over the plain storage clients. Secrets arrive through dagster.EnvVar."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import dagster as dg
from pydantic import PrivateAttr

from k2_lakehouse.settings import load_settings
from k2_lakehouse.warm.client import is_embedded, session

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client
    from pyiceberg.catalog.sql import SqlCatalog
    from pyspark.sql import SparkSession


class WarmStore(dg.ConfigurableResource):
    """ClickHouse, embedded (chdb://path) or a server (http(s)://user:password@host:port)."""

    url: str = ""
    busy_timeout_s: float = 10.0

    @property
    def resolved_url(self) -> str:
        return self.url or load_settings().clickhouse_url

    @property
    def embedded(self) -> bool:
        return is_embedded(self.resolved_url)

    @contextmanager
    def client(self) -> Iterator[Client]:
        with session(self.resolved_url, self.busy_timeout_s) as client:
            yield client


def warm_store_from_env() -> WarmStore:
    # EnvVar keeps a server password out of code, config snapshots and logs.
    url = dg.EnvVar("K2_CLICKHOUSE_URL") if os.environ.get("K2_CLICKHOUSE_URL") else ""
    return WarmStore(url=url, busy_timeout_s=load_settings().busy_timeout_s)


class ColdStore(dg.ConfigurableResource):
    """The Iceberg SQL catalog "k2". Empty fields fall back to K2_ICEBERG_CATALOG_URI / K2_ICEBERG_WAREHOUSE."""

    catalog_uri: str = ""
    warehouse: str = ""

    def catalog(self) -> SqlCatalog:
        from k2_lakehouse.cold.catalog import load_catalog

        settings = load_settings()
        return load_catalog(replace(
            settings,
            iceberg_catalog_uri=self.catalog_uri or settings.iceberg_catalog_uri,
            iceberg_warehouse=self.warehouse or settings.iceberg_warehouse,
        ))


def cold_store_from_env() -> ColdStore:
    # The catalog URI may hold a database password: EnvVar, never a literal.
    uri = dg.EnvVar("K2_ICEBERG_CATALOG_URI") if os.environ.get("K2_ICEBERG_CATALOG_URI") else ""
    warehouse = dg.EnvVar("K2_ICEBERG_WAREHOUSE") if os.environ.get("K2_ICEBERG_WAREHOUSE") else ""
    return ColdStore(catalog_uri=uri, warehouse=warehouse)


class Spark(dg.ConfigurableResource):
    """dagster-pyspark's LazyPySparkResource, imported on first use.

    Importing dagster_pyspark imports pyspark, a third of a second at every definitions load, and only
    the Spark compaction engine needs it; the session itself starts only when that engine asks for it.
    """

    spark_config: dict[str, str]
    _pyspark: Any = PrivateAttr(default=None)

    @property
    def spark_session(self) -> SparkSession:
        if self._pyspark is None:
            from dagster_pyspark import LazyPySparkResource

            self._pyspark = LazyPySparkResource(spark_config=self.spark_config)
        return self._pyspark.spark_session


def spark_config_from_env() -> dict[str, str]:
    """local[*] here; K2_SPARK_MASTER points at a cluster in production. Spark only reads and writes Parquet."""
    return {
        "spark.master": os.environ.get("K2_SPARK_MASTER", "local[*]"),
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.enabled": "false",
    }
