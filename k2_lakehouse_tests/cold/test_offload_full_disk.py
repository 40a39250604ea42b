"""A full disk during an offload: one clear error naming the device's folder, nothing committed, nothing left staged.

The warehouse is a real filesystem of a few megabytes (a tmpfs mounted for the test), filled until the offload's
files no longer fit. Mounting needs root, as on this project's machines and CI.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client
from pyiceberg.catalog.sql import SqlCatalog

from k2_lakehouse.cold.catalog import load_catalog
from k2_lakehouse.cold.offload import OffloadWriteFailed, offload_hours
from k2_lakehouse.cold.storage import list_files
from k2_lakehouse.cold.tables import ensure_cold_tables
from k2_lakehouse.cold.verify import matches_warm
from k2_lakehouse.hours import HourRange
from k2_lakehouse.settings import load_settings

DISK_BYTES = 8 * 2**20
LEFT_FREE = 16 * 2**10  # room for a few Parquet footers, not for an hour of trades


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "small-disk"
    mount.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES}", "tmpfs", str(mount)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


@pytest.fixture
def full_disk_catalog(small_disk: Path, tmp_path: Path) -> SqlCatalog:
    settings = dataclasses.replace(load_settings(), iceberg_catalog_uri=f"sqlite:///{tmp_path / 'catalog.db'}",
                                   iceberg_warehouse=f"file://{small_disk / 'warehouse'}")
    catalog = load_catalog(settings)
    ensure_cold_tables(catalog)
    return catalog


def _fill(disk: Path, leave: int) -> Path:
    filler = disk / "filler"
    free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
    with filler.open("wb") as handle:
        handle.write(b"\0" * max(0, free - leave))
    return filler


def test_a_full_disk_fails_the_offload_naming_the_folder_and_leaves_nothing_staged(
        warm: Client, full_disk_catalog: SqlCatalog, kraken: HourRange, small_disk: Path) -> None:
    table = full_disk_catalog.load_table(("cold", "silver_trades"))
    _fill(small_disk, LEFT_FREE)
    with pytest.raises(OffloadWriteFailed) as failed:
        offload_hours(warm, full_disk_catalog, "silver_trades", kraken)
    message = str(failed.value)
    assert message.startswith(f"no space left on the device holding {small_disk}/warehouse/cold/silver_trades/data/")
    assert "nothing was committed and the staged files were removed" in message
    assert list_files(table.io, f"{table.location()}/data") == [], "no staged file is left behind"
    assert full_disk_catalog.load_table(("cold", "silver_trades")).current_snapshot() is None


def test_once_space_is_freed_the_same_offload_lands_exactly(
        warm: Client, full_disk_catalog: SqlCatalog, kraken: HourRange, small_disk: Path) -> None:
    filler = _fill(small_disk, LEFT_FREE)
    with pytest.raises(OffloadWriteFailed):
        offload_hours(warm, full_disk_catalog, "silver_trades", kraken)
    filler.unlink()
    offload_hours(warm, full_disk_catalog, "silver_trades", kraken)
    verdict = matches_warm(warm, full_disk_catalog, "silver_trades", kraken)
    assert verdict.ok and verdict.cold_rows > 0, verdict
