"""One rule picks the copy of a trade that counts, the same live, in a seal and under FINAL: a valid copy
beats an invalid one; among valid copies the first received wins. A rejected copy that a valid one superseded
leaves the DLQ when its hour is sealed (it is then a duplicate), and the accounting balances."""

from __future__ import annotations

from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from k2_lakehouse.ingest.load import ingest_file
from k2_lakehouse.warm.seal import accounting, seal_bronze, seal_gold, seal_silver
from k2_lakehouse_tests.support.warm import agg_event, all_hours

INVALID = agg_event(6, p="NaN")  # an unparseable price: the DLQ's non_finite
VALID = agg_event(6)  # the exchange's corrected re-send: same trade id, a price
VALID_LATER = agg_event(6, q="0.70000000")  # another valid copy, received after VALID


def _ingest_in_turn(warm: Client, tmp_path: Path, *lines: str) -> list[str]:
    """Ingest each line as its own file, one after another (so each copy is received after the one before)."""
    names = []
    for i, line in enumerate(lines):
        path = tmp_path / f"copy-{i}" / "binance-ws.jsonl"
        path.parent.mkdir()
        path.write_text(f"{line}\n")
        ingest_file(warm, path)
        names.append(str(path.resolve()))
    return names


def _seal(warm: Client) -> None:
    hours = all_hours()
    seal_bronze(warm, hours)
    seal_silver(warm, hours)
    seal_gold(warm, hours)


def _kept(warm: Client) -> dict[str, list[tuple[str, str]]]:
    """Which copy (source file, quantity) bronze and silver hold under FINAL."""
    return {
        "bronze": warm.query("SELECT source_name, quantity_text FROM k2.bronze_trades FINAL").result_rows,
        "silver": warm.query("SELECT source_name, toString(quantity) FROM k2.silver_trades FINAL").result_rows,
    }


def _candles(warm: Client) -> list[tuple[str, str]]:
    return warm.query("SELECT toString(sum(volume)), toString(sum(trade_count)) FROM k2.gold_ohlcv_1h_view").result_rows


@pytest.mark.parametrize("sealed", [False, True], ids=["live", "sealed"])
def test_a_valid_copy_received_after_an_invalid_one_is_the_trade(warm: Client, tmp_path: Path, sealed: bool) -> None:
    _, valid = _ingest_in_turn(warm, tmp_path, INVALID, VALID)
    if sealed:
        _seal(warm)
    assert _kept(warm) == {"bronze": [(valid, "0.50000000")], "silver": [(valid, "0.5")]}
    assert _candles(warm) == [("0.5", "3")]  # the aggTrade stands for trades 60..62


@pytest.mark.parametrize("sealed", [False, True], ids=["live", "sealed"])
def test_a_valid_copy_is_kept_over_an_invalid_one_received_after_it(warm: Client, tmp_path: Path, sealed: bool) -> None:
    valid, _ = _ingest_in_turn(warm, tmp_path, VALID, INVALID)
    if sealed:
        _seal(warm)
    assert _kept(warm) == {"bronze": [(valid, "0.50000000")], "silver": [(valid, "0.5")]}
    assert _candles(warm) == [("0.5", "3")]


@pytest.mark.parametrize("sealed", [False, True], ids=["live", "sealed"])
def test_among_valid_copies_the_first_received_wins_whatever_invalid_copy_came_before(
        warm: Client, tmp_path: Path, sealed: bool) -> None:
    _, first_valid, _ = _ingest_in_turn(warm, tmp_path, INVALID, VALID, VALID_LATER)
    if sealed:
        _seal(warm)
    assert _kept(warm) == {"bronze": [(first_valid, "0.50000000")], "silver": [(first_valid, "0.5")]}


def test_a_rejected_copy_superseded_by_a_valid_one_leaves_the_dlq_when_sealed_and_the_books_balance(
        warm: Client, tmp_path: Path) -> None:
    _ingest_in_turn(warm, tmp_path, INVALID, VALID)
    _seal(warm)
    assert warm.query("SELECT count() FROM k2.silver_trades_dlq").result_rows == [(0,)]
    books = accounting(warm, all_hours())
    assert (books.raw, books.silver, books.dlq, books.duplicates) == (2, 1, 0, 1)
    assert books.balanced


def test_a_rejected_trade_with_no_valid_copy_stays_in_the_dlq_once_when_sealed(warm: Client, tmp_path: Path) -> None:
    _ingest_in_turn(warm, tmp_path, INVALID, INVALID)
    _seal(warm)
    assert warm.query("SELECT toString(reason), count() FROM k2.silver_trades_dlq GROUP BY reason").result_rows == [
        ("non_finite", 1)]
    assert accounting(warm, all_hours()).balanced


def test_the_copy_a_seal_keeps_is_the_one_final_showed_before_it(warm: Client, tmp_path: Path) -> None:
    _ingest_in_turn(warm, tmp_path, INVALID, VALID, INVALID, VALID_LATER)
    live = _kept(warm)
    _seal(warm)
    assert _kept(warm) == live
