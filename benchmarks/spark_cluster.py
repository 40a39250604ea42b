"""Compaction of the 96-file day: in-process, Spark local[2], and a Spark standalone cluster, in one run.

    .venv/bin/python benchmarks/spark_cluster.py [--runs 3] [--files 96] [--rows-per-file 30000]

The partition is cold_maintenance.py's (`build_offloaded_partition`: one day of `cold.silver_trades` as 96
files the offload's own staging statement wrote), and every run starts from its pre-compaction snapshot and
checks the content checksum after (`compaction_runs`). The cluster is a real standalone master and one
worker (2 cores, 2g) on loopback, started from pyspark's package (k2_lakehouse_tests/support/spark_cluster.py),
so it has the same two cores as local[2] and the in-process engine: what it shows is the cost of reaching
executors in another JVM, not more hardware. Medians of `--runs`; each engine's median time is also given as a
multiple of the in-process engine's from the same run. Session starts are excluded and reported apart (the
cluster's session reuses the driver JVM that local[2]'s started, so its start is the application's alone). CPU-s
are this Python process's only: Spark's work happens in JVMs (the driver's, and the worker's executors).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.cold_maintenance import Run, build_offloaded_partition, compaction_runs
from k2_lakehouse.cold.compaction import InProcessEngine, SparkEngine
from k2_lakehouse_tests.support.spark_cluster import spark_cluster


def session(master: str, name: str, **config: str) -> object:
    from pyspark.sql import SparkSession

    builder = (SparkSession.builder.master(master).appName(name)
               .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
               .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
               .config("spark.sql.shuffle.partitions", "2").config("spark.sql.session.timeZone", "UTC"))
    for key, value in config.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--files", type=int, default=96)
    parser.add_argument("--rows-per-file", type=int, default=30_000)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="k2-spark-cluster-bench-"))
    here = Path.cwd()
    medians: list[tuple[str, list[Run], str]] = []
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    try:
        catalog, metadata = build_offloaded_partition(root / "store", args.files, args.rows_per_file)
        print(f"partition: {args.files} files x {args.rows_per_file:,} rows; {os.cpu_count()} CPUs, "
              f"load average {os.getloadavg()[0]:.1f}", flush=True)

        medians.append(("in-process", compaction_runs(catalog, metadata, InProcessEngine, args.runs, "in-process"), "-"))

        started = time.perf_counter()
        spark = session("local[2]", "k2-bench-local", **{"spark.driver.memory": "4g"})
        start_s = time.perf_counter() - started
        local = compaction_runs(catalog, metadata, lambda: SparkEngine(spark), args.runs, "local2")  # type: ignore[arg-type]
        spark.stop()  # type: ignore[attr-defined]
        medians.append(("Spark local[2]", local, f"{start_s:.1f} s"))

        with spark_cluster(root / "spark", cores=2, memory="2g") as cluster:
            started = time.perf_counter()
            spark = session(cluster.master_url, "k2-bench-cluster", **{
                "spark.driver.memory": "1g", "spark.executor.memory": "2g", "spark.cores.max": "2"})
            start_s = time.perf_counter() - started
            on_cluster = compaction_runs(catalog, metadata, lambda: SparkEngine(spark), args.runs, "cluster")  # type: ignore[arg-type]
            spark.stop()  # type: ignore[attr-defined]
            apps = [a for a in cluster.applications() if a.get("name") == "k2-bench-cluster"]
            if not apps:
                raise SystemExit("the cluster's master has no record of the benchmark's application; the run is void")
        medians.append((f"Spark standalone cluster (1 worker, {apps[0]['cores']} cores)", on_cluster, f"{start_s:.1f} s"))
    finally:
        os.chdir(here)  # build_offloaded_partition works inside the store: embedded ClickHouse reads below it
        shutil.rmtree(root, ignore_errors=True)

    baseline = statistics.median(r.seconds for r in medians[0][1])
    print(f"\nload average at the end {os.getloadavg()[0]:.1f} (the machine is shared: other work ran meanwhile)")
    print("| engine | median s | median rows/s | × in-process time | files | session start (excluded) |")
    print("|---|---|---|---|---|---|")
    for name, runs, start in medians:
        seconds = statistics.median(r.seconds for r in runs)
        rate = statistics.median(r.rows_per_s for r in runs)
        files = f"{runs[0].files_before} -> {max(r.files_after for r in runs)}"
        print(f"| {name} | {seconds:.2f} | {rate:,.0f} | {seconds / baseline:.1f} | {files} | {start} |")


if __name__ == "__main__":
    main()
