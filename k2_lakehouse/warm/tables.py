"""The warm tables as the platform sees them: which hour a row belongs to, and what its checksum covers.

The cold tier compares itself against these same definitions, so one list serves both tiers.
"""

from __future__ import annotations

from dataclasses import dataclass

TIMEFRAMES: tuple[str, ...] = ("1m", "5m", "15m", "30m", "1h", "1d")

# Checksum expressions cast to one canonical type per column, so the same text gives the same number
# over a ClickHouse table and over its Iceberg copy (where unsigned integers are stored wider).
_LINEAGE = (
    "toString(source_format)", "toString(source_name)", "toUInt64(source_partition)",
    "toUInt64(source_position)", "toUInt64(source_element)", "toDateTime64(received_at, 6, 'UTC')",
)


@dataclass(frozen=True)
class WarmTable:
    name: str
    hour_column: str  # the column that places a row in an hourly partition
    checksum_columns: tuple[str, ...]
    final: bool = False  # ReplacingMergeTree: read with FINAL for exact, deduplicated rows
    # An integer expression whose value modulo the shard count splits the table into shards that can be read,
    # replayed or deduplicated independently: it is the same for every version of a row.
    shard_key: str = ""
    description: str = ""

    @property
    def qualified(self) -> str:
        return f"k2.{self.name}"


TRADES_RAW = WarmTable(
    "trades_raw", "event_hour",
    ("toString(exchange)", *_LINEAGE, "toString(source_symbol)", "payload", "toDateTime64(message_ts, 6, 'UTC')",
     "toDateTime(event_hour, 'UTC')"),
    # Runs of 65,536 lines of one source: a shard then skips whole granules, payloads unread (a hash of
    # every position made each shard read all of them: 2.4 instead of 2.0 CPU-s per million on a replay).
    shard_key="cityHash64(source_name) + intDiv(source_position, 65536)",
    description="Every exchange message exactly as received, with its source file/line or topic/offset.",
)
BRONZE_TRADES = WarmTable(
    "bronze_trades", "event_hour",
    ("toString(exchange)", "exchange_symbol", "trade_id", "toUInt64(trade_seq)", "price_text", "quantity_text",
     "toString(side)", "toDateTime64(exchange_ts, 6, 'UTC')", "toUInt64(underlying_trades)", "toString(message_type)",
     "toDateTime(event_hour, 'UTC')", *_LINEAGE),
    final=True,
    shard_key="cityHash64(exchange_symbol, trade_id)",
    description="Parsed, typed trades, one row per (exchange, exchange_symbol, trade_id); replays collapse.",
)
SILVER_TRADES = WarmTable(
    "silver_trades", "exchange_ts",
    ("toString(exchange)", "toString(symbol)", "exchange_symbol", "trade_id", "toUInt64(trade_seq)",
     "toDecimal128(price, 12)", "toDecimal128(quantity, 12)", "toString(side)", "toDateTime64(exchange_ts, 6, 'UTC')",
     "toUInt64(underlying_trades)", *_LINEAGE),
    final=True,
    shard_key="cityHash64(symbol, trade_id)",
    description="Validated trades: canonical BASE/QUOTE symbols, exact decimals, taker side. Rejects go to the DLQ.",
)
_GOLD_CHECKSUM = (
    "toString(exchange)", "toString(symbol)", "toDateTime(window_start, 'UTC')", "toDecimal128(open, 12)",
    "toDecimal128(high, 12)", "toDecimal128(low, 12)", "toDecimal128(close, 12)", "toDecimal128(volume, 12)",
    "toDecimal128(quote_volume, 24)", "toUInt64(trade_count)", "toDecimal128(vwap, 12)",
)


def gold_table(timeframe: str) -> WarmTable:
    if timeframe not in TIMEFRAMES:
        raise ValueError(f"unknown timeframe {timeframe!r}; one of {', '.join(TIMEFRAMES)}")
    return WarmTable(
        f"gold_ohlcv_{timeframe}", "event_hour", _GOLD_CHECKSUM,
        description=f"{timeframe} OHLCV candles per exchange and symbol, kept live by materialized views.",
    )


GOLD_TABLES: tuple[WarmTable, ...] = tuple(gold_table(tf) for tf in TIMEFRAMES)
WARM_TABLES: tuple[WarmTable, ...] = (TRADES_RAW, BRONZE_TRADES, SILVER_TRADES, *GOLD_TABLES)


def checksum_sql(table: WarmTable) -> str:
    """An order-independent content checksum: the wrapping UInt64 sum of one hash per row.

    A sum (not XOR) so that a duplicated row changes it.
    """
    return f"sum(cityHash64({', '.join(table.checksum_columns)}))"
