CREATE MATERIALIZED VIEW IF NOT EXISTS k2.silver_trades_dlq_parse_mv TO k2.silver_trades_dlq AS
SELECT exchange, 'parse' AS stage, reason, exchange_symbol, trade_id, source_format, source_name,
       source_partition, source_position, source_element, payload, received_at, event_hour
FROM k2.trades_parsed
WHERE kind = 'invalid'
