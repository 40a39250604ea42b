-- Every message exactly as received, with where it came from. One row per trade candidate: a
-- multi-trade message (Kraken websocket) is stored once per trade it carries, with source_element
-- saying which one, so that each row has one hour and one fate downstream.
-- message_ts is read from the payload here, once, because the hour partition depends on it;
-- a message whose time cannot be read or is out of range is filed under the hour it arrived.
-- Binance spot (binance-ws) and USD-M futures (binance-futures-ws) websocket events share one layout.
-- Binance's dumps switched from milliseconds to microseconds in 2025: 1e14 ms would be year 5138.
-- A Binance combined-stream message is {"stream","data"} in any key order or spacing; the prefix tests settle
-- Binance's own layout without parsing, and only other layouts are asked (sql/031 uses the same rule); the
-- JSON check reads '' for Binance's layouts, as it is evaluated on every row.
-- Kraken's seconds are clamped to what Int64 microseconds hold before they are converted: toInt64 throws on
-- overflow, which would abort the whole insert batch over one bad row (a time in microseconds, 1e30). A
-- clamped time is far in the future or past, so the row is filed under its arrival hour and validation
-- DLQs it (timestamp_in_future / timestamp_too_old), as Binance's out-of-range times are.
-- Each branch reads the payload only for its own format: a column default is evaluated for every branch
-- of multiIf on every row, and the other formats' extractors on an empty string cost next to nothing
-- (measured: an insert into this table fell from 1.9 to 1.3 CPU-s per million rows).
CREATE TABLE IF NOT EXISTS k2.trades_raw
(
    exchange LowCardinality(String),
    source_format LowCardinality(String),
    source_name String,
    source_partition UInt32 DEFAULT 0,
    source_position UInt64,
    source_element UInt32 DEFAULT 0,
    source_symbol LowCardinality(String) DEFAULT '',
    payload String,
    received_at DateTime64(6, 'UTC'),
    message_ts DateTime64(6, 'UTC') MATERIALIZED multiIf(
        startsWith(source_format, 'binance'),
            fromUnixTimestamp64Micro(
                if((multiIf(
                        (source_format IN ('binance-ws', 'binance-futures-ws') AS is_binance_ws),
                            if(startsWith((if(is_binance_ws, payload, '') AS binance_ws), '{"stream"')
                                   OR (JSONHas((if(startsWith(binance_ws, '{"stream"') OR startsWith(binance_ws, '{"e"'), '', binance_ws)
                                                AS binance_ws_other), 'stream') AND JSONHas(binance_ws_other, 'data')),
                               JSONExtractInt(binance_ws, 'data', 'T'), JSONExtractInt(binance_ws, 'T')),
                        source_format = 'binance-aggtrades-csv', toInt64OrZero(splitByChar(',', if(source_format = 'binance-aggtrades-csv', payload, ''))[6]),
                        toInt64OrZero(splitByChar(',', if(source_format = 'binance-trades-csv', payload, ''))[5])) AS binance_time) > 100000000000000,
                   binance_time, binance_time * 1000),
                'UTC'),
        startsWith(source_format, 'kraken'),
            fromUnixTimestamp64Micro(toInt64(least(greatest(toDecimal128OrZero(multiIf(
                    source_format = 'kraken-rest', JSONExtractRaw(if(source_format = 'kraken-rest', payload, ''), 3),
                    source_format = 'kraken-ws',
                        JSONExtractString(if(source_format = 'kraken-ws', payload, ''), 2, toInt64(source_element) + 1, 3),
                    splitByChar(',', if(source_format = 'kraken-csv', payload, ''))[1]), 6),
                toDecimal128(-9223372036854, 6)), toDecimal128(9223372036854, 6)) * 1000000), 'UTC'),
        toDateTime64(0, 6, 'UTC')
    ),
    event_hour DateTime('UTC') MATERIALIZED toStartOfHour(
        if(message_ts >= toDateTime64('2009-01-01 00:00:00', 6, 'UTC') AND message_ts <= received_at + INTERVAL 5 MINUTE,
           message_ts, received_at)
    ),
    -- When the row was inserted (its insert's start): the staleness sensor follows arrivals by it. received_at
    -- cannot serve: an ingest stamps one received_at on every batch of a file, however long the file takes.
    inserted_at DateTime64(6, 'UTC') MATERIALIZED now64(6, 'UTC'),
    -- Parts are written in arrival order, so recent arrivals are found without reading older granules.
    INDEX inserted_at_minmax inserted_at TYPE minmax GRANULARITY 1
)
ENGINE = MergeTree
PARTITION BY toYYYYMMDD(event_hour)
ORDER BY (event_hour, exchange, source_name, source_position, source_element)
TTL toDateTime(received_at) + INTERVAL 30 DAY
SETTINGS ttl_only_drop_parts = 1
