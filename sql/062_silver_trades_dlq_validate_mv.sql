-- As silver (sql/061): a bronze seal's verdicts stay in bronze.
CREATE MATERIALIZED VIEW IF NOT EXISTS k2.silver_trades_dlq_validate_mv TO k2.silver_trades_dlq AS
SELECT exchange, 'validate' AS stage, reason, exchange_symbol, trade_id, source_format, source_name,
       source_partition, source_position, source_element, payload, received_at, event_hour
FROM k2.bronze_validated
WHERE reason != '' AND getSetting('log_comment') != 'k2:seal:bronze'
