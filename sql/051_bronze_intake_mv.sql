-- Live trades go to validation beside bronze, with their payload; a seal feeds bronze_intake itself.
CREATE MATERIALIZED VIEW IF NOT EXISTS k2.bronze_intake_mv TO k2.bronze_intake AS
SELECT exchange, exchange_symbol, trade_id, trade_seq, price_text, quantity_text, side, exchange_ts,
       underlying_trades, event_hour, source_format, source_name, source_partition, source_position,
       source_element, payload, received_at
FROM k2.trades_parsed
WHERE kind = 'trade' AND getSetting('log_comment') != 'k2:seal'
