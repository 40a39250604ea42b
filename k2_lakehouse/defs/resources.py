"""The resources every domain shares: the warm store, the cold catalog and Spark, built from Settings at load.

Each resource holds the value it will use, so the UI's resource page shows what runs connect to. A value that
can carry a password (the ClickHouse URL, the catalog URI) is, when it comes from the environment, a
`dagster.EnvVar`: Dagster stores and shows the variable's name and reads the value when a run starts, so the
secret never enters a config snapshot, the UI or a log. A default derived from K2_HOME holds no secret and is
shown as it is.

The warm and cold resources also record the run's process when a run sets them up (`RecordsRunWorker`), so run
monitoring can tell a run whose process died from one still working (see defs/run_worker.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast

import dagster as dg
from pydantic import Field, PrivateAttr

from k2_lakehouse.defs.run_worker import record_run_worker
from k2_lakehouse.settings import Settings
from k2_lakehouse.warm.client import is_embedded, session

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client
    from pyiceberg.catalog.sql import SqlCatalog
    from pyspark.sql import SparkSession

    from k2_lakehouse.cold.storage import ObjectStore


class RecordsRunWorker(dg.ConfigurableResource):  # type: ignore[type-arg]  # subscripting adds a runtime pydantic subclass
    """A resource every k2 job sets up before its first step: it records the run's process as it is set up."""

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        if context.run is not None and context.instance is not None:  # not a resource built outside any run
            record_run_worker(context.instance, context.run.run_id)


class WarmStore(RecordsRunWorker):
    """ClickHouse, embedded (chdb:///path) or a server (http(s)://user:password@host:port)."""

    url: str = Field(description="K2_CLICKHOUSE_URL: chdb:///path runs ClickHouse in the run's process (one process "
                                 "at a time per path); http(s)://user:password@host:port reaches a server.")
    busy_timeout_s: float = Field(description="K2_BUSY_TIMEOUT_S: seconds to wait for an embedded store another "
                                              "process holds before failing with a message naming it.")

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """Once per run (per process with a multiprocess executor), before any step: the ClickHouse client
        library and, embedded, the engine's, which every step opening a client would otherwise import itself."""
        import importlib

        super().setup_for_execution(context)  # whatever a base resource sets up for every run

        importlib.import_module("clickhouse_connect.driver.client")
        if is_embedded(self.url):
            importlib.import_module("chdb")

    @contextmanager
    def client(self) -> Iterator[Client]:
        with session(self.url, self.busy_timeout_s) as client:
            yield client


class ColdStore(RecordsRunWorker):
    """The Iceberg SQL catalog "k2" and the warehouse its tables are written to."""

    catalog_uri: str = Field(description="K2_ICEBERG_CATALOG_URI: the SQL catalog, sqlite:///path/catalog.db or "
                                         "postgresql+psycopg2://user:password@host/db.")
    warehouse: str = Field(description="K2_ICEBERG_WAREHOUSE: where Iceberg data and metadata files are written "
                                       "(file:///path, or s3://bucket/prefix on S3 or an S3-compatible store).")
    s3_endpoint: str | None = Field(default=None, description="K2_S3_ENDPOINT: the S3-compatible store's URL "
                                                              "(MinIO: http://host:9000); unset means AWS.")
    aws_region: str | None = Field(default=None, description="AWS_REGION of the bucket.")
    aws_access_key_id: str | None = Field(default=None, description="AWS_ACCESS_KEY_ID for the warehouse bucket; "
                                                                    "unset: the environment's credentials chain.")
    aws_secret_access_key: str | None = Field(default=None, description="AWS_SECRET_ACCESS_KEY, read from the "
                                                                        "environment when a run starts.")
    aws_session_token: str | None = Field(default=None, description="AWS_SESSION_TOKEN, for temporary credentials.")

    def object_store(self) -> ObjectStore:
        from k2_lakehouse.cold.storage import ObjectStore

        return ObjectStore(endpoint=self.s3_endpoint or None, region=self.aws_region or None,
                           access_key_id=self.aws_access_key_id or None,
                           secret_access_key=self.aws_secret_access_key or None,
                           session_token=self.aws_session_token or None)

    _catalog: SqlCatalog | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """Once per run (per process with a multiprocess executor), before any step: what every cold step needs
        (pyiceberg, its Arrow I/O with pyarrow.dataset, SQLAlchemy) is imported and the catalog opened here, so
        no step pays for them and no step opens the catalog again."""
        import importlib

        super().setup_for_execution(context)  # whatever a base resource sets up for every run

        from k2_lakehouse.cold.catalog import catalog_at  # pyiceberg's SQL catalog, and SQLAlchemy

        for module in ("pyiceberg.io.pyarrow", "pyarrow.dataset"):  # every read and commit of a table uses them
            importlib.import_module(module)

        self._catalog = catalog_at(self.catalog_uri, self.warehouse)

    def catalog(self) -> SqlCatalog:
        if self._catalog is not None:
            return self._catalog
        from k2_lakehouse.cold.catalog import catalog_at

        return catalog_at(self.catalog_uri, self.warehouse, self.object_store())


class Spark(dg.ConfigurableResource):  # type: ignore[type-arg]  # subscripting adds a runtime pydantic subclass
    """dagster-pyspark's LazyPySparkResource, imported on first use.

    Importing dagster_pyspark imports pyspark, which every definitions load would pay for, while only the Spark
    compaction engine needs it; the session itself starts only when that engine asks for it.
    """

    spark_config: dict[str, str] = Field(description="The Spark session's configuration; spark.master is "
                                                     "K2_SPARK_MASTER. Spark only reads and writes Parquet here.")
    _pyspark: Any = PrivateAttr(default=None)  # LazyPySparkResource: typing it would import pyspark

    @property
    def spark_session(self) -> SparkSession:
        if self._pyspark is None:
            from dagster_pyspark import LazyPySparkResource

            self._pyspark = LazyPySparkResource(spark_config=self.spark_config)
        return cast("SparkSession", self._pyspark.spark_session)


def from_environment(name: str, value: str) -> str:
    """`value` as Dagster should hold it: dagster.EnvVar(name) when the environment set it (it may hold a
    password), else the default it was derived from."""
    return dg.EnvVar(name) if os.environ.get(name, "").strip() else value


def optional_from_environment(name: str) -> str | None:
    """dagster.EnvVar(name) when the environment sets it, else None (the variable is optional)."""
    return dg.EnvVar(name) if os.environ.get(name, "").strip() else None


def spark_config(settings: Settings) -> dict[str, str]:
    """local[*] here; K2_SPARK_MASTER points at a cluster in production."""
    return {
        "spark.master": settings.spark_master,
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.enabled": "false",
    }


def resources(settings: Settings) -> dict[str, dg.ConfigurableResource[object]]:
    """Every resource the assets, sensors and checks ask for, by the name they ask for it."""
    return {
        "warm": WarmStore(url=from_environment("K2_CLICKHOUSE_URL", settings.clickhouse_url),
                          busy_timeout_s=settings.busy_timeout_s),
        "cold_store": ColdStore(catalog_uri=from_environment("K2_ICEBERG_CATALOG_URI", settings.iceberg_catalog_uri),
                                warehouse=settings.iceberg_warehouse,
                                s3_endpoint=optional_from_environment("K2_S3_ENDPOINT"),
                                aws_region=optional_from_environment("AWS_REGION"),
                                aws_access_key_id=optional_from_environment("AWS_ACCESS_KEY_ID"),
                                aws_secret_access_key=optional_from_environment("AWS_SECRET_ACCESS_KEY"),
                                aws_session_token=optional_from_environment("AWS_SESSION_TOKEN")),
        # Lazy: pyspark is imported and Spark started only when the Spark compaction engine is chosen.
        "spark": Spark(spark_config=spark_config(settings)),
    }
