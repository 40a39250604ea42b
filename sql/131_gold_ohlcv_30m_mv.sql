-- Rolled up from the 1m states just inserted, not from trades: one aggregation over trades feeds all
-- six timeframes, and merging argMin/argMax states keeps open and close exact.
CREATE MATERIALIZED VIEW IF NOT EXISTS k2.gold_ohlcv_30m_mv TO k2.gold_ohlcv_30m AS
SELECT
    exchange,
    symbol,
    toDateTime(toStartOfInterval(window_start, INTERVAL 30 MINUTE), 'UTC') AS window_start,
    event_hour,
    argMinMergeState(open) AS open,
    max(high) AS high,
    min(low) AS low,
    argMaxMergeState(close) AS close,
    sum(volume) AS volume,
    sum(quote_volume) AS quote_volume,
    sum(trade_count) AS trade_count
FROM k2.gold_ohlcv_1m
GROUP BY exchange, symbol, window_start, event_hour
