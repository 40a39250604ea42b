-- The nightly audit's findings, one row per (table, hour, audit run): what the UI shows, a query can read.
CREATE TABLE IF NOT EXISTS k2.audit_results
(
    audited_at DateTime64(6, 'UTC'),
    run_id String,
    cold_table LowCardinality(String),
    hour DateTime('UTC'),
    warm_rows UInt64,
    cold_rows UInt64,
    warm_checksum UInt64,
    cold_checksum UInt64,
    matches Bool
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (cold_table, hour, audited_at)
