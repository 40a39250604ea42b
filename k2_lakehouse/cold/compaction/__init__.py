"""Data-file compaction for the cold tier (Iceberg tables written by pyiceberg).

Offloads land one or more Parquet files per partition every 15 minutes and re-offloads replace an hour's
rows, so a day partition of ``cold.silver_trades`` ends up with ~100 small files. Readers pay per file
(footer read, open, planning), so this package rewrites each partition's live data files into a few large
files sorted by the table's natural order, and swaps them in with one atomic Iceberg snapshot.

pyiceberg 0.12 has no ``rewrite_data_files``; the pieces used here are its own:

* the live files of a partition come from the current snapshot's manifests
  (``snapshot.manifests(io)`` + ``ManifestFile.fetch_manifest_entry``), pruned with the partition summaries
  (:mod:`.planning`);
* the swap is a single OVERWRITE snapshot, so readers see either all old files or all new files, never both
  and never neither. It is the snapshot ``Transaction.update_snapshot().overwrite()`` would produce, written
  with pyiceberg's manifest and manifest-list writers from the manifest entries already read for planning,
  and committed with ``Catalog.commit_table`` under the requirement that the branch head has not moved
  (:mod:`.commit`);
* new files carry the Iceberg field ids, types and nullability in their Parquet schema; files an engine
  wrote itself (polars in-process, Spark) are described with ``parquet_file_to_data_file`` (the function
  behind ``add_files``: schema check, column statistics, partition from the statistics), and an Arrow
  table an engine hands back is written with pyiceberg's own Parquet writer (:mod:`.files`);
* every rewrite must hold exactly as many rows as the files it replaces, or nothing is committed
  (:mod:`.compact`, which also holds the retry on concurrent writers).

Modules: :mod:`.model` (types, engine protocol, errors), :mod:`.planning`, :mod:`.sort_keys` (pure
polars/numpy), :mod:`.in_process` and :mod:`.spark` (the engines; only the latter touches pyspark, lazily),
:mod:`.files`, :mod:`.commit` and :mod:`.compact`. Callers import from the package, not the modules.
"""

from k2_lakehouse.cold.compaction.compact import compact_partition, compact_table
from k2_lakehouse.cold.compaction.in_process import InProcessEngine, write_with_polars
from k2_lakehouse.cold.compaction.model import (
    DEFAULT_TARGET_FILE_BYTES,
    SNAPSHOT_ENGINE,
    SNAPSHOT_FILES_AFTER,
    SNAPSHOT_FILES_BEFORE,
    SNAPSHOT_OPERATION,
    SNAPSHOT_PARTITION,
    CompactionConflictError,
    CompactionEngine,
    CompactionError,
    CompactionResult,
    PartitionRef,
)
from k2_lakehouse.cold.compaction.planning import partitions_needing_compaction, resolve_partition
from k2_lakehouse.cold.compaction.sort_keys import sort_frame
from k2_lakehouse.cold.compaction.spark import SparkEngine

__all__ = [
    "DEFAULT_TARGET_FILE_BYTES",
    "SNAPSHOT_ENGINE",
    "SNAPSHOT_FILES_AFTER",
    "SNAPSHOT_FILES_BEFORE",
    "SNAPSHOT_OPERATION",
    "SNAPSHOT_PARTITION",
    "CompactionConflictError",
    "CompactionEngine",
    "CompactionError",
    "CompactionResult",
    "InProcessEngine",
    "PartitionRef",
    "SparkEngine",
    "compact_partition",
    "compact_table",
    "partitions_needing_compaction",
    "resolve_partition",
    "sort_frame",
    "write_with_polars",
]
