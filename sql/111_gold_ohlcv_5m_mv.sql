CREATE MATERIALIZED VIEW IF NOT EXISTS k2.gold_ohlcv_5m_mv TO k2.gold_ohlcv_5m AS
SELECT
    exchange,
    symbol,
    toDateTime(toStartOfInterval(exchange_ts, INTERVAL 5 MINUTE), 'UTC') AS window_start,
    toStartOfHour(exchange_ts) AS event_hour,
    argMinState(price, (exchange_ts, trade_seq)) AS open,
    max(price) AS high,
    min(price) AS low,
    argMaxState(price, (exchange_ts, trade_seq)) AS close,
    sum(quantity) AS volume,
    sum(price * quantity) AS quote_volume,
    sum(toUInt64(underlying_trades)) AS trade_count
FROM k2.silver_intake
GROUP BY exchange, symbol, window_start, event_hour
