-- One row per exchange trade, parsed and typed; prices and quantities keep the exchange's digits as
-- text until silver. Replays collapse on (event_hour, exchange, exchange_symbol, trade_id): Binance and
-- Kraken number trades per symbol, so the id alone is not unique. FINAL or a seal makes it exact.
-- Rows arrive from validation (sql/056), so each copy carries silver's verdict on it (reject_reason), and the
-- copy kept is the one silver keeps: a valid copy over an invalid one, then the first received.
-- The verbatim message stays in trades_raw only (the lineage columns find it): a second copy here cost
-- ~1 CPU-s per million trades in inserts and merges, and only a validation reject needs it again.
CREATE TABLE IF NOT EXISTS k2.bronze_trades
(
    exchange LowCardinality(String),
    exchange_symbol String,
    trade_id String,
    trade_seq UInt64,
    price_text String,
    quantity_text String,
    side LowCardinality(String),
    exchange_ts DateTime64(6, 'UTC'),
    underlying_trades UInt32,
    -- The message that carried the trade. Binance numbers its @trade and @aggTrade streams apart, both become
    -- trade_id, and an aggTrade repeats the trades it aggregates: the check one_trade_stream_per_symbol fails
    -- an hour where one symbol has both, whichever files or topics they came from.
    message_type LowCardinality(String),
    -- Silver's verdict on this copy: '' for a valid trade, else the DLQ reason.
    reject_reason LowCardinality(String),
    event_hour DateTime('UTC'),
    source_format LowCardinality(String),
    source_name String,
    source_partition UInt32,
    source_position UInt64,
    source_element UInt32,
    received_at DateTime64(6, 'UTC'),
    -- Which copy ReplacingMergeTree keeps when two rows share the sorting key (the same trade ingested from two
    -- files): the highest, i.e. a valid copy before an invalid one (bit 127), then the copy received first
    -- (bits 64-126: 2^63 - 1 less the arrival in microseconds), then the raw row with the smaller hash. Without
    -- it the last insert wins, and which one that is depends on the order the parallel seal shards finish, so a
    -- re-seal could change the table. For a valid copy this is exactly silver_trades' keep_priority (060), so
    -- both keep the same copy; it is also the value stores created before reject_reason hold.
    keep_priority UInt128 MATERIALIZED bitShiftLeft(toUInt128(reject_reason = ''), 127)
        + bitShiftLeft(toUInt128(toUInt64(9223372036854775807 - toUnixTimestamp64Micro(received_at))), 64)
        + bitNot(cityHash64(source_format, source_name, source_partition, source_position, source_element))
)
ENGINE = ReplacingMergeTree(keep_priority)
PARTITION BY toYYYYMMDD(event_hour)
ORDER BY (event_hour, exchange, exchange_symbol, trade_id)
TTL toDateTime(received_at) + INTERVAL 30 DAY
-- enable_block_number_column: rows keep the number of the insert that wrote them, so a seal deletes only the
-- rows stored before its replay (warm/seal.py).
SETTINGS ttl_only_drop_parts = 1, enable_block_number_column = 1
