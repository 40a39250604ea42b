-- Everything that derives bronze starts here. Live inserts into trades_raw are copied in by
-- trades_raw_intake_mv; a seal replays a raw hour into it directly. Null: it stores nothing.
CREATE TABLE IF NOT EXISTS k2.trades_raw_intake
(
    exchange LowCardinality(String),
    source_format LowCardinality(String),
    source_name String,
    source_partition UInt32,
    source_position UInt64,
    source_element UInt32,
    source_symbol LowCardinality(String),
    payload String,
    received_at DateTime64(6, 'UTC'),
    message_ts DateTime64(6, 'UTC'),
    event_hour DateTime('UTC')
)
ENGINE = Null
