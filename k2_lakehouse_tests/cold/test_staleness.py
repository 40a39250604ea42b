"""What the staleness sensor counts as a change an offload may have missed, without Dagster."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from clickhouse_connect.driver.client import Client

from k2_lakehouse.cold.staleness import EPOCH, Arrivals, Inserts, Offload, changes_since_offload, reoffload_runs
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


def test_stale_hours_are_requested_in_contiguous_ranges_keyed_by_their_hours_and_latest_change() -> None:
    one, two, three = (READ + timedelta(minutes=m) for m in (1, 2, 3))
    changed = {("raw_trades", HOUR): one, ("silver_trades", HOUR): three,  # 20:00, two tables
               ("raw_trades", HOUR + timedelta(hours=1)): two,  # 21:00
               ("raw_trades", HOUR + timedelta(hours=3)): one}  # 23:00, after a gap
    stale = [Offload(name, hour, READ) for name, hour in changed]
    runs = reoffload_runs(stale, changed)
    assert [(hours.start, hours.end) for hours, _ in runs] == [(HOUR, HOUR + timedelta(hours=2)),
                                                              (HOUR + timedelta(hours=3), HOUR + timedelta(hours=4))]
    assert [key for _, key in runs] == ["stale:2025-11-10-20:00...2025-11-10-21:00:2026-01-01T00:03:00+00:00",
                                        "stale:2025-11-10-23:00...2025-11-10-23:00:2026-01-01T00:01:00+00:00"]
