-- Binance websocket trade and aggTrade events, raw or wrapped in a combined stream {"stream","data"}: spot
-- (binance-ws) and USD-M futures (binance-futures-ws) alike; the exchange column keeps the two markets apart.
-- m = true means the buyer was the maker, so the taker sold. An aggTrade stands for l - f + 1 trades.
-- A trade's id ("t") and an aggTrade's ("a") are two numberings of the same market activity, yet both become
-- trade_id: a trade and an aggTrade of one symbol would merge on equal ids, and candles would count the rest twice.
-- Keeping both apart (say, by prefixing one) would still count the activity twice, and a message does not say
-- which stream it came from, so the ingest refuses a file that carries both for one symbol, whole, naming the
-- file, the symbol and the first line of each (ingest/reader.py). Two files (one per stream, or Binance's trades
-- and aggTrades dumps of one symbol) and the Kafka source, which no ingest reads as a whole, are caught per hour
-- by the blocking check one_trade_stream_per_symbol over bronze's message_type (sql/040).
-- Speed: one typed JSONExtract per row. That extraction converts leniently (a number to a string, "7" or
-- 7.5 to the id 7, 1 to true), so a row passes the fast path only if each field appears in the payload
-- as its JSON type: the symbol, price and quantity as strings, the ids and T as the integers read, m as true/false.
-- Without its own test a symbol sent as 12345 or true passed as the text "12345" or "true" and failed validation
-- as unknown_symbol, where any other field of the wrong JSON type is wrong_type (that test: ~0.02 CPU-s per million).
-- Binance writes p,q and T,m (and f,l) side by side, so one substring test covers each pair; measured,
-- that costs a fraction of asking JSONType per field. Any other row takes the strict checks below, which
-- say exactly what is wrong; a negative or fractional id must not pass, or it would merge with another.
CREATE MATERIALIZED VIEW IF NOT EXISTS k2.parse_binance_ws_mv TO k2.trades_parsed AS
WITH
    'Tuple(e String, s Nullable(String), a Nullable(UInt64), t Nullable(UInt64), p Nullable(String), q Nullable(String), f Nullable(UInt64), l Nullable(UInt64), T Nullable(Int64), m Nullable(Bool))' AS event_spec,
    -- Binance writes "stream" first and a bare event starts with "e": two prefix tests settle almost every
    -- row without parsing. Any other layout (keys reordered, whitespace) is asked whether it has both keys.
    -- sql/020 reads the trade time with the same rule.
    -- The JSON check reads '' for those two layouts: in this view ClickHouse evaluates it on every row
    -- (measured: 0.4 CPU-s per million rows on the payload itself).
    startsWith(payload, '{"stream"') AS stream_first,
    stream_first OR (JSONHas((if(stream_first OR startsWith(payload, '{"e"'), '', payload) AS other_layout), 'stream')
                     AND JSONHas(other_layout, 'data')) AS wrapped,
    if(wrapped, JSONExtract(payload, concat('Tuple(data ', event_spec, ')')).data, JSONExtract(payload, event_spec)) AS ev,
    ev.e = 'aggTrade' AS is_agg,
    if(is_agg, ev.a, ev.t) AS id,
    if(wrapped, JSONExtractRaw(payload, 'data'), payload) AS event,
    if(is_agg, 'a', 't') AS id_key,
    ev.e IN ('trade', 'aggTrade') AND ev.s IS NOT NULL AND id IS NOT NULL AND ev.T IS NOT NULL AND ev.m IS NOT NULL
        AND (NOT is_agg OR (ev.f IS NOT NULL AND ev.l IS NOT NULL AND ev.l >= ev.f))
        AND toFloat64OrNull(ev.p) IS NOT NULL AND toFloat64OrNull(ev.q) IS NOT NULL
        AND position(payload, concat('"s":"', ev.s, '"')) > 0
        AND position(payload, concat('"p":"', ev.p, '","q":"', ev.q, '"')) > 0
        AND position(payload, concat('"', id_key, '":', toString(id), ',')) > 0
        AND position(payload, concat('"T":', toString(ev.T), ',"m":', if(ev.m, 'true', 'false'))) > 0
        AND (NOT is_agg OR position(payload, concat('"f":', toString(ev.f), ',"l":', toString(ev.l), ',')) > 0)
        AS fast_path_ok,
    multiIf(
        fast_path_ok, 'trade',
        NOT isValidJSON(payload), 'unparseable',
        ev.e NOT IN ('trade', 'aggTrade'), 'skip',
        NOT (JSONHas(event, 's') AND JSONHas(event, id_key) AND JSONHas(event, 'p') AND JSONHas(event, 'q')
             AND JSONHas(event, 'T') AND JSONHas(event, 'm')
             AND (NOT is_agg OR (JSONHas(event, 'f') AND JSONHas(event, 'l')))), 'missing_field',
        JSONType(event, 's') != 'String' OR JSONType(event, 'p') != 'String' OR JSONType(event, 'q') != 'String'
            OR toFloat64OrNull(JSONExtractString(event, 'p')) IS NULL OR toFloat64OrNull(JSONExtractString(event, 'q')) IS NULL
            OR JSONType(event, id_key) NOT IN ('Int64', 'UInt64') OR JSONExtractInt(event, id_key) < 0
            OR JSONType(event, 'T') NOT IN ('Int64', 'UInt64')
            OR JSONType(event, 'm') != 'Bool'
            OR (is_agg AND (JSONType(event, 'f') NOT IN ('Int64', 'UInt64') OR JSONType(event, 'l') NOT IN ('Int64', 'UInt64')
                            OR JSONExtractInt(event, 'f') < 0 OR JSONExtractUInt(event, 'l') < JSONExtractUInt(event, 'f'))), 'wrong_type',
        'trade') AS verdict
SELECT
    exchange, source_format, source_name, source_partition, source_position, source_element, payload,
    received_at, event_hour,
    multiIf(verdict = 'trade', 'trade', verdict = 'skip', 'skip', 'invalid') AS kind,
    if(kind = 'invalid', verdict, '') AS reason,
    if(ev.e = '', 'unknown', ev.e) AS message_type,
    ifNull(ev.s, '') AS exchange_symbol,
    toString(ifNull(id, 0)) AS trade_id,
    ifNull(id, 0) AS trade_seq,
    ifNull(ev.p, '') AS price_text,
    ifNull(ev.q, '') AS quantity_text,
    if(ifNull(ev.m, false), 'sell', 'buy') AS side,
    message_ts AS exchange_ts,
    toUInt32(if(is_agg, ifNull(ev.l, 0) - ifNull(ev.f, 0) + 1, 1)) AS underlying_trades
-- Filter first: the expressions above would otherwise run on every other format's rows too.
FROM (SELECT * FROM k2.trades_raw_intake WHERE source_format IN ('binance-ws', 'binance-futures-ws'))
