-- Exchange-native symbol -> canonical BASE/QUOTE. Loaded from k2_lakehouse/reference/symbols.csv;
-- a symbol missing here sends its trades to the DLQ as unknown_symbol instead of guessing.
CREATE TABLE IF NOT EXISTS k2.symbol_registry
(
    exchange LowCardinality(String),
    exchange_symbol String,
    symbol LowCardinality(String)
)
ENGINE = MergeTree
ORDER BY (exchange, exchange_symbol)
