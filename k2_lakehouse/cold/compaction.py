"""Data-file compaction for the cold tier (Iceberg tables written by pyiceberg).

Offloads land one or more Parquet files per partition every 15 minutes and re-offloads replace an hour's
rows, so a day partition of ``cold.silver_trades`` ends up with ~100 small files. Readers pay per file
(footer read, open, planning), so this module rewrites each partition's live data files into a few large
files sorted by the table's natural order, and swaps them in with one atomic Iceberg snapshot.

pyiceberg 0.12 has no ``rewrite_data_files``; the pieces used here are its own:

* the live files of a partition come from the current snapshot's manifests
  (``snapshot.manifests(io)`` + ``ManifestFile.fetch_manifest_entry``), pruned with the partition summaries;
* the swap is a single OVERWRITE snapshot, so readers see either all old files or all new files, never both
  and never neither. It is the snapshot ``Transaction.update_snapshot().overwrite()`` would produce, written
  with pyiceberg's manifest and manifest-list writers from the manifest entries already read for planning,
  and committed with ``Catalog.commit_table`` under the requirement that the branch head has not moved;
* new files carry the Iceberg field ids, types and nullability in their Parquet schema; files an engine
  wrote itself (polars in-process, Spark) are described with ``parquet_file_to_data_file`` (the function
  behind ``add_files``: schema check, column statistics, partition from the statistics), and an Arrow
  table an engine hands back is written with pyiceberg's own Parquet writer;
* every rewrite must hold exactly as many rows as the files it replaces, or nothing is committed.

Concurrency: an offload can replace or add files in the very partition being compacted. Before committing,
the table is re-loaded and the partition's live file set is compared with the set that was read; any
difference means the rewrite is stale, so its files are deleted and the whole compaction starts again
(up to ``max_attempts``). A change that lands after that check is caught by the catalog's optimistic
commit (``CommitFailedException``: another snapshot landed first). If that snapshot left the partition's files
alone, the swap is re-planned on top of it; otherwise the compaction is retried the same way.
Nothing is ever committed from a stale read, so rows are neither lost nor duplicated.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import logging
import math
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.expressions import AlwaysTrue, And, BooleanExpression, EqualTo, IsNull, Reference
from pyiceberg.expressions.visitors import manifest_evaluator
from pyiceberg.io import FileIO
from pyiceberg.io.fileformat import FileFormatFactory
from pyiceberg.io.pyarrow import (
    ArrowScan,
    _to_requested_schema,
    parquet_file_to_data_file,
    pyarrow_to_schema,
    schema_to_pyarrow,
)
from pyiceberg.manifest import (
    DataFile,
    DataFileContent,
    FileFormat,
    ManifestContent,
    ManifestEntry,
    ManifestEntryStatus,
    ManifestFile,
    ManifestWriter,
    write_manifest,
    write_manifest_list,
)
from pyiceberg.schema import Schema, sanitize_column_names
from pyiceberg.table import FileScanTask, Table, TableProperties
from pyiceberg.table.locations import load_location_provider
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.table.refs import MAIN_BRANCH, SnapshotRefType
from pyiceberg.table.snapshots import Operation, Snapshot, SnapshotSummaryCollector, Summary, update_snapshot_summaries
from pyiceberg.table.update import (
    AddSnapshotUpdate,
    AssertRefSnapshotId,
    SetPropertiesUpdate,
    SetSnapshotRefUpdate,
    TableUpdate,
)
from pyiceberg.typedef import Record
from pyiceberg.types import (
    BinaryType,
    BooleanType,
    DateType,
    DecimalType,
    DoubleType,
    FloatType,
    IcebergType,
    IntegerType,
    LongType,
    StringType,
    TimestampType,
    TimestamptzType,
)
from pyiceberg.utils.concurrent import ExecutorFactory

from k2_lakehouse.cold.retention import list_files, local_path
from k2_lakehouse.hours import EPOCH

if TYPE_CHECKING:
    from pyspark.sql import Column, SparkSession
    from pyspark.sql.types import DataType as SparkDataType

logger = logging.getLogger(__name__)

DEFAULT_TARGET_FILE_BYTES = 128 * 1024 * 1024
DEFAULT_MAX_ATTEMPTS = 3

SNAPSHOT_OPERATION = "k2.operation"
SNAPSHOT_ENGINE = "k2.engine"
SNAPSHOT_FILES_BEFORE = "k2.files-before"
SNAPSHOT_FILES_AFTER = "k2.files-after"
SNAPSHOT_PARTITION = "k2.partition"


class CompactionError(RuntimeError):
    """Compaction could not produce a correct rewrite; the table was left unchanged."""


class CompactionConflictError(CompactionError):
    """Concurrent writers kept changing the partition; every attempt was abandoned before commit."""


@dataclass(frozen=True)
class PartitionRef:
    """A partition of one partition spec, by its Iceberg partition values (e.g. days since epoch, exchange).

    ``values`` are the transformed values as stored in manifests (``day(exchange_ts)`` is an ``int`` of days
    since 1970-01-01), so a PartitionRef compares equal to exactly the files Iceberg groups together.
    """

    spec_id: int
    values: tuple[object, ...]

    @classmethod
    def of(cls, data_file: DataFile) -> PartitionRef:
        record = data_file.partition
        return cls(spec_id=data_file.spec_id, values=tuple(record[pos] for pos in range(len(record))))

    def record(self) -> Record:
        return Record(*self.values)

    def as_dict(self, table: Table) -> dict[str, object]:
        spec = table.specs()[self.spec_id]
        return {f.name: value for f, value in zip(spec.fields, self.values, strict=True)}

    def path(self, table: Table) -> str:
        """Human form, as in data paths: ``exchange_ts_day=2024-01-01/exchange=binance``."""
        return table.specs()[self.spec_id].partition_to_path(self.record(), table.schema())


@dataclass(frozen=True)
class CompactionResult:
    table: str
    partition: dict[str, object]
    partition_path: str
    files_before: int
    files_after: int
    rows: int
    seconds: float
    snapshot_id: int | None
    engine: str
    attempts: int = 1
    bytes_before: int = 0
    bytes_after: int = 0


@runtime_checkable
class CompactionEngine(Protocol):
    """Reads a partition's data files and produces the compacted, sorted data.

    Return either an Arrow table (in the table's current schema; the caller writes it with pyiceberg's
    Parquet writer) or the URIs of Parquet files already written under the table location (the caller
    registers them). Engines never commit: the swap is done by :func:`compact_partition`.
    """

    name: str

    def rewrite(
        self, table: Table, files: list[DataFile], sort_columns: list[str], target_file_bytes: int
    ) -> pa.Table | list[str]: ...


# --------------------------------------------------------------------------------------------- engines


class InProcessEngine:
    """Compacts in this process: polars reads, sorts and writes the Parquet files, pyiceberg commits.

    Fast path (local files whose columns resolve to exactly the current Iceberg schema, by their own field
    ids or, for the offload's ClickHouse-written files, which carry none, by the table's name mapping, as a
    scan resolves them): polars reads the files by column name and writes the sorted result with the Iceberg
    field ids and nullability in the Parquet schema, honouring the table's Parquet codec, level and
    row-group limit. On two cores that is ~2-3x faster than reading through pyiceberg's ``ArrowScan`` and
    writing with pyarrow, mostly because polars decodes and encodes columns in parallel.

    Any other case (schema evolved since a file was written, remote storage) reads through ``ArrowScan``,
    which resolves columns by field id and name mapping exactly as a table scan does, and hands the sorted
    Arrow table back for pyiceberg's own writer.

    A full sort needs the whole partition in memory, so memory is bounded per partition (never per table):
    roughly 3-8x the partition's compressed Parquet size. ``max_partition_bytes`` refuses a partition above
    that budget instead of running out of memory.
    """

    name = "in-process"

    def __init__(self, max_partition_bytes: int = 2 * 1024 * 1024 * 1024, fast_io: bool = True) -> None:
        self.max_partition_bytes = max_partition_bytes
        self.fast_io = fast_io

    def rewrite(
        self, table: Table, files: list[DataFile], sort_columns: list[str], target_file_bytes: int
    ) -> pa.Table | list[str]:
        size = sum(f.file_size_in_bytes for f in files)
        if size > self.max_partition_bytes:
            raise CompactionError(
                f"the partition holds {size:,} bytes of Parquet, above InProcessEngine.max_partition_bytes="
                f"{self.max_partition_bytes:,}; compact it with SparkEngine or raise max_partition_bytes"
            )
        schema = table.schema()
        local_paths = [local_path(table.io, f.file_path) for f in files]
        if self.fast_io and all(local_paths) and _files_match_schema(local_paths, table):  # type: ignore[arg-type]
            # One chunk per file; sort_frame decides whether joining them is worth a copy.
            frame = pl.read_parquet(local_paths, columns=[f.name for f in schema.fields], hive_partitioning=False, glob=False)
        else:
            scan = ArrowScan(table.metadata, table.io, schema, AlwaysTrue())
            frame = _to_frame(scan.to_table([FileScanTask(f) for f in files]))
        frame = sort_frame(frame, sort_columns)
        if self.fast_io and _polars_can_write(table):
            return _write_with_polars(table, PartitionRef.of(files[0]), frame, _rows_per_file(files, target_file_bytes))
        return frame.to_arrow().cast(schema_to_pyarrow(schema, include_field_ids=False))


def _to_frame(data: pa.Table) -> pl.DataFrame:
    frame = pl.from_arrow(data)
    assert isinstance(frame, pl.DataFrame)
    return frame


def _has_field_ids(io: FileIO, path: str) -> bool:
    with io.new_input(path).open() as stream:
        return all(field.metadata and b"PARQUET:field_id" in field.metadata for field in pq.read_schema(stream))


def _files_match_schema(paths: list[str], table: Table) -> bool:
    """True if polars may read every file by column name as the table's current schema.

    Each file's columns are resolved to field ids as a scan resolves them (the file's own ids, else the
    table's name mapping) and must be exactly the schema's fields: ids, names, types, and no optional
    column where the table requires one. Anything else (a renamed or retyped column, a dropped one still in
    old files) is left to ``ArrowScan``.
    """
    schema, name_mapping = table.schema(), table.metadata.name_mapping()
    wanted = [(f.field_id, f.name, f.field_type) for f in schema.fields]
    required = [f.required for f in schema.fields]

    def matches(arrow_schema: pa.Schema) -> bool:
        try:
            file_schema = pyarrow_to_schema(arrow_schema, name_mapping=name_mapping)
        except ValueError:  # no field ids and no name mapping, or a name the mapping does not know
            return False
        fields = file_schema.fields
        return ([(f.field_id, f.name, f.field_type) for f in fields] == wanted
                and all(f.required or not needed for f, needed in zip(fields, required, strict=True)))

    # Files from one writer share a schema: each distinct one (field ids included) is converted once.
    distinct = {s.serialize().to_pybytes(): s for s in ExecutorFactory.get_or_create().map(pq.read_schema, paths)}
    return all(matches(arrow_schema) for arrow_schema in distinct.values())


POLARS_CODECS = {"zstd", "snappy", "gzip", "lz4", "brotli", "uncompressed"}
ARROW_DEFAULT_LEVELS = {"zstd": 1}


def _polars_can_write(table: Table) -> bool:
    codec = table.properties.get(TableProperties.PARQUET_COMPRESSION, TableProperties.PARQUET_COMPRESSION_DEFAULT)
    schema = table.schema()
    return (
        local_path(table.io, table.location_provider().data_path) is not None
        and codec in POLARS_CODECS
        and sanitize_column_names(schema) == schema
        and all(f.field_type.is_primitive for f in schema.fields)
    )


def _write_with_polars(table: Table, ref: PartitionRef, frame: pl.DataFrame, rows_per_file: int) -> list[str]:
    """Write sorted rows as consecutive files of ``rows_per_file`` rows, Iceberg field ids in the schema."""
    properties = table.properties
    codec = properties.get(TableProperties.PARQUET_COMPRESSION, TableProperties.PARQUET_COMPRESSION_DEFAULT)
    # Unset means the codec's Arrow default (zstd level 1), as pyiceberg's pyarrow writer would use.
    level = properties.get(TableProperties.PARQUET_COMPRESSION_LEVEL) or ARROW_DEFAULT_LEVELS.get(codec)
    row_group_rows = int(
        properties.get(TableProperties.PARQUET_ROW_GROUP_LIMIT, TableProperties.PARQUET_ROW_GROUP_LIMIT_DEFAULT)
    )
    arrow_schema = schema_to_pyarrow(table.schema(), include_field_ids=True)
    provider = table.location_provider()
    partition_path = ref.path(table)
    write_uuid = uuid.uuid4()
    written: list[str] = []
    try:
        for task_id, offset in enumerate(range(0, frame.height, rows_per_file)):
            uri = provider.new_data_location(f"{partition_path}/00000-{task_id}-{write_uuid}.parquet")
            written.append(uri)
            frame.slice(offset, rows_per_file).write_parquet(
                local_path(table.io, uri),  # type: ignore[arg-type]
                compression=codec,  # type: ignore[arg-type]
                compression_level=int(level) if level else None,
                row_group_size=row_group_rows,
                statistics=True,
                arrow_schema=arrow_schema,
                mkdir=True,
            )
    except BaseException:
        _delete_quietly(table.io, written)
        raise
    return written


class SparkEngine:
    """Compacts with Spark: Spark reads and sorts the Parquet files and writes new ones, pyiceberg commits.

    No Iceberg runtime jar is needed because Spark only does Parquet I/O here. To make the files Spark
    writes indistinguishable from pyiceberg's, each column is written with its Iceberg field id
    (``parquet.field.id`` metadata), the Iceberg type (decimal(p,s), timestamp as INT64 micros adjusted to
    UTC, string, long...) and its nullability (required columns are written as required). Input files are
    read by field id too (``spark.sql.parquet.fieldId.read.enabled``) so renamed columns resolve correctly;
    files without ids (the offload's, written by ClickHouse) are read by name, as Iceberg's name mapping does.

    Output goes to ``<table>/data/<partition path>/k2-compaction-<uuid>/`` and is registered in place.
    Only filesystems that both Spark and the table's FileIO reach under the same URI work (local ``file:``,
    HDFS); the session's other settings are left as they were.
    """

    name = "spark"

    def __init__(self, spark: SparkSession, compression: str = "zstd") -> None:
        self.spark = spark
        self.compression = compression

    def rewrite(
        self, table: Table, files: list[DataFile], sort_columns: list[str], target_file_bytes: int
    ) -> list[str]:
        from pyspark.sql import functions as F
        from pyspark.sql.types import StructField, StructType

        schema = table.schema()
        _require_no_nulls_in_required_columns(schema, files)
        by_id = StructType(
            [
                StructField(f.name, _spark_type(f.name, f.field_type), True, {"parquet.field.id": f.field_id})
                for f in schema.fields
            ]
        )
        by_name = StructType([StructField(f.name, _spark_type(f.name, f.field_type), True) for f in schema.fields])
        with_ids = list(ExecutorFactory.get_or_create().map(lambda f: _has_field_ids(table.io, f.file_path), files))
        columns: list[Column] = []
        for f in schema.fields:
            spark_type = _spark_type(f.name, f.field_type)
            column = F.col(f.name).cast(spark_type)
            if f.required:
                # coalesce(x, non-null literal) is how Spark learns a column is NOT NULL; the inputs were
                # checked to hold no nulls in required columns, so the literal is never used.
                column = F.coalesce(column, F.lit(_spark_default(f.field_type)).cast(spark_type))
            columns.append(column.alias(f.name, metadata={"parquet.field.id": f.field_id}))

        ref = PartitionRef.of(files[0])
        dest = _join(table.location_provider().data_path, ref.path(table), f"k2-compaction-{uuid.uuid4()}")
        n_files = max(1, math.ceil(sum(f.file_size_in_bytes for f in files) / target_file_bytes))
        settings = {
            "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
            "spark.sql.parquet.fieldId.write.enabled": "true",
            "spark.sql.parquet.fieldId.read.enabled": "true",
            "spark.sql.parquet.writeLegacyFormat": "false",
        }
        with _spark_conf(self.spark, settings):
            # Files written by ClickHouse (the offload) carry no field ids: Spark reads those by name, as
            # Iceberg's name mapping would; files with ids are read by id.
            parts = [
                self.spark.read.schema(read_schema).parquet(*paths)
                for read_schema, paths in (
                    (by_id, [f.file_path for f, ids in zip(files, with_ids, strict=True) if ids]),
                    (by_name, [f.file_path for f, ids in zip(files, with_ids, strict=True) if not ids]),
                )
                if paths
            ]
            df = functools.reduce(lambda a, b: a.unionByName(b), parts).select(*columns)
            if sort_columns and n_files > 1:  # non-overlapping, individually sorted files
                df = df.repartitionByRange(n_files, *sort_columns).sortWithinPartitions(*sort_columns)
            else:  # one file: skip range partitioning, whose sampling job reads every input file once more
                df = df.repartition(n_files)
                if sort_columns:
                    df = df.sortWithinPartitions(*sort_columns)
            (
                df.write.option("compression", self.compression)
                .option("mapreduce.fileoutputcommitter.marksuccessfuljobs", "false")
                .mode("errorifexists")
                .parquet(dest)
            )
        written: list[str] = []
        for info in list_files(table.io, dest):
            name = info.path.rsplit("/", 1)[-1]
            if name.endswith(".parquet") and not name.startswith((".", "_")):
                written.append(_join(dest, name))
            else:  # Hadoop side files (.crc checksums, _SUCCESS) would otherwise become orphans
                table.io.delete(_join(dest, name))
        return sorted(written)


LOW_CARDINALITY = 65_536
MAX_RUNS_TO_SLICE = 4_096


def sort_frame(frame: pl.DataFrame, sort_columns: Sequence[str]) -> pl.DataFrame:
    """Rows in ``sort_columns`` order (ascending, nulls first, as ``DataFrame.sort``).

    The leading sort columns that fit are packed into one uint64 per row (a low-cardinality string as its
    rank among its sorted distinct values, an integer or timestamp as its offset from the column minimum,
    null as 0), so the sort is one integer argsort instead of polars' multi-column sort, which row-encodes
    every key (~2x slower on silver's keys). Rows whose packed keys tie are then ordered by the remaining
    columns; that is usually a small fraction (trades sharing a microsecond).

    The argsort is a stable one (timsort), which merges runs that are already in order instead of sorting
    from scratch: an offloaded file is written in the warm table's sorting key, the cold table's order, so
    a partition of 96 offloads is a few hundred sorted runs (one per file and symbol) and the sort takes a
    quarter of a quicksort's time. The rows are then assembled from those runs as slices (see ``_take``).
    """
    if not sort_columns or frame.height < 2:
        return frame
    missing = [c for c in sort_columns if c not in frame.columns]
    if missing:
        raise CompactionError(f"sort columns {missing} are not in the table; choose from {frame.columns}")
    packed, rest = _packed_sort_key(frame, sort_columns)
    if packed is None:
        return frame.sort(list(sort_columns), multithreaded=True)
    order = np.argsort(packed, kind="stable")
    if rest:
        order = _order_ties(frame, packed, order, rest)
    return _take(frame, order)


def _take(frame: pl.DataFrame, order: np.ndarray) -> pl.DataFrame:
    """The rows of ``frame`` in ``order``.

    An order made of few ascending runs of consecutive rows (sorted input files) becomes zero-copy slices,
    leaving the one copy to the Parquet writer, which reads them chunk by chunk; joining the chunks and
    gathering copied every row twice (~0.4 CPU-s on 2.9M silver rows). Any other order is gathered, after
    joining the chunks: gathering across one chunk per input file costs more than the join.
    """
    breaks = np.flatnonzero(np.diff(order) != 1) + 1
    if len(breaks) >= MAX_RUNS_TO_SLICE:
        return frame.rechunk()[order]
    bounds = [0, *breaks.tolist(), len(order)]
    return pl.concat([frame.slice(int(order[start]), end - start) for start, end in itertools.pairwise(bounds)],
                     rechunk=False)


def _packed_sort_key(frame: pl.DataFrame, sort_columns: Sequence[str]) -> tuple[np.ndarray | None, list[str]]:
    """One uint64 per row encoding the longest packable prefix of the sort columns, and the columns left."""
    key: np.ndarray | None = None
    used_bits = 0
    for position, name in enumerate(sort_columns):
        codes = _sort_codes(frame.get_column(name))
        if codes is None:
            return key, list(sort_columns[position:])
        values, bits = codes
        if used_bits + bits > 64:
            return key, list(sort_columns[position:])
        key = values if key is None else (key << np.uint64(bits)) | values
        used_bits += bits
    return key, []


def _sort_codes(column: pl.Series) -> tuple[np.ndarray, int] | None:
    """Order-preserving non-negative codes of a column (null -> 0) and the bits they need, if cheap to build."""
    dtype = column.dtype
    if dtype == pl.String:
        if (by_runs := _string_codes_by_runs(column)) is not None:
            return by_runs
        # A HyperLogLog estimate (~15 ms on 3M rows) rules out ids and other high-cardinality strings before
        # the exact distinct values are computed (~0.6 s for 3M unique strings).
        if column.approx_n_unique() > 2 * LOW_CARDINALITY:
            return None
        distinct = column.drop_nulls().unique()
        if distinct.len() > LOW_CARDINALITY:
            return None
        # Python sorts str by code point, polars compares UTF-8 bytes: the same order.
        ranks = column.cast(pl.Enum(sorted(distinct.to_list()))).to_physical().cast(pl.UInt64) + 1
        return ranks.fill_null(0).to_numpy(), distinct.len().bit_length()
    if not (dtype.is_integer() or dtype.is_temporal()):
        return None
    physical = column.to_physical()
    low, high = physical.min(), physical.max()
    if low is None:  # all null
        return np.zeros(column.len(), dtype=np.uint64), 0
    span = int(high) - int(low) + 1  # type: ignore[arg-type]
    if span >= 2**63:
        return None
    # Subtracting in Int64 (UInt64 first checked to fit) keeps the offset exact.
    if physical.dtype == pl.UInt64 and int(high) >= 2**63:  # type: ignore[arg-type]
        offsets = physical - low + 1
    else:
        offsets = (physical.cast(pl.Int64) - int(low) + 1).cast(pl.UInt64)  # type: ignore[arg-type]
    return offsets.fill_null(0).to_numpy(), span.bit_length()


def _string_codes_by_runs(column: pl.Series) -> tuple[np.ndarray, int] | None:
    """Codes of a string column whose equal values sit together in at most LOW_CARDINALITY runs, else None.

    Each offloaded file is in the table's order, so a leading sort column (the exchange, the symbol) forms a
    few runs per file. Ranking the runs' values costs one comparison per row; hashing every value to rank it
    cost 4-8x more (~0.05-0.1 s for silver's symbol on 2.9M rows). Codes start at 0 when there is no null.
    """
    if column.is_empty():
        return np.zeros(0, dtype=np.uint64), 0
    # Ids and other unsorted strings show too many runs within their first rows: stop before comparing them all.
    head = column.head(LOW_CARDINALITY + 1)
    if head.ne_missing(head.shift(1)).sum() > LOW_CARDINALITY:
        return None
    starts = np.flatnonzero(column.ne_missing(column.shift(1)).to_numpy())
    if len(starts) == 0 or starts[0] != 0:  # a leading null equals the null shifted in
        starts = np.insert(starts, 0, 0)
    if len(starts) > LOW_CARDINALITY:
        return None
    values = column.gather(starts).to_list()
    distinct = sorted({v for v in values if v is not None})  # code point order is polars' UTF-8 byte order
    first = 1 if None in values else 0
    rank = {v: code for code, v in enumerate(distinct, first)}
    codes = np.array([0 if v is None else rank[v] for v in values], dtype=np.uint64)
    return np.repeat(codes, np.diff(starts, append=column.len())), (first + len(distinct) - 1).bit_length()


def _order_ties(frame: pl.DataFrame, packed: np.ndarray, order: np.ndarray, rest: list[str]) -> np.ndarray:
    """Within each run of equal packed keys, reorder rows by the remaining sort columns."""
    sorted_keys = packed[order]
    tie = sorted_keys[1:] == sorted_keys[:-1]
    if not tie.any():
        return order
    in_run = np.zeros(len(order), dtype=bool)
    in_run[1:] |= tie
    in_run[:-1] |= tie
    positions = np.flatnonzero(in_run)
    rows = order[positions]
    # Sorting the tied rows by (packed key, rest) only permutes rows within their own run, because the
    # runs already sit in packed-key order.
    tied = frame[rows].select(rest).with_columns(pl.Series("__k2_key", packed[rows]), pl.int_range(pl.len()).alias("__k2_row"))
    within = tied.sort(["__k2_key", *rest], multithreaded=True).get_column("__k2_row").to_numpy()
    order = order.copy()
    order[positions] = rows[within]
    return order


# --------------------------------------------------------------------------------------------- planning


def _partition_filter(table: Table, ref: PartitionRef) -> BooleanExpression:
    spec = table.specs()[ref.spec_id]
    terms: list[BooleanExpression] = [
        IsNull(Reference(f.name)) if value is None else EqualTo(Reference(f.name), value)  # type: ignore[arg-type]
        for f, value in zip(spec.fields, ref.values, strict=True)
    ]
    if not terms:
        return AlwaysTrue()
    return terms[0] if len(terms) == 1 else And(*terms)


ManifestCache = dict[str, list[ManifestEntry]]
"""Manifest path -> its live entries. Manifests are immutable, so entries read for one snapshot are valid for
every later snapshot that still lists the same manifest (and for the commit that rewrites them)."""


def _partition_manifests(table: Table, ref: PartitionRef, manifests: list[ManifestFile]) -> list[ManifestFile]:
    """The manifests that may hold files of ``ref`` (by spec and partition summaries); the others cannot."""
    evaluate = manifest_evaluator(table.specs()[ref.spec_id], table.schema(), _partition_filter(table, ref))
    return [m for m in manifests if m.partition_spec_id == ref.spec_id and evaluate(m)]


def _live_entries(table: Table, manifests: list[ManifestFile], cache: ManifestCache | None) -> list[list[ManifestEntry]]:
    """The live (added or existing) entries of each manifest, read in parallel, through ``cache``."""
    io = table.io

    def entries(manifest: ManifestFile) -> list[ManifestEntry]:
        if cache is not None and (hit := cache.get(manifest.manifest_path)) is not None:
            return hit
        live = manifest.fetch_manifest_entry(io, discard_deleted=True)
        if cache is not None:
            cache[manifest.manifest_path] = live
        return live

    return list(ExecutorFactory.get_or_create().map(entries, manifests))


def _live_files(
    table: Table, ref: PartitionRef | None = None, cache: ManifestCache | None = None
) -> dict[PartitionRef, list[DataFile]]:
    """Live data files of the current snapshot grouped by partition (only ``ref``'s partition if given).

    Raises if the partition has delete files: pyiceberg can neither apply-and-drop them in a rewrite nor
    write them, so a table with delete files was written by another engine and must be compacted there.
    """
    snapshot = table.current_snapshot()
    if snapshot is None:
        return {}
    manifests = snapshot.manifests(table.io)
    if ref is not None:
        manifests = _partition_manifests(table, ref, manifests)
    grouped: dict[PartitionRef, list[DataFile]] = {}
    for manifest, entries in zip(manifests, _live_entries(table, manifests, cache), strict=True):
        for entry in entries:
            data_file = entry.data_file
            key = PartitionRef.of(data_file)
            if ref is not None and key != ref:
                continue
            if manifest.content == ManifestContent.DELETES or data_file.content != DataFileContent.DATA:
                raise CompactionError(
                    f"partition {key.values} of {_table_name(table)} has delete files ({data_file.file_path}); "
                    "pyiceberg cannot rewrite them: compact this table with Spark + the Iceberg runtime instead"
                )
            grouped.setdefault(key, []).append(data_file)
    return grouped


def partitions_needing_compaction(table: Table, min_files: int = 2) -> list[PartitionRef]:
    """Partitions of the current spec holding at least ``min_files`` live data files, most files first.

    Files written under an older partition spec are left alone: the overwrite commit adds files to the
    current spec only, and re-partitioning old data is a different job (rewrite by the new spec).
    """
    if min_files < 2:
        raise ValueError(f"min_files={min_files}: a partition needs at least 2 files for compaction to help")
    spec_id = table.spec().spec_id
    grouped = _live_files(table)
    candidates = [(ref, len(files)) for ref, files in grouped.items() if ref.spec_id == spec_id]
    return [ref for ref, count in sorted(candidates, key=lambda rc: (-rc[1], repr(rc[0].values))) if count >= min_files]


def resolve_partition(table: Table, partition: PartitionRef | Mapping[str, object]) -> PartitionRef:
    """Accept a PartitionRef or ``{partition field name: value}`` of the current spec.

    Values are the Iceberg partition values; for a ``day`` transform a ``datetime.date`` is accepted too.
    """
    if isinstance(partition, PartitionRef):
        return partition
    spec = table.spec()
    names = [f.name for f in spec.fields]
    if set(partition) != set(names):
        raise ValueError(f"partition {dict(partition)} must name exactly the fields of the current spec: {names}")
    partition_type = spec.partition_type(table.schema())
    values: list[object] = []
    for struct_field in partition_type.fields:
        value = partition[struct_field.name]
        if isinstance(struct_field.field_type, DateType) and isinstance(value, dt.date):
            value = (value - EPOCH.date()).days
        values.append(value)
    return PartitionRef(spec_id=spec.spec_id, values=tuple(values))


# --------------------------------------------------------------------------------------------- writing


def _write_data_files(
    metadata: TableMetadata, io: FileIO, ref: PartitionRef, data: pa.Table, rows_per_file: int
) -> list[DataFile]:
    """Write sorted rows as consecutive, non-overlapping files of ``rows_per_file`` rows (in parallel)."""
    schema = metadata.schema()
    file_schema = sanitized if (sanitized := sanitize_column_names(schema)) != schema else schema
    spec = metadata.specs()[ref.spec_id]
    partition_path = spec.partition_to_path(ref.record(), schema)
    provider = load_location_provider(table_location=metadata.location, table_properties=metadata.properties)
    format_model = FileFormatFactory.get(FileFormat.PARQUET)
    write_uuid = uuid.uuid4()
    chunks = [data.slice(offset, rows_per_file) for offset in range(0, data.num_rows, rows_per_file)]

    def write(task: tuple[int, pa.Table]) -> DataFile:
        task_id, chunk = task
        batches = [
            _to_requested_schema(file_schema, schema, batch, include_field_ids=True, format_model=format_model)
            for batch in chunk.to_batches()
        ]
        path = provider.new_data_location(f"{partition_path}/00000-{task_id}-{write_uuid}.parquet")
        output = io.new_output(path)
        writer = format_model.create_writer(output, file_schema, metadata.properties)
        with writer:
            writer.write(pa.Table.from_batches(batches, schema=batches[0].schema))
        data_file = DataFile.from_args(
            content=DataFileContent.DATA,
            file_path=path,
            file_format=FileFormat.PARQUET,
            partition=ref.record(),
            file_size_in_bytes=len(output),
            sort_order_id=None,
            equality_ids=None,
            key_metadata=None,
            **writer.result().to_serialized_dict(),
        )
        data_file.spec_id = ref.spec_id  # not a manifest column: from_args does not set it
        return data_file

    return list(ExecutorFactory.get_or_create().map(write, enumerate(chunks)))


def _register_files(metadata: TableMetadata, io: FileIO, ref: PartitionRef, paths: list[str]) -> list[DataFile]:
    """Describe engine-written Parquet files the way ``add_files`` does, and check they are in ``ref``."""
    executor = ExecutorFactory.get_or_create()
    data_files = list(executor.map(lambda p: parquet_file_to_data_file(io, metadata, p), paths))
    for data_file in data_files:
        data_file.spec_id = metadata.default_spec_id  # what the overwrite's added manifest is written with
        if PartitionRef.of(data_file) != ref:
            raise CompactionError(
                f"{data_file.file_path} holds rows of partition {PartitionRef.of(data_file).values}, "
                f"not {ref.values}: the engine must only rewrite the partition it was given"
            )
    return data_files


def _materialize(
    metadata: TableMetadata,
    io: FileIO,
    ref: PartitionRef,
    output: pa.Table | list[str],
    old_files: list[DataFile],
    target_file_bytes: int,
) -> list[DataFile]:
    if isinstance(output, pa.Table):
        if output.num_rows == 0:
            return []
        return _write_data_files(metadata, io, ref, output, _rows_per_file(old_files, target_file_bytes))
    return _register_files(metadata, io, ref, output)


def _rows_per_file(old_files: list[DataFile], target_file_bytes: int) -> int:
    """Rows per output file so files land near the target on disk, judged by the inputs' bytes per row."""
    rows_in = sum(f.record_count for f in old_files)
    bytes_per_row = max(1.0, sum(f.file_size_in_bytes for f in old_files) / max(1, rows_in))
    return max(1, int(target_file_bytes / bytes_per_row))


def _delete_quietly(io: FileIO, paths: Sequence[str]) -> None:
    for path in paths:
        try:
            io.delete(path)
        except FileNotFoundError:
            pass
        except OSError:
            logger.warning("could not delete %s; remove_orphan_files will collect it", path, exc_info=True)


# --------------------------------------------------------------------------------------------- commit


def compact_partition(
    table: Table,
    partition: PartitionRef | Mapping[str, object],
    engine: CompactionEngine,
    sort_columns: Sequence[str],
    target_file_bytes: int = DEFAULT_TARGET_FILE_BYTES,
    *,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    before_commit: Callable[[int], None] | None = None,
    after_verify: Callable[[int], None] | None = None,
) -> CompactionResult:
    """Replace the live data files of one partition by compacted, sorted files in one atomic snapshot.

    ``before_commit(attempt)`` runs after the new files are written and before the partition is re-checked;
    ``after_verify(attempt)`` runs after the re-check, right before the catalog commit. Both exist so tests
    (and chaos drills) can inject a concurrent writer deterministically; production callers leave them None.

    Returns a result with ``snapshot_id=None`` when the partition has fewer than two files.
    Raises CompactionConflictError when every attempt met a concurrent change to the partition.
    """
    if target_file_bytes <= 0:
        raise ValueError(f"target_file_bytes={target_file_bytes} must be positive")
    if max_attempts < 1:
        raise ValueError(f"max_attempts={max_attempts} must be at least 1")
    started = time.perf_counter()
    ref = resolve_partition(table, partition)
    sort_list = list(sort_columns)
    conflicts: list[str] = []
    manifest_cache: ManifestCache = {}
    for attempt in range(1, max_attempts + 1):
        table.refresh()
        old_files = _live_files(table, ref, manifest_cache).get(ref, [])
        if len(old_files) < 2:
            return _result(table, ref, engine, old_files, old_files, None, started, attempt)
        old_paths = {f.file_path for f in old_files}

        output = engine.rewrite(table, old_files, sort_list, target_file_bytes)
        written: list[str] = list(output) if isinstance(output, list) else []
        try:
            new_files = _materialize(table.metadata, table.io, ref, output, old_files, target_file_bytes)
            written = [f.file_path for f in new_files] or written
            rows_in = sum(f.record_count for f in old_files)
            rows_out = sum(f.record_count for f in new_files)
            if rows_in != rows_out:
                raise CompactionError(
                    f"{engine.name} produced {rows_out} rows from {rows_in}; nothing was committed. "
                    "Check the engine and the partition's files before retrying"
                )
            if before_commit is not None:
                before_commit(attempt)
            table.refresh()
            current = {f.file_path for f in _live_files(table, ref, manifest_cache).get(ref, [])}
            if current != old_paths:
                conflicts.append(
                    f"attempt {attempt}: {len(current - old_paths)} file(s) added and "
                    f"{len(old_paths - current)} removed by a concurrent writer"
                )
                logger.info("compaction of %s: %s; retrying", ref.path(table), conflicts[-1])
                _delete_quietly(table.io, written)
                continue
            if after_verify is not None:
                after_verify(attempt)
        except BaseException:
            _delete_quietly(table.io, written)  # nothing references them yet
            raise

        try:
            snapshot_id = _commit_swap(table, ref, engine.name, old_files, new_files, output, manifest_cache)
        except CommitFailedException as exc:
            # The commit did not land (the partition changed under it), so the new files are unreferenced.
            # Any other error leaves the outcome unknown: the files stay (orphan removal judges them later).
            conflicts.append(f"attempt {attempt}: {type(exc).__name__}: {exc}")
            logger.info("compaction of %s lost a commit race (%s); retrying", ref.path(table), exc)
            _delete_quietly(table.io, written)
            continue
        return _result(table, ref, engine, old_files, new_files, snapshot_id, started, attempt)
    raise CompactionConflictError(
        f"partition {ref.path(table)} of {_table_name(table)} changed under every one of {max_attempts} "
        f"compaction attempts ({'; '.join(conflicts)}). Run it again when offloads to that partition are idle, "
        "or raise max_attempts"
    )


COMMIT_RETRIES = 4
"""Re-commits on top of a snapshot that landed first, as long as it left the partition's files alone."""


def _commit_swap(
    table: Table,
    ref: PartitionRef,
    engine_name: str,
    old_files: list[DataFile],
    new_files: list[DataFile],
    output: pa.Table | list[str],
    cache: ManifestCache,
) -> int:
    """Swap ``old_files`` for ``new_files`` in one OVERWRITE snapshot; returns its id.

    Another writer's commit that landed first (CommitFailedException) is harmless when it left the partition's
    files alone (an offload of another day): the swap is re-planned on top of it. Otherwise the exception
    propagates and the caller starts over.
    """
    properties = {
        SNAPSHOT_OPERATION: "compaction",
        SNAPSHOT_ENGINE: engine_name,
        SNAPSHOT_FILES_BEFORE: str(len(old_files)),
        SNAPSHOT_FILES_AFTER: str(len(new_files)),
        SNAPSHOT_PARTITION: ref.path(table),
    }
    # Same as add_files: readers fall back to names for engine-written files without field ids.
    name_mapping = isinstance(output, list) and table.metadata.name_mapping() is None
    old_paths = {f.file_path for f in old_files}
    for retry in range(COMMIT_RETRIES + 1):
        try:
            return _commit_overwrite_snapshot(table, ref, old_files, new_files, properties, name_mapping, cache)
        except CommitFailedException:
            table.refresh()
            if retry == COMMIT_RETRIES or {f.file_path for f in _live_files(table, ref, cache).get(ref, [])} != old_paths:
                raise
            logger.info("compaction of %s: another snapshot landed first; committing on top of it", ref.path(table))
    raise AssertionError("unreachable")


def _commit_overwrite_snapshot(
    table: Table,
    ref: PartitionRef,
    old_files: list[DataFile],
    new_files: list[DataFile],
    properties: dict[str, str],
    name_mapping: bool,
    cache: ManifestCache,
) -> int:
    """Write the OVERWRITE snapshot's manifests and manifest list, and commit it if the branch head is unmoved.

    The same snapshot pyiceberg's ``overwrite()`` producer writes (one manifest of added files, one of deleted
    entries, manifests that also hold other files rewritten as existing entries, every other manifest carried
    over unless no live entry is left in it), but built from the manifest entries already read to plan the
    compaction. pyiceberg's producer reads every manifest of the partition twice more and deep-copies the
    table metadata about twenty times; on a partition of 96 offloads that was 0.5 s of a 2 s compaction. The
    commit requires the branch head to still be the snapshot the partition was checked against, so nothing a
    concurrent writer did can be lost.
    """
    metadata, io = table.metadata, table.io
    parent = metadata.current_snapshot()
    if parent is None:
        raise CommitFailedException("the table has no snapshot any more; nothing to compact")
    snapshot_id = metadata.new_snapshot_id()
    sequence_number = metadata.next_sequence_number()
    codec = metadata.properties.get(TableProperties.WRITE_AVRO_COMPRESSION, TableProperties.WRITE_AVRO_COMPRESSION_DEFAULT)
    provider = table.location_provider()
    commit_uuid = uuid.uuid4()
    written: list[str] = []

    def manifest_writer(spec_id: int) -> ManifestWriter:
        path = provider.new_metadata_location(f"{commit_uuid}-m{len(written)}.avro")
        written.append(path)
        return write_manifest(metadata.format_version, metadata.specs()[spec_id], metadata.schema(),
                              io.new_output(path), snapshot_id, codec)  # type: ignore[arg-type]

    old_paths = {f.file_path for f in old_files}
    all_manifests = parent.manifests(io)
    candidates = _partition_manifests(table, ref, all_manifests)
    live = {m.manifest_path: e for m, e in zip(candidates, _live_entries(table, candidates, cache), strict=True)}
    try:
        carried: list[ManifestFile] = []
        deleted: list[ManifestEntry] = []
        for manifest in all_manifests:
            entries = live.get(manifest.manifest_path)
            gone = [e for e in entries or [] if e.data_file.file_path in old_paths]
            if not gone:
                # A manifest with no added or existing entry (the DELETED entries an earlier overwrite
                # wrote) lets no snapshot read anything: dropped, as Java Iceberg's and pyiceberg's
                # append producers drop it, so later snapshots stop naming files long replaced.
                if manifest.has_added_files() or manifest.has_existing_files():
                    carried.append(manifest)
                continue
            deleted.extend(gone)
            if kept := [e for e in entries or [] if e.data_file.file_path not in old_paths]:
                with manifest_writer(manifest.partition_spec_id) as writer:
                    for entry in kept:
                        writer.existing(entry)
                carried.append(writer.to_manifest_file())
        if len(deleted) != len(old_files):
            raise CommitFailedException(f"{len(old_files) - len(deleted)} of the compacted files are no longer live")
        with manifest_writer(ref.spec_id) as added:
            for data_file in new_files:
                added.add(ManifestEntry.from_args(status=ManifestEntryStatus.ADDED, snapshot_id=snapshot_id,
                                                  data_file=data_file))
        with manifest_writer(ref.spec_id) as removed:
            for entry in deleted:
                removed.delete(entry)
        manifests = [added.to_manifest_file(), removed.to_manifest_file(), *carried]
        manifest_list = provider.new_metadata_location(f"snap-{snapshot_id}-0-{commit_uuid}.avro")
        written.append(manifest_list)
        with write_manifest_list(metadata.format_version, io.new_output(manifest_list), snapshot_id,  # type: ignore[arg-type]
                                 parent.snapshot_id, sequence_number, codec) as list_writer:  # type: ignore[arg-type]
            list_writer.add_manifests(manifests)
        snapshot = Snapshot(
            snapshot_id=snapshot_id,
            parent_snapshot_id=parent.snapshot_id,
            sequence_number=sequence_number,
            manifest_list=manifest_list,
            summary=_overwrite_summary(metadata, parent, old_files, new_files, properties),
            schema_id=metadata.current_schema_id,
        )
        updates: list[TableUpdate] = []
        if name_mapping:
            updates.append(SetPropertiesUpdate(
                updates={TableProperties.DEFAULT_NAME_MAPPING: metadata.schema().name_mapping.model_dump_json()}))
        updates += [AddSnapshotUpdate(snapshot=snapshot),
                    SetSnapshotRefUpdate(ref_name=MAIN_BRANCH, type=SnapshotRefType.BRANCH, snapshot_id=snapshot_id)]
        response = table.catalog.commit_table(
            table, (AssertRefSnapshotId(snapshot_id=parent.snapshot_id, ref=MAIN_BRANCH),), tuple(updates))
    except CommitFailedException:
        _delete_quietly(io, written)  # the commit did not land: nothing references them
        raise
    table.metadata, table.metadata_location = response.metadata, response.metadata_location
    return snapshot_id


def _overwrite_summary(
    metadata: TableMetadata,
    parent: Snapshot,
    old_files: list[DataFile],
    new_files: list[DataFile],
    properties: dict[str, str],
) -> Summary:
    """The snapshot summary pyiceberg's producer writes (file, row and size totals), plus ``properties``."""
    limit = int(metadata.properties.get(TableProperties.WRITE_PARTITION_SUMMARY_LIMIT,
                                        TableProperties.WRITE_PARTITION_SUMMARY_LIMIT_DEFAULT))
    collector = SnapshotSummaryCollector(partition_summary_limit=limit)
    schema, specs = metadata.schema(), metadata.specs()
    for data_file in new_files:
        collector.add_file(data_file, partition_spec=specs[data_file.spec_id], schema=schema)
    for data_file in old_files:
        collector.remove_file(data_file, partition_spec=specs[data_file.spec_id], schema=schema)
    return update_snapshot_summaries(Summary(operation=Operation.OVERWRITE, **collector.build(), **properties),
                                     previous_summary=parent.summary)


def _result(
    table: Table,
    ref: PartitionRef,
    engine: CompactionEngine,
    old_files: list[DataFile],
    new_files: list[DataFile],
    snapshot_id: int | None,
    started: float,
    attempts: int,
) -> CompactionResult:
    return CompactionResult(
        table=_table_name(table),
        partition=ref.as_dict(table),
        partition_path=ref.path(table),
        files_before=len(old_files),
        files_after=len(new_files),
        rows=sum(f.record_count for f in new_files),
        seconds=time.perf_counter() - started,
        snapshot_id=snapshot_id,
        engine=engine.name,
        attempts=attempts,
        bytes_before=sum(f.file_size_in_bytes for f in old_files),
        bytes_after=sum(f.file_size_in_bytes for f in new_files),
    )


def compact_table(
    table: Table,
    engine: CompactionEngine,
    sort_columns: Sequence[str],
    min_files: int = 2,
    partitions: Sequence[PartitionRef | Mapping[str, object]] | None = None,
    target_file_bytes: int = DEFAULT_TARGET_FILE_BYTES,
) -> list[CompactionResult]:
    """Compact every partition with at least ``min_files`` files (or just ``partitions``), one commit each.

    One snapshot per partition keeps each commit small and lets a conflict in one partition retry without
    redoing the others.
    """
    targets = (
        [resolve_partition(table, p) for p in partitions]
        if partitions is not None
        else partitions_needing_compaction(table, min_files)
    )
    return [compact_partition(table, ref, engine, sort_columns, target_file_bytes) for ref in targets]


# --------------------------------------------------------------------------------------------- checksum


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


# --------------------------------------------------------------------------------------------- helpers


def _table_name(table: Table) -> str:
    return ".".join(table.name())


def _join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *parts])


def _require_no_nulls_in_required_columns(schema: Schema, files: list[DataFile]) -> None:
    for f in schema.fields:
        if not f.required:
            continue
        for data_file in files:
            nulls = (data_file.null_value_counts or {}).get(f.field_id, 0)
            if nulls:
                raise CompactionError(
                    f"{data_file.file_path} has {nulls} nulls in required column {f.name}; the table is "
                    "inconsistent, fix the file before compacting"
                )


def _spark_type(name: str, iceberg_type: IcebergType) -> SparkDataType:
    from pyspark.sql import types as T

    mapping: dict[type[IcebergType], Callable[[], SparkDataType]] = {
        BooleanType: T.BooleanType,
        IntegerType: T.IntegerType,
        LongType: T.LongType,
        FloatType: T.FloatType,
        DoubleType: T.DoubleType,
        DateType: T.DateType,
        StringType: T.StringType,
        BinaryType: T.BinaryType,
        TimestamptzType: T.TimestampType,
        TimestampType: T.TimestampNTZType,
    }
    if isinstance(iceberg_type, DecimalType):
        return T.DecimalType(iceberg_type.precision, iceberg_type.scale)
    factory = mapping.get(type(iceberg_type))
    if factory is None:
        raise CompactionError(
            f"SparkEngine cannot write column {name} of Iceberg type {iceberg_type}; use InProcessEngine"
        )
    return factory()


def _spark_default(iceberg_type: IcebergType) -> object:
    if isinstance(iceberg_type, StringType):
        return ""
    if isinstance(iceberg_type, BooleanType):
        return False
    if isinstance(iceberg_type, BinaryType):
        return bytearray()
    if isinstance(iceberg_type, DateType):
        return "1970-01-01"
    return 0


@contextmanager
def _spark_conf(spark: SparkSession, settings: Mapping[str, str]) -> Iterator[None]:
    previous = {key: spark.conf.get(key, None) for key in settings}
    for key, value in settings.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)
