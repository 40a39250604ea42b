-- Every message that cannot become a valid trade, verbatim, with why (reason) and where it failed
-- (stage: 'parse' for structure, 'validate' for values). Rows here are never retried silently.
CREATE TABLE IF NOT EXISTS k2.silver_trades_dlq
(
    exchange LowCardinality(String),
    stage LowCardinality(String),
    reason LowCardinality(String),
    exchange_symbol String,
    trade_id String,
    source_format LowCardinality(String),
    source_name String,
    source_partition UInt32,
    source_position UInt64,
    source_element UInt32,
    payload String,
    received_at DateTime64(6, 'UTC'),
    event_hour DateTime('UTC')
)
ENGINE = MergeTree
PARTITION BY toYYYYMMDD(event_hour)
ORDER BY (event_hour, exchange, reason, source_name, source_position, source_element)
TTL toDateTime(received_at) + INTERVAL 30 DAY
-- enable_block_number_column: rows keep the number of the insert that wrote them, so a seal deletes only the
-- rows stored before its replay (warm/seal.py).
SETTINGS ttl_only_drop_parts = 1, enable_block_number_column = 1
