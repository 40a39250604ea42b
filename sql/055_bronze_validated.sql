-- Bronze rows with silver's verdict: reason '' means a valid trade.
CREATE TABLE IF NOT EXISTS k2.bronze_validated
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
    event_hour DateTime('UTC'),
    source_format LowCardinality(String),
    source_name String,
    source_partition UInt32,
    source_position UInt64,
    source_element UInt32,
    payload String,
    received_at DateTime64(6, 'UTC'),
    reason LowCardinality(String)
)
ENGINE = Null
