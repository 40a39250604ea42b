"""The Spark compaction engine: the same content as the in-process engine, in files pyiceberg would write.

On a local warehouse only: Spark reaches S3 through the hadoop-aws connector jars, which cannot be fetched
here (no Maven), so these tests opt out of the s3 warehouse.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import SparkSession

from k2_lakehouse.cold.compaction import (
    InProcessEngine,
    SparkEngine,
    compact_partition,
    compact_table,
    partitions_needing_compaction,
)
from k2_lakehouse_tests.support.cold import content_checksum
from k2_lakehouse_tests.support.object_store import LOCAL_WAREHOUSE_ONLY
from k2_lakehouse_tests.support.silver_table import (
    OTHER_DAY,
    PARTITION,
    SORT_COLUMNS,
    TableMaker,
    TradeMaker,
    added_without_ids,
    assert_sorted,
    assert_sorted_ranges,
    fragmented,
    partition_files,
    rows_by_seq,
)

pytestmark = LOCAL_WAREHOUSE_ONLY


@pytest.mark.slow
def test_spark_engine_gives_identical_content_in_one_sorted_file(
    make_silver: TableMaker, make_trades: TradeMaker, spark: SparkSession
) -> None:
    table = make_silver()
    fragmented(table, make_trades)
    before = content_checksum(table)

    result = compact_partition(table, PARTITION, SparkEngine(spark), SORT_COLUMNS)

    assert (result.engine, result.files_before, result.files_after) == ("spark", 22, 1)
    assert content_checksum(table) == before
    (path,) = partition_files(table)
    assert_sorted(table.io, path, SORT_COLUMNS)
    assert table.current_snapshot().summary["k2.engine"] == "spark"  # type: ignore[union-attr]


def test_spark_engine_reads_files_without_field_ids_by_name(
    make_silver: TableMaker, make_trades: TradeMaker, spark: SparkSession
) -> None:
    table = make_silver()
    next_seq = fragmented(table, make_trades, appends=3)
    added_without_ids(table, make_trades, files=2, seq_start=next_seq)
    before = content_checksum(table)

    result = compact_partition(table, PARTITION, SparkEngine(spark), SORT_COLUMNS)

    assert (result.files_before, result.files_after) == (5, 1)
    assert content_checksum(table) == before


@pytest.mark.slow
def test_spark_engine_splits_output_near_the_target_size_into_sorted_ranges(
    make_silver: TableMaker, make_trades: TradeMaker, spark: SparkSession
) -> None:
    table = make_silver()
    fragmented(table, make_trades, appends=12)
    before = content_checksum(table)
    total = sum(f["file_size_in_bytes"] for f in table.inspect.files().to_pylist())

    result = compact_partition(table, PARTITION, SparkEngine(spark), SORT_COLUMNS, target_file_bytes=total // 3 + 1)

    assert result.files_after == 3  # ceil(input bytes / target)
    assert content_checksum(table) == before
    assert_sorted_ranges(table.io, partition_files(table), SORT_COLUMNS)


@pytest.mark.slow
def test_spark_engine_writes_iceberg_field_ids_types_and_nullability(
    make_silver: TableMaker, make_trades: TradeMaker, spark: SparkSession
) -> None:
    table = make_silver()
    fragmented(table, make_trades, appends=3)

    compact_partition(table, PARTITION, SparkEngine(spark), SORT_COLUMNS)

    (path,) = partition_files(table)
    written = pq.read_schema(path.removeprefix("file://"))
    expected = table.schema().as_arrow()
    for name in expected.names:
        got, want = written.field(name), expected.field(name)
        assert got.metadata[b"PARQUET:field_id"] == want.metadata[b"PARQUET:field_id"]
        assert got.nullable == want.nullable, name
        assert got.type == want.type or (got.type, want.type) == (pa.string(), pa.large_string()), name
    staging = Path(path.removeprefix("file://")).parent
    assert staging.name.startswith("k2-compaction-")
    assert [p.name for p in staging.iterdir()] == [Path(path).name], "Hadoop side files (.crc, _SUCCESS) remain"


@pytest.mark.slow
def test_spark_engine_reads_renamed_columns_by_field_id(
    make_silver: TableMaker, make_trades: TradeMaker, spark: SparkSession
) -> None:
    table = make_silver()
    next_seq = fragmented(table, make_trades, appends=3)
    with table.update_schema() as update:
        update.rename_column("side", "taker_side")
    table.append(make_trades(100, seq_start=next_seq, seed=9).rename_columns({"side": "taker_side"})
                 .cast(table.schema().as_arrow()))
    before = rows_by_seq(table)

    compact_partition(table, PARTITION, SparkEngine(spark), SORT_COLUMNS)

    assert len(partition_files(table)) == 1
    assert rows_by_seq(table).equals(before)


@pytest.mark.slow
def test_both_engines_produce_the_same_table_content(
    make_silver: TableMaker, make_trades: TradeMaker, spark: SparkSession
) -> None:
    in_process, with_spark = make_silver("silver_a"), make_silver("silver_b")
    for table in (in_process, with_spark):
        next_seq = fragmented(table, make_trades, appends=8)
        for i in range(3):
            table.append(make_trades(40, seq_start=next_seq + 40 * i, day=OTHER_DAY, seed=400 + i))

    compact_table(in_process, InProcessEngine(), SORT_COLUMNS)
    compact_table(with_spark, SparkEngine(spark), SORT_COLUMNS)

    assert content_checksum(in_process) == content_checksum(with_spark)
    assert rows_by_seq(in_process).equals(rows_by_seq(with_spark))
    assert partitions_needing_compaction(in_process) == partitions_needing_compaction(with_spark) == []
