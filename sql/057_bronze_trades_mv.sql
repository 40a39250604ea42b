-- Bronze takes its rows after validation, with the verdict, so that its ReplacingMergeTree can prefer a valid
-- copy (sql/040). A silver seal re-validates bronze itself (log_comment 'k2:seal:silver'): it writes nothing here.
CREATE MATERIALIZED VIEW IF NOT EXISTS k2.bronze_trades_mv TO k2.bronze_trades AS
SELECT exchange, exchange_symbol, trade_id, trade_seq, price_text, quantity_text, side, exchange_ts,
       underlying_trades, message_type, reason AS reject_reason, event_hour, source_format, source_name,
       source_partition, source_position, source_element, received_at
FROM k2.bronze_validated
WHERE getSetting('log_comment') != 'k2:seal:silver'
