-- Parsed trades with silver's verdict: reason '' means a valid trade. Bronze (sql/057) keeps the exchange's text
-- and the verdict, silver (061) the decimals, the DLQ (062) the rejects.
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
    reason LowCardinality(String),
    price_text String,
    quantity_text String,
    message_type LowCardinality(String)
)
ENGINE = Null
