-- Kraken websocket v1: [channelID, [[price, volume, time, side, ordertype, misc], ...], "trade", "PAIR"].
-- Each raw row is one trade of the message (source_element). Kraken sends no trade id, so the id is a
-- hash of the pair, the trade's own text and its index in the message: a replay yields the same id,
-- two identical trades in one message stay two. Events and other channels are skipped.
CREATE MATERIALIZED VIEW IF NOT EXISTS k2.parse_kraken_ws_mv TO k2.trades_parsed AS
WITH
    toInt64(source_element) + 1 AS element_index,
    JSONExtractRaw(payload, 2, element_index) AS trade,
    JSONExtractString(payload, 4) AS pair,
    JSONExtractString(trade, 1) AS price,
    JSONExtractString(trade, 2) AS quantity,
    JSONExtractString(trade, 4) AS side_code,
    isValidJSON(payload) AND JSONType(payload) = 'Array' AS is_array,
    multiIf(
        NOT isValidJSON(payload), 'unparseable',
        NOT is_array, 'skip',
        JSONExtractString(payload, 3) != 'trade' AND JSONExtractString(payload, -2) != 'trade', 'skip',
        JSONLength(payload) < 4 OR trade = '' OR JSONLength(trade) < 6, 'missing_field',
        JSONType(payload, 4) != 'String' OR JSONType(trade, 1) != 'String' OR JSONType(trade, 2) != 'String'
            OR JSONType(trade, 3) != 'String' OR toFloat64OrNull(price) IS NULL OR toFloat64OrNull(quantity) IS NULL
            OR toDecimal128OrNull(JSONExtractString(trade, 3), 6) IS NULL OR side_code NOT IN ('b', 's'), 'wrong_type',
        'trade') AS verdict
SELECT
    exchange, source_format, source_name, source_partition, source_position, source_element, payload,
    received_at, event_hour,
    multiIf(verdict = 'trade', 'trade', verdict = 'skip', 'skip', 'invalid') AS kind,
    if(kind = 'invalid', verdict, '') AS reason,
    multiIf(NOT is_array, if(JSONExtractString(payload, 'event') = '', 'unknown', JSONExtractString(payload, 'event')),
            JSONExtractString(payload, -2) = '', 'unknown', JSONExtractString(payload, -2)) AS message_type,
    pair AS exchange_symbol,
    lower(hex(cityHash64(pair, trade, source_element))) AS trade_id,
    source_position * 1000 + source_element AS trade_seq,
    price AS price_text,
    quantity AS quantity_text,
    if(side_code = 'b', 'buy', 'sell') AS side,
    message_ts AS exchange_ts,
    toUInt32(1) AS underlying_trades
-- Filter first: the expressions above would otherwise run on every other format's rows too.
FROM (SELECT * FROM k2.trades_raw_intake WHERE source_format = 'kraken-ws')
