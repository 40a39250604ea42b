"""A process killed (SIGKILL) anywhere in an offload leaves the old or the new content; a re-run is exact.

The offload runs in a subprocess that wraps one real function of the offload path so that the process
kills itself there, as a crash or an OOM kill would (the product carries no test hooks). Embedded
ClickHouse serves one process at a time, so this process releases the session store for the
subprocess and reopens it afterwards.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client
from pyiceberg.catalog.sql import SqlCatalog

from k2_lakehouse.cold.offload import offload_hours
from k2_lakehouse.cold.storage import exists, list_files, path_key
from k2_lakehouse.cold.tables import cold_table
from k2_lakehouse.cold.verify import PINNED_COLD, cold_checksum, matches_warm, pinned_snapshot, query_pinned
from k2_lakehouse.hours import HourRange
from k2_lakehouse.settings import Settings
from k2_lakehouse.warm.client import close_all, connect
from k2_lakehouse.warm.content import table_checksum
from k2_lakehouse_tests.support.cold import LATE_AT, LATE_HOUR, add_late_kraken_trade, seal_all

pytestmark = pytest.mark.slow

OFFLOAD_IN_SUBPROCESS = """
import os, signal, sys
from datetime import datetime

from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.table import Transaction

from k2_lakehouse.cold import offload
from k2_lakehouse.cold.catalog import load_catalog
from k2_lakehouse.hours import HourRange
from k2_lakehouse.settings import load_settings
from k2_lakehouse.warm.client import connect


def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)


def then_die(function):
    def run_then_die(*args, **kwargs):
        function(*args, **kwargs)
        die()
    return run_then_die


point = sys.argv[4]
if point == "after_data_files":  # the staged Parquet files are written; nothing is committed
    offload.stage = then_die(offload.stage)
elif point == "before_commit":  # the snapshot's manifests are written; the catalog is never called
    Transaction.commit_transaction = die
elif point == "during_commit":  # the new metadata file is written; the catalog row still names the old one
    SqlCatalog._write_metadata = staticmethod(then_die(SqlCatalog._write_metadata))
elif point == "after_commit":  # the commit landed; the process dies before returning
    offload.commit_replacement = then_die(offload.commit_replacement)
else:
    raise SystemExit(f"unknown kill point {point}")

settings = load_settings()
hours = HourRange(datetime.fromisoformat(sys.argv[2]), datetime.fromisoformat(sys.argv[3]))
offload.offload_hours(connect(settings.clickhouse_url), load_catalog(settings), sys.argv[1], hours, run_id="killed")
"""


def _offload_killed_at(point: str, name: str, hours: HourRange, warm_url: str, settings: Settings,
                       cwd: Path) -> None:
    close_all()  # the subprocess needs the embedded store
    env = {**os.environ, "K2_CLICKHOUSE_URL": warm_url,
           "K2_ICEBERG_CATALOG_URI": settings.iceberg_catalog_uri, "K2_ICEBERG_WAREHOUSE": settings.iceberg_warehouse}
    try:
        proc = subprocess.run([sys.executable, "-c", OFFLOAD_IN_SUBPROCESS, name, hours.start.isoformat(),
                               hours.end.isoformat(), point], env=env, cwd=cwd, capture_output=True, text=True, timeout=180)
    finally:
        connect(warm_url)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]


def _metadata_versions(catalog: SqlCatalog, name: str) -> tuple[int, int]:
    """(version the catalog points at, newest version on disk)."""
    table = catalog.load_table(("cold", name))
    folder = table.metadata_location.rsplit("/", 1)[0]
    newest = max(int(f.path.rsplit("/", 1)[1].split("-")[0])
                 for f in list_files(table.io, folder) if f.path.endswith(".metadata.json"))
    return int(table.metadata_location.rsplit("/", 1)[1].split("-")[0]), newest


# Every kill point on both warehouses; the other tables' layouts (a daily file, hourly partitions) locally only,
# since where a file goes is the same code on both.
@pytest.mark.parametrize(("warehouse", "name", "point"), [
    *((warehouse, "silver_trades", point) for warehouse in ("local", "s3")
      for point in ("after_data_files", "before_commit", "during_commit", "after_commit")),
    ("local", "gold_ohlcv_1d", "during_commit"),
    ("local", "raw_trades", "after_commit"),
], indirect=["warehouse"])
def test_a_killed_offload_leaves_old_or_new_content_and_a_rerun_is_exact(
        name: str, point: str, warm: Client, catalog: SqlCatalog, kraken: HourRange, warm_url: str,
        cold_settings: Settings, elsewhere: Path) -> None:
    cold = cold_table(name)
    offload_hours(warm, catalog, name, kraken)
    old = cold_checksum(warm, catalog.load_table(cold.identifier), name, kraken)
    add_late_kraken_trade(warm, LATE_AT)
    seal_all(warm, LATE_HOUR)
    new = table_checksum(warm, cold.warm, kraken)
    assert new != old

    _offload_killed_at(point, name, kraken, warm_url, cold_settings, elsewhere)
    warm = connect(warm_url)
    left = cold_checksum(warm, catalog.load_table(cold.identifier), name, kraken)
    assert left == (new if point == "after_commit" else old)
    if point == "during_commit":
        current, newest = _metadata_versions(catalog, name)
        assert newest > current, "the killed commit left a newer metadata file the catalog never adopted"

    offload_hours(warm, catalog, name, kraken)
    assert matches_warm(warm, catalog, name, kraken).ok
    table = catalog.load_table(cold.identifier)
    key = "exchange, symbol, window_start" if cold.timeframe else (
        "source_name, source_position, source_element" if name == "raw_trades" else "exchange, trade_id")
    [(rows, distinct)] = query_pinned(warm, pinned_snapshot(table),
                                      f"SELECT count(), uniqExact({key}) FROM {PINNED_COLD}", {})
    assert rows == distinct == new[0], "no duplicates"


@pytest.mark.parametrize("point", ["after_data_files", "during_commit"])
def test_orphan_cleanup_removes_a_killed_offloads_files_and_nothing_else(
        point: str, warm: Client, catalog: SqlCatalog, kraken: HourRange, warm_url: str, cold_settings: Settings,
        elsewhere: Path) -> None:
    from datetime import timedelta

    from k2_lakehouse.cold.retention import referenced_files, remove_orphan_files

    offload_hours(warm, catalog, "silver_trades", kraken)
    table = catalog.load_table(("cold", "silver_trades"))
    before = {f.path for f in list_files(table.io, table.location())}
    _offload_killed_at(point, "silver_trades", kraken, warm_url, cold_settings, elsewhere)
    debris = {f.path for f in list_files(table.io, table.location())} - before
    assert debris, "the killed offload left files behind"
    table = catalog.load_table(("cold", "silver_trades"))
    result = remove_orphan_files(table, older_than=timedelta(0))
    assert {path_key(table.io, p) for p in result.orphans} == {path_key(table.io, p) for p in debris}
    assert all(exists(table.io, p) for p in before)
    assert referenced_files(table)  # the live snapshot's files are all still there to read
    assert matches_warm(connect(warm_url), catalog, "silver_trades", kraken).ok
