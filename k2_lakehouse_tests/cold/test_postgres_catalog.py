"""The Iceberg catalog on PostgreSQL, the production profile's: tables, offloads and racing writers."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client
from pyiceberg.catalog.sql import SqlCatalog

from k2_lakehouse.cold.catalog import CatalogUnreachable, load_catalog
from k2_lakehouse.cold.offload import offload_hours
from k2_lakehouse.cold.tables import COLD_TABLES, ensure_cold_tables
from k2_lakehouse.cold.verify import matches_warm
from k2_lakehouse.hours import HourRange
from k2_lakehouse.settings import Settings
from k2_lakehouse_tests.support.cold import offload_all
from k2_lakehouse_tests.support.postgres import fresh_database
from k2_lakehouse_tests.support.racing import commit_together, run_in_threads


@pytest.fixture
def pg_catalog(cold_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SqlCatalog]:
    """The nine cold tables in a SqlCatalog on a fresh PostgreSQL database (dropped afterwards)."""
    monkeypatch.chdir(tmp_path)
    with fresh_database() as uri:
        catalog = load_catalog(dataclasses.replace(cold_settings, iceberg_catalog_uri=uri))
        ensure_cold_tables(catalog)
        yield catalog
        catalog.engine.dispose()


def _hour(start: datetime) -> HourRange:
    return HourRange(start, start + timedelta(hours=1))


def _catalog_rows(catalog: SqlCatalog) -> dict[str, str]:
    """table name -> metadata location, read from PostgreSQL itself rather than through pyiceberg."""
    with catalog.engine.connect() as connection:
        rows = connection.exec_driver_sql(
            "SELECT table_name, metadata_location FROM iceberg_tables WHERE table_namespace = 'cold'").all()
    return {name: location for name, location in rows}


def test_the_cold_tables_are_rows_of_the_postgresql_catalog_and_ensuring_them_again_changes_nothing(
        pg_catalog: SqlCatalog) -> None:
    before = _catalog_rows(pg_catalog)
    assert sorted(before) == sorted(COLD_TABLES)
    ensure_cold_tables(pg_catalog)
    assert _catalog_rows(pg_catalog) == before


def test_an_offload_commits_to_the_postgresql_catalog_and_matches_warm(warm: Client, pg_catalog: SqlCatalog,
                                                                       kraken: HourRange) -> None:
    before = _catalog_rows(pg_catalog)
    for result in offload_all(warm, pg_catalog, kraken):
        assert matches_warm(warm, pg_catalog, result.table, kraken).ok, result.table
    after = _catalog_rows(pg_catalog)
    for name in COLD_TABLES:
        assert after[name] != before[name], f"{name}'s catalog row points at its new metadata"
        assert after[name] == pg_catalog.load_table(("cold", name)).metadata_location


def test_two_offloads_of_one_hour_racing_on_postgresql_leave_exactly_one_copy(
        warm: Client, pg_catalog: SqlCatalog, kraken: HourRange, monkeypatch: pytest.MonkeyPatch) -> None:
    hour = _hour(datetime(2025, 11, 10, 19, tzinfo=UTC))
    commit_together(monkeypatch)
    results = run_in_threads(lambda: offload_hours(warm, pg_catalog, "silver_trades", hour),
                             lambda: offload_hours(warm, pg_catalog, "silver_trades", hour))
    assert sorted(r.attempts for r in results) == [1, 2], "the loser's compare-and-swap failed; it re-planned"
    verdict = matches_warm(warm, pg_catalog, "silver_trades", hour)
    assert verdict.ok and verdict.cold_rows > 0, verdict


def test_two_offloads_of_different_hours_racing_on_postgresql_both_land(
        warm: Client, pg_catalog: SqlCatalog, kraken: HourRange, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = _hour(datetime(2025, 11, 10, 17, tzinfo=UTC)), _hour(datetime(2025, 11, 10, 18, tzinfo=UTC))
    commit_together(monkeypatch)
    run_in_threads(lambda: offload_hours(warm, pg_catalog, "silver_trades", first),
                   lambda: offload_hours(warm, pg_catalog, "silver_trades", second))
    assert len(pg_catalog.load_table(("cold", "silver_trades")).snapshots()) == 2
    assert matches_warm(warm, pg_catalog, "silver_trades", first).ok
    assert matches_warm(warm, pg_catalog, "silver_trades", second).ok


def test_an_unreachable_postgresql_catalog_is_named_without_its_password(cold_settings: Settings) -> None:
    settings = dataclasses.replace(
        cold_settings, iceberg_catalog_uri="postgresql+psycopg2://k2:s3cret-pw@127.0.0.1:1/k2?connect_timeout=2")
    with pytest.raises(CatalogUnreachable) as caught:
        load_catalog(settings)
    assert str(caught.value).startswith(
        "cannot reach the Iceberg catalog at postgresql+psycopg2://k2:***@127.0.0.1:1/k2?connect_timeout=2 "
        "(K2_ICEBERG_CATALOG_URI): connection to server at \"127.0.0.1\", port 1 failed")
    assert "s3cret-pw" not in str(caught.value)
