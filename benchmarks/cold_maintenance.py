"""Cold-tier maintenance benchmark: compaction throughput (in-process and Spark) and snapshot expiry.

    .venv/bin/python benchmarks/cold_maintenance.py [--runs 3] [--files 96] [--rows-per-file 30000]
                                                    [--snapshots 1000] [--skip-spark]

Each compaction run gets a fresh table whose single partition (one day, one exchange) was built by
``--files`` separate appends, as 15-minute offloads build it. Throughput is rows / wall time of
``compact_partition`` (read, sort, write, commit); the median of ``--runs`` runs is reported. Spark's
session start is excluded and reported on its own. Expiry builds a table with ``--snapshots`` snapshots
of hour re-offloads (see ``build_history``), then times ``expire_snapshots`` keeping the last 3,
including deleting every file only the expired snapshots referenced.
Targets come from the issue: >= 3,000,000 rows/s in-process with one file per partition after, and
expiry of 1,000 snapshots in <= 10 s.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.io.pyarrow import _dataframe_to_data_files
from pyiceberg.manifest import (
    DataFile,
    ManifestEntry,
    ManifestEntryStatus,
    ManifestFile,
    write_manifest,
    write_manifest_list,
)
from pyiceberg.table import Table, TableProperties
from pyiceberg.table.refs import SnapshotRefType
from pyiceberg.table.snapshots import Operation, Snapshot, Summary
from pyiceberg.table.update import AddSnapshotUpdate, AssertRefSnapshotId, SetSnapshotRefUpdate

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from k2_lakehouse.cold.compaction import (
    CompactionEngine,
    InProcessEngine,
    SparkEngine,
    compact_partition,
    content_checksum,
)
from k2_lakehouse.cold.retention import expire_snapshots
from k2_lakehouse_tests.maintenance.conftest import SILVER_SCHEMA, SILVER_SPEC

DAY = dt.date(2024, 3, 1)
PARTITION = {"exchange_ts_day": DAY, "exchange": "binance"}
SORT_COLUMNS = ["symbol", "exchange_ts"]
COMPACTION_TARGET_ROWS_PER_S = 3_000_000
EXPIRY_TARGET_S = 10.0

# The silver-shaped table the maintenance tests use.
SCHEMA, SPEC = SILVER_SCHEMA, SILVER_SPEC


def _decimal(unscaled: np.ndarray) -> pa.Array:
    words = np.empty((len(unscaled), 2), dtype=np.int64)
    words[:, 0] = unscaled
    words[:, 1] = unscaled >> 63
    return pa.Array.from_buffers(pa.decimal128(38, 12), len(unscaled), [None, pa.py_buffer(words.tobytes())])


def trades(n: int, seq_start: int, seed: int, hour: int | None = None) -> pa.Table:
    """A 15-minute offload's worth of trades: 4 symbols, time-ordered within the slice, like real feeds."""
    rng = np.random.default_rng(seed)
    day_start = int(dt.datetime(DAY.year, DAY.month, DAY.day, tzinfo=dt.UTC).timestamp() * 1_000_000)
    if hour is None:
        start = day_start + (seed % 96) * 900_000_000
        span = 900_000_000
    else:
        start, span = day_start + hour * 3_600_000_000, 3_600_000_000
    ts = np.sort(start + rng.integers(0, span, n))
    seq = np.arange(seq_start, seq_start + n, dtype=np.int64)
    price = rng.integers(1, 100_000, n) * 10**10 + rng.integers(0, 10**10, n)
    return pa.table(
        {
            "exchange": pa.array(np.full(n, "binance"), pa.large_string()),
            "symbol": pa.array(rng.choice(np.array(["BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT"]), n), pa.large_string()),
            "trade_id": pa.array(seq.astype(str), pa.large_string()),
            "trade_seq": pa.array(seq),
            "price": _decimal(price),
            "quantity": _decimal(rng.integers(1, 10**13, n)),
            "side": pa.array(rng.choice(np.array(["buy", "sell"]), n), pa.large_string()),
            "exchange_ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
            "received_at": pa.array(ts + rng.integers(0, 5_000_000, n), pa.timestamp("us", tz="UTC")),
        },
        schema=SCHEMA.as_arrow(),
    )


@dataclass(frozen=True)
class Run:
    rows: int
    seconds: float
    cpu_seconds: float  # this process, polars' threads included: unlike wall time, not inflated by other load
    files_before: int
    files_after: int

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds


class Workspace:
    """A throwaway SqlCatalog (sqlite) + local warehouse, one per table so runs do not share state."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.count = 0

    def table(self, name: str, properties: dict[str, str] | None = None) -> Table:
        self.count += 1
        home = self.root / f"{name}-{self.count}"
        home.mkdir()
        catalog = SqlCatalog("bench", uri=f"sqlite:///{home / 'catalog.db'}", warehouse=f"file://{home / 'wh'}")
        catalog.create_namespace("cold")
        return catalog.create_table("cold.silver_trades", SCHEMA, partition_spec=SPEC, properties=properties or {})


def fragmented_table(ws: Workspace, offloads: list[pa.Table]) -> Table:
    table = ws.table("compaction")
    for batch in offloads:
        table.append(batch)
    return table


def compaction_runs(
    ws: Workspace, offloads: list[pa.Table], engine_factory: Callable[[], CompactionEngine], runs: int
) -> list[Run]:
    results = []
    for i in range(runs):
        table = fragmented_table(ws, offloads)
        before = content_checksum(table)
        started, cpu_started = time.perf_counter(), time.process_time()
        result = compact_partition(table, PARTITION, engine_factory(), SORT_COLUMNS)
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
        if content_checksum(table) != before:
            raise SystemExit(f"{result.engine} run {i + 1}: content checksum changed; the benchmark is void")
        results.append(Run(rows=result.rows, seconds=seconds, cpu_seconds=cpu_seconds,
                           files_before=result.files_before, files_after=result.files_after))
        print(f"  {result.engine} run {i + 1}: {result.rows:,} rows in {seconds:.2f} s ({cpu_seconds:.2f} CPU-s in this process, "
              f"{result.rows / seconds:,.0f} rows/s), {result.files_before} -> {result.files_after} files, "
              f"load average {os.getloadavg()[0]:.1f}", flush=True)
        shutil.rmtree(Path(table.location().removeprefix("file://")).parents[2], ignore_errors=True)
    return results


def build_history(ws: Workspace, snapshots: int, per_commit: int) -> Table:
    """A table with ``snapshots`` snapshots shaped like a week of offloads and hour re-offloads.

    24 hourly files are appended the normal way; every later snapshot re-offloads one hour: an OVERWRITE
    that deletes the hour's previous file and adds a new one, leaving the replaced file to garbage. Those
    snapshots are written with pyiceberg's own writers (data file, added manifest, deleted-entries manifest,
    manifest list carrying the other hours' manifests, as its overwrite produces) and committed
    ``per_commit`` at a time through ``catalog.commit_table``: committing them one by one through
    ``Table.overwrite`` takes ~13 minutes at this size, because every pyiceberg commit deep-copies the
    whole (growing) table metadata many times.
    """
    table = ws.table("expiry")
    hour_snapshot: dict[int, int] = {}
    for hour in range(24):
        table.append(trades(500, hour * 500, seed=hour, hour=hour))
        hour_snapshot[hour] = table.current_snapshot().snapshot_id  # type: ignore[union-attr]
    io, metadata = table.io, table.metadata
    live: dict[int, tuple[DataFile, ManifestFile, int]] = {}
    for manifest in table.current_snapshot().manifests(io):  # type: ignore[union-attr]
        (entry,) = manifest.fetch_manifest_entry(io)
        hour = next(h for h, sid in hour_snapshot.items() if sid == manifest.added_snapshot_id)
        live[hour] = (entry.data_file, manifest, entry.sequence_number or 0)

    spec, schema, provider = metadata.spec(), metadata.schema(), table.location_provider()
    codec = metadata.properties.get(TableProperties.WRITE_AVRO_COMPRESSION, TableProperties.WRITE_AVRO_COMPRESSION_DEFAULT)
    parent, sequence, ts = metadata.current_snapshot_id, metadata.last_sequence_number, metadata.last_updated_ms
    used = {s.snapshot_id for s in metadata.snapshots}
    pending: list[Snapshot] = []
    rng = np.random.default_rng(7)
    for i in range(snapshots - len(metadata.snapshots)):
        hour = i % 24
        snapshot_id = int(rng.integers(1, 2**62))
        while snapshot_id in used:
            snapshot_id = int(rng.integers(1, 2**62))
        used.add(snapshot_id)
        sequence, ts, commit = sequence + 1, ts + 1, uuid.uuid4()
        (new_file,) = _dataframe_to_data_files(metadata, trades(500, 100_000 + 500 * i, seed=1000 + i, hour=hour), io)
        old_file, old_manifest, old_sequence = live[hour]
        with write_manifest(metadata.format_version, spec, schema,
                            io.new_output(provider.new_metadata_location(f"{commit}-m0.avro")), snapshot_id, codec) as w:
            w.add(ManifestEntry.from_args(status=ManifestEntryStatus.ADDED, snapshot_id=snapshot_id, data_file=new_file))
        added = w.to_manifest_file()
        with write_manifest(metadata.format_version, spec, schema,
                            io.new_output(provider.new_metadata_location(f"{commit}-m1.avro")), snapshot_id, codec) as w:
            w.delete(ManifestEntry.from_args(status=ManifestEntryStatus.EXISTING, snapshot_id=old_manifest.added_snapshot_id,
                                             sequence_number=old_sequence, file_sequence_number=old_sequence,
                                             data_file=old_file))
        manifests = [added, w.to_manifest_file()] + [m for h, (_, m, _) in sorted(live.items()) if h != hour]
        manifest_list = provider.new_metadata_location(f"snap-{snapshot_id}-0-{commit}.avro")
        with write_manifest_list(metadata.format_version, io.new_output(manifest_list), snapshot_id, parent, sequence,
                                 codec) as lw:
            lw.add_manifests(manifests)
        added = copy.copy(added)
        added.sequence_number = added.min_sequence_number = sequence  # as the list writer assigned them
        live[hour] = (new_file, added, sequence)
        pending.append(Snapshot(snapshot_id=snapshot_id, parent_snapshot_id=parent, sequence_number=sequence,
                                timestamp_ms=ts, manifest_list=manifest_list, schema_id=schema.schema_id,
                                summary=Summary(Operation.OVERWRITE, **{"added-data-files": "1",
                                                                        "deleted-data-files": "1"})))
        parent = snapshot_id
        if len(pending) == per_commit or i == snapshots - len(metadata.snapshots) - 1:
            table.catalog.commit_table(
                table,
                requirements=(AssertRefSnapshotId(snapshot_id=pending[0].parent_snapshot_id, ref="main"),),
                updates=(*(AddSnapshotUpdate(snapshot=s) for s in pending),
                         SetSnapshotRefUpdate(ref_name="main", type=SnapshotRefType.BRANCH, snapshot_id=snapshot_id)),
            )
            table.refresh()
            pending = []
    return table


def expiry_run(ws: Workspace, snapshots: int, per_commit: int) -> tuple[float, float, int, dict[str, int], int]:
    started = time.perf_counter()
    table = build_history(ws, snapshots, per_commit)
    build_s = time.perf_counter() - started
    total = len(table.metadata.snapshots)
    before = content_checksum(table)
    if before[0] != 24 * 500:
        raise SystemExit(f"the built history holds {before[0]} rows instead of {24 * 500}; the benchmark is void")
    result = expire_snapshots(table, retain_last=3, now=dt.datetime.now(dt.UTC) + dt.timedelta(days=8))
    if content_checksum(table) != before:
        raise SystemExit("expiry changed the table content; the benchmark is void")
    for snapshot in table.snapshots():  # every remaining snapshot must still read in full
        table.scan(snapshot_id=snapshot.snapshot_id).to_arrow()
    return build_s, result.seconds, total, result.files_deleted, result.snapshots_expired


def verdict(ok: bool) -> str:
    return "yes" if ok else "**no**"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--files", type=int, default=96)
    parser.add_argument("--rows-per-file", type=int, default=30_000)
    parser.add_argument("--snapshots", type=int, default=1000)
    parser.add_argument("--snapshots-per-commit", type=int, default=10)
    parser.add_argument("--skip-spark", action="store_true")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="k2-cold-bench-"))
    ws = Workspace(root)
    rows: list[tuple[str, str, str, str]] = []
    try:
        offloads = [trades(args.rows_per_file, i * args.rows_per_file, seed=i) for i in range(args.files)]
        total_rows = args.files * args.rows_per_file
        print(f"partition: {args.files} files x {args.rows_per_file:,} rows = {total_rows:,} rows; "
              f"{os.cpu_count()} CPUs", flush=True)

        in_process = compaction_runs(ws, offloads, InProcessEngine, args.runs)
        median_rate = statistics.median(r.rows_per_s for r in in_process)
        files_after = max(r.files_after for r in in_process)
        rows.append(("in-process compaction, median rows/s", f"{median_rate:,.0f} "
                     f"({statistics.median(r.seconds for r in in_process):.2f} s, "
                     f"{statistics.median(r.cpu_seconds for r in in_process):.2f} CPU-s)",
                     f">= {COMPACTION_TARGET_ROWS_PER_S:,}", verdict(median_rate >= COMPACTION_TARGET_ROWS_PER_S)))
        rows.append(("in-process files after", f"{in_process[0].files_before} -> {files_after}", "1",
                     verdict(files_after == 1)))

        if not args.skip_spark:
            from pyspark.sql import SparkSession

            started = time.perf_counter()
            spark = (SparkSession.builder.master("local[2]").appName("k2-cold-bench")
                     .config("spark.ui.enabled", "false").config("spark.driver.host", "127.0.0.1")
                     .config("spark.driver.bindAddress", "127.0.0.1").config("spark.driver.memory", "4g")
                     .config("spark.sql.shuffle.partitions", "2").config("spark.sql.session.timeZone", "UTC")
                     .getOrCreate())
            spark.sparkContext.setLogLevel("ERROR")
            spark_start = time.perf_counter() - started
            spark_runs = compaction_runs(ws, offloads, lambda: SparkEngine(spark), args.runs)
            spark.stop()
            rows.append(("Spark compaction (local[2]), median rows/s",
                         f"{statistics.median(r.rows_per_s for r in spark_runs):,.0f} "
                         f"({statistics.median(r.seconds for r in spark_runs):.2f} s)", "reported", "-"))
            rows.append(("Spark files after", f"{spark_runs[0].files_before} -> "
                         f"{max(r.files_after for r in spark_runs)}", "reported", "-"))
            rows.append(("Spark session start (excluded above)", f"{spark_start:.2f} s", "reported", "-"))

        build_s, expiry_s, total, deleted, expired = expiry_run(ws, args.snapshots, args.snapshots_per_commit)
        rows.append((f"expire {expired:,} of {total:,} snapshots + delete their files", f"{expiry_s:.2f} s",
                     f"<= {EXPIRY_TARGET_S:.0f} s", verdict(expiry_s <= EXPIRY_TARGET_S)))
        rows.append(("files deleted by expiry", ", ".join(f"{k} {v:,}" for k, v in deleted.items()), "-", "-"))
        rows.append(("building that history (not a target)", f"{build_s:.1f} s", "-", "-"))
    finally:
        shutil.rmtree(root, ignore_errors=True)

    print()
    print("| measurement | result | target | met |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
