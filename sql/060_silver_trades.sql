-- Validated, normalised trades: canonical BASE/QUOTE symbol, exact decimals, the taker's side.
-- Retention counts from arrival (received_at), not trade time, so a historical load stays in warm
-- long enough to be sealed and offloaded; whole parts expire at once, so an hour leaves atomically.
CREATE TABLE IF NOT EXISTS k2.silver_trades
(
    exchange LowCardinality(String),
    symbol LowCardinality(String),
    exchange_symbol String,
    trade_id String,
    trade_seq UInt64,
    price Decimal(38, 12),
    quantity Decimal(38, 12),
    side LowCardinality(String),
    exchange_ts DateTime64(6, 'UTC'),
    underlying_trades UInt32,
    source_format LowCardinality(String),
    source_name String,
    source_partition UInt32,
    source_position UInt64,
    source_element UInt32,
    received_at DateTime64(6, 'UTC'),
    -- Which copy ReplacingMergeTree keeps when two rows share the sorting key (the same trade ingested from two
    -- files): the highest, i.e. the copy received first, then the raw row with the smaller hash. Without it the
    -- last insert wins, and which one that is depends on the order the parallel seal shards finish, so a
    -- re-seal could change the table. The same expression in bronze_trades (040) keeps the same copy there.
    keep_priority UInt128 MATERIALIZED bitShiftLeft(toUInt128(bitNot(toUInt64(toUnixTimestamp64Micro(received_at)))), 64)
        + bitNot(cityHash64(source_format, source_name, source_partition, source_position, source_element))
)
ENGINE = ReplacingMergeTree(keep_priority)
PARTITION BY toYYYYMMDD(exchange_ts)
ORDER BY (exchange, symbol, exchange_ts, trade_id)
TTL toDateTime(received_at) + INTERVAL 30 DAY
-- enable_block_number_column: rows keep the number of the insert that wrote them, so a seal deletes only the
-- rows stored before its replay (warm/seal.py).
SETTINGS ttl_only_drop_parts = 1, enable_block_number_column = 1
