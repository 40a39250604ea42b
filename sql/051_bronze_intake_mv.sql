-- Live trades go to validation beside bronze, with their payload; a seal feeds bronze_intake itself.
CREATE MATERIALIZED VIEW IF NOT EXISTS k2.bronze_intake_mv TO k2.bronze_intake AS
SELECT * FROM k2.trades_parsed
WHERE kind = 'trade' AND getSetting('log_comment') != 'k2:seal'
