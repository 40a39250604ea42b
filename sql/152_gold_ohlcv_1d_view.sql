-- Final 1d candles. vwap is cut (not rounded) to 12 decimals.
-- Exact under replays as gold_ohlcv_1m_view (sql/102): marked hours are recounted from silver FINAL.
CREATE OR REPLACE VIEW k2.gold_ohlcv_1d_view AS
SELECT
    exchange,
    symbol,
    window_start,
    argMinMerge(g.open) AS open,
    max(g.high) AS high,
    min(g.low) AS low,
    argMaxMerge(g.close) AS close,
    sum(g.volume) AS volume,
    sum(g.quote_volume) AS quote_volume,
    sum(g.trade_count) AS trade_count,
    toDecimal128(divideDecimal(sum(g.quote_volume), sum(g.volume), 12), 12) AS vwap
FROM
(
    SELECT exchange, symbol, window_start, open, high, low, close, volume, quote_volume, trade_count
    FROM k2.gold_ohlcv_1d
    WHERE (exchange, symbol, event_hour) NOT IN (SELECT exchange, symbol, event_hour FROM k2.gold_replays)
    UNION ALL
    SELECT
        exchange,
        symbol,
        toDateTime(toStartOfInterval(exchange_ts, INTERVAL 1 DAY), 'UTC') AS window_start,
        argMinState(price, bitOr(bitShiftLeft(toUInt128(toUnixTimestamp64Micro(exchange_ts)), 64), toUInt128(trade_seq))) AS open,
        CAST(max(price) AS SimpleAggregateFunction(max, Decimal(38, 12))) AS high,
        CAST(min(price) AS SimpleAggregateFunction(min, Decimal(38, 12))) AS low,
        argMaxState(price, bitOr(bitShiftLeft(toUInt128(toUnixTimestamp64Micro(exchange_ts)), 64), toUInt128(trade_seq))) AS close,
        CAST(sum(quantity) AS SimpleAggregateFunction(sum, Decimal(38, 12))) AS volume,
        CAST(sum(price * quantity) AS SimpleAggregateFunction(sum, Decimal(38, 24))) AS quote_volume,
        CAST(sum(toUInt64(underlying_trades)) AS SimpleAggregateFunction(sum, UInt64)) AS trade_count
    FROM k2.silver_trades FINAL
    WHERE (exchange, symbol, toStartOfHour(exchange_ts)) IN (SELECT exchange, symbol, event_hour FROM k2.gold_replays)
    GROUP BY exchange, symbol, window_start
) AS g
GROUP BY exchange, symbol, window_start
