-- Staging for landing-file reloads (warm/trades_raw with K2_LANDING_DIR): a file is read here first, with
-- no views attached, then only the hours being materialized move into trades_raw.
CREATE TABLE IF NOT EXISTS k2.trades_raw_landing AS k2.trades_raw
ENGINE = MergeTree
ORDER BY (event_hour, source_name, source_position, source_element)
