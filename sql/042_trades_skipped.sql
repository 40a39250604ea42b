-- Non-trade messages (heartbeats, subscription events, depth, klines, CSV headers): not errors, but
-- counted, so every raw row of an hour is accounted for.
CREATE TABLE IF NOT EXISTS k2.trades_skipped
(
    exchange LowCardinality(String),
    source_format LowCardinality(String),
    source_name String,
    source_partition UInt32,
    source_position UInt64,
    source_element UInt32,
    message_type LowCardinality(String),
    received_at DateTime64(6, 'UTC'),
    event_hour DateTime('UTC')
)
ENGINE = MergeTree
PARTITION BY toYYYYMMDD(event_hour)
ORDER BY (event_hour, exchange, source_name, source_position, source_element)
TTL toDateTime(received_at) + INTERVAL 30 DAY
-- enable_block_number_column: rows keep the number of the insert that wrote them, so a seal deletes only the
-- rows stored before its replay (warm/seal.py).
SETTINGS ttl_only_drop_parts = 1, enable_block_number_column = 1
