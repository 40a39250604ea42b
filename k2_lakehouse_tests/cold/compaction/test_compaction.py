"""Compaction of cold partitions in process: content kept exactly, files merged and sorted, races never lose rows.

The Spark engine's tests are in test_spark_engine.py, the sort's in test_sort_keys.py.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyiceberg.expressions import And, GreaterThanOrEqual, LessThan
from pyiceberg.manifest import DataFile
from pyiceberg.table import Table

from k2_lakehouse.cold.compaction import (
    CompactionConflictError,
    InProcessEngine,
    commit,
    compact_partition,
    compact_table,
    in_process,
    partitions_needing_compaction,
)
from k2_lakehouse.cold.iceberg_internals import dataframe_to_data_files
from k2_lakehouse_tests.support.cold import content_checksum
from k2_lakehouse_tests.support.silver_table import (
    DAY,
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
    plain,
    rows_by_seq,
)


def test_in_process_compaction_merges_a_partition_into_one_file_with_identical_content(
    make_silver: TableMaker, make_trades: TradeMaker
) -> None:
    table = make_silver()
    fragmented(table, make_trades)
    before = content_checksum(table)

    result = compact_partition(table, PARTITION, InProcessEngine(), SORT_COLUMNS)

    assert (result.files_before, result.files_after, result.rows) == (22, 1, 22 * 300)
    assert len(partition_files(table)) == 1
    assert content_checksum(table) == before


def test_in_process_compaction_writes_rows_sorted_by_the_sort_columns(
    make_silver: TableMaker, make_trades: TradeMaker
) -> None:
    table = make_silver()
    fragmented(table, make_trades)

    compact_partition(table, PARTITION, InProcessEngine(), SORT_COLUMNS)

    (path,) = partition_files(table)
    assert_sorted(table.io, path, SORT_COLUMNS)


def test_in_process_compaction_splits_output_near_the_target_size_into_sorted_ranges(
    make_silver: TableMaker, make_trades: TradeMaker
) -> None:
    table = make_silver()
    fragmented(table, make_trades, appends=12)
    before = content_checksum(table)
    total = sum(f["file_size_in_bytes"] for f in table.inspect.files().to_pylist())

    result = compact_partition(table, PARTITION, InProcessEngine(), SORT_COLUMNS, target_file_bytes=total // 3)

    assert 2 <= result.files_after <= 4
    assert content_checksum(table) == before
    assert_sorted_ranges(table.io, partition_files(table), SORT_COLUMNS)


def test_compaction_is_one_overwrite_snapshot_tagged_with_engine_and_file_counts(
    make_silver: TableMaker, make_trades: TradeMaker
) -> None:
    table = make_silver()
    fragmented(table, make_trades, appends=5)
    snapshots_before = len(table.snapshots())

    result = compact_partition(table, PARTITION, InProcessEngine(), SORT_COLUMNS)

    snapshot = table.current_snapshot()
    assert snapshot is not None and snapshot.snapshot_id == result.snapshot_id
    assert len(table.snapshots()) == snapshots_before + 1
    assert snapshot.summary.operation.value == "overwrite"
    assert snapshot.summary["k2.operation"] == "compaction"
    assert snapshot.summary["k2.engine"] == "in-process"
    assert (snapshot.summary["k2.files-before"], snapshot.summary["k2.files-after"]) == ("5", "1")


def test_compaction_leaves_other_partitions_untouched(make_silver: TableMaker, make_trades: TradeMaker) -> None:
    table = make_silver()
    next_seq = fragmented(table, make_trades, appends=4)
    for i in range(3):
        table.append(make_trades(50, seq_start=next_seq + i * 50, day=OTHER_DAY, seed=100 + i))
    other_before = sorted(partition_files(table, OTHER_DAY))

    compact_partition(table, PARTITION, InProcessEngine(), SORT_COLUMNS)

    assert sorted(partition_files(table, OTHER_DAY)) == other_before


def test_partitions_needing_compaction_lists_partitions_with_at_least_min_files(
    make_silver: TableMaker, make_trades: TradeMaker
) -> None:
    table = make_silver()
    next_seq = fragmented(table, make_trades, appends=3)
    table.append(make_trades(50, seq_start=next_seq, day=OTHER_DAY, seed=7))

    refs = partitions_needing_compaction(table, min_files=2)

    days_since_epoch = (DAY - dt.date(1970, 1, 1)).days
    assert [ref.as_dict(table) for ref in refs] == [{"exchange_ts_day": days_since_epoch, "exchange": "binance"}]
    assert [ref.path(table) for ref in refs] == [f"exchange_ts_day={DAY.isoformat()}/exchange=binance"]
    assert partitions_needing_compaction(table, min_files=4) == []


def test_compact_table_compacts_every_fragmented_partition(make_silver: TableMaker, make_trades: TradeMaker) -> None:
    table = make_silver()
    next_seq = fragmented(table, make_trades, appends=3)
    for i in range(4):
        table.append(make_trades(50, seq_start=next_seq + i * 50, day=OTHER_DAY, seed=200 + i))
    before = content_checksum(table)

    results = compact_table(table, InProcessEngine(), SORT_COLUMNS)

    assert sorted((r.files_before, r.files_after) for r in results) == [(3, 1), (4, 1)]
    assert (len(partition_files(table)), len(partition_files(table, OTHER_DAY))) == (1, 1)
    assert content_checksum(table) == before


def test_compacting_a_partition_with_one_file_commits_nothing(make_silver: TableMaker, make_trades: TradeMaker) -> None:
    table = make_silver()
    table.append(make_trades(100, seq_start=0))
    snapshot_id = table.current_snapshot().snapshot_id  # type: ignore[union-attr]

    result = compact_partition(table, PARTITION, InProcessEngine(), SORT_COLUMNS)

    assert result.snapshot_id is None and result.files_before == result.files_after == 1
    assert table.current_snapshot().snapshot_id == snapshot_id  # type: ignore[union-attr]


def test_checksum_changes_when_a_row_is_duplicated(make_silver: TableMaker, make_trades: TradeMaker) -> None:
    table = make_silver()
    rows = make_trades(100, seq_start=0)
    table.append(rows)
    before = content_checksum(table)

    table.append(rows.slice(0, 1))

    rows_after, checksum_after = content_checksum(table)
    assert rows_after == before[0] + 1 and checksum_after != before[1]


def test_in_process_fallback_path_gives_the_same_content_as_the_fast_path(
    make_silver: TableMaker, make_trades: TradeMaker
) -> None:
    fast, fallback = make_silver("silver_fast"), make_silver("silver_fallback")
    for table in (fast, fallback):
        fragmented(table, make_trades, appends=5)

    compact_partition(fast, PARTITION, InProcessEngine(), SORT_COLUMNS)
    compact_partition(fallback, PARTITION, InProcessEngine(fast_io=False), SORT_COLUMNS)

    assert rows_by_seq(fast).equals(rows_by_seq(fallback))
    (path,) = partition_files(fallback)
    assert_sorted(fallback.io, path, SORT_COLUMNS)


def test_in_process_engine_reads_files_without_field_ids_directly_through_the_name_mapping(
    make_silver: TableMaker, make_trades: TradeMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = make_silver()
    added_without_ids(table, make_trades, files=6)
    before = content_checksum(table)

    def scan_not_expected(*args: object, **kwargs: object) -> None:
        raise AssertionError("files the name mapping resolves to the table schema must not go through ArrowScan")

    monkeypatch.setattr(in_process, "ArrowScan", scan_not_expected)
    result = compact_partition(table, PARTITION, InProcessEngine(), SORT_COLUMNS)

    assert (result.files_before, result.files_after) == (6, 1)
    assert content_checksum(table) == before
    (path,) = partition_files(table)
    assert_sorted(table.io, path, SORT_COLUMNS)
    with table.io.new_input(path).open() as stream:
        ids = [f.metadata[b"PARQUET:field_id"] for f in pq.read_schema(stream)]
    assert ids == [str(f.field_id).encode() for f in table.schema().fields]


def test_compaction_after_a_column_rename_keeps_every_value(make_silver: TableMaker, make_trades: TradeMaker) -> None:
    table = make_silver()
    next_seq = fragmented(table, make_trades, appends=3)
    with table.update_schema() as update:
        update.rename_column("side", "taker_side")
    renamed = make_trades(100, seq_start=next_seq, seed=9).rename_columns(
        {"side": "taker_side"})
    table.append(renamed.cast(table.schema().as_arrow()))
    before = rows_by_seq(table)
    assert before.column("taker_side").null_count == 0

    compact_partition(table, PARTITION, InProcessEngine(), SORT_COLUMNS)

    assert len(partition_files(table)) == 1
    assert rows_by_seq(table).equals(before)


def test_compaction_snapshot_equals_the_one_pyiceberg_overwrite_writes(
    make_silver: TableMaker, make_trades: TradeMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same summary, manifests and entries as pyiceberg's own overwrite producer, including a manifest that
    also lists a file of another partition (it must be rewritten with that file as an existing entry)."""
    own, reference = make_silver("silver_own"), make_silver("silver_reference")
    for table in (own, reference):
        next_seq = fragmented(table, make_trades, appends=4)
        table.append(pa.concat_tables([make_trades(60, seq_start=next_seq, seed=40),
                                       make_trades(60, seq_start=next_seq + 60, exchange="kraken", seed=41)]))

    compact_partition(own, PARTITION, InProcessEngine(), SORT_COLUMNS)

    def pyiceberg_overwrite(table: Table, ref: object, old_files: list[DataFile], new_files: list[DataFile],
                            properties: dict[str, str], name_mapping: bool, cache: object) -> int:
        with table.transaction() as tx, tx.update_snapshot(snapshot_properties=properties).overwrite() as overwrite:
            for data_file in old_files:
                overwrite.delete_data_file(data_file)
            for data_file in new_files:
                overwrite.append_data_file(data_file)
        return overwrite.snapshot_id

    monkeypatch.setattr(commit, "commit_overwrite_snapshot", pyiceberg_overwrite)
    compact_partition(reference, PARTITION, InProcessEngine(), SORT_COLUMNS)

    def described(table: Table) -> tuple[object, ...]:
        snapshot = table.current_snapshot()
        assert snapshot is not None
        entries = sorted((e["status"], e["data_file"]["partition"]["exchange"], e["data_file"]["record_count"])
                         for e in table.inspect.entries().to_pylist())
        manifests = [(m["added_data_files_count"], m["existing_data_files_count"], m["deleted_data_files_count"])
                     for m in table.inspect.manifests().to_pylist()]
        summary = {k: v for k, v in snapshot.summary.additional_properties.items() if "size" not in k}
        return snapshot.summary.operation, summary, entries, manifests, table.last_sequence_number

    assert described(own) == described(reference)
    assert described(own)[2].count((0, "kraken", 60)) == 1  # status 0: the other partition's file, kept as existing
    assert rows_by_seq(own).equals(rows_by_seq(reference))


def test_compaction_stops_carrying_manifests_left_with_only_deleted_entries(
    make_silver: TableMaker, make_trades: TradeMaker
) -> None:
    """A re-offload's overwrite leaves a manifest holding only the DELETED entry of the file it replaced;
    the compaction's snapshot must not name it again (it reads nothing, and it would keep the file referenced)."""
    table = make_silver()
    for hour in range(3):
        table.append(make_trades(100, seq_start=100 * hour, hour=hour, seed=hour))
    start = dt.datetime(DAY.year, DAY.month, DAY.day, tzinfo=dt.UTC)
    hour_zero = And(GreaterThanOrEqual("exchange_ts", start.isoformat()),
                    LessThan("exchange_ts", (start + dt.timedelta(hours=1)).isoformat()))
    replaced = [task.file for task in table.scan(row_filter=hour_zero).plan_files()]
    replacement = dataframe_to_data_files(table.metadata, make_trades(100, seq_start=300, hour=0, seed=10), table.io)
    # One OVERWRITE snapshot, as the offload commits a re-offloaded hour.
    with table.transaction() as tx, tx.update_snapshot().overwrite() as overwrite:
        for data_file in replaced:
            overwrite.delete_data_file(data_file)
        for data_file in replacement:
            overwrite.append_data_file(data_file)
    parent = table.current_snapshot()
    assert parent is not None
    delete_only = {m.manifest_path for m in parent.manifests(table.io)
                   if not (m.has_added_files() or m.has_existing_files())}
    assert delete_only  # pyiceberg's overwrite carries them
    checksum = content_checksum(table)

    compact_partition(table, PARTITION, InProcessEngine(), SORT_COLUMNS)

    snapshot = table.current_snapshot()
    assert snapshot is not None and snapshot.parent_snapshot_id == parent.snapshot_id
    assert delete_only.isdisjoint(m.manifest_path for m in snapshot.manifests(table.io))
    assert content_checksum(table) == checksum


def test_compaction_of_a_format_v1_table_keeps_the_content(make_silver: TableMaker, make_trades: TradeMaker) -> None:
    table = make_silver(properties={"format-version": "1"})
    fragmented(table, make_trades, appends=4)
    before = content_checksum(table)

    result = compact_partition(table, PARTITION, InProcessEngine(), SORT_COLUMNS)

    assert (result.files_before, result.files_after) == (4, 1)
    assert content_checksum(table) == before


# ------------------------------------------------------------------------------------------- races


def test_compaction_retries_when_an_offload_appends_to_the_partition_before_commit(
    make_silver: TableMaker, make_trades: TradeMaker
) -> None:
    table = make_silver()
    next_seq = fragmented(table, make_trades, appends=6)
    offload = make_trades(200, seq_start=next_seq, seed=77)
    expected = pa.concat_tables([rows_by_seq(table), offload]).sort_by("trade_seq")

    def concurrent_offload(attempt: int) -> None:
        if attempt == 1:  # a second handle, as the offload job would have
            table.catalog.load_table(table.name()).append(offload)

    result = compact_partition(table, PARTITION, InProcessEngine(), SORT_COLUMNS, before_commit=concurrent_offload)

    assert result.attempts == 2 and (result.files_before, result.files_after) == (7, 1)
    assert rows_by_seq(table).equals(expected)


def test_compaction_retries_when_a_reoffload_replaces_an_hour_before_commit(
    make_silver: TableMaker, make_trades: TradeMaker
) -> None:
    table = make_silver()
    next_seq = fragmented(table, make_trades, appends=6)
    start = dt.datetime(DAY.year, DAY.month, DAY.day, 5, tzinfo=dt.UTC)
    hour = And(GreaterThanOrEqual("exchange_ts", start.isoformat()),
               LessThan("exchange_ts", (start + dt.timedelta(hours=1)).isoformat()))
    replacement = make_trades(80, seq_start=next_seq, hour=5, seed=55)
    kept = table.scan(row_filter=~hour).to_arrow()
    expected = pa.concat_tables([kept, replacement]).sort_by("trade_seq")

    def concurrent_reoffload(attempt: int) -> None:
        if attempt == 1:
            table.catalog.load_table(table.name()).overwrite(replacement, overwrite_filter=hour)

    result = compact_partition(table, PARTITION, InProcessEngine(), SORT_COLUMNS, before_commit=concurrent_reoffload)

    assert result.attempts == 2 and result.files_after == 1
    assert rows_by_seq(table).equals(expected)


def test_compaction_retries_when_the_catalog_rejects_a_commit_raced_after_the_check(
    make_silver: TableMaker, make_trades: TradeMaker
) -> None:
    table = make_silver()
    next_seq = fragmented(table, make_trades, appends=6)
    offload = make_trades(200, seq_start=next_seq, seed=78)
    expected = pa.concat_tables([rows_by_seq(table), offload]).sort_by("trade_seq")

    def offload_after_check(attempt: int) -> None:
        if attempt == 1:
            table.catalog.load_table(table.name()).append(offload)

    result = compact_partition(table, PARTITION, InProcessEngine(), SORT_COLUMNS, after_verify=offload_after_check)

    assert result.attempts == 2 and len(partition_files(table)) == 1
    assert rows_by_seq(table).equals(expected)


def test_compaction_commits_on_top_of_a_snapshot_that_left_the_partition_alone(
    make_silver: TableMaker, make_trades: TradeMaker
) -> None:
    table = make_silver()
    next_seq = fragmented(table, make_trades, appends=5)
    other_day = make_trades(50, seq_start=next_seq, day=OTHER_DAY, seed=90)
    expected = pa.concat_tables([rows_by_seq(table), other_day]).sort_by("trade_seq")

    def offload_other_day(attempt: int) -> None:
        table.catalog.load_table(table.name()).append(other_day)

    result = compact_partition(table, PARTITION, InProcessEngine(), SORT_COLUMNS, after_verify=offload_other_day)

    assert result.attempts == 1 and (result.files_before, result.files_after) == (5, 1)
    assert len(partition_files(table)) == 1 and len(partition_files(table, OTHER_DAY)) == 1
    assert rows_by_seq(table).equals(expected)
    snapshot = table.current_snapshot()
    assert snapshot is not None and snapshot.snapshot_id == result.snapshot_id
    assert snapshot.summary["k2.operation"] == "compaction"


def test_compaction_gives_up_after_max_attempts_and_leaves_no_files_behind(
    make_silver: TableMaker, make_trades: TradeMaker, files_on_disk: Callable[[Table], set[str]]
) -> None:
    table = make_silver()
    next_seq = fragmented(table, make_trades, appends=4)
    offloads = [make_trades(10, seq_start=next_seq + 10 * i, seed=300 + i) for i in range(2)]

    def offload_every_time(attempt: int) -> None:
        table.catalog.load_table(table.name()).append(offloads[attempt - 1])

    with pytest.raises(CompactionConflictError, match="changed under every one of 2 compaction attempts"):
        compact_partition(table, PARTITION, InProcessEngine(), SORT_COLUMNS, max_attempts=2,
                          before_commit=offload_every_time)

    table.refresh()
    assert len(partition_files(table)) == 6
    assert all(s.summary["k2.operation"] is None for s in table.snapshots())
    data_on_disk = {p for p in files_on_disk(table) if p.endswith(".parquet")}
    assert data_on_disk == {plain(p) for p in partition_files(table)}
