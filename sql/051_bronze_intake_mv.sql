CREATE MATERIALIZED VIEW IF NOT EXISTS k2.bronze_intake_mv TO k2.bronze_intake AS
SELECT * FROM k2.bronze_trades
WHERE getSetting('log_comment') != 'k2:seal'
