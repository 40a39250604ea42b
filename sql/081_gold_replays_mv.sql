-- Marks the hours of live silver rows whose trade silver already held (sql/080). The insert's own silver part
-- is visible here (ClickHouse commits it before the views of silver_trades run), so a key is a replay when
-- silver holds it twice, or once from another raw row (a merge collapsed the two copies and kept the earlier).
-- Two inserts of one trade at once: each commits before it looks, so the later to look sees both.
-- The lookup reads silver by its sorting key for this block's trades only; a seal's replay (log_comment
-- 'k2:seal') is not a live replay and looks up nothing.
CREATE MATERIALIZED VIEW IF NOT EXISTS k2.gold_replays_mv TO k2.gold_replays AS
WITH cityHash64(source_format, source_name, source_partition, source_position, source_element, received_at) AS raw_row
SELECT DISTINCT exchange, symbol, toStartOfHour(exchange_ts) AS event_hour, now64(6, 'UTC') AS marked_at
FROM k2.silver_intake
WHERE (exchange, symbol, exchange_ts, trade_id) IN (
    SELECT exchange, symbol, exchange_ts, trade_id
    FROM k2.silver_trades
    WHERE (exchange, symbol, exchange_ts, trade_id) IN (
        SELECT exchange, symbol, exchange_ts, trade_id FROM k2.silver_intake
        WHERE NOT startsWith(getSetting('log_comment'), 'k2:seal'))
    GROUP BY exchange, symbol, exchange_ts, trade_id
    HAVING count() > 1 OR any(raw_row) NOT IN (SELECT raw_row FROM k2.silver_intake))
