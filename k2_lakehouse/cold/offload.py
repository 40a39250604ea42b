"""Offload: replace a range of hours of one cold table with the warm rows, in one atomic Iceberg commit.

How an offload runs (`offload_hours`):

1. Stage. ClickHouse reads the warm rows of the range, cast to the cold schema, and writes the Parquet
   files itself (`INSERT INTO FUNCTION file(...)`, or `s3(...)` on object storage:
   `storage.clickhouse_writer`) into a staging folder with a unique name under the table's data location.
   Rows stream from ClickHouse to storage and never pass through Python, so memory stays bounded however
   big the hour. Each file holds one partition value (trades: one hour and one
   exchange; gold: one day and one exchange), because Iceberg infers a file's partition from its column
   bounds. The warm checksum (`content.table_checksum`'s, grouped by file) is taken just before; each file's
   row count (from its footer, or with verify_staging the files' full checksum) is compared with it, and
   the stage is redone if warm changed in between.
2. Commit. One Iceberg transaction with one OVERWRITE snapshot: every file of the range's current
   content is removed and the staged files are added. A file that also holds rows outside the range
   (gold files cut per day, files merged by compaction) is rewritten without the range's rows, again
   by ClickHouse. The snapshot summary records k2.operation=offload, k2.run_id, k2.partition_keys,
   k2.source_rows and k2.source_checksum.

Atomicity and crashes: the catalog switches from the old snapshot to the new one in a single
compare-and-swap, so readers see the old or the new content of the range, never a mix. A process
killed at any point leaves either the old content (staged files are then unreferenced orphans, which
retention removes) or the new one. Re-running the same range repairs everything, since an offload is
a replace, not an append.

Concurrency: optimistic. Two offloads of one table may run at once. The first commit wins; the
other's commit fails the catalog's compare-and-swap. pyiceberg then re-applies it on the new head
only if nothing it depends on changed (serializable isolation: no file was added to or removed from
its range meanwhile); otherwise it raises, and `offload_hours` reloads the table, re-plans the
removals against the new head and commits again, reusing the files it already staged (both retries follow
the table's `commit.retry.*` properties: `commit_retry`). Offloads of
different hours therefore both land; offloads of the same hour end with exactly one copy.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from clickhouse_connect.driver.client import Client
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import CommitFailedException, ValidationException
from pyiceberg.io import FileIO
from pyiceberg.manifest import DataFile
from pyiceberg.table import Table

from k2_lakehouse.cold.commit_retry import retry_on_conflict
from k2_lakehouse.cold.iceberg_internals import StrictMetricsEvaluator, parquet_file_to_data_file
from k2_lakehouse.cold.storage import (
    check_plain,
    clickhouse_reader,
    clickhouse_writer,
    delete_files,
    exists,
    join,
    list_files,
    parquet_rows,
    prepare_clickhouse,
    query_size,
    write_failure,
)
from k2_lakehouse.cold.tables import FILE_SPANS, ColdTable, cold_table
from k2_lakehouse.hours import HourRange
from k2_lakehouse.settings import ServiceUnreachable
from k2_lakehouse.warm.tables import checksum_sql

log = logging.getLogger(__name__)

MAX_STAGE_ATTEMPTS = 3
STAGING_PREFIX = "k2-staging"

PARQUET_SETTINGS = {
    "output_format_parquet_compression_method": "zstd",
    "output_format_parquet_string_as_string": 1,
    # Bloom filters make the files much larger and the write much costlier, and no reader here uses
    # them (pyiceberg and ClickHouse prune with the min/max statistics).
    "output_format_parquet_write_bloom_filter": 0,
    # Dictionary encoding is tried on every column and abandoned past 1 MiB of distinct values, which
    # ids, sequence numbers and timestamps always reach: CPU spent for nothing, since zstd finds the
    # repeats in the few low-cardinality columns and the files come out the same size.
    "output_format_parquet_max_dictionary_size": 0,
    # The open file buffers its row groups (several, with parallel encoding), so their size bounds the
    # offload's memory; 32 MiB keeps a 10M-row hour within the memory target at no cost in speed.
    "output_format_parquet_row_group_size_bytes": 32 * 1024 * 1024,
}


class OffloadWriteFailed(RuntimeError):
    """Staging could not write the range's files (a full disk, say); nothing was committed, nothing is left staged."""


class OffloadSourceChanged(RuntimeError):
    """The warm rows of the range kept changing while they were staged: seal first, then offload."""


@dataclass(frozen=True)
class OffloadResult:
    table: str
    hours: HourRange
    run_id: str
    rows: int  # warm rows of the range, now the cold rows of the range
    checksum: int  # their checksum, equal on both tiers
    files_added: int
    files_removed: int
    snapshot_id: int | None  # None when there was nothing to write and nothing to remove
    attempts: int  # commit attempts made by offload_hours (pyiceberg's own retries not counted)
    seconds: float


def snapshot_properties(hours: HourRange, run_id: str, rows: int, checksum: int) -> dict[str, str]:
    return {
        "k2.operation": "offload",
        "k2.run_id": run_id,
        "k2.partition_keys": ",".join(hours.partition_keys()),
        "k2.source_rows": str(rows),
        "k2.source_checksum": str(checksum),
    }


def data_dir(table: Table) -> str:
    """The table's data location (a folder or an object-store prefix), where ClickHouse writes the stage."""
    location = table.properties.get("write.data.path", f"{table.location()}/data")
    check_plain(table.io, location)  # ClickHouse reads file lists as glob patterns
    return location


def _require_whole_hours(hours: HourRange) -> None:
    # Partition keys, staging slices and the delete filter all assume whole hours.
    if any(t.minute or t.second or t.microsecond for t in (hours.start, hours.end)):
        raise ValueError(f"offload ranges are whole hours, got {hours.start} .. {hours.end}")


@dataclass(frozen=True)
class _WarmFile:
    """The warm rows of one file to stage: one span (hour or day, `ColdTable.file_span`) of one exchange."""

    start: datetime
    exchange: str
    rows: int
    checksum: int
    final: bool  # read with FINAL: some stored rows of the file share a sorting key


def _by_file(client: Client, cold: ColdTable, hours: HourRange, final: bool,
             checksum: bool) -> dict[tuple[int, str], tuple[int, int]]:
    """(span start, exchange) -> (rows, checksum or 0) of the range's warm rows, read with or without FINAL."""
    result = client.query(
        f"SELECT {cold.file_start} AS file_start, exchange, count(), {checksum_sql(cold.warm) if checksum else '0'} "
        f"FROM {cold.source(final)} WHERE {cold.range_predicate} GROUP BY file_start, exchange",
        parameters=hours.parameters)
    return {(int(start), str(exchange)): (int(rows), int(value)) for start, exchange, rows, value in result.result_rows}


def _warm_files(client: Client, cold: ColdTable, hours: HourRange) -> list[_WarmFile]:
    """Rows and checksum of the range in warm, per file to stage.

    The same rows, predicate and checksum expression as `content.table_checksum`, grouped by file, so that each
    file is then written by its own query without PARTITION BY: ClickHouse's partitioned write copies every
    block into per-file blocks, and the group counts check each staged file on its own.

    FINAL is paid only where it changes something. Bronze and silver are summed as stored, and counted with
    FINAL (which reads only the sorting key): where the two counts agree no two stored rows share a key, so
    the stored rows are the final rows, and that file is written without FINAL too. A seal leaves no such
    pairs; a replayed live insert not yet merged does, and those files are read with FINAL throughout, so
    the common case never pays FINAL's merge on read.
    """
    stored = _by_file(client, cold, hours, final=False, checksum=True)
    merged = stored
    if cold.warm.final and cold.timeframe is None:
        counts = _by_file(client, cold, hours, final=True, checksum=False)
        if any(counts.get(key, (0, 0))[0] != rows for key, (rows, _) in stored.items()):
            merged = _by_file(client, cold, hours, final=True, checksum=True)
    return [_WarmFile(datetime.fromtimestamp(start, UTC), exchange, rows, checksum,
                      final=rows != stored.get((start, exchange), (-1, 0))[0])
            for (start, exchange), (rows, checksum) in sorted(merged.items())]


def _write_files(client: Client, io: FileIO, cold: ColdTable, hours: HourRange, warm_files: list[_WarmFile],
                 folder: str) -> list[str]:
    paths = []
    for n, warm_file in enumerate(warm_files):
        path = join(folder, f"part-{n:05d}.parquet")
        target, target_parameters = clickhouse_writer(io, path)
        client.command(
            f"INSERT INTO FUNCTION {target} {cold.select(warm_file.final)} AND {cold.file_predicate}",
            settings=PARQUET_SETTINGS, parameters={
                **hours.parameters, **target_parameters, "file_start": warm_file.start,
                "file_end": warm_file.start + FILE_SPANS[cold.file_span], "exchange": warm_file.exchange})
        paths.append(path)
    return paths


def files_checksum(client: Client, io: FileIO, cold: ColdTable, files: list[str]) -> tuple[int, int]:
    """(rows, checksum) of Parquet files, with the warm table's checksum expression."""
    if not files:
        return 0, 0
    query = f"SELECT count(), {checksum_sql(cold.warm)} FROM {clickhouse_reader(io, files, cold.cold_structure)}"
    rows, checksum = client.query(query, settings=query_size(query)).result_rows[0]
    return int(rows), int(checksum)


def staged_rows(io: FileIO, files: list[str]) -> int:
    """Rows in Parquet files, from their footers: no data is read."""
    return sum(parquet_rows(io, f) for f in files)


def stage(client: Client, table: Table, cold: ColdTable, hours: HourRange, run_id: str,
          verify_staging: bool = False) -> tuple[list[str], int, int]:
    """Write the range's warm rows as Parquet; returns (files, warm rows, warm checksum).

    The warm checksum is taken just before the write, per file. If warm changed in between (a file's
    row count disagrees, or with `verify_staging` the staged files' own checksum differs), the stage is
    redone: a seal or a late insert raced the offload. `verify_staging` reads every file back in ClickHouse,
    which the routine offload skips: matches_warm after the offload is then the content check.
    """
    io = table.io
    for attempt in range(1, MAX_STAGE_ATTEMPTS + 1):
        warm_files = _warm_files(client, cold, hours)
        rows, checksum = sum(f.rows for f in warm_files), sum(f.checksum for f in warm_files) % 2**64
        folder = staging_folder(table, run_id)
        try:
            files = _write_files(client, io, cold, hours, warm_files, folder)
            complete = all(exists(io, f) and staged_rows(io, [f]) == w.rows
                           for f, w in zip(files, warm_files, strict=True))
        except ServiceUnreachable:
            raise  # the warehouse itself is missing or refuses us: that error names it already
        except Exception as exc:
            # A write that failed, or a file cut short (a full disk truncates without an error from the engine,
            # and pyarrow then finds no footer): nothing is committed, and no staged file is left behind.
            problem = write_failure(folder, f"the staged files of {cold.name}")
            delete_files(io, [f.path for f in list_files(io, folder)])
            raise OffloadWriteFailed(f"{problem}; nothing was committed and the staged files were removed "
                                     f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from exc
        if complete and (not verify_staging or files_checksum(client, io, cold, files) == (rows, checksum)):
            return files, rows, checksum
        log.warning("warm %s changed while staged (attempt %s); staging again", cold.name, attempt)
        delete_files(io, files)
    raise OffloadSourceChanged(
        f"the warm rows of {cold.name} {hours.start:%Y-%m-%d %H:%M}..{hours.end:%H:%M} changed during each of "
        f"{MAX_STAGE_ATTEMPTS} staging attempts; seal the hours (no concurrent writes) and offload again")


def staging_folder(table: Table, run_id: str) -> str:
    """A new, unique staging folder of the table, for one run's files."""
    return join(data_dir(table), STAGING_PREFIX, f"{run_id}-{uuid.uuid4().hex[:12]}")


def _rewrite_without_range(client: Client, io: FileIO, cold: ColdTable, hours: HourRange, data_file: DataFile,
                           folder: str) -> str | None:
    """A copy of `data_file` without the range's rows (None when nothing else is left)."""
    target = join(folder, f"rewrite-{uuid.uuid4().hex}.parquet")
    writer, target_parameters = clickhouse_writer(io, target)
    client.command(
        f"INSERT INTO FUNCTION {writer} "
        f"SELECT * FROM {clickhouse_reader(io, [data_file.file_path], cold.cold_structure)} "
        f"WHERE NOT ({cold.range_predicate})",
        parameters={**hours.parameters, **target_parameters}, settings=PARQUET_SETTINGS)
    if parquet_rows(io, target) == 0:
        delete_files(io, [target])
        return None
    return target


@dataclass
class _Plan:
    removed: list[DataFile]
    rewritten: list[str]


def plan_replacement(client: Client, table: Table, cold: ColdTable, hours: HourRange, folder: str) -> _Plan:
    """The current files holding rows of the range: dropped whole, or rewritten when they hold others too."""
    plan = _Plan([], [])
    if table.current_snapshot() is None:
        return plan
    row_filter = cold.range_filter(hours)
    only_range = StrictMetricsEvaluator(table.schema(), row_filter)
    for task in table.scan(row_filter=row_filter).plan_files():
        if task.delete_files:
            raise NotImplementedError(f"{cold.name} has row-level delete files; offload only writes copy-on-write")
        plan.removed.append(task.file)
        if not only_range.eval(task.file):
            kept = _rewrite_without_range(client, table.io, cold, hours, task.file, folder)
            if kept is not None:
                plan.rewritten.append(kept)
    return plan


def _commit_once(client: Client, catalog: Catalog, cold: ColdTable, hours: HourRange, staged: list[str],
                 folder: str, properties: dict[str, str]) -> tuple[int | None, int, int]:
    """One attempt: plan against the current head, commit. Returns (snapshot_id, added, removed)."""
    table = catalog.load_table(cold.identifier)
    plan = plan_replacement(client, table, cold, hours, folder)
    added = [*staged, *plan.rewritten]
    if not added and not plan.removed:
        return None, 0, 0  # nothing in warm, nothing in cold: no empty snapshot
    txn = table.transaction()
    with txn.update_snapshot(snapshot_properties=properties).overwrite() as overwrite:
        # The predicate makes pyiceberg's conflict check cover the range: a concurrent writer that
        # added or removed files there since we planned forces a re-plan instead of a blind merge.
        overwrite.delete_by_predicate(cold.range_filter(hours))
        for data_file in plan.removed:
            overwrite.delete_data_file(data_file)
        for path in added:
            overwrite.append_data_file(parquet_file_to_data_file(table.io, txn.table_metadata, path))
    committed = txn.commit_transaction()
    snapshot = committed.current_snapshot()
    return (snapshot.snapshot_id if snapshot else None), len(added), len(plan.removed)


def commit_replacement(client: Client, catalog: Catalog, cold: ColdTable, hours: HourRange, staged: list[str],
                       folder: str, properties: dict[str, str]) -> tuple[int | None, int, int, int]:
    """Commit, re-planning after a conflict (`commit_retry`); returns (snapshot_id, added, removed, attempts).

    pyiceberg's transaction already re-applies a commit that lost a race to a change outside the range;
    a conflict inside the range (ValidationException), or pyiceberg running out of retries, means the
    removals must be planned again against the new head.
    """

    def attempt(number: int) -> tuple[int | None, int, int, int]:
        return (*_commit_once(client, catalog, cold, hours, staged, folder, properties), number)

    return retry_on_conflict(catalog.load_table(cold.identifier), attempt, operation="offload",
                             retry_on=(CommitFailedException, ValidationException))


def offload_hours(client: Client, catalog: Catalog, cold_table_name: str, hours: HourRange,
                  run_id: str | None = None, verify_staging: bool = False) -> OffloadResult:
    """Make the cold table's rows of `hours` equal the warm ones, in one atomic commit. Idempotent.

    For gold, the rows are the windows the hours touch (`gold_windows_predicate`), read final from the
    warm `_view`; a daily window is rewritten whole, so warm must still hold the whole day's gold.
    """
    started = time.perf_counter()
    cold = cold_table(cold_table_name)
    _require_whole_hours(hours)
    run_id = run_id or uuid.uuid4().hex
    table = catalog.load_table(cold.identifier)
    prepare_clickhouse(client, table.io, table.location())
    files, rows, checksum = stage(client, table, cold, hours, run_id, verify_staging)
    folder = files[0].rsplit("/", 1)[0] if files else staging_folder(table, run_id)
    snapshot_id, added, removed, attempts = commit_replacement(
        client, catalog, cold, hours, files, folder, snapshot_properties(hours, run_id, rows, checksum))
    return OffloadResult(cold.name, hours, run_id, rows, checksum, added, removed, snapshot_id, attempts,
                         time.perf_counter() - started)
