"""Every real sample ingests end to end into silver with nothing lost."""

from __future__ import annotations

from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from k2_lakehouse.ingest.load import IngestError, batch_lines, ingest_file
from k2_lakehouse.ingest.reader import read_batches

# (sample, trades it holds, non-trade messages), counted from the files independently of the parsers.
EXPECTED = {
    "kraken/XBTUSDT-trades-2025-11-10.rest.json": (1000, 0),
    "kraken/BCHEUR-2023-01-02.csv": (486, 0),
    "kraken/ws-v1-2021-04-17.jsonl": (10, 41),
    "binance/XRPETH-aggTrades-2019-10-11_13.csv": (12477, 0),
    "binance/ws-combined-spot-2021-10-12.jsonl": (2, 263),
    "binance/ws-combined-futures-2021-07-22.jsonl": (91, 1444),
}


@pytest.mark.parametrize(("sample", "counts"), EXPECTED.items())
def test_each_sample_lands_in_silver_with_every_message_accounted(
        warm: Client, datasets: Path, sample: str, counts: tuple[int, int]) -> None:
    summary = ingest_file(warm, datasets / sample)
    trades, non_trade = counts
    assert (summary.trades, summary.skipped, summary.dlq_total, summary.duplicates) == (trades, non_trade, 0, 0)
    assert warm.command("SELECT count() FROM k2.silver_trades FINAL") == trades


def test_the_binance_spot_and_futures_samples_land_under_their_own_exchanges(warm: Client, datasets: Path) -> None:
    spot, futures = "binance/ws-combined-spot-2021-10-12.jsonl", "binance/ws-combined-futures-2021-07-22.jsonl"
    for sample in (spot, futures):
        ingest_file(warm, datasets / sample)
    rows = warm.query("SELECT exchange, count() FROM k2.silver_trades FINAL GROUP BY exchange").result_rows
    assert dict(rows) == {"binance": EXPECTED[spot][0], "binance-futures": EXPECTED[futures][0]}


def test_binance_buyer_maker_means_the_taker_sold(warm: Client, datasets: Path) -> None:
    ingest_file(warm, datasets / "binance" / "XRPETH-aggTrades-2019-10-11_13.csv")
    sides = dict(warm.query("SELECT toString(side), count() FROM k2.silver_trades GROUP BY side").result_rows)
    assert sides == {"sell": 5953, "buy": 6524}  # is_buyer_maker True / False in the file


def test_kraken_xbt_is_normalised_to_btc(warm: Client, datasets: Path) -> None:
    ingest_file(warm, datasets / "kraken" / "XBTUSDT-trades-2025-11-10.rest.json")
    assert warm.query("SELECT DISTINCT symbol, exchange_symbol FROM k2.silver_trades").result_rows == [
        ("BTC/USDT", "XBTUSDT")]


def test_a_2025_binance_trades_dump_in_microseconds_lands_at_the_right_time(warm: Client, tmp_path: Path) -> None:
    # Binance's 2025 spot dumps carry a header and microsecond times; older ones milliseconds.
    path = tmp_path / "BTCUSDT-trades-2025-01-01.csv"
    path.write_text("id,price,qty,quote_qty,time,is_buyer_maker,is_best_match\n"
                    "4400000001,93548.01000000,0.00010000,9.35480100,1735689600123456,true,true\n"
                    "4400000002,93548.02000000,0.00020000,18.70960400,1735689601000001,false,true\n")
    summary = ingest_file(warm, path)
    assert (summary.trades, summary.skipped, summary.dlq_total) == (2, 1, 0)
    rows = warm.query("SELECT trade_id, toString(exchange_ts), toString(side), symbol FROM k2.silver_trades "
                      "ORDER BY trade_id").result_rows
    assert rows == [("4400000001", "2025-01-01 00:00:00.123456", "sell", "BTC/USDT"),
                    ("4400000002", "2025-01-01 00:00:01.000001", "buy", "BTC/USDT")]


def test_a_file_spanning_months_of_hours_ingests_whole(warm: Client, tmp_path: Path) -> None:
    # One batch touching 125 daily partitions, more than ClickHouse's default per-insert limit of 100.
    start = 1_735_689_600  # 2025-01-01 00:00 UTC
    path = tmp_path / "XBTUSD-2025-01.csv"
    path.write_text("".join(f"{start + hour * 3600 + 7},100.{hour % 10},0.5\n" for hour in range(3000)))
    summary = ingest_file(warm, path)
    assert (summary.trades, summary.dlq) == (3000, {})
    assert warm.command("SELECT uniqExact(toDate(exchange_ts)) FROM k2.silver_trades") == 125


def test_a_failed_insert_stops_the_ingest_naming_the_file_the_batchs_lines_and_the_engines_error(
        warm: Client, datasets: Path) -> None:
    from clickhouse_connect.driver.exceptions import DatabaseError

    sample = datasets / "binance" / "XRPETH-aggTrades-2019-10-11_13.csv"
    batches = {batch_lines(batch) for batch in read_batches(sample, "binance-aggtrades-csv", batch_bytes=4096)}
    with pytest.raises(IngestError, match=r"k2\.no_such_table") as failure:
        ingest_file(warm, sample, table="k2.no_such_table", batch_bytes=4096)
    message = str(failure.value)
    assert message.startswith(f"{sample.resolve()}, lines ")
    assert message.split(", ")[1].split(":")[0] in batches
    assert isinstance(failure.value.__cause__, DatabaseError)
    # The store stays usable: the parallel inserters' handles were released.
    assert ingest_file(warm, sample).trades > 0
