"""Snapshot expiry on a cold table that the real offload rewrote hour by hour."""

from __future__ import annotations

import datetime as dt
from datetime import UTC, datetime, timedelta

import pytest
from clickhouse_connect.driver.client import Client
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.table import Table

from k2_lakehouse.cold.offload import offload_hours
from k2_lakehouse.cold.retention import expire_snapshots, remove_orphan_files
from k2_lakehouse.hours import HourRange
from k2_lakehouse_tests.support.cold import content_checksum
from k2_lakehouse_tests.support.silver_table import files_under, plain

FAR_FUTURE = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
REOFFLOADED = HourRange(datetime(2025, 11, 10, 20, tzinfo=UTC), datetime(2025, 11, 10, 21, tzinfo=UTC))
REOFFLOADS = 3
RETAIN_LAST = 2


def live_data_files(table: Table, snapshot_id: int) -> set[str]:
    return {plain(task.file.file_path) for task in table.scan(snapshot_id=snapshot_id).plan_files()}


def parquet_on_disk(table: Table) -> set[str]:
    return {p for p in files_under(table) if p.endswith(".parquet")}


@pytest.fixture
def reoffloaded(warm: Client, catalog: SqlCatalog, kraken: HourRange) -> Table:
    """cold.silver_trades offloaded once, then one of its hours offloaded again several times (each an
    OVERWRITE that replaces the day's file), as late trades and reruns make it."""
    offload_hours(warm, catalog, "silver_trades", kraken)
    for _ in range(REOFFLOADS):
        offload_hours(warm, catalog, "silver_trades", REOFFLOADED)
    return catalog.load_table(("cold", "silver_trades"))


def test_expiry_deletes_every_data_file_re_offloads_replaced_and_keeps_every_file_a_remaining_snapshot_reads(
        reoffloaded: Table) -> None:
    table = reoffloaded
    ever_live = set().union(*(live_data_files(table, s.snapshot_id) for s in table.snapshots()))
    contents = {s.snapshot_id: table.scan(snapshot_id=s.snapshot_id).to_arrow() for s in table.snapshots()}
    checksum = content_checksum(table)

    result = expire_snapshots(table, older_than=timedelta(days=7), retain_last=RETAIN_LAST, now=FAR_FUTURE)

    remaining = table.snapshots()
    still_read = set().union(*(live_data_files(table, s.snapshot_id) for s in remaining))
    assert len(remaining) == RETAIN_LAST and ever_live - still_read
    assert parquet_on_disk(table) == still_read
    assert result.files_deleted["data"] == len(ever_live - still_read)
    assert content_checksum(table) == checksum
    for snapshot in remaining:
        assert table.scan(snapshot_id=snapshot.snapshot_id).to_arrow().equals(contents[snapshot.snapshot_id])


def test_orphan_removal_deletes_data_files_that_only_deleted_entries_still_name(reoffloaded: Table) -> None:
    table = reoffloaded
    current = table.current_snapshot()
    assert current is not None
    read_by_current = live_data_files(table, current.snapshot_id)
    checksum = content_checksum(table)
    # Expire every older snapshot's metadata only, as pyiceberg's own expiry does: the replaced files stay on
    # disk, named only by the DELETED entries that every overwrite carries forward.
    table.maintenance.expire_snapshots().older_than(FAR_FUTURE).commit()
    table.refresh()
    replaced = parquet_on_disk(table) - read_by_current
    assert replaced

    result = remove_orphan_files(table, older_than=timedelta(0), now=FAR_FUTURE)

    assert {plain(p) for p in result.orphans} >= replaced
    assert parquet_on_disk(table) == read_by_current
    assert content_checksum(table) == checksum
