-- Final 1m candles. vwap is cut (not rounded) to 12 decimals.
CREATE OR REPLACE VIEW k2.gold_ohlcv_1m_view AS
SELECT
    exchange,
    symbol,
    window_start,
    argMinMerge(g.open) AS open,
    max(g.high) AS high,
    min(g.low) AS low,
    argMaxMerge(g.close) AS close,
    sum(g.volume) AS volume,
    sum(g.quote_volume) AS quote_volume,
    sum(g.trade_count) AS trade_count,
    toDecimal128(divideDecimal(sum(g.quote_volume), sum(g.volume), 12), 12) AS vwap
FROM k2.gold_ohlcv_1m AS g
GROUP BY exchange, symbol, window_start
