-- The (exchange, symbol, hour)s whose live candles counted a trade twice: a trade already in silver arrived
-- again (an ingest killed and run again, an overlapping file, a broker's redelivery). Silver deduplicates it
-- (FINAL); the candle states cannot, as sums cannot tell a copy from a new trade. The gold views (sql/1*2)
-- recount these hours from silver FINAL instead of using their states, so live candles stay exact without a
-- seal. A gold seal rebuilds the hours exactly and clears their marks (warm/seal.py); it also marks the hours it
-- rebuilds while it runs, so that a reader meanwhile (or after a killed seal) gets them from silver.
-- A mark is only ever a reason to recount: one too many costs a read, never a wrong candle.
-- Marks expire with silver's retention (30 days from arrival, sql/060): a marked hour never sealed by then
-- falls back to its candle states rather than to a silver that no longer holds it.
CREATE TABLE IF NOT EXISTS k2.gold_replays
(
    exchange LowCardinality(String),
    symbol LowCardinality(String),
    event_hour DateTime('UTC'),
    marked_at DateTime64(6, 'UTC')
)
ENGINE = MergeTree
ORDER BY (exchange, symbol, event_hour)
TTL toDateTime(marked_at) + INTERVAL 30 DAY
