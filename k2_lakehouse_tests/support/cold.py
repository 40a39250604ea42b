"""Plain helpers for cold-tier tests and benchmarks (no fixtures: those stay in the conftest files).

The real samples and their hours, sealing them, a late trade, reading a cold table back, offloading every
table at once, the naive offload the benchmark compares against, and an order-independent content checksum.
Tests and benchmarks import these by name; nothing in ``k2_lakehouse`` does.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
from clickhouse_connect.driver.client import Client
from pyiceberg.catalog import Catalog
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.expressions import AlwaysTrue, BooleanExpression
from pyiceberg.table import Table

from k2_lakehouse.cold.iceberg_internals import schema_to_pyarrow
from k2_lakehouse.cold.offload import OffloadResult, offload_hours, snapshot_properties
from k2_lakehouse.cold.tables import COLD_TABLES, cold_table
from k2_lakehouse.cold.verify import PINNED_COLD, pinned_snapshot, query_pinned
from k2_lakehouse.hours import HourRange
from k2_lakehouse.warm.content import table_checksum
from k2_lakehouse.warm.seal import seal_bronze, seal_gold, seal_silver

KRAKEN_TRADES = Path("kraken") / "XBTUSDT-trades-2025-11-10.rest.json"
KRAKEN_HOURS = HourRange(datetime(2025, 11, 10, 17, tzinfo=UTC), datetime(2025, 11, 11, 1, tzinfo=UTC))
BINANCE_TRADES = Path("binance") / "XRPETH-aggTrades-2019-10-11_13.csv"
BINANCE_HOURS = HourRange(datetime(2019, 10, 11, tzinfo=UTC), datetime(2019, 10, 13, 12, tzinfo=UTC))

LATE_AT = datetime(2025, 11, 10, 20, 30, 0, 500000, tzinfo=UTC)
"""When the late Kraken trade (`add_late_kraken_trade`) happened: inside the sample's hours."""
LATE_HOUR = HourRange(datetime(2025, 11, 10, 20, tzinfo=UTC), datetime(2025, 11, 10, 21, tzinfo=UTC))

ORDER_BY = {
    "raw_trades": "source_name, source_position, source_element",
    "bronze_trades": "exchange, trade_id",
    "silver_trades": "exchange, trade_id",
    **{f"gold_ohlcv_{tf}": "exchange, symbol, window_start" for tf in ("1m", "5m", "15m", "30m", "1h", "1d")},
}
"""A total order of each cold table's rows, for comparing whole tables."""


def seal_all(client: Client, hours: HourRange) -> None:
    seal_bronze(client, hours)
    seal_silver(client, hours)
    seal_gold(client, hours)


def add_late_kraken_trade(client: Client, at: datetime, price: str = "104000.00000", volume: str = "0.50000000",
                          trade_id: int = 99_000_001, received_at: datetime | None = None) -> None:
    """A Kraken trade inserted now for an hour that may already be offloaded; received now, or at `received_at`
    (an ingest stamps its start on every batch, so a long one inserts rows received long ago)."""
    payload = f'["{price}","{volume}",{at.timestamp():.6f},"b","l","",{trade_id}]'
    client.insert(
        "k2.trades_raw",
        [["kraken", "kraken-rest", "late-trades", trade_id, 0, "XBTUSDT", payload, received_at or datetime.now(UTC)]],
        column_names=["exchange", "source_format", "source_name", "source_position", "source_element",
                      "source_symbol", "payload", "received_at"])


def cold_rows(client: Client, catalog: SqlCatalog, name: str, order_by: str) -> list[tuple]:
    """Every row of a cold table's current snapshot, read by ClickHouse, in a stable order."""
    pinned = pinned_snapshot(catalog.load_table(("cold", name)))
    if pinned is None:
        return []
    return query_pinned(client, pinned, f"SELECT * FROM {PINNED_COLD} ORDER BY {order_by}", {})


def offload_all(client: Client, catalog: Catalog, hours: HourRange, run_id: str | None = None,
                tables: Iterable[str] = tuple(COLD_TABLES), verify_staging: bool = False) -> list[OffloadResult]:
    """Offload a range of hours to each cold table: one commit per table, all under one run id."""
    run_id = run_id or uuid.uuid4().hex
    return [offload_hours(client, catalog, name, hours, run_id, verify_staging) for name in tables]


def offload_hours_naive(client: Client, catalog: Catalog, cold_table_name: str, hours: HourRange,
                        run_id: str | None = None) -> OffloadResult:
    """The baseline the benchmark compares against: rows through Python (Arrow) into table.overwrite.

    Correct but memory-hungry (the whole range is held in memory) and slower; not used in production.
    """
    started = time.perf_counter()
    cold = cold_table(cold_table_name)
    run_id = run_id or uuid.uuid4().hex
    table = catalog.load_table(cold.identifier)
    rows, checksum = table_checksum(client, cold.warm, hours)
    arrow = client.query_arrow(cold.select(final=True), parameters=hours.parameters)
    arrow = arrow.cast(schema_to_pyarrow(table.schema(), include_field_ids=False))
    table.overwrite(arrow, overwrite_filter=cold.range_filter(hours),
                    snapshot_properties=snapshot_properties(hours, run_id, rows, checksum))
    snapshot = table.current_snapshot()
    return OffloadResult(cold.name, hours, run_id, rows, checksum, -1, -1, snapshot.snapshot_id if snapshot else None,
                         1, time.perf_counter() - started)


@dataclass
class _Checksum:
    rows: int = 0
    value: int = 0
    schema: pa.Schema | None = field(default=None)

    def add(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows == 0:
            return
        frame = pl.from_arrow(batch.cast(self.schema) if self.schema is not None else batch)
        assert isinstance(frame, pl.DataFrame)
        # uint64 addition wraps, which is exactly the sum modulo 2**64.
        batch_sum = int(frame.hash_rows().to_numpy().sum(dtype=np.uint64))
        self.value = (self.value + batch_sum) % 2**64
        self.rows += batch.num_rows


def content_checksum(table: Table, row_filter: str | BooleanExpression | None = None) -> tuple[int, int]:
    """(row count, order-independent checksum) of the table's current content, streamed batch by batch.

    Each row is hashed with polars' ``DataFrame.hash_rows`` and the hashes are summed modulo 2**64: the sum
    does not depend on row order or file layout (so it survives compaction) but does change when a row is
    lost, altered or duplicated. Batches are cast to one canonical Arrow schema first, because the same
    values as ``string`` and ``large_string`` would hash differently. The hash is only stable within one
    polars version: compare checksums computed by the same process, never stored ones.
    """
    scan = table.scan(row_filter=row_filter if row_filter is not None else AlwaysTrue())
    checksum = _Checksum(schema=schema_to_pyarrow(scan.projection(), include_field_ids=False))
    for batch in scan.to_arrow_batch_reader():
        checksum.add(batch)
    return checksum.rows, checksum.value
