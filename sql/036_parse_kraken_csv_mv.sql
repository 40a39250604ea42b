-- Kraken downloadable trade history: timestamp (s), price, volume. No id, no side. The id is a hash of
-- the pair, the line and source_element (the ingest's count of identical earlier lines in the file),
-- so a replay yields the same id and two identical trades in one second stay two. File order is
-- trade order, so the line number breaks ties between trades of the same second.
CREATE MATERIALIZED VIEW IF NOT EXISTS k2.parse_kraken_csv_mv TO k2.trades_parsed AS
WITH
    splitByChar(',', payload) AS fields,
    multiIf(
        match(fields[1], '^[A-Za-z_ ]+$'), 'skip',
        length(fields) < 3, 'missing_field',
        length(fields) > 3, 'unparseable',
        toDecimal128OrNull(fields[1], 6) IS NULL OR toFloat64OrNull(fields[2]) IS NULL OR toFloat64OrNull(fields[3]) IS NULL, 'wrong_type',
        'trade') AS verdict
SELECT
    exchange, source_format, source_name, source_partition, source_position, source_element, payload,
    received_at, event_hour,
    multiIf(verdict = 'trade', 'trade', verdict = 'skip', 'skip', 'invalid') AS kind,
    if(kind = 'invalid', verdict, '') AS reason,
    if(kind = 'skip', 'header', 'trade') AS message_type,
    source_symbol AS exchange_symbol,
    lower(hex(cityHash64(source_symbol, payload, source_element))) AS trade_id,
    source_position AS trade_seq,
    fields[2] AS price_text,
    fields[3] AS quantity_text,
    'unknown' AS side,
    message_ts AS exchange_ts,
    toUInt32(1) AS underlying_trades
-- Filter first: the expressions above would otherwise run on every other format's rows too.
FROM (SELECT * FROM k2.trades_raw_intake WHERE source_format = 'kraken-csv')
