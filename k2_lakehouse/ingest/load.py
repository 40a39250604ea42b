"""Stream exchange-native files into k2.trades_raw; the materialized views do the rest.

After the insert, ClickHouse counts what became of the file's messages. Data of hours before K2_PARTITIONS_START is
stored like any other, but no partition covers it, so it could never be sealed or offloaded: the summary of such a
file carries a warning naming the variable and the earliest hour, which is also logged. It is a warning, not a
refusal, because telling the hours apart before the insert would mean parsing every message's time in Python.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from k2_lakehouse.ingest.formats import detect_format, exchange_of
from k2_lakehouse.ingest.reader import DEFAULT_BATCH_BYTES, constant_array, read_batches
from k2_lakehouse.warm.client import PARALLELISM, as_int, in_parallel, parallel_clients
from k2_lakehouse.warm.content import INSERT_SETTINGS

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

log = logging.getLogger(__name__)

ProgressCallback = Callable[[Path, int], None]


class IngestError(RuntimeError):
    """An insert into the warm store failed: names the file and the lines of the batch, then the engine's error.

    The parsers turn a bad message into a DLQ row, so this means the store or the schema is at fault, not one
    message; the batches inserted before stay, and a re-run deduplicates them downstream.
    """


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
    earliest_hour: datetime | None = None  # of the rows this ingest stored
    warnings: list[str] = field(default_factory=list)
    error: str = ""  # why the file could not be ingested, or only in part (then `messages` were inserted)

    @property
    def dlq_total(self) -> int:
        return sum(self.dlq.values())

    @property
    def status(self) -> str:
        return "failed" if self.error else "warning" if self.warnings else "ok"


def raw_table(batch: pa.Table, exchange: str, source_format: str, source_name: str, received_at: datetime) -> pa.Table:
    """A reader batch with the columns every row of one ingest shares, ready for trades_raw."""
    n = batch.num_rows
    return batch.append_column("exchange", constant_array(exchange, n, pa.string())) \
        .append_column("source_format", constant_array(source_format, n, pa.string())) \
        .append_column("source_name", constant_array(source_name, n, pa.string())) \
        .append_column("received_at", constant_array(received_at, n, pa.timestamp("us", tz="UTC")))


def batch_lines(batch: pa.Table) -> str:
    """The positions a reader batch covers, as 'lines 12-40' (a REST page's are trade indexes)."""
    if batch.num_rows == 0:
        return "no lines"
    bounds = pc.min_max(batch["source_position"])
    return f"lines {bounds['min'].as_py()}-{bounds['max'].as_py()}"


def insert_in_parallel(client: Client, table: str, batches: Iterator[pa.Table], inserters: int,
                       on_inserted: Callable[[int], None], source: str = "") -> None:
    """Insert `batches` into `table` through `inserters` clients at once, one batch each in flight.

    The next batch is read while the others insert. Order does not matter: every row carries its own
    position. The first failed insert is raised, as an IngestError naming `source` and the batch's lines,
    once the running ones finish; batches already inserted stay, and a re-run deduplicates them downstream.
    """
    with parallel_clients(client, inserters) as clients, ThreadPoolExecutor(len(clients)) as pool:
        idle = list(clients)
        running: dict[Future[object], tuple[Client, pa.Table]] = {}

        def collect(return_when: str) -> None:
            done, _ = wait(running, return_when=return_when)
            for future in done:
                handle, batch = running.pop(future)
                idle.append(handle)
                try:
                    future.result()
                except Exception as error:
                    raise IngestError(f"{source or table}, {batch_lines(batch)}: the insert into {table} failed, "
                                      f"and the file is loaded only in part: {error}") from error
                on_inserted(batch.num_rows)

        reading = iter(batches)
        while True:
            try:
                batch = next(reading, None)
            except Exception:
                collect(ALL_COMPLETED)  # reading failed (a line too long, say): the inserts in flight finish and count first
                raise
            if batch is None:
                break
            if not idle:
                collect(FIRST_COMPLETED)
            handle = idle.pop()
            running[pool.submit(handle.insert_arrow, table, batch, settings=INSERT_SETTINGS)] = (handle, batch)
        collect(ALL_COMPLETED)


def ingest_file(client: Client, path: Path, source_format: str | None = None, symbol: str | None = None,
                batch_bytes: int = DEFAULT_BATCH_BYTES, progress: ProgressCallback | None = None,
                received_at: datetime | None = None, table: str = "k2.trades_raw",
                inserters: int = PARALLELISM, partitions_start: datetime | None = None) -> IngestSummary:
    """Insert every message of `path` into `table` (trades_raw) and count what became of them.

    With `partitions_start` (K2_PARTITIONS_START), rows stored in hours before it add a warning to the summary.
    """
    started = datetime.now(UTC)
    source_format = source_format or detect_format(path)
    exchange = exchange_of(source_format)
    source_name = str(path.resolve())
    received = received_at or started
    summary = IngestSummary(path=source_name, source_format=source_format)

    def on_inserted(rows: int) -> None:
        summary.messages += rows
        if progress is not None:
            progress(path, summary.messages)

    batches = (raw_table(batch, exchange, source_format, source_name, received)
               for batch in read_batches(path, source_format, batch_bytes, symbol))
    insert_in_parallel(client, table, batches, inserters, on_inserted, source_name)
    if table == "k2.trades_raw":
        _count_outcomes(client, summary, received)
        if partitions_start is not None and summary.earliest_hour is not None and summary.earliest_hour < partitions_start:
            _warn_before_partitions(client, summary, received, partitions_start)
    summary.seconds = (datetime.now(UTC) - started).total_seconds()
    return summary


# The counts look only at the hours the ingest touched (found once through trades_raw, then by its sorting
# key), so a summary costs the same against thirty days of warm data as against an empty store.
_THIS_INGEST = "source_name = {name:String} AND received_at = {received:DateTime64(6, 'UTC')}"
_ITS_HOURS = "event_hour IN (SELECT toDateTime(arrayJoin({hours:Array(UInt32)}), 'UTC'))"


def _count_outcomes(client: Client, summary: IngestSummary, received_at: datetime) -> None:
    where: dict[str, object] = {"name": summary.path, "received": received_at}
    hours = [int(hour) for hour, in client.query(
        f"SELECT DISTINCT toUnixTimestamp(event_hour) FROM k2.trades_raw WHERE {_THIS_INGEST}", parameters=where).result_rows]
    where["hours"] = hours
    if hours:
        summary.earliest_hour = datetime.fromtimestamp(min(hours), UTC)
    skipped = f"SELECT count() FROM k2.trades_skipped WHERE {_ITS_HOURS} AND {_THIS_INGEST}"
    dlq = (f"SELECT toString(reason), count(), countIf(stage = 'validate') FROM k2.silver_trades_dlq "
           f"WHERE {_ITS_HOURS} AND {_THIS_INGEST} GROUP BY reason ORDER BY reason")
    # New trades: the distinct ids of this ingest and of earlier ones, less those of earlier ones. FINAL counts
    # distinct ids reading the sorting key only (7x cheaper than uniqExact); PREWHERE runs before FINAL
    # collapses rows, so it counts the ids among the rows kept (a WHERE would judge each id's last version).
    earlier = "received_at < {received:DateTime64(6, 'UTC')}"
    new_trades = [f"SELECT count() FROM k2.bronze_trades FINAL PREWHERE {_ITS_HOURS} AND {rows}"
                  for rows in (f"(({_THIS_INGEST}) OR {earlier})", earlier)]
    results = in_parallel(client, [
        lambda handle: as_int(handle.command(skipped, parameters=where)),
        lambda handle: handle.query(dlq, parameters=where).result_rows,
        *(lambda handle, query=query: as_int(handle.command(query, parameters=where)) for query in new_trades)])
    summary.skipped = results[0]
    summary.dlq = {reason: int(count) for reason, count, _ in results[1]}
    validation_dlq = sum(int(validated) for _, _, validated in results[1])
    summary.trades = max(results[2] - results[3] - validation_dlq, 0)
    summary.duplicates = summary.messages - summary.trades - summary.skipped - summary.dlq_total


def _warn_before_partitions(client: Client, summary: IngestSummary, received_at: datetime, start: datetime) -> None:
    """Add to `summary`, and log, a warning that some of its rows lie in hours before `start` (K2_PARTITIONS_START)."""
    before = as_int(client.command(
        f"SELECT count() FROM k2.trades_raw WHERE event_hour < {{start:DateTime('UTC')}} AND {_THIS_INGEST}",
        parameters={"name": summary.path, "received": received_at, "start": start}))
    hour = f"{summary.earliest_hour:%Y-%m-%d-%H:%M}"
    warning = (f"{summary.path}: {before:,} of its {summary.messages:,} messages lie before K2_PARTITIONS_START="
               f"{start:%Y-%m-%d-%H:%M} (the earliest in hour {hour} UTC). They are stored and can be queried in warm, "
               "but no partition covers their hours, so they are never sealed, checked or offloaded to cold, and warm's "
               f"retention drops them 30 days after arrival. To keep them, set K2_PARTITIONS_START={hour} (or earlier) "
               "for Dagster and seal and offload those hours")
    summary.warnings.append(warning)
    log.warning("%s", warning)
