-- A seal re-derives one layer at a time: its queries carry a log_comment starting 'k2:seal' ('k2:seal:bronze',
-- 'k2:seal:silver', 'k2:seal' for gold and landing reloads), and the copy into the next layer's intake stops
-- there, so a sealed bronze hour does not also re-feed silver and gold.
CREATE MATERIALIZED VIEW IF NOT EXISTS k2.trades_raw_intake_mv TO k2.trades_raw_intake AS
SELECT exchange, source_format, source_name, source_partition, source_position, source_element,
       source_symbol, payload, received_at, message_ts, event_hour
FROM k2.trades_raw
WHERE NOT startsWith(getSetting('log_comment'), 'k2:seal')
