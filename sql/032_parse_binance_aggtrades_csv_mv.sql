-- Binance public-data aggTrades dump: agg_trade_id, price, quantity, first_trade_id, last_trade_id,
-- transact_time, is_buyer_maker, is_best_match. No symbol inside: it comes from the file name.
-- A header line (newer dumps have one) is skipped, not rejected.
CREATE MATERIALIZED VIEW IF NOT EXISTS k2.parse_binance_aggtrades_csv_mv TO k2.trades_parsed AS
WITH
    splitByChar(',', payload) AS fields,
    lower(fields[7]) AS buyer_maker,
    multiIf(
        match(fields[1], '^[A-Za-z_ ]+$'), 'skip',
        length(fields) < 8, 'missing_field',
        length(fields) > 8, 'unparseable',
        toUInt64OrNull(fields[1]) IS NULL OR toFloat64OrNull(fields[2]) IS NULL OR toFloat64OrNull(fields[3]) IS NULL
            OR toUInt64OrNull(fields[4]) IS NULL OR toUInt64OrNull(fields[5]) IS NULL OR toInt64OrNull(fields[6]) IS NULL
            OR buyer_maker NOT IN ('true', 'false') OR toUInt64OrZero(fields[5]) < toUInt64OrZero(fields[4]), 'wrong_type',
        'trade') AS verdict
SELECT
    exchange, source_format, source_name, source_partition, source_position, source_element, payload,
    received_at, event_hour,
    multiIf(verdict = 'trade', 'trade', verdict = 'skip', 'skip', 'invalid') AS kind,
    if(kind = 'invalid', verdict, '') AS reason,
    if(kind = 'skip', 'header', 'aggTrade') AS message_type,
    source_symbol AS exchange_symbol,
    fields[1] AS trade_id,
    toUInt64OrZero(fields[1]) AS trade_seq,
    fields[2] AS price_text,
    fields[3] AS quantity_text,
    if(buyer_maker = 'true', 'sell', 'buy') AS side,
    message_ts AS exchange_ts,
    toUInt32(toUInt64OrZero(fields[5]) - toUInt64OrZero(fields[4]) + 1) AS underlying_trades
-- Filter first: the expressions above would otherwise run on every other format's rows too.
FROM (SELECT * FROM k2.trades_raw_intake WHERE source_format = 'binance-aggtrades-csv')
