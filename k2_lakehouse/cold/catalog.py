"""The Iceberg catalog of the cold tier: a SQL catalog (SQLite locally, PostgreSQL in production).

A SQL catalog keeps one row per table pointing at its current metadata file; a commit is a
compare-and-swap on that row, which is what makes every offload atomic and lets two writers race
safely (the loser gets CommitFailedException and retries).
"""

from __future__ import annotations

from pathlib import Path

from pyiceberg.catalog.sql import SqlCatalog

from k2_lakehouse.cold.storage import local_path
from k2_lakehouse.settings import ConfigurationError, ServiceUnreachable, Settings, load_settings

CATALOG_NAME = "k2"
NAMESPACE = "cold"

_SUPPORTED_URI_PREFIXES = ("sqlite:", "postgresql:", "postgresql+psycopg2:")


class CatalogUnreachable(ServiceUnreachable):
    """The catalog's database did not answer; the message names it without its password."""


def redacted_uri(uri: str) -> str:
    """The catalog URI as logs and errors may show it: the password replaced by ***."""
    from sqlalchemy.engine import make_url

    return make_url(uri).render_as_string(hide_password=True)


def _sqlite_file(uri: str) -> Path | None:
    """The database file of a sqlite:/// URI; None for an in-memory database."""
    path = uri.removeprefix("sqlite:///")
    return None if path in ("", ":memory:") or path == uri else Path(path)


def _prepare_local_dirs(uri: str, warehouse: str) -> None:
    # SQLite and the local warehouse need their folders to exist; PostgreSQL and s3:// do not.
    if uri.startswith("sqlite:") and (db := _sqlite_file(uri)) is not None:
        db.parent.mkdir(parents=True, exist_ok=True)
    if (root := local_path(warehouse)) is not None:
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigurationError(
                f"K2_ICEBERG_WAREHOUSE={warehouse}: cannot create the folder {root}: {exc.strerror}") from None


def load_catalog(settings: Settings | None = None) -> SqlCatalog:
    """The "k2" SqlCatalog at K2_ICEBERG_CATALOG_URI, writing under K2_ICEBERG_WAREHOUSE."""
    settings = settings or load_settings()
    return catalog_at(settings.iceberg_catalog_uri, settings.iceberg_warehouse)


def catalog_at(uri: str, warehouse: str) -> SqlCatalog:
    """The "k2" SqlCatalog at `uri`, writing under `warehouse`.

    Works with sqlite:///path/catalog.db and postgresql+psycopg2://user@host/db (psycopg2 comes with
    pyiceberg's sql-postgres extra).
    """
    if not uri.startswith(_SUPPORTED_URI_PREFIXES):
        raise ConfigurationError(
            f"K2_ICEBERG_CATALOG_URI must be a sqlite:/// or postgresql+psycopg2:// URI, got {uri.split('@')[-1]!r}"
        )
    if uri.startswith("postgresql:"):
        # SQLAlchemy's default PostgreSQL driver is psycopg2 too; say so, so the URI names what is used.
        uri = "postgresql+psycopg2:" + uri.removeprefix("postgresql:")
    _prepare_local_dirs(uri, warehouse)
    from sqlalchemy.exc import OperationalError

    try:
        return SqlCatalog(CATALOG_NAME, uri=uri, warehouse=warehouse)
    except OperationalError as exc:  # SqlCatalog connects at once, to create its tables
        cause = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else type(exc).__name__
        raise CatalogUnreachable(
            f"cannot reach the Iceberg catalog at {redacted_uri(uri)} (K2_ICEBERG_CATALOG_URI): {cause}") from None
