"""Stream exchange-native files into k2.trades_raw; the materialized views do the rest."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
from clickhouse_connect.driver.client import Client

from k2_lakehouse.ingest.formats import detect_format, exchange_of
from k2_lakehouse.ingest.reader import RawBatch, iter_batches

DEFAULT_BATCH_ROWS = 200_000

ProgressCallback = Callable[[Path, int], None]


@dataclass
class IngestSummary:
    """What became of the messages of one ingest, counted in ClickHouse after the insert."""

    path: str
    source_format: str
    messages: int = 0
    trades: int = 0
    duplicates: int = 0
    skipped: int = 0
    dlq: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def dlq_total(self) -> int:
        return sum(self.dlq.values())


def _arrow_batch(batch: RawBatch, exchange: str, source_format: str, source_name: str,
                 received_at: datetime) -> pa.Table:
    n = len(batch)
    return pa.table({
        "exchange": pa.array([exchange] * n, pa.string()),
        "source_format": pa.array([source_format] * n, pa.string()),
        "source_name": pa.array([source_name] * n, pa.string()),
        "source_position": pa.array(batch.source_position, pa.uint64()),
        "source_element": pa.array(batch.source_element, pa.uint32()),
        "source_symbol": pa.array(batch.source_symbol, pa.string()),
        "payload": pa.array(batch.payload, pa.string()),
        "received_at": pa.array([received_at] * n, pa.timestamp("us", tz="UTC")),
    })


def ingest_file(client: Client, path: Path, source_format: str | None = None, symbol: str | None = None,
                batch_rows: int = DEFAULT_BATCH_ROWS, progress: ProgressCallback | None = None,
                received_at: datetime | None = None, table: str = "k2.trades_raw") -> IngestSummary:
    """Insert every message of `path` into `table` (trades_raw) and count what became of them."""
    started = datetime.now(UTC)
    source_format = source_format or detect_format(path)
    exchange = exchange_of(source_format)
    source_name = str(path.resolve())
    received = received_at or started
    summary = IngestSummary(path=source_name, source_format=source_format)
    for batch in iter_batches(path, source_format, batch_rows, symbol):
        client.insert_arrow(table, _arrow_batch(batch, exchange, source_format, source_name, received))
        summary.messages += len(batch)
        if progress is not None:
            progress(path, summary.messages)
    if table == "k2.trades_raw":
        _count_outcomes(client, summary, received)
    summary.seconds = (datetime.now(UTC) - started).total_seconds()
    return summary


def _count_outcomes(client: Client, summary: IngestSummary, received_at: datetime) -> None:
    where = {"name": summary.path, "received": received_at}
    summary.skipped = int(client.command(
        "SELECT count() FROM k2.trades_skipped WHERE source_name = {name:String} "
        "AND received_at = {received:DateTime64(6, 'UTC')}", parameters=where))
    rows = client.query(
        "SELECT reason, count() FROM k2.silver_trades_dlq WHERE source_name = {name:String} "
        "AND received_at = {received:DateTime64(6, 'UTC')} GROUP BY reason ORDER BY reason", parameters=where)
    summary.dlq = {reason: int(count) for reason, count in rows.result_rows}
    # New trades: distinct ids of this ingest not already stored by an earlier one.
    summary.trades = int(client.command(
        "SELECT uniqExact(exchange, exchange_symbol, trade_id) FROM k2.bronze_trades "
        "WHERE source_name = {name:String} AND received_at = {received:DateTime64(6, 'UTC')} "
        "AND (exchange, exchange_symbol, trade_id) NOT IN (SELECT exchange, exchange_symbol, trade_id FROM k2.bronze_trades "
        "WHERE received_at < {received:DateTime64(6, 'UTC')} AND event_hour IN (SELECT DISTINCT event_hour "
        "FROM k2.bronze_trades WHERE source_name = {name:String} AND received_at = {received:DateTime64(6, 'UTC')}))",
        parameters=where))
    validation_dlq = int(client.command(
        "SELECT count() FROM k2.silver_trades_dlq WHERE source_name = {name:String} "
        "AND received_at = {received:DateTime64(6, 'UTC')} AND stage = 'validate'", parameters=where))
    summary.trades = max(summary.trades - validation_dlq, 0)
    summary.duplicates = summary.messages - summary.trades - summary.skipped - summary.dlq_total
