"""Binance spot and USD-M futures are two markets: their trades never share a row or a candle."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from clickhouse_connect.driver.client import Client

from k2_lakehouse.hours import HourRange
from k2_lakehouse.ingest.load import ingest_file
from k2_lakehouse.warm.seal import seal_bronze, seal_gold, seal_silver

HOUR = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
T_MS = int((HOUR + timedelta(minutes=10)).timestamp() * 1000)


def _agg(agg_id: int, price: str, quantity: str, t_ms: int, *, spot: bool) -> dict[str, object]:
    """A SUSHIUSDT aggTrade as each market sends it: spot's carries "M", futures' does not."""
    event: dict[str, object] = {"e": "aggTrade", "E": t_ms, "s": "SUSHIUSDT", "a": agg_id, "p": price, "q": quantity,
                                "f": agg_id * 10, "l": agg_id * 10 + 1, "T": t_ms, "m": False}
    if spot:
        event["M"] = True
    return event


SPOT = _agg(100, "7.6100", "5", T_MS, spot=True)
FUTURES = _agg(100, "7.5000", "300", T_MS + 500, spot=False)  # same symbol, same id, inside the spot minute


def _write(path: Path, event: dict[str, object]) -> Path:
    path.write_text(json.dumps({"stream": "sushiusdt@aggTrade", "data": event}, separators=(",", ":")) + "\n")
    return path


def _seal(warm: Client) -> None:
    hours = HourRange(HOUR, HOUR + timedelta(hours=1))
    seal_bronze(warm, hours)
    seal_silver(warm, hours)
    seal_gold(warm, hours)


def _candles(warm: Client) -> dict[str, tuple]:
    rows = warm.query("SELECT exchange, open, high, low, close, volume, trade_count FROM k2.gold_ohlcv_1m_view "
                      "WHERE symbol = 'SUSHI/USDT'").result_rows
    return {row[0]: row[1:] for row in rows}


def test_a_spot_and_a_futures_aggtrade_with_the_same_symbol_and_id_are_two_trades(
        warm: Client, tmp_path: Path) -> None:
    ingest_file(warm, _write(tmp_path / "spot.jsonl", SPOT))
    summary = ingest_file(warm, _write(tmp_path / "futures.jsonl", FUTURES))
    _seal(warm)
    assert (summary.source_format, summary.trades, summary.duplicates) == ("binance-futures-ws", 1, 0)
    rows = warm.query("SELECT exchange, trade_id, price FROM k2.silver_trades FINAL ORDER BY exchange").result_rows
    assert rows == [("binance", str(SPOT["a"]), Decimal(SPOT["p"])),
                    ("binance-futures", str(FUTURES["a"]), Decimal(FUTURES["p"]))]


def test_a_futures_trade_leaves_the_spot_candle_unchanged(warm: Client, tmp_path: Path) -> None:
    ingest_file(warm, _write(tmp_path / "spot.jsonl", SPOT))
    ingest_file(warm, _write(tmp_path / "futures.jsonl", FUTURES))
    _seal(warm)
    spot_price, spot_count = Decimal(SPOT["p"]), SPOT["l"] - SPOT["f"] + 1
    futures_price, futures_count = Decimal(FUTURES["p"]), FUTURES["l"] - FUTURES["f"] + 1
    assert _candles(warm) == {
        "binance": (spot_price, spot_price, spot_price, spot_price, Decimal(SPOT["q"]), spot_count),
        "binance-futures": (futures_price, futures_price, futures_price, futures_price, Decimal(FUTURES["q"]),
                            futures_count),
    }


def test_an_explicit_format_wins_over_the_markets_the_events_show(warm: Client, tmp_path: Path) -> None:
    summary = ingest_file(warm, _write(tmp_path / "spot.jsonl", SPOT), source_format="binance-futures-ws")
    assert summary.trades == 1
    assert warm.query("SELECT DISTINCT exchange FROM k2.silver_trades").result_rows == [("binance-futures",)]
