"""Checks over sealed warm hours, as plain functions: Dagster only reports what they find."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import polars as pl
from clickhouse_connect.driver.client import Client

from k2_lakehouse.hours import HourRange, in_hours
from k2_lakehouse.warm.client import as_int
from k2_lakehouse.warm.content import gold_windows_predicate
from k2_lakehouse.warm.tables import TIMEFRAMES

_SCALE = 10**12


@dataclass(frozen=True)
class CheckOutcome:
    passed: bool
    problems: list[str]
    measured: dict[str, int]


def silver_duplicates(client: Client, hours: HourRange) -> int:
    """Silver rows beyond one per (exchange, exchange_symbol, trade_id) in the range, read without FINAL."""
    return as_int(client.command(
        "SELECT count() - uniqExact(exchange, exchange_symbol, trade_id) FROM k2.silver_trades "
        f"WHERE {in_hours('exchange_ts')}",
        parameters=hours.parameters))


def mixed_trade_streams(client: Client, hours: HourRange) -> CheckOutcome:
    """No symbol's hour holds trades of two message types (Binance's @trade and @aggTrade, see sql/040).

    The ingest refuses one file carrying both for a symbol; this finds them however they arrived (two files,
    Kafka). Read without FINAL: trades that merged on equal ids leave the others of both types behind.
    """
    rows = client.query(
        "SELECT toString(exchange), exchange_symbol, event_hour, arraySort(groupUniqArray(toString(message_type))) "
        f"FROM k2.bronze_trades WHERE {in_hours('event_hour')} GROUP BY exchange, exchange_symbol, event_hour "
        "HAVING uniqExact(message_type) > 1 ORDER BY event_hour, exchange, exchange_symbol",
        parameters=hours.parameters).result_rows
    problems = [f"{exchange} {symbol} at {hour:%Y-%m-%d %H:00} has trades of {' and '.join(types)} messages: two "
                "numberings of one market's trades merge unrelated ids and count the activity twice; keep one "
                "stream per symbol, remove the other's raw rows and re-seal the hour"
                for exchange, symbol, hour, types in rows[:10]]
    if len(rows) > 10:
        problems.append(f"... and {len(rows) - 10} more (exchange, symbol, hour)")
    return CheckOutcome(not rows, problems, {"symbol_hours_with_two_streams": len(rows)})


def ohlcv_sanity(client: Client, hours: HourRange) -> CheckOutcome:
    """Every candle is well formed, and the timeframes agree with silver and with each other."""
    problems: list[str] = []
    measured: dict[str, int] = {}
    for tf in TIMEFRAMES:
        bad = as_int(client.command(
            f"SELECT count() FROM k2.gold_ohlcv_{tf}_view WHERE {gold_windows_predicate(tf)} AND NOT ("
            "low <= open AND open <= high AND low <= close AND close <= high AND volume > 0 AND trade_count > 0 "
            # Every trade's price and quantity are positive, so these hold exactly (vwap is cut to 12 decimals,
            # as low is) unless the window's quote volume wrapped past Decimal(38, 24) (~1.7e14, sql/100).
            "AND quote_volume > 0 AND low <= vwap AND vwap <= high)",
            parameters=hours.parameters))
        measured[f"malformed_{tf}"] = bad
        if bad:
            problems.append(f"{bad} malformed {tf} candles (low <= open, close, vwap <= high; volume and quote "
                            "volume > 0: a window's quote volume past ~1.7e14 wraps)")
    # Each sub-daily timeframe must carry exactly silver's volume and trade count per hour.
    silver = f"SELECT exchange, symbol, toStartOfHour(exchange_ts) AS hour, sum(quantity) AS v, " \
             f"sum(toUInt64(underlying_trades)) AS n FROM k2.silver_trades FINAL " \
             f"WHERE {in_hours('exchange_ts')} GROUP BY ALL"
    for tf in TIMEFRAMES[:-1]:
        gold = f"SELECT exchange, symbol, toStartOfHour(window_start) AS hour, sum(volume) AS v, " \
               f"sum(trade_count) AS n FROM k2.gold_ohlcv_{tf}_view WHERE {gold_windows_predicate(tf)} GROUP BY ALL"
        differing = as_int(client.command(
            f"SELECT count() FROM ({silver}) AS s FULL OUTER JOIN ({gold}) AS g USING (exchange, symbol, hour) "
            "WHERE s.v != g.v OR s.n != g.n", parameters=hours.parameters))
        measured[f"hours_disagreeing_{tf}"] = differing
        if differing:
            problems.append(f"{differing} (exchange, symbol, hour) where {tf} candles disagree with silver")
    daily = as_int(client.command(
        "SELECT count() FROM (SELECT exchange, symbol, toStartOfDay(window_start) AS day, sum(volume) AS v, "
        "sum(trade_count) AS n, min(low) AS lo, max(high) AS hi FROM k2.gold_ohlcv_1h_view "
        "WHERE window_start >= toStartOfDay({start:DateTime('UTC')}) "
        "AND window_start < toStartOfDay({end:DateTime('UTC')} - INTERVAL 1 SECOND) + INTERVAL 1 DAY GROUP BY ALL) AS h "
        "FULL OUTER JOIN (SELECT exchange, symbol, window_start AS day, volume AS v, trade_count AS n, low AS lo, "
        f"high AS hi FROM k2.gold_ohlcv_1d_view WHERE {gold_windows_predicate('1d')}) AS d "
        "USING (exchange, symbol, day) WHERE h.v != d.v OR h.n != d.n OR h.lo != d.lo OR h.hi != d.hi",
        parameters=hours.parameters))
    measured["days_disagreeing_1d_vs_1h"] = daily
    if daily:
        problems.append(f"{daily} daily candles disagree with the day's hourly candles")
    return CheckOutcome(not problems, problems, measured)


def _silver_frame(client: Client, hours: HourRange) -> pl.DataFrame:
    # Whole days: a daily window touched by the range depends on every hour of its day.
    table = client.query_arrow(
        "SELECT toString(exchange) AS exchange, toString(symbol) AS symbol, exchange_ts, trade_seq, price, quantity, "
        "underlying_trades FROM k2.silver_trades FINAL "
        # DateTime64 bounds, as in hours.in_hours: a DateTime bound can drop the last second's trades.
        "WHERE exchange_ts >= toDateTime64(toStartOfDay({start:DateTime('UTC')}), 6, 'UTC') "
        "AND exchange_ts < toDateTime64(toStartOfDay({end:DateTime('UTC')}) + INTERVAL 1 DAY, 6, 'UTC')",
        parameters=hours.parameters)
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    # Exact arithmetic on scaled 128-bit integers: a polars decimal product would be cut to scale 12.
    return frame.with_columns(
        pl.col("price").cast(pl.Decimal(38, 12)).to_physical().alias("price_units"),
        pl.col("quantity").cast(pl.Decimal(38, 12)).to_physical().alias("quantity_units"),
    )


def recompute_candles(silver: pl.DataFrame, timeframe: str) -> pl.DataFrame:
    """Candles from silver trades, computed independently of ClickHouse."""
    every = timeframe  # the timeframe names are polars durations: 1m, 5m, 15m, 30m, 1h, 1d
    return (
        silver.sort("exchange_ts", "trade_seq")
        .with_columns(pl.col("exchange_ts").dt.truncate(every).alias("window_start"))
        .group_by("exchange", "symbol", "window_start")
        .agg(
            pl.col("price_units").first().alias("open"),
            pl.col("price_units").max().alias("high"),
            pl.col("price_units").min().alias("low"),
            pl.col("price_units").last().alias("close"),
            pl.col("quantity_units").sum().alias("volume"),
            (pl.col("price_units") * pl.col("quantity_units")).sum().alias("quote_volume"),
            pl.col("underlying_trades").cast(pl.UInt64).sum().alias("trade_count"),
        )
    )


def _candles_as_units(client: Client, hours: HourRange, timeframe: str) -> set[tuple[object, ...]]:
    rows = client.query(
        "SELECT toString(exchange), toString(symbol), window_start, open, high, low, close, volume, quote_volume, "
        f"trade_count FROM k2.gold_ohlcv_{timeframe}_view WHERE {gold_windows_predicate(timeframe)}",
        parameters=hours.parameters).result_rows
    return {
        (e, s, w.replace(tzinfo=None), *(int(Decimal(x) * _SCALE) for x in (o, h, lo, c, v)), int(qv * _SCALE**2), int(n))
        for e, s, w, o, h, lo, c, v, qv, n in rows
    }


def gold_equals_recomputation(client: Client, hours: HourRange) -> CheckOutcome:
    """Dual run: gold for the range equals an independent polars recomputation from silver, exactly."""
    silver = _silver_frame(client, hours)
    problems: list[str] = []
    measured: dict[str, int] = {}
    for tf in TIMEFRAMES:
        expected = recompute_candles(silver, tf)
        if tf == "1d":
            lower = hours.start.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
        else:
            lower = hours.start.replace(tzinfo=None)
        expected = expected.filter(
            (pl.col("window_start").dt.replace_time_zone(None) >= lower)
            & (pl.col("window_start").dt.replace_time_zone(None) < hours.end.replace(tzinfo=None)))
        ours = _candles_as_units(client, hours, tf)
        theirs = {
            (r["exchange"], r["symbol"], r["window_start"].replace(tzinfo=None), r["open"], r["high"], r["low"],
             r["close"], r["volume"], r["quote_volume"], r["trade_count"])
            for r in expected.iter_rows(named=True)
        }
        differing = len(ours ^ theirs)
        measured[f"candles_{tf}"] = len(ours)
        measured[f"differing_{tf}"] = differing
        if differing:
            problems.append(f"{tf}: {differing} candles differ from the polars recomputation")
    return CheckOutcome(not problems, problems, measured)

