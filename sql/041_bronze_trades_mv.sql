CREATE MATERIALIZED VIEW IF NOT EXISTS k2.bronze_trades_mv TO k2.bronze_trades AS
SELECT exchange, exchange_symbol, trade_id, trade_seq, price_text, quantity_text, side, exchange_ts,
       underlying_trades, message_type, event_hour, source_format, source_name, source_partition, source_position,
       source_element, received_at
FROM k2.trades_parsed
WHERE kind = 'trade'
