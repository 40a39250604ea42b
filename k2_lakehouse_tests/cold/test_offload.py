"""Offload: warm hours replace their cold copy exactly, in one commit per table, however often it runs."""

from __future__ import annotations

import csv
import dataclasses
import json
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.expressions import EqualTo
from pyiceberg.schema import Schema

from k2_lakehouse.cold import offload as offload_module
from k2_lakehouse.cold.offload import (
    MAX_STAGE_ATTEMPTS,
    STAGING_PREFIX,
    OffloadSourceChanged,
    data_dir,
    offload_hours,
)
from k2_lakehouse.cold.tables import COLD_TABLES, ColdTable, cold_table, ensure_cold_tables
from k2_lakehouse.cold.verify import PINNED_ICEBERG, matches_warm, pinned_snapshot, query_pinned
from k2_lakehouse.hours import HourRange
from k2_lakehouse.ingest.load import ingest_file
from k2_lakehouse_tests.support.cold import (
    BINANCE_HOURS,
    BINANCE_TRADES,
    KRAKEN_HOURS,
    KRAKEN_TRADES,
    LATE_AT,
    LATE_HOUR,
    ORDER_BY,
    add_late_kraken_trade,
    cold_rows,
    offload_all,
    offload_hours_naive,
    seal_all,
)
from k2_lakehouse_tests.support.racing import commit_together, run_in_threads


def _hour(start: datetime) -> HourRange:
    return HourRange(start, start + timedelta(hours=1))


def test_every_table_offloads_in_one_commit_and_matches_warm(warm: Client, catalog: SqlCatalog,
                                                             kraken: HourRange) -> None:
    results = offload_all(warm, catalog, kraken, run_id="run-1", verify_staging=True)
    for result in results:
        table = catalog.load_table(("cold", result.table))
        assert len(table.snapshots()) == 1, result.table
        assert result.rows > 0 and result.files_added > 0, result.table
        verdict = matches_warm(warm, catalog, result.table, kraken)
        assert verdict.ok, (result.table, verdict)
        assert (verdict.cold_rows, verdict.cold_checksum) == (result.rows, result.checksum)


def test_the_snapshot_summary_records_the_run(warm: Client, catalog: SqlCatalog, kraken: HourRange) -> None:
    result = offload_hours(warm, catalog, "silver_trades", kraken, run_id="run-42")
    summary = catalog.load_table(("cold", "silver_trades")).current_snapshot().summary
    assert summary["k2.operation"] == "offload"
    assert summary["k2.run_id"] == "run-42"
    assert summary["k2.partition_keys"].split(",") == [f"2025-11-10-{h}:00" for h in range(17, 24)] + [
        "2025-11-11-00:00"]
    assert (int(summary["k2.source_rows"]), int(summary["k2.source_checksum"])) == (result.rows, result.checksum)


def test_rerunning_a_range_gives_identical_cold_content(warm: Client, catalog: SqlCatalog, kraken: HourRange) -> None:
    offload_all(warm, catalog, kraken)
    first = {name: cold_rows(warm, catalog, name, ORDER_BY[name]) for name in COLD_TABLES}
    offload_all(warm, catalog, kraken)
    offload_hours(warm, catalog, "silver_trades", _hour(datetime(2025, 11, 10, 19, tzinfo=UTC)))
    assert {name: cold_rows(warm, catalog, name, ORDER_BY[name]) for name in COLD_TABLES} == first


def test_staged_files_carry_the_right_partition_so_readers_can_prune(warm: Client, catalog: SqlCatalog,
                                                                     kraken: HourRange) -> None:
    offload_hours(warm, catalog, "raw_trades", kraken)
    table = catalog.load_table(("cold", "raw_trades"))
    hours = warm.query("SELECT event_hour, count() FROM k2.trades_raw GROUP BY event_hour").result_rows
    assert len(hours) == 8
    for hour, count in hours:
        # pyiceberg prunes by partition first: a file filed under the wrong hour would go missing here.
        scan = table.scan(row_filter=EqualTo("event_hour", hour.replace(tzinfo=UTC).isoformat()))
        assert len(list(scan.plan_files())) == 1
        assert scan.to_arrow().num_rows == count


def test_re_offloading_one_hour_keeps_the_other_hours_and_windows(warm: Client, catalog: SqlCatalog,
                                                                  kraken: HourRange) -> None:
    offload_all(warm, catalog, kraken)
    before = {name: cold_rows(warm, catalog, name, ORDER_BY[name]) for name in COLD_TABLES}
    # Gold files hold a day of windows: re-offloading one hour rewrites the day file around it.
    results = offload_all(warm, catalog, _hour(datetime(2025, 11, 10, 21, tzinfo=UTC)))
    assert any(r.table.startswith("gold") and r.files_added > 1 for r in results)
    assert {name: cold_rows(warm, catalog, name, ORDER_BY[name]) for name in COLD_TABLES} == before


def test_re_offloading_an_hour_of_a_compacted_day_rewrites_the_day_file_around_it(
        warm: Client, catalog: SqlCatalog, kraken: HourRange) -> None:
    offload_hours(warm, catalog, "silver_trades", kraken)
    table = catalog.load_table(("cold", "silver_trades"))
    table.overwrite(table.scan().to_arrow())  # what compaction does: one file per day and exchange
    compacted = {task.file.file_path for task in catalog.load_table(("cold", "silver_trades")).scan().plan_files()}
    assert len(compacted) == 2  # 2025-11-10 and 2025-11-11
    add_late_kraken_trade(warm, LATE_AT)
    seal_all(warm, LATE_HOUR)
    result = offload_hours(warm, catalog, "silver_trades", LATE_HOUR)
    assert (result.files_removed, result.files_added) == (1, 2)  # the day file, as the rest + the new hour
    assert matches_warm(warm, catalog, "silver_trades", kraken).ok


def test_an_hour_emptied_in_warm_is_emptied_in_cold(warm: Client, catalog: SqlCatalog, kraken: HourRange) -> None:
    hour = _hour(datetime(2025, 11, 10, 22, tzinfo=UTC))
    offload_hours(warm, catalog, "raw_trades", kraken)
    warm.command("DELETE FROM k2.trades_raw WHERE event_hour = {h:DateTime('UTC')}", parameters={"h": hour.start})
    result = offload_hours(warm, catalog, "raw_trades", hour)
    assert (result.rows, result.files_added, result.files_removed) == (0, 0, 1)
    assert matches_warm(warm, catalog, "raw_trades", kraken).ok
    assert matches_warm(warm, catalog, "raw_trades", hour).cold_rows == 0


def test_an_empty_range_with_nothing_in_cold_makes_no_snapshot(warm: Client, catalog: SqlCatalog) -> None:
    result = offload_hours(warm, catalog, "silver_trades", _hour(datetime(2030, 1, 1, tzinfo=UTC)))
    assert result.snapshot_id is None
    assert catalog.load_table(("cold", "silver_trades")).current_snapshot() is None


def test_an_offload_racing_warm_writes_restages_then_gives_up_leaving_cold_as_it_was(
        warm: Client, catalog: SqlCatalog, kraken: HourRange, monkeypatch: pytest.MonkeyPatch) -> None:
    offload_hours(warm, catalog, "silver_trades", kraken)
    before = cold_rows(warm, catalog, "silver_trades", ORDER_BY["silver_trades"])
    calls = []

    warm_files = offload_module._warm_files

    def moving_warm_files(client: Client, cold: ColdTable, hours: HourRange) -> list[offload_module._WarmFile]:
        calls.append(hours)
        # warm "changes" between every checksum and its stage: each file gains rows after it was counted
        return [dataclasses.replace(f, rows=f.rows - len(calls)) for f in warm_files(client, cold, hours)]

    monkeypatch.setattr(offload_module, "_warm_files", moving_warm_files)
    with pytest.raises(OffloadSourceChanged):
        offload_hours(warm, catalog, "silver_trades", kraken)
    assert len(calls) == MAX_STAGE_ATTEMPTS
    assert cold_rows(warm, catalog, "silver_trades", ORDER_BY["silver_trades"]) == before
    staging = data_dir(catalog.load_table(("cold", "silver_trades"))) / STAGING_PREFIX
    assert len(list(staging.iterdir())) == 1, "only the first offload's files remain; failed stages are removed"


def test_unmerged_duplicates_in_warm_are_offloaded_once(warm: Client, catalog: SqlCatalog, kraken: HourRange,
                                                       datasets: Path) -> None:
    """Files are written without FINAL only where no two stored rows share a key; a replay not yet merged leaves
    such pairs, and then the files are read with FINAL."""
    silver = cold_table("silver_trades")
    assert not any(f.final for f in offload_module._warm_files(warm, silver, kraken)), "a seal leaves no pairs"
    for table in ("bronze_trades", "silver_trades"):
        warm.command(f"SYSTEM STOP MERGES k2.{table}")
    try:
        ingest_file(warm, datasets / KRAKEN_TRADES)  # a replay: every trade stored twice until a merge
        assert all(f.final for f in offload_module._warm_files(warm, silver, kraken))
        for name in ("bronze_trades", "silver_trades"):
            result = offload_hours(warm, catalog, name, kraken)
            stored = int(warm.command(f"SELECT count() FROM k2.{cold_table(name).warm.name} WHERE "
                                      f"{cold_table(name).range_predicate}", parameters=kraken.parameters))
            assert stored > result.rows > 0, name
            verdict = matches_warm(warm, catalog, name, kraken)
            assert verdict.ok and verdict.cold_rows == result.rows, (name, verdict)
    finally:
        for table in ("bronze_trades", "silver_trades"):
            warm.command(f"SYSTEM START MERGES k2.{table}")


def test_a_range_that_is_not_whole_hours_is_refused(warm: Client, catalog: SqlCatalog) -> None:
    with pytest.raises(ValueError, match="whole hours"):
        offload_hours(warm, catalog, "raw_trades", HourRange(datetime(2025, 11, 10, 17, 30, tzinfo=UTC),
                                                             datetime(2025, 11, 10, 18, tzinfo=UTC)))


def test_a_late_trade_updates_bronze_silver_and_every_gold_window_in_cold(warm: Client, catalog: SqlCatalog,
                                                                          kraken: HourRange) -> None:
    offload_all(warm, catalog, kraken)
    daily_before = cold_rows(warm, catalog, "gold_ohlcv_1d", "window_start")
    add_late_kraken_trade(warm, LATE_AT)
    seal_all(warm, LATE_HOUR)
    offload_all(warm, catalog, LATE_HOUR)
    for name in COLD_TABLES:
        assert matches_warm(warm, catalog, name, kraken).ok, name
    daily_after = cold_rows(warm, catalog, "gold_ohlcv_1d", "window_start")
    count = GOLD_COLUMNS_INDEX["trade_count"]
    assert [r[count] for r in daily_after] == [daily_before[0][count] + 1, daily_before[1][count]]
    minute = [r for r in cold_rows(warm, catalog, "gold_ohlcv_1m", "window_start")
              if r[2].replace(tzinfo=UTC) == LATE_AT.replace(second=0, microsecond=0)]
    assert len(minute) == 1 and minute[0][GOLD_COLUMNS_INDEX["low"]] <= Decimal("104000")
    silver = cold_rows(warm, catalog, "silver_trades", "trade_id")
    assert [r for r in silver if r[3] == "99000001"], "the late trade is in cold silver"


GOLD_COLUMNS_INDEX = {c.name: i for i, c in enumerate(cold_table("gold_ohlcv_1d").columns)}


def test_concurrent_offloads_of_different_hours_both_land(warm: Client, catalog: SqlCatalog, kraken: HourRange,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = _hour(datetime(2025, 11, 10, 17, tzinfo=UTC)), _hour(datetime(2025, 11, 10, 18, tzinfo=UTC))
    commit_together(monkeypatch)
    run_in_threads(lambda: offload_hours(warm, catalog, "silver_trades", first),
                    lambda: offload_hours(warm, catalog, "silver_trades", second))
    assert len(catalog.load_table(("cold", "silver_trades")).snapshots()) == 2
    assert matches_warm(warm, catalog, "silver_trades", first).ok
    assert matches_warm(warm, catalog, "silver_trades", second).ok


def test_concurrent_offloads_of_the_same_hour_leave_exactly_one_copy(warm: Client, catalog: SqlCatalog,
                                                                     kraken: HourRange,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    hour = _hour(datetime(2025, 11, 10, 19, tzinfo=UTC))
    commit_together(monkeypatch)
    results = run_in_threads(lambda: offload_hours(warm, catalog, "silver_trades", hour),
                              lambda: offload_hours(warm, catalog, "silver_trades", hour))
    assert sorted(r.attempts for r in results) == [1, 2], "the loser re-planned and committed again"
    verdict = matches_warm(warm, catalog, "silver_trades", hour)
    assert verdict.ok and verdict.cold_rows > 0, verdict


def test_naive_baseline_writes_the_same_content(warm: Client, catalog: SqlCatalog, kraken: HourRange) -> None:
    for name in ("raw_trades", "silver_trades", "gold_ohlcv_1d"):
        offload_hours(warm, catalog, name, kraken)
        fast = cold_rows(warm, catalog, name, ORDER_BY[name])
        offload_hours_naive(warm, catalog, name, kraken)
        assert cold_rows(warm, catalog, name, ORDER_BY[name]) == fast, name
        assert matches_warm(warm, catalog, name, kraken).ok, name


def test_ensure_cold_tables_is_idempotent_and_adds_missing_columns(catalog: SqlCatalog) -> None:
    silver = cold_table("silver_trades")
    catalog.drop_table(silver.identifier)
    catalog.create_table(silver.identifier, Schema(*silver.schema.fields[:-1]), partition_spec=silver.spec)
    ensure_cold_tables(catalog)
    tables = ensure_cold_tables(catalog)
    assert sorted(tables) == sorted(COLD_TABLES)
    table = tables["silver_trades"]
    assert table.schema().find_field("received_at").field_type == silver.schema.find_field("received_at").field_type
    assert "received_at" in table.properties["schema.name-mapping.default"]


def _cold_candles(warm: Client, catalog: SqlCatalog, exchange: str, symbol: str) -> dict[int, tuple]:
    table = catalog.load_table(("cold", "gold_ohlcv_1m"))
    rows = query_pinned(
        warm, pinned_snapshot(table),
        "SELECT toUnixTimestamp(window_start), open, high, low, close, volume, trade_count, vwap "
        f"FROM {PINNED_ICEBERG} WHERE exchange = {{e:String}} AND symbol = {{s:String}}",
        {"e": exchange, "s": symbol})
    return {row[0]: row[1:] for row in rows}


def test_real_samples_reach_cold_with_1m_candles_equal_to_the_exchanges(warm: Client, catalog: SqlCatalog,
                                                                        datasets: Path) -> None:
    for path, hours in ((KRAKEN_TRADES, KRAKEN_HOURS), (BINANCE_TRADES, BINANCE_HOURS)):
        ingest_file(warm, datasets / path)
        seal_all(warm, hours)
        for result in offload_all(warm, catalog, hours):
            assert matches_warm(warm, catalog, result.table, hours).ok, result.table
    assert len(catalog.load_table(("cold", "gold_ohlcv_1m")).snapshots()) == 2, "one commit per ranged run"

    ours = _cold_candles(warm, catalog, "kraken", "BTC/USDT")
    published = json.loads((datasets / "kraken" / "XBTUSDT-ohlc-1m-2025-11-10.rest.json").read_text())
    times = [float(t[2]) for t in json.loads((datasets / KRAKEN_TRADES).read_text())["result"]["XBTUSDT"]]
    first_minute, last_minute = min(times) // 60 * 60, max(times) // 60 * 60
    compared = set()
    for t, o, h, lo, c, vwap, volume, count in published["result"]["XBTUSDT"]:
        if count == 0 or not first_minute < t < last_minute:
            continue  # the page's first and last minutes hold trades outside the page
        our_open, our_high, our_low, our_close, our_volume, our_count, our_vwap = ours[t]
        assert (our_open, our_high, our_low, our_close, our_volume) == tuple(map(Decimal, (o, h, lo, c, volume))), t
        assert our_count == count, t
        assert our_vwap.quantize(Decimal("0.1"), rounding=ROUND_DOWN) == Decimal(vwap), t  # Kraken cuts vwap
        compared.add(t)
    assert compared == {t for t in ours if first_minute < t < last_minute}

    ours = _cold_candles(warm, catalog, "binance", "XRP/ETH")
    compared = set()
    with (datasets / "binance" / "XRPETH-klines-1m-2019-10-11_13.csv").open() as handle:
        for open_ms, o, h, lo, c, volume in csv.reader(handle):
            minute = int(open_ms) // 1000
            if Decimal(volume) == 0:
                assert minute not in ours
                continue
            assert ours[minute][:5] == tuple(map(Decimal, (o, h, lo, c, volume))), minute
            compared.add(minute)
    assert set(ours) == compared
