"""Sealing the same range twice gives identical tables."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

from clickhouse_connect.driver.client import Client

from k2_lakehouse.hours import HourRange
from k2_lakehouse.ingest.load import ingest_file
from k2_lakehouse.warm.checks import gold_equals_recomputation
from k2_lakehouse.warm.content import table_checksum
from k2_lakehouse.warm.seal import seal_bronze, seal_gold, seal_silver
from k2_lakehouse.warm.tables import WARM_TABLES

HOURS = HourRange(datetime(2019, 10, 11, tzinfo=UTC), datetime(2019, 10, 13, 12, tzinfo=UTC))


def _seal(warm: Client) -> dict[str, tuple[int, int]]:
    seal_bronze(warm, HOURS)
    seal_silver(warm, HOURS)
    seal_gold(warm, HOURS)
    return {table.name: table_checksum(warm, table, HOURS) for table in WARM_TABLES}


def test_sealing_a_range_twice_gives_identical_tables(warm: Client, datasets: Path) -> None:
    ingest_file(warm, datasets / "binance" / "XRPETH-aggTrades-2019-10-11_13.csv")
    before = {table.name: table_checksum(warm, table, HOURS) for table in WARM_TABLES}
    first = _seal(warm)
    second = _seal(warm)
    assert first == second
    assert first == before, "the live views already derived exactly what a seal derives"
    assert first["silver_trades"][0] == 12477


def test_sealed_gold_equals_an_independent_polars_computation(warm: Client, datasets: Path) -> None:
    ingest_file(warm, datasets / "binance" / "XRPETH-aggTrades-2019-10-11_13.csv")
    _seal(warm)
    outcome = gold_equals_recomputation(warm, HOURS)
    assert outcome.passed, outcome.problems
    assert outcome.measured["candles_1m"] == 2469


def test_a_trade_ingested_from_two_files_keeps_its_first_received_copy_live_and_through_reseals(
        warm: Client, datasets: Path, tmp_path: Path) -> None:
    sample = datasets / "binance" / "XRPETH-aggTrades-2019-10-11_13.csv"
    first, second = tmp_path / "first" / sample.name, tmp_path / "second" / sample.name
    for copy in (first, second):
        copy.parent.mkdir()
        shutil.copy(sample, copy)
    ingest_file(warm, first)
    ingest_file(warm, second)
    kept = "SELECT DISTINCT source_name FROM k2.{table} FINAL"
    expected = [(str(first.resolve()),)]
    assert [warm.query(kept.format(table=t)).result_rows for t in ("bronze_trades", "silver_trades")] == [expected] * 2
    sealed = [_seal(warm) for _ in range(3)]
    assert sealed[0] == sealed[1] == sealed[2]
    assert [warm.query(kept.format(table=t)).result_rows for t in ("bronze_trades", "silver_trades")] == [expected] * 2
