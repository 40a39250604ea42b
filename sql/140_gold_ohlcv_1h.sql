-- 1h candles as aggregate states, one partial row per (window, source hour): re-sealing an hour
-- replaces exactly its contribution, even to a daily window. Open and close are argMin/argMax over
-- (exchange_ts, trade_seq), so no merge can pick an arbitrary row.
CREATE TABLE IF NOT EXISTS k2.gold_ohlcv_1h
(
    exchange LowCardinality(String),
    symbol LowCardinality(String),
    window_start DateTime('UTC'),
    event_hour DateTime('UTC'),
    open AggregateFunction(argMin, Decimal(38, 12), Tuple(DateTime64(6, 'UTC'), UInt64)),
    high SimpleAggregateFunction(max, Decimal(38, 12)),
    low SimpleAggregateFunction(min, Decimal(38, 12)),
    close AggregateFunction(argMax, Decimal(38, 12), Tuple(DateTime64(6, 'UTC'), UInt64)),
    volume SimpleAggregateFunction(sum, Decimal(38, 12)),
    quote_volume SimpleAggregateFunction(sum, Decimal(38, 24)),
    trade_count SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(window_start)
ORDER BY (exchange, symbol, window_start, event_hour)
