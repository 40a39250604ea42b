"""Turning an engine's output into Iceberg data files: written by pyiceberg's writer, or registered as found.

An engine hands back either an Arrow table (written here with pyiceberg's own Parquet writer, field ids and
column statistics included) or Parquet files it wrote itself (described here the way ``add_files`` describes
them, and checked to hold only the partition being compacted). Either way the result is a list of
``DataFile`` ready for the commit.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence

import pyarrow as pa
from pyiceberg.io import FileIO
from pyiceberg.manifest import DataFile, DataFileContent, FileFormat
from pyiceberg.table.metadata import TableMetadata

from k2_lakehouse.cold.compaction.model import CompactionError, PartitionRef
from k2_lakehouse.cold.iceberg_internals import (
    ExecutorFactory,
    FileFormatFactory,
    load_location_provider,
    parquet_file_to_data_file,
    sanitize_column_names,
    to_requested_schema,
)

logger = logging.getLogger(__name__)


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
            to_requested_schema(file_schema, schema, batch, include_field_ids=True, format_model=format_model)
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


def materialize(
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
        return _write_data_files(metadata, io, ref, output, rows_per_file(old_files, target_file_bytes))
    return _register_files(metadata, io, ref, output)


def rows_per_file(old_files: list[DataFile], target_file_bytes: int) -> int:
    """Rows per output file so files land near the target on disk, judged by the inputs' bytes per row."""
    rows_in = sum(f.record_count for f in old_files)
    bytes_per_row = max(1.0, sum(f.file_size_in_bytes for f in old_files) / max(1, rows_in))
    return max(1, int(target_file_bytes / bytes_per_row))


def delete_quietly(io: FileIO, paths: Sequence[str]) -> None:
    for path in paths:
        try:
            io.delete(path)
        except FileNotFoundError:
            pass
        except OSError:
            logger.warning("could not delete %s; remove_orphan_files will collect it", path, exc_info=True)
