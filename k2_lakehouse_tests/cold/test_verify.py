"""Verification: cold equals warm exactly, and any difference (a row more, less or changed) is caught."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
from clickhouse_connect.driver.client import Client
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.expressions import EqualTo

from k2_lakehouse.cold.offload import offload_hours
from k2_lakehouse.cold.verify import cold_checksum, hours_expiring_unverified, matches_warm
from k2_lakehouse.hours import HourRange
from k2_lakehouse.ingest.load import ingest_file
from k2_lakehouse_tests.support.cold import BINANCE_TRADES, KRAKEN_HOURS, KRAKEN_TRADES, add_late_kraken_trade, seal_all
from k2_lakehouse_tests.support.object_store import LOCAL_WAREHOUSE_ONLY

HOUR = HourRange(datetime(2025, 11, 10, 18, tzinfo=UTC), datetime(2025, 11, 10, 19, tzinfo=UTC))


def _offloaded_silver(warm: Client, catalog: SqlCatalog) -> pa.Table:
    """Offload the Kraken sample's silver and return one hour of it as pyiceberg reads it."""
    offload_hours(warm, catalog, "silver_trades", KRAKEN_HOURS)
    table = catalog.load_table(("cold", "silver_trades"))
    rows = table.scan(row_filter=f"exchange_ts >= '{HOUR.start.isoformat()}' AND "
                                 f"exchange_ts < '{HOUR.end.isoformat()}'").to_arrow()
    assert rows.num_rows > 1
    return rows


def test_matches_warm_after_an_offload(warm: Client, catalog: SqlCatalog, kraken: HourRange) -> None:
    offload_hours(warm, catalog, "silver_trades", kraken)
    verdict = matches_warm(warm, catalog, "silver_trades", kraken)
    assert verdict.ok
    assert verdict.warm_rows == verdict.cold_rows == 1000
    assert verdict.warm_checksum == verdict.cold_checksum != 0


# The checksum's sensitivity is SQL; on S3 a missing row shows verification reads the files.
@LOCAL_WAREHOUSE_ONLY
def test_a_duplicated_cold_row_fails_verification(warm: Client, catalog: SqlCatalog, kraken: HourRange) -> None:
    rows = _offloaded_silver(warm, catalog)
    catalog.load_table(("cold", "silver_trades")).append(rows.slice(0, 1))
    verdict = matches_warm(warm, catalog, "silver_trades", HOUR)
    assert not verdict.ok
    assert verdict.cold_rows == verdict.warm_rows + 1


def test_a_missing_cold_row_fails_verification(warm: Client, catalog: SqlCatalog, kraken: HourRange) -> None:
    rows = _offloaded_silver(warm, catalog)
    catalog.load_table(("cold", "silver_trades")).delete(EqualTo("trade_id", rows["trade_id"][0].as_py()))
    verdict = matches_warm(warm, catalog, "silver_trades", HOUR)
    assert not verdict.ok
    assert verdict.cold_rows == verdict.warm_rows - 1


# The checksum's sensitivity is SQL; on S3 a missing row shows verification reads the files.
@LOCAL_WAREHOUSE_ONLY
def test_a_changed_cold_value_fails_verification(warm: Client, catalog: SqlCatalog, kraken: HourRange) -> None:
    rows = _offloaded_silver(warm, catalog)
    victim = rows.slice(0, 1)
    trade_id = victim["trade_id"][0].as_py()
    field = victim.schema.field("price")
    off_by_one_tick = victim["price"][0].as_py() + Decimal("0.000000000001")
    tampered = victim.set_column(victim.schema.get_field_index("price"), field,
                                 pa.array([off_by_one_tick], field.type))
    table = catalog.load_table(("cold", "silver_trades"))
    with table.transaction() as txn:
        txn.delete(EqualTo("trade_id", trade_id))
        txn.append(tampered)
    verdict = matches_warm(warm, catalog, "silver_trades", HOUR)
    assert not verdict.ok
    assert verdict.cold_rows == verdict.warm_rows and verdict.cold_checksum != verdict.warm_checksum


# Warm-side logic; the crash tests verify a late trade on S3.
@LOCAL_WAREHOUSE_ONLY
def test_a_late_trade_not_yet_offloaded_fails_verification_until_offloaded(warm: Client, catalog: SqlCatalog,
                                                                           kraken: HourRange) -> None:
    offload_hours(warm, catalog, "gold_ohlcv_1d", kraken)
    add_late_kraken_trade(warm, datetime(2025, 11, 10, 18, 5, tzinfo=UTC))
    seal_all(warm, HOUR)
    assert not matches_warm(warm, catalog, "gold_ohlcv_1d", HOUR).ok
    offload_hours(warm, catalog, "gold_ohlcv_1d", HOUR)
    assert matches_warm(warm, catalog, "gold_ohlcv_1d", kraken).ok


# Answered before any file is read.
@LOCAL_WAREHOUSE_ONLY
def test_an_empty_cold_table_checksums_to_zero(warm: Client, catalog: SqlCatalog) -> None:
    table = catalog.load_table(("cold", "raw_trades"))
    assert cold_checksum(warm, table, "raw_trades", KRAKEN_HOURS) == (0, 0)


# Reads warm only.
@LOCAL_WAREHOUSE_ONLY
def test_hours_leaving_warm_within_48h_without_a_passing_verification_are_listed(
        warm: Client, catalog: SqlCatalog, datasets: Path) -> None:
    now = datetime.now(UTC)
    ingest_file(warm, datasets / KRAKEN_TRADES, received_at=now - timedelta(days=29))  # expires in ~1 day
    ingest_file(warm, datasets / BINANCE_TRADES, received_at=now)  # expires in 30 days
    seal_all(warm, KRAKEN_HOURS)
    kraken_hours = [KRAKEN_HOURS.start + timedelta(hours=h) for h in range(8)]
    verified = kraken_hours[:2]
    assert hours_expiring_unverified(warm, verified, now=now) == kraken_hours[2:]
    assert hours_expiring_unverified(warm, kraken_hours, now=now) == []
    assert hours_expiring_unverified(warm, [], now=now, horizon=timedelta(hours=12)) == []
