-- Everything that derives silver starts here: live trades straight from the parsers, or a seal
-- replaying a bronze hour. It carries the verbatim payload for the validation DLQ, which bronze does not
-- store: live rows bring it from the parser, a seal replays '' and attaches it from trades_raw afterwards.
CREATE TABLE IF NOT EXISTS k2.bronze_intake
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
    event_hour DateTime('UTC'),
    source_format LowCardinality(String),
    source_name String,
    source_partition UInt32,
    source_position UInt64,
    source_element UInt32,
    payload String,
    received_at DateTime64(6, 'UTC')
)
ENGINE = Null
