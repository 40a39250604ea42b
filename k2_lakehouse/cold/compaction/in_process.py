"""The in-process compaction engine: polars reads, sorts and writes a partition's Parquet files.

It needs no cluster, so it is the default engine; its limit is memory (a full sort holds the whole partition),
which ``InProcessEngine.max_partition_bytes`` guards. The engine never commits: it hands back the files it
wrote (or an Arrow table) and :func:`k2_lakehouse.cold.compaction.compact.compact_partition` swaps them in.
"""

from __future__ import annotations

import uuid
from typing import IO, Any, cast

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from pyiceberg.expressions import AlwaysTrue
from pyiceberg.manifest import DataFile
from pyiceberg.table import FileScanTask, Table, TableProperties

from k2_lakehouse.cold.compaction.files import delete_quietly, rows_per_file
from k2_lakehouse.cold.compaction.model import CompactionError, PartitionRef
from k2_lakehouse.cold.compaction.sort_keys import sort_frame
from k2_lakehouse.cold.iceberg_internals import (
    ArrowScan,
    ExecutorFactory,
    pyarrow_to_schema,
    sanitize_column_names,
    schema_to_pyarrow,
)
from k2_lakehouse.cold.storage import local_path


class InProcessEngine:
    """Compacts in this process: polars reads, sorts and writes the Parquet files, pyiceberg commits.

    Fast path (files whose columns resolve to exactly the current Iceberg schema, by their own field
    ids or, for the offload's ClickHouse-written files, which carry none, by the table's name mapping, as a
    scan resolves them): polars reads the files by column name and writes the sorted result with the Iceberg
    field ids and nullability in the Parquet schema, honouring the table's Parquet codec, level and
    row-group limit. That is much faster than reading through pyiceberg's ``ArrowScan`` and writing with
    pyarrow, mostly because polars decodes and encodes columns in parallel.

    Local files are read and written by polars itself; files on object storage through the table's FileIO
    streams (pyarrow's S3 filesystem), same code otherwise.

    Any other case (schema evolved since a file was written) reads through ``ArrowScan``,
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
        locations = [f.file_path for f in files]
        if self.fast_io and _files_match_schema(locations, table):
            # One chunk per file; sort_frame decides whether joining them is worth a copy.
            frame = _read_with_polars(table, locations, [f.name for f in schema.fields])
        else:
            scan = ArrowScan(table.metadata, table.io, schema, AlwaysTrue())
            frame = _to_frame(scan.to_table([FileScanTask(f) for f in files]))
        frame = sort_frame(frame, sort_columns)
        if self.fast_io and _polars_can_write(table):
            return write_with_polars(table, PartitionRef.of(files[0]), frame, rows_per_file(files, target_file_bytes))
        return frame.to_arrow().cast(schema_to_pyarrow(schema, include_field_ids=False))


def _to_frame(data: pa.Table) -> pl.DataFrame:
    frame = pl.from_arrow(data)
    assert isinstance(frame, pl.DataFrame)
    return frame


def _read_with_polars(table: Table, locations: list[str], columns: list[str]) -> pl.DataFrame:
    paths = [str(path) for location in locations if (path := local_path(location)) is not None]
    if len(paths) == len(locations):
        return pl.read_parquet(paths, columns=columns, hive_partitioning=False, glob=False)

    def read(location: str) -> pl.DataFrame:
        with table.io.new_input(location).open() as stream:
            return pl.read_parquet(cast("IO[bytes]", stream), columns=columns)  # a file-like pyarrow stream

    return pl.concat(list(ExecutorFactory.get_or_create().map(read, locations)), rechunk=False)


def _read_schema(table: Table, location: str) -> pa.Schema:
    with table.io.new_input(location).open() as stream:
        return pq.read_schema(stream)


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
    schemas = ExecutorFactory.get_or_create().map(lambda path: _read_schema(table, path), paths)
    distinct = {s.serialize().to_pybytes(): s for s in schemas}
    return all(matches(arrow_schema) for arrow_schema in distinct.values())


POLARS_CODECS = {"zstd", "snappy", "gzip", "lz4", "brotli", "uncompressed"}
ARROW_DEFAULT_LEVELS = {"zstd": 1}


def _polars_can_write(table: Table) -> bool:
    codec = table.properties.get(TableProperties.PARQUET_COMPRESSION, TableProperties.PARQUET_COMPRESSION_DEFAULT)
    schema = table.schema()
    return (
        codec in POLARS_CODECS
        and sanitize_column_names(schema) == schema
        and all(f.field_type.is_primitive for f in schema.fields)
    )


def write_with_polars(table: Table, ref: PartitionRef, frame: pl.DataFrame, rows_per_file: int) -> list[str]:
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
            options: dict[str, Any] = {
                "compression": codec, "compression_level": int(level) if level else None,
                "row_group_size": row_group_rows, "statistics": True, "arrow_schema": arrow_schema}
            chunk = frame.slice(offset, rows_per_file)
            if (target := local_path(uri)) is not None:
                chunk.write_parquet(target, mkdir=True, **options)
            else:
                with table.io.new_output(uri).create() as stream:
                    chunk.write_parquet(cast("IO[bytes]", stream), **options)  # a file-like pyarrow stream
    except BaseException:
        delete_quietly(table.io, written)
        raise
    return written
