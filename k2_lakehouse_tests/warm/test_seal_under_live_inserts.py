"""A live insert that lands after a seal fixed which rows are old and before its replay is counted once: the
seal finds the second copy the replay made and replaces the layer again (a ClickHouse server admits concurrent
writers; the `before_replay` hook stands in for one, deterministically)."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from k2_lakehouse.hours import HourRange
from k2_lakehouse.ingest.load import ingest_file
from k2_lakehouse.warm.checks import gold_equals_recomputation
from k2_lakehouse.warm.seal import SEAL_ATTEMPTS, SealConflictError, seal_bronze, seal_gold, seal_silver
from k2_lakehouse_tests.support.warm import BAD_LINES, DEPTH, VALIDATION_REASONS, agg_event, all_hours

SAMPLE = "XRPETH-aggTrades-2019-10-11_13.csv"
HOURS = HourRange(datetime(2019, 10, 11, tzinfo=UTC), datetime(2019, 10, 13, 12, tzinfo=UTC))


def _file(folder: Path, name: str, lines: list[str]) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(lines))
    return path


class LiveIngest:
    """A `before_replay` hook: ingests `path` on the first attempt only, and records every attempt."""

    def __init__(self, warm: Client, path: Path) -> None:
        self.warm, self.path, self.attempts = warm, path, list[int]()

    def __call__(self, attempt: int) -> None:
        self.attempts.append(attempt)
        if attempt == 1:
            ingest_file(self.warm, self.path)


def _underlying_trades(csv_lines: list[str]) -> int:
    """Exchange trades in Binance aggTrades CSV lines: each aggregate spans first..last trade id."""
    return sum(int(fields[4]) - int(fields[3]) + 1 for fields in (line.split(",") for line in csv_lines))


def test_trades_ingested_between_a_gold_seals_old_rows_and_replay_are_counted_once(
        warm: Client, datasets: Path, tmp_path: Path) -> None:
    lines = (datasets / "binance" / SAMPLE).read_text().splitlines(keepends=True)
    ingest_file(warm, _file(tmp_path / "first", SAMPLE, lines[:6000]))
    seal_bronze(warm, HOURS)
    seal_silver(warm, HOURS)
    live = LiveIngest(warm, _file(tmp_path / "second", SAMPLE, lines[6000:]))
    seal_gold(warm, HOURS, before_replay=live)
    assert live.attempts == [1, 2], "the first replay counted the live trades twice and was replaced"
    assert int(warm.command("SELECT count() FROM k2.silver_trades FINAL")) == len(lines)
    assert int(warm.command("SELECT sum(trade_count) FROM k2.gold_ohlcv_1m_view")) == _underlying_trades(lines)
    outcome = gold_equals_recomputation(warm, HOURS)
    assert outcome.passed, outcome.problems


def test_a_gold_seal_that_live_inserts_race_on_every_attempt_fails_naming_the_hours(
        warm: Client, datasets: Path, tmp_path: Path) -> None:
    sample = datasets / "binance" / SAMPLE
    ingest_file(warm, sample)

    def live_copy(attempt: int) -> None:  # the same trades again: silver keeps one copy, live candles count both
        copy = tmp_path / f"copy-{attempt}" / SAMPLE
        copy.parent.mkdir()
        shutil.copy(sample, copy)
        ingest_file(warm, copy)

    with pytest.raises(SealConflictError, match=rf"2019-10-11 00:00 \.\. 2019-10-13 12:00 UTC.*all {SEAL_ATTEMPTS} attempts"
                                                r".*k2\.gold_ohlcv_1m holds"):
        seal_gold(warm, HOURS, before_replay=live_copy)


def test_a_live_ingest_between_a_bronze_seals_old_rows_and_replay_logs_each_parse_reject_and_skip_once(
        warm: Client, tmp_path: Path) -> None:
    lines = [f"{line}\n" for line in (agg_event(1), *BAD_LINES.values(), DEPTH)]
    ingest_file(warm, _file(tmp_path / "first", "binance-ws.jsonl", lines))
    hours = all_hours()
    live = LiveIngest(warm, _file(tmp_path / "second", "binance-ws.jsonl", lines))
    seal_bronze(warm, hours, before_replay=live)
    assert live.attempts == [1, 2]
    parse_rejects = {reason for reason in BAD_LINES if reason not in VALIDATION_REASONS}
    parse_counts = dict(warm.query("SELECT toString(reason), count() FROM k2.silver_trades_dlq WHERE stage = 'parse' "
                                   "GROUP BY reason").result_rows)
    assert parse_counts == {reason: 2 for reason in parse_rejects}, "one per raw row of the two files"
    assert int(warm.command("SELECT count() FROM k2.trades_skipped")) == 2


def test_a_live_ingest_between_a_silver_seals_old_rows_and_replay_logs_each_validation_reject_once(
        warm: Client, tmp_path: Path) -> None:
    lines = [f"{line}\n" for line in (agg_event(1), *BAD_LINES.values())]
    ingest_file(warm, _file(tmp_path / "first", "binance-ws.jsonl", lines))
    hours = all_hours()
    seal_bronze(warm, hours)
    live = LiveIngest(warm, _file(tmp_path / "second", "binance-ws.jsonl", lines))
    seal_silver(warm, hours, before_replay=live)
    assert live.attempts == [1, 2]
    validate_counts = dict(warm.query("SELECT toString(reason), count() FROM k2.silver_trades_dlq "
                                      "WHERE stage = 'validate' GROUP BY reason").result_rows)
    assert validate_counts == {reason: 1 for reason in VALIDATION_REASONS}, "one per deduplicated trade"
