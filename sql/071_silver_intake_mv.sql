CREATE MATERIALIZED VIEW IF NOT EXISTS k2.silver_intake_mv TO k2.silver_intake AS
SELECT * FROM k2.silver_trades
WHERE getSetting('log_comment') != 'k2:seal'
