"""Live candles count a replayed trade once, in all six timeframes, without a seal.

A replay is a trade silver already holds arriving again: an ingest killed (SIGKILL, a real subprocess) and run
again, or a file that overlaps one ingested before. The live gold views must then equal an independent
recomputation from the distinct trades, the candles a seal derives, and the exchange's own candles.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from clickhouse_connect.driver.client import Client

from k2_lakehouse.hours import HourRange
from k2_lakehouse.ingest.load import ingest_file
from k2_lakehouse.warm.checks import gold_equals_recomputation
from k2_lakehouse.warm.client import close_all, connect
from k2_lakehouse.warm.seal import seal_bronze, seal_gold, seal_silver
from k2_lakehouse.warm.tables import TIMEFRAMES

BINANCE_TRADES = Path("binance") / "XRPETH-aggTrades-2019-10-11_13.csv"
BINANCE_HOURS = HourRange(datetime(2019, 10, 11, tzinfo=UTC), datetime(2019, 10, 13, 12, tzinfo=UTC))

# Ingests the file in small batches and kills itself (SIGKILL, as an OOM kill would) once `stop_after`
# messages are in: the batches before stay, as after any killed ingest.
INGEST_KILLED = """
import os, signal, sys
from pathlib import Path

from k2_lakehouse.hours import HourRange
from k2_lakehouse.ingest.load import ingest_file
from k2_lakehouse.warm.client import connect
from k2_lakehouse.warm.schema import apply_schema

url, path, stop_after = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])


def die_once_past(_path, messages):
    if messages >= stop_after:
        os.kill(os.getpid(), signal.SIGKILL)


client = connect(url)
apply_schema(client)
ingest_file(client, path, batch_bytes=64 * 1024, progress=die_once_past, inserters=1)
"""


def _ingest_killed_after(warm_url: str, path: Path, messages: int, cwd: Path) -> Client:
    """Returns the store reopened (this process's clients are closed for the subprocess)."""
    close_all()  # the subprocess needs the embedded store
    try:
        proc = subprocess.run([sys.executable, "-c", INGEST_KILLED, warm_url, str(path), str(messages)],
                              env=dict(os.environ), cwd=cwd, capture_output=True, text=True, timeout=180)
    finally:
        reopened = connect(warm_url)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    return reopened


def _candles(warm: Client) -> dict[str, set[tuple[object, ...]]]:
    """Every live candle of every timeframe, as the gold views give them."""
    return {tf: set(warm.query(
        "SELECT toString(exchange), toString(symbol), window_start, open, high, low, close, volume, quote_volume, "
        f"trade_count, vwap FROM k2.gold_ohlcv_{tf}_view").result_rows) for tf in TIMEFRAMES}


def _totals(warm: Client) -> dict[str, tuple[int, Decimal]]:
    return {tf: tuple(warm.query(f"SELECT sum(trade_count), sum(volume) FROM k2.gold_ohlcv_{tf}_view").result_rows[0])
            for tf in TIMEFRAMES}


def _file_totals(lines: list[str]) -> tuple[int, Decimal]:
    """Underlying trades and volume of distinct Binance aggTrades CSV lines (each spans first..last trade id)."""
    rows = {line.split(",")[0]: line.strip().split(",") for line in lines}
    return sum(int(r[4]) - int(r[3]) + 1 for r in rows.values()), sum((Decimal(r[2]) for r in rows.values()), Decimal(0))


def _live_equals_recomputation_and_seal(warm: Client, lines: list[str]) -> None:
    assert _totals(warm) == dict.fromkeys(TIMEFRAMES, _file_totals(lines)), "live candles count a replayed trade twice"
    outcome = gold_equals_recomputation(warm, BINANCE_HOURS)
    assert outcome.passed, outcome.problems
    live = _candles(warm)
    seal_bronze(warm, BINANCE_HOURS)
    seal_silver(warm, BINANCE_HOURS)
    seal_gold(warm, BINANCE_HOURS)
    assert _candles(warm) == live, "the seal changed live candles"


def test_live_candles_are_exact_after_a_killed_ingest_is_run_again(
        warm: Client, warm_url: str, datasets: Path, tmp_path: Path) -> None:
    sample = datasets / BINANCE_TRADES
    warm = _ingest_killed_after(warm_url, sample, 6000, tmp_path)
    assert 6000 <= int(warm.command("SELECT count() FROM k2.silver_trades")) < 12477, "killed mid-way"
    ingest_file(warm, sample)
    assert int(warm.command("SELECT count() FROM k2.silver_trades FINAL")) == 12477
    _live_equals_recomputation_and_seal(warm, sample.read_text().splitlines())


def test_live_candles_are_exact_after_an_overlapping_file(warm: Client, datasets: Path, tmp_path: Path) -> None:
    lines = (datasets / BINANCE_TRADES).read_text().splitlines(keepends=True)
    first, second = tmp_path / "first" / BINANCE_TRADES.name, tmp_path / "second" / BINANCE_TRADES.name
    for path, part in ((first, lines[:8000]), (second, lines[5000:])):
        path.parent.mkdir()
        path.write_text("".join(part))
    ingest_file(warm, first)
    ingest_file(warm, second)
    _live_equals_recomputation_and_seal(warm, lines)


def test_live_1m_candles_after_a_file_ingested_twice_equal_binances_klines(warm: Client, datasets: Path) -> None:
    sample = datasets / BINANCE_TRADES
    ingest_file(warm, sample)
    ingest_file(warm, sample)  # the same file again: every trade a replay
    ours = {int(minute): row for minute, *row in warm.query(
        "SELECT toUnixTimestamp(window_start), open, high, low, close, volume FROM k2.gold_ohlcv_1m_view "
        "WHERE exchange = 'binance' AND symbol = 'XRP/ETH'").result_rows}
    with (datasets / "binance" / "XRPETH-klines-1m-2019-10-11_13.csv").open() as handle:
        klines = {int(open_ms) // 1000: [Decimal(x) for x in values]
                  for open_ms, *values in csv.reader(handle) if Decimal(values[-1]) != 0}
    assert ours == klines


def test_a_replay_marks_only_the_hours_it_touched(warm: Client, datasets: Path, tmp_path: Path) -> None:
    lines = (datasets / BINANCE_TRADES).read_text().splitlines(keepends=True)
    ingest_file(warm, datasets / BINANCE_TRADES)
    replay = tmp_path / "replay" / BINANCE_TRADES.name
    replay.parent.mkdir()
    replay.write_text("".join(lines[100:110]))
    ingest_file(warm, replay)
    replayed_hours = {int(line.split(",")[5]) // 3_600_000 * 3600 for line in lines[100:110]}
    marked = {int(h) for h, in warm.query("SELECT DISTINCT toUnixTimestamp(event_hour) FROM k2.gold_replays").result_rows}
    assert marked == replayed_hours


def test_live_candles_are_exact_when_two_copies_of_the_trades_are_inserted_at_once(
        warm: Client, datasets: Path, tmp_path: Path) -> None:
    lines = (datasets / BINANCE_TRADES).read_text().splitlines(keepends=True)
    twice = tmp_path / BINANCE_TRADES.name
    twice.write_text("".join(lines + lines))
    # One batch per copy, inserted by two handles at once: neither insert has committed when the other starts.
    ingest_file(warm, twice, batch_bytes=len("".join(lines).encode()), inserters=2)
    _live_equals_recomputation_and_seal(warm, lines)
