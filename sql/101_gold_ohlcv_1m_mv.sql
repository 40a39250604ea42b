CREATE MATERIALIZED VIEW IF NOT EXISTS k2.gold_ohlcv_1m_mv TO k2.gold_ohlcv_1m AS
WITH bitOr(bitShiftLeft(toUInt128(toUnixTimestamp64Micro(exchange_ts)), 64), toUInt128(trade_seq)) AS trade_order
SELECT
    exchange,
    symbol,
    toDateTime(toStartOfInterval(exchange_ts, INTERVAL 1 MINUTE), 'UTC') AS window_start,
    toStartOfHour(exchange_ts) AS event_hour,
    argMinState(price, trade_order) AS open,
    max(price) AS high,
    min(price) AS low,
    argMaxState(price, trade_order) AS close,
    sum(quantity) AS volume,
    sum(price * quantity) AS quote_volume,
    sum(toUInt64(underlying_trades)) AS trade_count
FROM k2.silver_intake
GROUP BY exchange, symbol, window_start, event_hour
