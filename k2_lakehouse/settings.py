"""Every K2_* environment variable, its default and its meaning, in one place.

Settings are read when a function asks for them, not at import, so tests and the CLI can point
K2_HOME somewhere else before anything opens a store.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from k2_lakehouse.hours import PARTITION_KEY_FORMAT


class ConfigurationError(ValueError):
    """A K2_* variable holds a value the platform cannot use."""


class ServiceUnreachable(RuntimeError):
    """A configured server (ClickHouse, the catalog's database, object storage) did not answer.

    The message names the service, its address and the variable that configures it, never a password.
    """


@dataclass(frozen=True)
class Settings:
    home: Path
    clickhouse_url: str
    partitions_start: datetime
    iceberg_catalog_uri: str
    iceberg_warehouse: str
    landing_dir: Path | None
    busy_timeout_s: float
    spark_master: str = "local[*]"
    dagster_postgres_url: str = ""  # K2_DAGSTER_POSTGRES_URL: the Dagster instance's storage; unset, SQLite files


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def parse_partitions_start(value: str) -> datetime:
    try:
        return datetime.strptime(value, PARTITION_KEY_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise ConfigurationError(
            f"K2_PARTITIONS_START={value!r} is not of the form YYYY-MM-DD-HH:MM (for example 2024-01-01-00:00)"
        ) from None


def load_settings() -> Settings:
    home = Path(_env("K2_HOME", "./.k2")).resolve()
    url = _env("K2_CLICKHOUSE_URL", f"chdb://{home / 'clickhouse'}")
    if not url.startswith(("chdb://", "http://", "https://")):
        raise ConfigurationError(
            f"K2_CLICKHOUSE_URL must start with chdb://, http:// or https://, got {url.split('@')[-1]!r}"
        )
    busy = _env("K2_BUSY_TIMEOUT_S", "10")
    try:
        busy_timeout_s = float(busy)
    except ValueError:
        raise ConfigurationError(f"K2_BUSY_TIMEOUT_S={busy!r} is not a number of seconds") from None
    landing = os.environ.get("K2_LANDING_DIR", "").strip()
    warehouse = _env("K2_ICEBERG_WAREHOUSE", f"file://{home / 'iceberg' / 'warehouse'}")
    require_reachable_warehouse(url, warehouse)
    return Settings(
        home=home,
        clickhouse_url=url,
        partitions_start=parse_partitions_start(_env("K2_PARTITIONS_START", "2024-01-01-00:00")),
        iceberg_catalog_uri=_env("K2_ICEBERG_CATALOG_URI", f"sqlite:///{home / 'iceberg' / 'catalog.db'}"),
        iceberg_warehouse=warehouse,
        landing_dir=Path(landing).resolve() if landing else None,
        busy_timeout_s=busy_timeout_s,
        spark_master=_env("K2_SPARK_MASTER", "local[*]"),
        dagster_postgres_url=_env("K2_DAGSTER_POSTGRES_URL", ""),
    )


def server_address(url: str) -> str:
    """host:port of a ClickHouse server URL (clickhouse-connect's default ports), never its credentials."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or (8443 if parts.scheme == 'https' else 8123)}"


def require_reachable_warehouse(clickhouse_url: str, warehouse: str) -> None:
    """Refuse a ClickHouse server with a local warehouse: the offload is ClickHouse writing the cold tier's
    Parquet files itself, and a server writes to its own disk, not to the folder this host names."""
    if clickhouse_url.startswith("chdb://") or urlsplit(warehouse).scheme not in ("", "file"):
        return
    raise ConfigurationError(
        f"K2_CLICKHOUSE_URL points at a ClickHouse server ({server_address(clickhouse_url)}), which cannot write "
        f"the cold tier's files into the local warehouse {warehouse}: set K2_ICEBERG_WAREHOUSE to object storage "
        "both can reach (s3://bucket/prefix, with K2_S3_ENDPOINT for MinIO), or unset K2_CLICKHOUSE_URL for the "
        "embedded store"
    )


def dagster_home(settings: Settings) -> Path:
    """DAGSTER_HOME defaults to $K2_HOME/dagster so one folder holds all local state."""
    return Path(os.environ.get("DAGSTER_HOME") or settings.home / "dagster")
