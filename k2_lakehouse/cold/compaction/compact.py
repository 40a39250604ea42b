"""Compacting a partition end to end: plan, rewrite with an engine, check, commit, and retry on conflict.

Concurrency: an offload can replace or add files in the very partition being compacted. Before committing,
the table is re-loaded and the partition's live file set is compared with the set that was read; any
difference means the rewrite is stale, so its files are deleted and the whole compaction starts again (as
often as the table's ``commit.retry.*`` properties allow: :mod:`k2_lakehouse.cold.commit_retry`). A change
that lands after that check is caught by the catalog's optimistic commit (``CommitFailedException``: another
snapshot landed first). If that snapshot left the partition's files alone, the swap is re-planned on top of
it (:mod:`.commit`); otherwise the compaction is retried the same way. Nothing is ever committed from a stale
read, so rows are neither lost nor duplicated.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

from pyiceberg.exceptions import CommitFailedException
from pyiceberg.manifest import DataFile
from pyiceberg.table import Table

from k2_lakehouse.cold.commit_retry import CommitConflictError, ConcurrentChangeError, RetryPolicy, retry_on_conflict
from k2_lakehouse.cold.compaction.commit import commit_swap
from k2_lakehouse.cold.compaction.files import delete_quietly, materialize
from k2_lakehouse.cold.compaction.model import (
    DEFAULT_TARGET_FILE_BYTES,
    CompactionConflictError,
    CompactionEngine,
    CompactionError,
    CompactionResult,
    PartitionRef,
    table_name,
)
from k2_lakehouse.cold.compaction.planning import (
    ManifestCache,
    live_files,
    partitions_needing_compaction,
    resolve_partition,
)

RETRY_ON = (CommitFailedException, ConcurrentChangeError, CommitConflictError)
"""What makes a compaction start over: a lost commit, a partition changed before the commit, or a swap that
could not be committed on top of other writers' snapshots (``commit.commit_swap``)."""


def compact_partition(
    table: Table,
    partition: PartitionRef | Mapping[str, object],
    engine: CompactionEngine,
    sort_columns: Sequence[str],
    target_file_bytes: int = DEFAULT_TARGET_FILE_BYTES,
    *,
    max_attempts: int | None = None,
    before_commit: Callable[[int], None] | None = None,
    after_verify: Callable[[int], None] | None = None,
) -> CompactionResult:
    """Replace the live data files of one partition by compacted, sorted files in one atomic snapshot.

    Attempts (each a fresh read, rewrite and commit) follow the table's ``commit.retry.*`` properties
    (:mod:`k2_lakehouse.cold.commit_retry`); ``max_attempts`` overrides their number.

    ``before_commit(attempt)`` runs after the new files are written and before the partition is re-checked;
    ``after_verify(attempt)`` runs after the re-check, right before the catalog commit. Both exist so tests
    (and chaos drills) can inject a concurrent writer deterministically; production callers leave them None.

    Returns a result with ``snapshot_id=None`` when the partition has fewer than two files.
    Raises CompactionConflictError when every attempt met a concurrent change to the partition.
    """
    if target_file_bytes <= 0:
        raise ValueError(f"target_file_bytes={target_file_bytes} must be positive")
    policy = RetryPolicy.of(table)
    if max_attempts is not None:
        policy = policy.with_max_attempts(max_attempts)
    started = time.perf_counter()
    ref = resolve_partition(table, partition)
    sort_list = list(sort_columns)
    manifest_cache: ManifestCache = {}

    def attempt(number: int) -> CompactionResult:
        table.refresh()
        old_files = live_files(table, ref, manifest_cache).get(ref, [])
        if len(old_files) < 2:
            return _result(table, ref, engine, old_files, old_files, None, started, number)
        old_paths = {f.file_path for f in old_files}

        output = engine.rewrite(table, old_files, sort_list, target_file_bytes)
        written: list[str] = list(output) if isinstance(output, list) else []
        try:
            new_files = materialize(table.metadata, table.io, ref, output, old_files, target_file_bytes)
            written = [f.file_path for f in new_files] or written
            rows_in = sum(f.record_count for f in old_files)
            rows_out = sum(f.record_count for f in new_files)
            if rows_in != rows_out:
                raise CompactionError(
                    f"{engine.name} produced {rows_out} rows from {rows_in}; nothing was committed. "
                    "Check the engine and the partition's files before retrying"
                )
            if before_commit is not None:
                before_commit(number)
            table.refresh()
            current = {f.file_path for f in live_files(table, ref, manifest_cache).get(ref, [])}
            if current != old_paths:
                raise ConcurrentChangeError(
                    f"{len(current - old_paths)} file(s) added and {len(old_paths - current)} removed by a "
                    "concurrent writer")
            if after_verify is not None:
                after_verify(number)
        except BaseException:
            delete_quietly(table.io, written)  # nothing references them yet
            raise

        try:
            snapshot_id = commit_swap(table, ref, engine.name, old_files, new_files, output, manifest_cache)
        except RETRY_ON:
            # The commit did not land (the partition changed under it), so the new files are unreferenced.
            # Any other error leaves the outcome unknown: the files stay (orphan removal judges them later).
            delete_quietly(table.io, written)
            raise
        return _result(table, ref, engine, old_files, new_files, snapshot_id, started, number)

    return retry_on_conflict(table, attempt, operation="compaction", subject=f"partition {ref.path(table)} of "
                             f"{table_name(table)}", retry_on=RETRY_ON, policy=policy, error=CompactionConflictError)


def _result(
    table: Table,
    ref: PartitionRef,
    engine: CompactionEngine,
    old_files: list[DataFile],
    new_files: list[DataFile],
    snapshot_id: int | None,
    started: float,
    attempts: int,
) -> CompactionResult:
    return CompactionResult(
        table=table_name(table),
        partition=ref.as_dict(table),
        partition_path=ref.path(table),
        files_before=len(old_files),
        files_after=len(new_files),
        rows=sum(f.record_count for f in new_files),
        seconds=time.perf_counter() - started,
        snapshot_id=snapshot_id,
        engine=engine.name,
        attempts=attempts,
        bytes_before=sum(f.file_size_in_bytes for f in old_files),
        bytes_after=sum(f.file_size_in_bytes for f in new_files),
    )


def compact_table(
    table: Table,
    engine: CompactionEngine,
    sort_columns: Sequence[str],
    min_files: int = 2,
    partitions: Sequence[PartitionRef | Mapping[str, object]] | None = None,
    target_file_bytes: int = DEFAULT_TARGET_FILE_BYTES,
) -> list[CompactionResult]:
    """Compact every partition with at least ``min_files`` files (or just ``partitions``), one commit each.

    One snapshot per partition keeps each commit small and lets a conflict in one partition retry without
    redoing the others.
    """
    targets = (
        [resolve_partition(table, p) for p in partitions]
        if partitions is not None
        else partitions_needing_compaction(table, min_files)
    )
    return [compact_partition(table, ref, engine, sort_columns, target_file_bytes) for ref in targets]
