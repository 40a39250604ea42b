-- Every parsed trade goes to validation with its payload, live and in a bronze seal alike: bronze, silver and
-- the validation DLQ all take their rows from validation's output (sql/057, 061, 062). A silver seal feeds
-- bronze_intake itself, from bronze.
CREATE MATERIALIZED VIEW IF NOT EXISTS k2.bronze_intake_mv TO k2.bronze_intake AS
SELECT * FROM k2.trades_parsed
WHERE kind = 'trade'
