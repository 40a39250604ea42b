"""Cold-tier maintenance benchmark: compaction throughput (in-process and Spark) and snapshot expiry.

    .venv/bin/python benchmarks/cold_maintenance.py [--runs 3] [--files 96] [--rows-per-file 30000]
                                                    [--snapshots 1000] [--skip-spark]

Compaction runs on a partition built the way production builds it: one day of one exchange of the real
``cold.silver_trades`` (16 columns, name mapping, zstd), made of ``--files`` Parquet files that ClickHouse
wrote from a warm ``k2.silver_trades`` with the offload's own staging statement and Parquet settings (one
file per quarter hour, each committed as its own snapshot), compacted in the production sort order
(``maintenance.SORT_COLUMNS``). Every run starts from that same pre-compaction snapshot, registered afresh
in the catalog. Throughput is rows / wall time of ``compact_partition`` (plan, read, sort, write, commit);
the median of ``--runs`` runs is reported. Measured in the same run, for comparison: the same engine with
``fast_io=False`` (pyiceberg's own scan and writer), and the floor of any decode-and-encode compaction
with these libraries: reading the files and writing them back with the same reader and writer, unsorted,
without planning or commit. Spark's session start is excluded and reported on its own.

Expiry builds a table with ``--snapshots`` snapshots of hour re-offloads (see ``build_history``), then
times ``expire_snapshots`` keeping the last 3, including deleting every file only the expired snapshots
referenced.
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
import polars as pl
import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.manifest import DataFile, ManifestEntry, ManifestEntryStatus, ManifestFile
from pyiceberg.table import Table, TableProperties
from pyiceberg.table.refs import SnapshotRefType
from pyiceberg.table.snapshots import Operation, Snapshot, Summary

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from k2_lakehouse.cold.compaction import (
    CompactionEngine,
    InProcessEngine,
    SparkEngine,
    compact_partition,
    resolve_partition,
    write_with_polars,
)
from k2_lakehouse.cold.iceberg_internals import (
    AddSnapshotUpdate,
    AssertRefSnapshotId,
    SetSnapshotRefUpdate,
    dataframe_to_data_files,
    write_manifest,
    write_manifest_list,
)
from k2_lakehouse.cold.retention import expire_snapshots
from k2_lakehouse.cold.storage import local_path
from k2_lakehouse_tests.support.cold import content_checksum
from k2_lakehouse_tests.support.silver_table import SILVER_SCHEMA, SILVER_SPEC

DAY = dt.date(2024, 3, 1)
SILVER = "silver_trades"
PARTITION = {"exchange_ts_day": DAY, "exchange_identity": "binance"}
COMPACTION_TARGET_ROWS_PER_S = 3_000_000
EXPIRY_TARGET_S = 10.0

# The 9-column silver-shaped table the maintenance tests use: the expiry history is built on it.
SCHEMA, SPEC = SILVER_SCHEMA, SILVER_SPEC

# A day of synthetic Binance silver trades, four symbols, exact decimals, in the warm table. received_at is
# now because warm keeps rows 30 days from arrival (the TTL would drop them on insert otherwise).
SILVER_DAY_SQL = """
INSERT INTO k2.silver_trades
SELECT 'binance', symbol, replace(symbol, '/', ''), toString(1000000 + number), 1000000 + number,
       toDecimal128(30000 + (cityHash64(number, 3) % 100000) / 100, 12),
       toDecimal128(((number * 7919) % 100000 + 1) / 100000, 12),
       if(cityHash64(number) % 2 = 0, 'sell', 'buy'),
       toDateTime64({day:DateTime('UTC')}, 6, 'UTC') + toIntervalMicrosecond(intDiv(number * 86400000000, {rows:UInt64})),
       toUInt32(1), 'binance-ws', concat('ws-', toString(intDiv(number, 200000))), toUInt32(0), number, toUInt32(0),
       now64(6, 'UTC') + toIntervalMicrosecond(cityHash64(number, 1) % 5000000)
FROM (SELECT number, ['BTC/USDT', 'ETH/USDT', 'SOL/USDT', 'XRP/USDT'][1 + cityHash64(number, 2) % 4] AS symbol
      FROM numbers({rows:UInt64}))
"""


def _decimal(unscaled: np.ndarray) -> pa.Array:
    words = np.empty((len(unscaled), 2), dtype=np.int64)
    words[:, 0] = unscaled
    words[:, 1] = unscaled >> 63
    return pa.Array.from_buffers(pa.decimal128(38, 12), len(unscaled), [None, pa.py_buffer(words.tobytes())])


def trades(n: int, seq_start: int, seed: int, hour: int) -> pa.Table:
    """An hour's offload for the expiry history: 4 symbols, time-ordered within the hour, like real feeds."""
    rng = np.random.default_rng(seed)
    day_start = int(dt.datetime(DAY.year, DAY.month, DAY.day, tzinfo=dt.UTC).timestamp() * 1_000_000)
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


def build_offloaded_partition(home: Path, files: int, rows_per_file: int) -> tuple[Catalog, str]:
    """The real cold.silver_trades holding one day of one exchange as ``files`` offloaded files.

    Returns the catalog and the metadata file of that state, from which every run starts afresh.
    """
    from benchmarks.cold_offload import SEAL, open_store
    from k2_lakehouse.cold.offload import PARQUET_SETTINGS, STAGING_PREFIX, data_dir
    from k2_lakehouse.cold.tables import cold_table

    if 86_400 % files:
        raise SystemExit(f"--files {files} must divide a day into whole seconds (the staging bounds are seconds)")
    client, catalog = open_store(home)
    day = dt.datetime(DAY.year, DAY.month, DAY.day, tzinfo=dt.UTC)
    rows = files * rows_per_file
    client.command(SILVER_DAY_SQL, parameters={"day": day, "rows": rows}, settings=SEAL)
    cold = cold_table(SILVER)
    table = catalog.load_table(cold.identifier)
    folder = local_path(f"{data_dir(table)}/{STAGING_PREFIX}/benchmark")  # the benchmark's warehouse is local
    assert folder is not None
    folder.mkdir(parents=True)
    span = dt.timedelta(days=1) / files
    for n in range(files):
        start, path = day + n * span, folder / f"part-{n:05d}.parquet"
        # The offload's staging statement (offload._write_files) for a span of `span` instead of an hour.
        client.command(
            f"INSERT INTO FUNCTION file({{path:String}}, 'Parquet') {cold.select(False)} AND {cold.file_predicate}",
            settings=PARQUET_SETTINGS,
            parameters={"path": str(path), "start": start, "end": start + span, "file_start": start,
                        "file_end": start + span, "exchange": "binance"})
        table.add_files([f"file://{path}"])  # one snapshot per offload, as production commits them
    stored = sum(f["record_count"] for f in table.inspect.files().to_pylist())
    if stored != rows:
        raise SystemExit(f"the offloaded partition holds {stored:,} rows, not {rows:,}; the benchmark is void")
    client.close()
    return catalog, table.metadata_location


def compaction_runs(catalog: Catalog, metadata_location: str, engine_factory: Callable[[], CompactionEngine],
                    runs: int, label: str) -> list[Run]:
    from k2_lakehouse.cold.maintenance import SORT_COLUMNS

    results = []
    for i in range(runs):
        table = catalog.register_table(("cold", f"{SILVER}_{label}_{i}"), metadata_location)
        before = content_checksum(table)
        started, cpu_started = time.perf_counter(), time.process_time()
        result = compact_partition(table, PARTITION, engine_factory(), SORT_COLUMNS[SILVER])
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
        if content_checksum(table) != before:
            raise SystemExit(f"{label} run {i + 1}: content checksum changed; the benchmark is void")
        results.append(Run(rows=result.rows, seconds=seconds, cpu_seconds=cpu_seconds,
                           files_before=result.files_before, files_after=result.files_after))
        print(f"  {label} run {i + 1}: {result.rows:,} rows in {seconds:.2f} s ({cpu_seconds:.2f} CPU-s in this process, "
              f"{result.rows / seconds:,.0f} rows/s), {result.files_before} -> {result.files_after} files, "
              f"load average {os.getloadavg()[0]:.1f}", flush=True)
    return results


def read_write_floor(catalog: Catalog, metadata_location: str, runs: int) -> list[Run]:
    """Decode the partition's files and encode them again with the engine's own reader and writer, unsorted,
    without planning or commit: what any compaction built on them costs at least."""
    table = catalog.register_table(("cold", f"{SILVER}_floor"), metadata_location)
    paths = [str(local_path(p)) for p in table.inspect.files().column("file_path").to_pylist()]
    ref = resolve_partition(table, PARTITION)
    results = []
    for _ in range(runs):
        started, cpu_started = time.perf_counter(), time.process_time()
        frame = pl.read_parquet(paths, hive_partitioning=False, glob=False)
        written = write_with_polars(table, ref, frame, frame.height)
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
        for uri in written:
            table.io.delete(uri)
        results.append(Run(rows=frame.height, seconds=seconds, cpu_seconds=cpu_seconds,
                           files_before=len(paths), files_after=len(written)))
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
        (new_file,) = dataframe_to_data_files(metadata, trades(500, 100_000 + 500 * i, seed=1000 + i, hour=hour), io)
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
    here = Path.cwd()
    try:
        started = time.perf_counter()
        catalog, metadata_location = build_offloaded_partition(root / "store", args.files, args.rows_per_file)
        total_rows = args.files * args.rows_per_file
        print(f"partition: {args.files} offloaded files x {args.rows_per_file:,} rows = {total_rows:,} rows of "
              f"cold.{SILVER}, built in {time.perf_counter() - started:.1f} s; {os.cpu_count()} CPUs", flush=True)

        def summary(runs: list[Run]) -> str:
            return (f"{statistics.median(r.rows_per_s for r in runs):,.0f} "
                    f"({statistics.median(r.seconds for r in runs):.2f} s, "
                    f"{statistics.median(r.cpu_seconds for r in runs):.2f} CPU-s)")

        in_process = compaction_runs(catalog, metadata_location, InProcessEngine, args.runs, "in-process")
        median_rate = statistics.median(r.rows_per_s for r in in_process)
        files_after = max(r.files_after for r in in_process)
        rows.append(("in-process compaction, median rows/s", summary(in_process),
                     f">= {COMPACTION_TARGET_ROWS_PER_S:,}", verdict(median_rate >= COMPACTION_TARGET_ROWS_PER_S)))
        rows.append(("in-process files after", f"{in_process[0].files_before} -> {files_after}", "1",
                     verdict(files_after == 1)))
        pyiceberg_io = compaction_runs(catalog, metadata_location, lambda: InProcessEngine(fast_io=False),
                                       args.runs, "pyiceberg-io")
        rows.append(("baseline: same engine, pyiceberg scan and writer (fast_io=False)", summary(pyiceberg_io),
                     "-", "-"))
        floor = read_write_floor(catalog, metadata_location, args.runs)
        rows.append(("floor: read + write back unsorted, no plan or commit", summary(floor), "-", "-"))

        if not args.skip_spark:
            from pyspark.sql import SparkSession

            started = time.perf_counter()
            spark = (SparkSession.builder.master("local[2]").appName("k2-cold-bench")
                     .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
                     .config("spark.driver.host", "127.0.0.1")
                     .config("spark.driver.bindAddress", "127.0.0.1").config("spark.driver.memory", "4g")
                     .config("spark.sql.shuffle.partitions", "2").config("spark.sql.session.timeZone", "UTC")
                     .getOrCreate())
            spark.sparkContext.setLogLevel("ERROR")
            spark_start = time.perf_counter() - started
            spark_runs = compaction_runs(catalog, metadata_location, lambda: SparkEngine(spark), args.runs, "spark")
            spark.stop()
            rows.append(("Spark compaction (local[2]), median rows/s", summary(spark_runs), "reported", "-"))
            rows.append(("Spark files after", f"{spark_runs[0].files_before} -> "
                         f"{max(r.files_after for r in spark_runs)}", "reported", "-"))
            rows.append(("Spark session start (excluded above)", f"{spark_start:.2f} s", "reported", "-"))

        build_s, expiry_s, total, deleted, expired = expiry_run(ws, args.snapshots, args.snapshots_per_commit)
        rows.append((f"expire {expired:,} of {total:,} snapshots + delete their files", f"{expiry_s:.2f} s",
                     f"<= {EXPIRY_TARGET_S:.0f} s", verdict(expiry_s <= EXPIRY_TARGET_S)))
        rows.append(("files deleted by expiry", ", ".join(f"{k} {v:,}" for k, v in deleted.items()), "-", "-"))
        rows.append(("building that history (not a target)", f"{build_s:.1f} s", "-", "-"))
    finally:
        os.chdir(here)  # open_store moved into the store: embedded ClickHouse reads files below it
        shutil.rmtree(root, ignore_errors=True)

    print()
    print("| measurement | result | target | met |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
