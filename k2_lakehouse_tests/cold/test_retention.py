"""Snapshot expiry and orphan removal: garbage goes, anything a remaining snapshot needs stays."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from dataclasses import dataclass

import pyarrow as pa
import pytest
from pyiceberg.expressions import And, GreaterThanOrEqual, LessThan
from pyiceberg.table import Table

from k2_lakehouse.cold.compaction import InProcessEngine, compact_partition
from k2_lakehouse.cold.iceberg_internals import dataframe_to_data_files
from k2_lakehouse.cold.retention import expire_snapshots, remove_orphan_files
from k2_lakehouse_tests.support.cold import content_checksum
from k2_lakehouse_tests.support.silver_table import (
    DAY,
    SORT_COLUMNS,
    TableMaker,
    TradeMaker,
    file_exists,
    files_under,
    plain,
)

FAR_FUTURE = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
MTIME_RESOLUTION_S = 1.1  # S3 lists LastModified to the second


def hour_filter(hour: int) -> And:
    start = dt.datetime(DAY.year, DAY.month, DAY.day, hour, tzinfo=dt.UTC)
    return And(GreaterThanOrEqual("exchange_ts", start.isoformat()),
               LessThan("exchange_ts", (start + dt.timedelta(hours=1)).isoformat()))


def commit_pause() -> None:
    time.sleep(0.005)  # distinct snapshot timestamps (ms) so cutoffs fall between commits


@dataclass
class History:
    table: Table
    snapshot_ids: list[int]  # oldest first


@pytest.fixture
def history(make_silver: TableMaker, make_trades: TradeMaker) -> History:
    """Offloads, re-offloads of an hour, a compaction, then three more offloads (the ones to retain)."""
    table = make_silver()
    seq = 0
    for hour in range(3):
        table.append(make_trades(100, seq_start=seq, hour=hour, seed=hour))
        seq += 100
        commit_pause()
    for hour in (0, 1):
        table.overwrite(make_trades(100, seq_start=seq, hour=hour, seed=10 + hour), overwrite_filter=hour_filter(hour))
        seq += 100
        commit_pause()
    compact_partition(table, {"exchange_ts_day": DAY, "exchange": "binance"}, InProcessEngine(), SORT_COLUMNS)
    commit_pause()
    for hour in (3, 4, 5):
        table.append(make_trades(100, seq_start=seq, hour=hour, seed=20 + hour))
        seq += 100
        commit_pause()
    ids = [s.snapshot_id for s in sorted(table.snapshots(), key=lambda s: s.timestamp_ms)]
    return History(table=table, snapshot_ids=ids)


def live_data_files(table: Table, snapshot_id: int) -> set[str]:
    return {plain(task.file.file_path) for task in table.scan(snapshot_id=snapshot_id).plan_files()}


def snapshot_contents(table: Table) -> dict[int, pa.Table]:
    return {s.snapshot_id: table.scan(snapshot_id=s.snapshot_id).to_arrow().sort_by("trade_seq")
            for s in table.snapshots()}


# ------------------------------------------------------------------------------------------- expiry


def test_expiry_keeps_the_last_three_snapshots_of_history(history: History) -> None:
    result = expire_snapshots(history.table, older_than=dt.timedelta(days=7), retain_last=3, now=FAR_FUTURE)

    assert [s.snapshot_id for s in history.table.snapshots()] == history.snapshot_ids[-3:]
    assert result.snapshots_expired == len(history.snapshot_ids) - 3
    assert set(result.expired_snapshot_ids) == set(history.snapshot_ids[:-3])


def test_expiry_deletes_exactly_the_files_only_expired_snapshots_reached(history: History) -> None:
    table = history.table
    live = {sid: live_data_files(table, sid) for sid in history.snapshot_ids}
    expired, kept = history.snapshot_ids[:-3], history.snapshot_ids[-3:]
    manifest_lists = {s.snapshot_id: plain(s.manifest_list) for s in table.snapshots()}
    on_disk_before = files_under(table)

    result = expire_snapshots(table, retain_last=3, now=FAR_FUTURE)

    deleted = on_disk_before - files_under(table)
    garbage_data = set().union(*(live[s] for s in expired)) - set().union(*(live[s] for s in kept))
    assert garbage_data and {p for p in deleted if p.endswith(".parquet")} == garbage_data
    assert {manifest_lists[s] for s in expired} <= deleted
    assert result.files_deleted["data"] == len(garbage_data)
    assert result.files_deleted["manifest_list"] == len(expired)
    assert result.files_deleted["manifest"] > 0
    assert result.total_files_deleted == len(deleted)
    assert not result.delete_failures


def test_every_file_of_the_remaining_snapshots_exists_and_reads_after_expiry(history: History) -> None:
    table = history.table
    before = snapshot_contents(table)
    checksum = content_checksum(table)

    expire_snapshots(table, retain_last=3, now=FAR_FUTURE)

    io = table.io
    for snapshot in table.snapshots():
        assert file_exists(table, snapshot.manifest_list)
        for manifest in snapshot.manifests(io):
            assert file_exists(table, manifest.manifest_path)
        assert all(file_exists(table, p) for p in live_data_files(table, snapshot.snapshot_id))
        assert table.scan(snapshot_id=snapshot.snapshot_id).to_arrow().sort_by("trade_seq").equals(
            before[snapshot.snapshot_id])
    assert content_checksum(table) == checksum


def test_expiry_keeps_snapshots_younger_than_the_cutoff(history: History) -> None:
    on_disk_before = files_under(history.table)

    result = expire_snapshots(history.table, older_than=dt.timedelta(days=7), retain_last=1)

    assert result.snapshots_expired == 0 and result.total_files_deleted == 0
    assert [s.snapshot_id for s in history.table.snapshots()] == history.snapshot_ids
    assert files_under(history.table) == on_disk_before


def test_expiry_expires_only_snapshots_older_than_the_cutoff(history: History) -> None:
    table = history.table
    fifth = table.snapshot_by_id(history.snapshot_ids[4])
    assert fifth is not None
    now = dt.datetime.fromtimestamp(fifth.timestamp_ms / 1000, tz=dt.UTC) + dt.timedelta(hours=1)

    result = expire_snapshots(table, older_than=dt.timedelta(hours=1), retain_last=1, now=now)

    assert set(result.expired_snapshot_ids) == set(history.snapshot_ids[:4])
    assert [s.snapshot_id for s in table.snapshots()] == history.snapshot_ids[4:]


def test_expiry_counts_retain_last_along_the_current_history_after_a_rollback(
    make_silver: TableMaker, make_trades: TradeMaker
) -> None:
    table = make_silver()
    for i in range(3):
        table.append(make_trades(20, seq_start=20 * i, seed=i))
        commit_pause()
    s1, s2, abandoned = (s.snapshot_id for s in table.snapshots())
    table.manage_snapshots().rollback_to_snapshot(s2).commit()
    commit_pause()
    table.append(make_trades(20, seq_start=100, seed=9))
    current = table.current_snapshot().snapshot_id  # type: ignore[union-attr]
    rows = table.scan().to_arrow().sort_by("trade_seq")

    result = expire_snapshots(table, retain_last=2, now=FAR_FUTURE)

    assert set(result.expired_snapshot_ids) == {s1, abandoned}
    assert {s.snapshot_id for s in table.snapshots()} == {s2, current}
    assert table.scan().to_arrow().sort_by("trade_seq").equals(rows)
    assert table.scan(snapshot_id=s2).to_arrow().num_rows == 40


def test_expiry_deletes_metadata_files_that_fell_off_the_metadata_log(
    make_silver: TableMaker, make_trades: TradeMaker
) -> None:
    table = make_silver(properties={"write.metadata.previous-versions-max": "2"})
    for i in range(6):
        table.append(make_trades(20, seq_start=20 * i, seed=i))

    result = expire_snapshots(table, retain_last=3, now=FAR_FUTURE)

    metadata_files = {p for p in files_under(table) if p.endswith(".metadata.json")}
    kept = {table.metadata_location, *(e.metadata_file for e in table.metadata.metadata_log)}
    assert metadata_files == {plain(p) for p in kept}
    assert result.files_deleted["metadata"] > 0


# ------------------------------------------------------------------------------------------- orphans


@dataclass
class Debris:
    table: Table
    old: set[str]  # unreferenced files from long-dead offloads/compactions
    young: set[str]  # unreferenced files of a write that may still be in flight
    now: dt.datetime  # "now" for the removal: every file but `young` is older than GRACE by then


GRACE = dt.timedelta(days=3)


@pytest.fixture
def debris(history: History, make_trades: TradeMaker) -> Debris:
    """The history table plus files killed writers left behind; the removal runs GRACE after they were written
    and before `young` was.

    Object storage cannot backdate a file (its mtime is when it was uploaded), so the removal's clock moves
    instead, on both warehouses: `now` is set GRACE after a moment between the old files and the young ones.
    """
    table = history.table

    def killed_offload(seq_start: int) -> set[str]:
        files = dataframe_to_data_files(table.metadata, make_trades(30, seq_start=seq_start), table.io)
        return {plain(f.file_path) for f in files}

    def write(location: str, content: bytes) -> str:
        with table.io.new_output(location).create() as stream:
            stream.write(content)
        return plain(location)

    old = killed_offload(90_000)
    old.add(write(f"{table.location()}/metadata/{uuid.uuid4()}-m0.avro",
                  b"Obj\x01 half-written manifest of a killed commit"))
    staging = f"{next(iter(old)).rsplit('/', 1)[0]}/k2-compaction-{uuid.uuid4()}"
    for name in ("part-00000-x-c000.zstd.parquet", ".part-00000-x-c000.zstd.parquet.crc"):
        old.add(write(f"{staging}/{name}", b"PAR1 killed Spark compaction"))
    # Mtimes are to the second on S3 (and stamped by another clock on both): a clear gap on either side.
    time.sleep(MTIME_RESOLUTION_S)
    between = dt.datetime.now(dt.UTC)
    time.sleep(MTIME_RESOLUTION_S)
    young = killed_offload(95_000)
    return Debris(table=table, old=old, young=young, now=between + GRACE)


def test_orphan_removal_deletes_old_unreferenced_files_and_nothing_else(debris: Debris) -> None:
    table = debris.table
    before = snapshot_contents(table)
    on_disk_before = files_under(table)

    result = remove_orphan_files(table, older_than=GRACE, now=debris.now)

    assert on_disk_before - files_under(table) == debris.old
    assert {plain(p) for p in result.orphans} == debris.old
    assert result.files_deleted == len(debris.old) and not result.dry_run
    assert snapshot_contents(table).keys() == before.keys()
    assert all(table.scan(snapshot_id=sid).to_arrow().sort_by("trade_seq").equals(rows) for sid, rows in before.items())


def test_orphan_removal_keeps_unreferenced_files_younger_than_the_grace_period(debris: Debris) -> None:
    result = remove_orphan_files(debris.table, older_than=GRACE, now=debris.now)

    assert debris.young <= files_under(debris.table)
    assert {plain(p) for p in result.young_unreferenced} == debris.young


def test_orphan_removal_dry_run_lists_orphans_and_deletes_nothing(debris: Debris) -> None:
    on_disk_before = files_under(debris.table)

    result = remove_orphan_files(debris.table, older_than=GRACE, dry_run=True, now=debris.now)

    assert files_under(debris.table) == on_disk_before
    assert {plain(p) for p in result.orphans} == debris.old
    assert result.dry_run and result.files_deleted == 0


def test_orphan_removal_after_expiry_finds_nothing_expiry_should_have_deleted(history: History) -> None:
    expire_snapshots(history.table, retain_last=3, now=FAR_FUTURE)

    result = remove_orphan_files(history.table, older_than=dt.timedelta(0), dry_run=True,
                                 now=FAR_FUTURE)

    assert result.orphans == ()

