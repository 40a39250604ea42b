-- Binance websocket trade and aggTrade events, raw or wrapped in a combined stream {"stream","data"}.
-- m = true means the buyer was the maker, so the taker sold. An aggTrade stands for l - f + 1 trades.
CREATE MATERIALIZED VIEW IF NOT EXISTS k2.parse_binance_ws_mv TO k2.trades_parsed AS
WITH
    if(JSONHas(payload, 'data'), JSONExtractRaw(payload, 'data'), payload) AS event,
    JSONExtractString(event, 'e') AS event_type,
    event_type = 'aggTrade' AS is_agg,
    if(is_agg, 'a', 't') AS id_key,
    JSONExtractString(event, 'p') AS price,
    JSONExtractString(event, 'q') AS quantity,
    multiIf(
        NOT isValidJSON(payload), 'unparseable',
        event_type NOT IN ('trade', 'aggTrade'), 'skip',
        NOT (JSONHas(event, 's') AND JSONHas(event, id_key) AND JSONHas(event, 'p') AND JSONHas(event, 'q')
             AND JSONHas(event, 'T') AND JSONHas(event, 'm')
             AND (NOT is_agg OR (JSONHas(event, 'f') AND JSONHas(event, 'l')))), 'missing_field',
        JSONType(event, 's') != 'String' OR JSONType(event, 'p') != 'String' OR JSONType(event, 'q') != 'String'
            OR toFloat64OrNull(price) IS NULL OR toFloat64OrNull(quantity) IS NULL
            OR JSONType(event, id_key) NOT IN ('Int64', 'UInt64') OR JSONType(event, 'T') NOT IN ('Int64', 'UInt64')
            OR JSONType(event, 'm') != 'Bool'
            OR (is_agg AND (JSONType(event, 'f') NOT IN ('Int64', 'UInt64') OR JSONType(event, 'l') NOT IN ('Int64', 'UInt64')
                            OR JSONExtractUInt(event, 'l') < JSONExtractUInt(event, 'f'))), 'wrong_type',
        'trade') AS verdict
SELECT
    exchange, source_format, source_name, source_partition, source_position, source_element, payload,
    received_at, event_hour,
    multiIf(verdict = 'trade', 'trade', verdict = 'skip', 'skip', 'invalid') AS kind,
    if(kind = 'invalid', verdict, '') AS reason,
    if(event_type = '', 'unknown', event_type) AS message_type,
    JSONExtractString(event, 's') AS exchange_symbol,
    JSONExtractRaw(event, id_key) AS trade_id,
    JSONExtractUInt(event, id_key) AS trade_seq,
    price AS price_text,
    quantity AS quantity_text,
    if(JSONExtractBool(event, 'm'), 'sell', 'buy') AS side,
    message_ts AS exchange_ts,
    toUInt32(if(is_agg, JSONExtractUInt(event, 'l') - JSONExtractUInt(event, 'f') + 1, 1)) AS underlying_trades
FROM k2.trades_raw_intake
WHERE source_format = 'binance-ws'
