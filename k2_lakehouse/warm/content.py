"""What a warm range holds, read without writing: content checksums, the gold window predicate, and the
settings every insert into the warm tables carries.

Sealing (warm/seal.py) rewrites warm data; cold (offload, verify) and ingest only need to measure a range
or insert with the same settings. They import this module, never the seal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from k2_lakehouse.hours import HourRange, in_hours
from k2_lakehouse.warm.tables import WarmTable, checksum_sql

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

INSERT_SETTINGS: dict[str, object] = {
    # A historical file can span months: its batches may touch more than the default 100 daily partitions.
    "max_partitions_per_insert_block": 0,
    # Each block would otherwise be deduplicated (bronze, silver) or pre-aggregated (gold) as it is written,
    # for nothing: every read of those tables is FINAL or aggregates.
    "optimize_on_insert": 0,
}
"""Every insert into the warm tables, live or replayed, carries these."""

SEAL_SETTINGS: dict[str, object] = {
    **INSERT_SETTINGS,
    # The views that copy a layer into the next layer's intake skip inserts with this comment, so a replay
    # derives exactly one layer.
    "log_comment": "k2:seal",
}


def gold_windows_predicate(timeframe: str) -> str:
    """The windows an hour range touches: the daily window of a range's hours starts before them."""
    if timeframe == "1d":
        return "window_start >= toStartOfDay({start:DateTime('UTC')}) AND window_start < {end:DateTime('UTC')}"
    return in_hours("window_start")


def table_checksum(client: Client, table: WarmTable, hours: HourRange) -> tuple[int, int]:
    """(rows, checksum) of the range in `table`; gold is measured on final candles of touched windows."""
    if table.name.startswith("gold_ohlcv_"):
        source, where = f"k2.{table.name}_view", gold_windows_predicate(table.name.removeprefix("gold_ohlcv_"))
    else:
        source = f"{table.qualified}{' FINAL' if table.final else ''}"
        where = in_hours(table.hour_column)
    # One query: split into shards on parallel handles, each shard's FINAL still merges the whole range.
    rows, checksum = client.query(
        f"SELECT count(), {checksum_sql(table)} FROM {source} WHERE {where}", parameters=hours.parameters
    ).result_rows[0]
    return int(rows), int(checksum)
