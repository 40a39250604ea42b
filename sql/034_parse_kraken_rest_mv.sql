-- One trade of a Kraken REST /0/public/Trades page: [price, volume, time, side, ordertype, misc, trade_id].
-- The ingest splits the page into one raw row per trade; the pair (the result key) is source_symbol.
CREATE MATERIALIZED VIEW IF NOT EXISTS k2.parse_kraken_rest_mv TO k2.trades_parsed AS
WITH
    JSONExtractString(payload, 1) AS price,
    JSONExtractString(payload, 2) AS quantity,
    JSONExtractString(payload, 4) AS side_code,
    multiIf(
        NOT isValidJSON(payload) OR JSONType(payload) != 'Array', 'unparseable',
        JSONLength(payload) < 7, 'missing_field',
        JSONType(payload, 1) != 'String' OR JSONType(payload, 2) != 'String'
            OR toFloat64OrNull(price) IS NULL OR toFloat64OrNull(quantity) IS NULL
            OR JSONType(payload, 3) NOT IN ('Double', 'Int64', 'UInt64')
            OR side_code NOT IN ('b', 's') OR JSONType(payload, 7) NOT IN ('Int64', 'UInt64'), 'wrong_type',
        'trade') AS verdict
SELECT
    exchange, source_format, source_name, source_partition, source_position, source_element, payload,
    received_at, event_hour,
    if(verdict = 'trade', 'trade', 'invalid') AS kind,
    if(kind = 'invalid', verdict, '') AS reason,
    'trade' AS message_type,
    source_symbol AS exchange_symbol,
    JSONExtractRaw(payload, 7) AS trade_id,
    JSONExtractUInt(payload, 7) AS trade_seq,
    price AS price_text,
    quantity AS quantity_text,
    if(side_code = 'b', 'buy', 'sell') AS side,
    message_ts AS exchange_ts,
    toUInt32(1) AS underlying_trades
-- Filter first: the expressions above would otherwise run on every other format's rows too.
FROM (SELECT * FROM k2.trades_raw_intake WHERE source_format = 'kraken-rest')
