CREATE MATERIALIZED VIEW IF NOT EXISTS k2.trades_skipped_mv TO k2.trades_skipped AS
SELECT exchange, source_format, source_name, source_partition, source_position, source_element,
       message_type, received_at, event_hour
FROM k2.trades_parsed
WHERE kind = 'skip'
