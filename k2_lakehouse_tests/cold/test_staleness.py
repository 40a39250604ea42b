"""What the staleness sensor counts as a change an offload may have missed, without Dagster."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from clickhouse_connect.driver.client import Client

from k2_lakehouse.cold.staleness import EPOCH, Arrivals, Inserts, Offload, changes_since_offload
from k2_lakehouse_tests.support.cold import add_late_kraken_trade

HOUR = datetime(2025, 11, 10, 20, tzinfo=UTC)
READ = datetime(2026, 1, 1, tzinfo=UTC)  # when the offloads' runs started


def test_a_raw_insert_after_the_offload_read_changes_every_hour_exact_table_but_not_the_daily_candle() -> None:
    offloads = [Offload(name, HOUR, READ) for name in ("raw_trades", "silver_trades", "gold_ohlcv_1h", "gold_ohlcv_1d")]
    later = READ + timedelta(minutes=30)
    changed = changes_since_offload(offloads, {HOUR: Inserts(1, later)}, {})
    assert changed == {("raw_trades", HOUR): later, ("silver_trades", HOUR): later, ("gold_ohlcv_1h", HOUR): later}


def test_a_reseal_changes_the_table_it_sealed_daily_candle_included() -> None:
    offloads = [Offload(name, HOUR, READ) for name in ("silver_trades", "gold_ohlcv_1d")]
    later = READ + timedelta(minutes=5)
    changed = changes_since_offload(offloads, {}, {("gold_ohlcv_1d", HOUR): later})
    assert changed == {("gold_ohlcv_1d", HOUR): later}


def test_an_hour_is_new_to_the_sensor_only_when_rows_arrived_since_it_last_looked(warm: Client) -> None:
    add_late_kraken_trade(warm, HOUR + timedelta(minutes=7))
    hours, seen = Arrivals(EPOCH, {}).next(warm)
    assert hours == {HOUR}
    assert seen.next(warm)[0] == set()  # the same row, still inside the re-read margin, is not new
    add_late_kraken_trade(warm, HOUR + timedelta(minutes=8), trade_id=99_000_002,
                          received_at=seen.latest - timedelta(hours=1))  # received long before, inserted now
    assert seen.next(warm)[0] == {HOUR}


def test_the_cursor_counts_rows_per_hour_and_survives_json(warm: Client) -> None:
    add_late_kraken_trade(warm, HOUR + timedelta(minutes=7))
    _, seen = Arrivals(EPOCH, {}).next(warm)
    assert Arrivals.from_json(seen.to_json()) == seen
    assert seen.seen == {HOUR: 1}
