-- A bronze seal validates too (bronze keeps the verdict, sql/057) under log_comment 'k2:seal:bronze': silver is
-- derived by its own seal, so that one writes nothing here.
CREATE MATERIALIZED VIEW IF NOT EXISTS k2.silver_trades_mv TO k2.silver_trades AS
SELECT exchange, symbol, exchange_symbol, trade_id, trade_seq, price, quantity, side, exchange_ts,
       underlying_trades, source_format, source_name, source_partition, source_position, source_element,
       received_at
FROM k2.bronze_validated
WHERE reason = '' AND getSetting('log_comment') != 'k2:seal:bronze'
