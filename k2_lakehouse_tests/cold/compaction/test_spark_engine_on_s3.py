"""The Spark engine on an s3:// table without Hadoop's S3A connector: refused before any job, the table unchanged.

The connector's jars cannot be fetched on this machine (no Maven), so the Spark engine's S3 path itself is not
tested here (README: Deploy, Spark); what is tested is that a session without it fails at once, saying what to do.
"""

from __future__ import annotations

import pytest
from pyspark.sql import SparkSession

from k2_lakehouse.cold.compaction import CompactionError, SparkEngine, compact_partition
from k2_lakehouse_tests.support.silver_table import PARTITION, SORT_COLUMNS, TableMaker, TradeMaker, fragmented

pytestmark = pytest.mark.parametrize("warehouse", ["s3"], indirect=True)


def test_a_session_without_an_s3_filesystem_is_refused_naming_the_table_and_the_fix(
        make_silver: TableMaker, make_trades: TradeMaker, spark: SparkSession) -> None:
    table = make_silver()
    fragmented(table, make_trades)
    snapshots = len(table.snapshots())
    with pytest.raises(CompactionError) as refused:
        compact_partition(table, PARTITION, SparkEngine(spark), SORT_COLUMNS)
    message = str(refused.value)
    assert message.startswith(f"the Spark engine cannot reach {table.location()}: the Spark session maps no "
                              "filesystem to s3://")
    assert "spark.hadoop.fs.s3.impl=org.apache.hadoop.fs.s3a.S3AFileSystem" in message
    assert "engine: in_process" in message
    table.refresh()
    assert len(table.snapshots()) == snapshots, "nothing was committed"
