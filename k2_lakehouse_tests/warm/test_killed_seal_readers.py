"""A seal killed (SIGKILL) anywhere leaves readers the old or the new content of its hours, never an empty or
half hour; a re-run is exact.

The seal runs in a subprocess that wraps the seal's one way of running statements so that the process kills
itself at a chosen step, as a crash or an OOM kill would (the product carries no test hooks). Embedded
ClickHouse serves one process at a time, so a reader opens the store right after the kill: it sees what a
reader saw at that instant (the deletes the seal registered still pending) and then, once ClickHouse has
finished them, what every later reader sees until someone seals again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from k2_lakehouse.hours import HourRange
from k2_lakehouse.ingest.load import ingest_file
from k2_lakehouse.warm.checks import gold_equals_recomputation
from k2_lakehouse.warm.client import close_all, connect
from k2_lakehouse.warm.content import table_checksum
from k2_lakehouse.warm.schema import NUMBERED_ROWS
from k2_lakehouse.warm.seal import seal_bronze, seal_gold, seal_silver, wait_for_mutations
from k2_lakehouse.warm.tables import WARM_TABLES

HOURS = HourRange(datetime(2019, 10, 11, tzinfo=UTC), datetime(2019, 10, 13, 12, tzinfo=UTC))

SEAL_KILLED = """
import os, signal, sys
from datetime import datetime

from k2_lakehouse.hours import HourRange
from k2_lakehouse.warm import seal
from k2_lakehouse.warm.client import connect, run_in_parallel

url, statement, how = sys.argv[1], sys.argv[2], sys.argv[3]
hours = HourRange(datetime.fromisoformat(sys.argv[4]), datetime.fromisoformat(sys.argv[5]))


def run_then_die(client, commands, parameters=None, settings=None, **kwargs):
    if any(command.startswith(statement) for command in commands):
        run_in_parallel(client, {"before": [], "first_shard": commands[:1], "all": commands}[how], parameters, settings)
        os.kill(os.getpid(), signal.SIGKILL)
    run_in_parallel(client, commands, parameters, settings, **kwargs)


seal.run_in_parallel = run_then_die
client = connect(url)
seal.seal_bronze(client, hours)
seal.seal_silver(client, hours)
seal.seal_gold(client, hours)
raise SystemExit("the kill point was never reached")
"""


def _seal_killed_at(warm_url: str, statement: str, how: str, cwd: Path) -> Client:
    """Returns the store reopened (this process's clients are closed for the subprocess)."""
    close_all()  # the subprocess needs the embedded store
    try:
        proc = subprocess.run([sys.executable, "-c", SEAL_KILLED, warm_url, statement, how, HOURS.start.isoformat(),
                               HOURS.end.isoformat()], env=dict(os.environ), cwd=cwd, capture_output=True, text=True,
                              timeout=300)
    finally:
        reopened = connect(warm_url)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    return reopened


def _layers(warm: Client) -> dict[str, tuple[int, int]]:
    """(rows, checksum) of the hours in raw, bronze and silver (FINAL) and the six gold views."""
    return {table.name: table_checksum(warm, table, HOURS) for table in WARM_TABLES}


@pytest.mark.parametrize(("statement", "how"), [
    ("INSERT INTO k2.trades_raw_intake", "before"),  # bronze: about to replay the raw hours
    ("INSERT INTO k2.bronze_intake", "before"),  # silver: about to replay bronze
    ("INSERT INTO k2.bronze_intake", "first_shard"),  # silver: half of bronze replayed
    ("DELETE FROM k2.silver_trades", "all"),  # silver: its deletes registered, not yet applied
    ("INSERT INTO k2.silver_intake", "first_shard"),  # gold: half of silver replayed
    ("DELETE FROM k2.gold_ohlcv_1m", "all"),  # gold: its deletes registered, not yet applied
])
def test_readers_of_a_killed_seal_see_whole_hours_and_a_rerun_is_exact(
        warm: Client, warm_url: str, datasets: Path, tmp_path: Path, statement: str, how: str) -> None:
    ingest_file(warm, datasets / "binance" / "XRPETH-aggTrades-2019-10-11_13.csv")
    sealed = _layers(warm)  # live content equals what a seal derives (test_seal_idempotent)
    assert sealed["silver_trades"][0] == 12477
    warm = _seal_killed_at(warm_url, statement, how, tmp_path)
    assert _layers(warm) == sealed, "a reader right after the kill"
    wait_for_mutations(warm, list(NUMBERED_ROWS))
    assert _layers(warm) == sealed, "a reader once the deletes the killed seal registered are done"
    seal_bronze(warm, HOURS)
    seal_silver(warm, HOURS)
    seal_gold(warm, HOURS)
    assert _layers(warm) == sealed
    outcome = gold_equals_recomputation(warm, HOURS)
    assert outcome.passed, outcome.problems
    assert int(warm.command("SELECT count() FROM k2.gold_replays")) == 0, "the re-run cleared the seal's marks"
