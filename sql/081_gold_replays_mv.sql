-- Marks the hours of a live silver block when it holds a trade silver already held (sql/080). The block's own
-- silver part is visible here (ClickHouse commits it before the views of silver_trades run), so silver's rows of
-- the block's trades are the block's own rows exactly when there are as many as the block's distinct trades and
-- they come from the block's raw rows (a sum of their hashes): more rows mean another copy, or one twice in the
-- block; other raw rows mean a merge already collapsed the copies and kept another's. Two inserts of one trade at
-- once: each commits before it looks, so the later to look sees both. Counting, not grouping by trade, keeps the
-- lookup cheap; the price is that a replay marks every (exchange, symbol, hour) of its block, which is safe.
-- The lookup reads silver by its sorting key for this block's trades only; a seal's replay (log_comment
-- 'k2:seal') is not a live replay and looks up nothing.
CREATE MATERIALIZED VIEW IF NOT EXISTS k2.gold_replays_mv TO k2.gold_replays AS
WITH
    cityHash64(source_format, source_name, source_partition, source_position, source_element, received_at) AS raw_row,
    NOT startsWith(getSetting('log_comment'), 'k2:seal') AS live
SELECT DISTINCT exchange, symbol, toStartOfHour(exchange_ts) AS event_hour, now64(6, 'UTC') AS marked_at
FROM k2.silver_intake
WHERE live
  AND (SELECT (count(), sum(raw_row)) FROM k2.silver_trades
       WHERE (exchange, symbol, exchange_ts, trade_id) IN (
           SELECT exchange, symbol, exchange_ts, trade_id FROM k2.silver_intake WHERE live))
      != (SELECT (uniqExact(cityHash64(exchange, symbol, exchange_ts, trade_id)), sum(raw_row)) FROM k2.silver_intake WHERE live)
