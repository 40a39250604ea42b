"""Candles built from real trades equal the exchanges' own published candles."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from pathlib import Path

from clickhouse_connect.driver.client import Client

from k2_lakehouse.hours import HourRange
from k2_lakehouse.ingest.load import ingest_file
from k2_lakehouse.warm.seal import seal_bronze, seal_gold, seal_silver


def _seal_all(warm: Client, start: datetime, end: datetime) -> None:
    hours = HourRange(start, end)
    seal_bronze(warm, hours)
    seal_silver(warm, hours)
    seal_gold(warm, hours)


def _our_candles(warm: Client, exchange: str, symbol: str) -> dict[int, tuple]:
    rows = warm.query(
        "SELECT toUnixTimestamp(window_start), open, high, low, close, volume, trade_count, vwap "
        "FROM k2.gold_ohlcv_1m_view WHERE exchange = {e:String} AND symbol = {s:String}",
        parameters={"e": exchange, "s": symbol}).result_rows
    return {row[0]: row[1:] for row in rows}


def test_kraken_1m_candles_equal_krakens_published_candles(warm: Client, datasets: Path) -> None:
    ingest_file(warm, datasets / "kraken" / "XBTUSDT-trades-2025-11-10.rest.json")
    _seal_all(warm, datetime(2025, 11, 10, 17, tzinfo=UTC), datetime(2025, 11, 11, 1, tzinfo=UTC))
    ours = _our_candles(warm, "kraken", "BTC/USDT")
    published = json.loads((datasets / "kraken" / "XBTUSDT-ohlc-1m-2025-11-10.rest.json").read_text())
    trades = json.loads((datasets / "kraken" / "XBTUSDT-trades-2025-11-10.rest.json").read_text())
    times = [float(t[2]) for t in trades["result"]["XBTUSDT"]]
    first_minute, last_minute = min(times) // 60 * 60, max(times) // 60 * 60
    compared = set()
    for t, o, h, lo, c, vwap, volume, count in published["result"]["XBTUSDT"]:
        if count == 0 or not first_minute < t < last_minute:
            continue  # the page's first and last minutes hold trades outside the page
        assert t in ours, f"no candle for minute {datetime.fromtimestamp(t, UTC)}"
        our_open, our_high, our_low, our_close, our_volume, our_count, our_vwap = ours[t]
        assert (our_open, our_high, our_low, our_close) == (Decimal(o), Decimal(h), Decimal(lo), Decimal(c)), t
        assert our_volume == Decimal(volume), t
        assert our_count == count, t
        # Kraken cuts its vwap to one decimal.
        assert our_vwap.quantize(Decimal("0.1"), rounding=ROUND_DOWN) == Decimal(vwap), t
        compared.add(t)
    assert compared == {t for t in ours if first_minute < t < last_minute}, "a candle Kraken does not have"


def test_binance_1m_candles_equal_binances_klines(warm: Client, datasets: Path) -> None:
    ingest_file(warm, datasets / "binance" / "XRPETH-aggTrades-2019-10-11_13.csv")
    _seal_all(warm, datetime(2019, 10, 11, tzinfo=UTC), datetime(2019, 10, 13, 12, tzinfo=UTC))
    ours = _our_candles(warm, "binance", "XRP/ETH")
    compared = set()
    with (datasets / "binance" / "XRPETH-klines-1m-2019-10-11_13.csv").open() as handle:
        for open_ms, o, h, lo, c, volume in csv.reader(handle):
            minute = int(open_ms) // 1000
            if Decimal(volume) == 0:
                assert minute not in ours, "no candle for a minute without trades"
                continue
            our_open, our_high, our_low, our_close, our_volume, _count, _vwap = ours[minute]
            assert (our_open, our_high, our_low, our_close, our_volume) == (
                Decimal(o), Decimal(h), Decimal(lo), Decimal(c), Decimal(volume)), minute
            compared.add(minute)
    assert set(ours) == compared, "a candle Binance does not have"


def test_live_views_and_seal_agree_on_the_kraken_sample(warm: Client, datasets: Path) -> None:
    ingest_file(warm, datasets / "kraken" / "XBTUSDT-trades-2025-11-10.rest.json")
    live = _our_candles(warm, "kraken", "BTC/USDT")
    start = datetime(2025, 11, 10, 17, tzinfo=UTC)
    _seal_all(warm, start, start + timedelta(hours=8))
    assert _our_candles(warm, "kraken", "BTC/USDT") == live
