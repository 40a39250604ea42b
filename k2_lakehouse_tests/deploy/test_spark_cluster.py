"""Compaction on a real Spark standalone cluster equals the in-process engine's, row for row.

The cluster (a master and a 2-core worker, started by the `standalone_spark` fixture) is reached the way a
deployment reaches one: K2_SPARK_MASTER=spark://127.0.0.1:PORT, read by the product's Spark resource. The
Spark compaction runs in a process of its own, as a run does, so its SparkContext is the cluster's whatever
session the rest of the suite holds. Two identical tables of many small files are compacted, one by the
in-process engine and one on the cluster; both are compared with the rows the test generated itself, and the
master's own record shows the application ran there.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import subprocess
import sys
import uuid

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.table import Table

from k2_lakehouse.cold.compaction import InProcessEngine, compact_table
from k2_lakehouse_tests.support.silver_table import DAY, SILVER_SCHEMA, SILVER_SPEC, SORT_COLUMNS, SYMBOLS
from k2_lakehouse_tests.support.spark_cluster import SparkCluster

pytestmark = pytest.mark.slow


# The compaction as a run executes it: the product's Spark resource, configured from the environment.
COMPACT_ON_CLUSTER = """
import json, sys
from pyiceberg.catalog.sql import SqlCatalog
from k2_lakehouse.cold.compaction import SparkEngine, compact_table
from k2_lakehouse.defs.resources import Spark, spark_config
from k2_lakehouse.settings import load_settings

uri, warehouse, name, app_name, sort_columns = sys.argv[1:6]
table = SqlCatalog("k2test", uri=uri, warehouse=warehouse).load_table(name)
spark = Spark(spark_config={**spark_config(load_settings()), "spark.app.name": app_name}).spark_session
try:
    results = compact_table(table, SparkEngine(spark), sort_columns.split(","))
    print(json.dumps({"master": spark.sparkContext.master,
                      "results": [[r.engine, r.files_before, r.files_after, r.rows] for r in results]}))
finally:
    spark.stop()
"""


def decimal(unscaled: np.ndarray) -> pa.Array:
    words = np.empty((len(unscaled), 2), dtype=np.int64)
    words[:, 0] = unscaled
    words[:, 1] = unscaled >> 63
    return pa.Array.from_buffers(pa.decimal128(38, 12), len(unscaled), [None, pa.py_buffer(words.tobytes())])


def trades(n: int, seq_start: int, seed: int, day: dt.date = DAY) -> pa.Table:
    """n binance trades on `day` in random time order, unique trade_seq from seq_start."""
    rng = np.random.default_rng(seed)
    start = int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() * 1_000_000)
    ts = start + rng.integers(0, 86_400_000_000, n)
    seq = np.arange(seq_start, seq_start + n, dtype=np.int64)
    return pa.table({
        "exchange": pa.array(np.full(n, "binance"), pa.large_string()),
        "symbol": pa.array(rng.choice(SYMBOLS, n), pa.large_string()),
        "trade_id": pa.array(seq.astype(str), pa.large_string()),
        "trade_seq": pa.array(seq),
        "price": decimal(rng.integers(1, 100_000, n) * 10**10 + rng.integers(0, 10**10, n)),
        "quantity": decimal(rng.integers(1, 10**13, n)),
        "side": pa.array(rng.choice(np.array(["buy", "sell"]), n), pa.large_string()),
        "exchange_ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
        "received_at": pa.array(ts + rng.integers(0, 5_000_000, n), pa.timestamp("us", tz="UTC")),
    }, schema=SILVER_SCHEMA.as_arrow())


def appends() -> list[pa.Table]:
    """Offload-sized appends: 12 into DAY, 3 into the day after (two partitions with several files each)."""
    batches = [trades(400, seq_start=400 * i, seed=i) for i in range(12)]
    batches += [trades(50, seq_start=10_000 + 50 * i, seed=100 + i, day=DAY + dt.timedelta(days=1)) for i in range(3)]
    return batches


def rows(table: Table) -> pa.Table:
    """The table's content in one canonical schema and order (files Spark wrote read back as string)."""
    return table.scan().to_arrow().cast(SILVER_SCHEMA.as_arrow()).sort_by("trade_seq")


def live_files(table: Table) -> list[str]:
    return [f["file_path"] for f in table.inspect.files().to_pylist()]


@pytest.fixture(scope="module")
def compacted(standalone_spark: SparkCluster, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Two identical tables, one compacted in-process and one on the cluster; what each run reported."""
    root = tmp_path_factory.mktemp("cluster-compaction")
    uri, warehouse = f"sqlite:///{root / 'catalog.db'}", f"file://{root / 'warehouse'}"
    catalog = SqlCatalog("k2test", uri=uri, warehouse=warehouse)
    catalog.create_namespace("cold")
    tables = {name: catalog.create_table(f"cold.{name}", SILVER_SCHEMA, partition_spec=SILVER_SPEC)
              for name in ("in_process", "on_cluster")}
    generated = appends()
    for table, batch in itertools.product(tables.values(), generated):
        table.append(batch)

    in_process = compact_table(tables["in_process"], InProcessEngine(), SORT_COLUMNS)

    app_name = f"k2-compaction-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "K2_SPARK_MASTER": standalone_spark.master_url, "SPARK_LOCAL_IP": "127.0.0.1",
           "PYSPARK_PYTHON": sys.executable}
    child = subprocess.run(
        [sys.executable, "-c", COMPACT_ON_CLUSTER, uri, warehouse, "cold.on_cluster", app_name, ",".join(SORT_COLUMNS)],
        env=env, capture_output=True, text=True, timeout=600)
    assert child.returncode == 0, child.stderr[-4000:]
    reported = json.loads(child.stdout.strip().splitlines()[-1])
    for table in tables.values():
        table.refresh()
    return {
        "tables": tables, "app_name": app_name, "cluster": reported, "in_process": in_process,
        "expected": pa.concat_tables(generated).cast(SILVER_SCHEMA.as_arrow()).sort_by("trade_seq"),
    }


def test_the_compaction_ran_against_the_clusters_master(compacted: dict, standalone_spark: SparkCluster) -> None:
    assert compacted["cluster"]["master"] == standalone_spark.master_url


def test_the_application_registered_with_the_master_and_finished(compacted: dict, standalone_spark: SparkCluster) -> None:
    apps = {app["name"]: app for app in standalone_spark.applications()}
    assert compacted["app_name"] in apps
    assert apps[compacted["app_name"]]["state"] == "FINISHED"
    assert apps[compacted["app_name"]]["cores"] == 2  # the worker's cores


def test_the_cluster_merged_each_partition_into_one_file(compacted: dict) -> None:
    assert sorted(compacted["cluster"]["results"]) == [["spark", 3, 1, 150], ["spark", 12, 1, 4800]]
    assert len(live_files(compacted["tables"]["on_cluster"])) == 2


def test_the_clusters_content_equals_the_generated_rows_and_the_in_process_result_row_for_row(compacted: dict) -> None:
    on_cluster, in_process = rows(compacted["tables"]["on_cluster"]), rows(compacted["tables"]["in_process"])

    assert on_cluster.equals(compacted["expected"])
    assert on_cluster.equals(in_process)


def test_the_clusters_files_are_sorted_by_the_sort_columns(compacted: dict) -> None:
    for path in live_files(compacted["tables"]["on_cluster"]):
        keys = pq.read_table(path.removeprefix("file://"), columns=SORT_COLUMNS)
        assert keys.equals(keys.sort_by([(c, "ascending") for c in SORT_COLUMNS])), path


def test_the_snapshot_records_the_spark_engine(compacted: dict) -> None:
    snapshot = compacted["tables"]["on_cluster"].current_snapshot()
    assert snapshot is not None and snapshot.summary["k2.engine"] == "spark"
