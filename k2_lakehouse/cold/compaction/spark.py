"""The Spark compaction engine: Spark reads, sorts and writes the Parquet files; pyiceberg commits.

The only module of the project that imports pyspark, and only inside the functions that need it (or for
type checking), so the package imports without Spark installed or started.
"""

from __future__ import annotations

import functools
import math
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

import pyarrow.parquet as pq
from pyiceberg.io import FileIO
from pyiceberg.manifest import DataFile
from pyiceberg.schema import Schema
from pyiceberg.table import Table
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

from k2_lakehouse.cold.compaction.model import CompactionError, PartitionRef
from k2_lakehouse.cold.iceberg_internals import ExecutorFactory
from k2_lakehouse.cold.storage import is_object_store, list_files

if TYPE_CHECKING:
    from pyspark.sql import Column, SparkSession
    from pyspark.sql.types import DataType as SparkDataType


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

        _require_s3_connector(self.spark, table)
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


S3_FILESYSTEM_SETTING = "spark.hadoop.fs.s3.impl"


def _require_s3_connector(spark: SparkSession, table: Table) -> None:
    """Refuse an s3:// table before any job starts when the session maps no filesystem to s3://.

    Hadoop has none of its own: without Hadoop's S3A connector mapped to the scheme (README, Deploy, Spark) the
    first read fails deep in a Spark job with "No FileSystem for scheme". The mapping is the session's to make
    (the image's entry point writes it into spark-defaults.conf), so that is what is checked.
    """
    if is_object_store(table.io, table.location()) and not spark.conf.get(S3_FILESYSTEM_SETTING, ""):
        raise CompactionError(
            f"the Spark engine cannot reach {table.location()}: the Spark session maps no filesystem to s3:// "
            f"({S3_FILESYSTEM_SETTING} is unset). Install Hadoop's S3A connector on the cluster and set "
            f"{S3_FILESYSTEM_SETTING}=org.apache.hadoop.fs.s3a.S3AFileSystem (README: Deploy, Spark), or compact "
            "with engine: in_process")


def _has_field_ids(io: FileIO, path: str) -> bool:
    with io.new_input(path).open() as stream:
        return all(field.metadata and b"PARQUET:field_id" in field.metadata for field in pq.read_schema(stream))


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
        for key, old in previous.items():
            if old is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, old)
