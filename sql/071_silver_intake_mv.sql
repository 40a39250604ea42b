-- Live silver rows feed gold; no seal does (a silver seal's rows are re-derived into gold by the gold seal).
CREATE MATERIALIZED VIEW IF NOT EXISTS k2.silver_intake_mv TO k2.silver_intake AS
SELECT * FROM k2.silver_trades
WHERE NOT startsWith(getSetting('log_comment'), 'k2:seal')
