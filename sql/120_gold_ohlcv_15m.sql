-- 15m candles: the same aggregate-state layout as gold_ohlcv_1m (see 100_gold_ohlcv_1m.sql), one partial
-- row per (window, source hour).
CREATE TABLE IF NOT EXISTS k2.gold_ohlcv_15m AS k2.gold_ohlcv_1m
