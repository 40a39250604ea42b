-- Optional production source, not applied by default (no broker runs on the embedded profile, so this is
-- not exercised by `make test`). Redpanda/Kafka topics carry exchange-native messages, one per record;
-- the topic name says the format, e.g. binance-ws.trades, binance-futures-ws.trades, kraken-ws.trades.
-- Apply with `k2 sql "$(cat sql/optional/010_trades_kafka.sql)"` after replacing the broker list and group.
CREATE TABLE IF NOT EXISTS k2.trades_kafka
(
    payload String
)
ENGINE = Kafka
SETTINGS kafka_broker_list = 'redpanda:9092',
         kafka_topic_list = 'binance-ws.trades,binance-futures-ws.trades,kraken-ws.trades',
         kafka_group_name = 'k2-trades-raw',
         kafka_format = 'RawBLOB',
         kafka_num_consumers = 2,
         kafka_handle_error_mode = 'stream'
