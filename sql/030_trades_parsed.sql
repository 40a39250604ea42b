-- The verdict of the format parsers on each raw row: kind 'trade' (goes to bronze), 'skip' (a
-- non-trade message: counted in trades_skipped) or 'invalid' (goes to the DLQ with its reason).
-- Prices and quantities stay the exchange's own text here; silver turns them into exact decimals.
CREATE TABLE IF NOT EXISTS k2.trades_parsed
(
    exchange LowCardinality(String),
    source_format LowCardinality(String),
    source_name String,
    source_partition UInt32,
    source_position UInt64,
    source_element UInt32,
    payload String,
    received_at DateTime64(6, 'UTC'),
    event_hour DateTime('UTC'),
    kind LowCardinality(String),
    reason LowCardinality(String),
    message_type LowCardinality(String),
    exchange_symbol String,
    trade_id String,
    trade_seq UInt64,
    price_text String,
    quantity_text String,
    side LowCardinality(String),
    exchange_ts DateTime64(6, 'UTC'),
    underlying_trades UInt32
)
ENGINE = Null
