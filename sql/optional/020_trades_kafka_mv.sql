-- Kafka records -> trades_raw, verbatim, with topic, partition and offset as lineage. A Kraken websocket
-- message carrying several trades becomes one raw row per trade (source_element), as the file reader does.
CREATE MATERIALIZED VIEW IF NOT EXISTS k2.trades_kafka_mv TO k2.trades_raw AS
SELECT
    -- The exchange is the format's first word, but for Binance USD-M futures, a market of its own.
    if(startsWith(_topic, 'binance-futures-'), 'binance-futures', splitByChar('-', _topic)[1]) AS exchange,
    splitByChar('.', _topic)[1] AS source_format,
    _topic AS source_name,
    toUInt32(_partition) AS source_partition,
    _offset AS source_position,
    toUInt32(element) AS source_element,
    '' AS source_symbol,
    payload,
    now64(6, 'UTC') AS received_at
FROM k2.trades_kafka
ARRAY JOIN range(if(startsWith(_topic, 'kraken-ws') AND JSONType(payload) = 'Array',
                    greatest(JSONLength(payload, 2), 1), 1)) AS element
WHERE length(_error) = 0
