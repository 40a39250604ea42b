"""Every bad message lands in the DLQ with its reason; every raw message is accounted for."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from k2_lakehouse.hours import HourRange
from k2_lakehouse.ingest.load import ingest_file
from k2_lakehouse.warm.seal import accounting, seal_bronze, seal_gold, seal_silver
from k2_lakehouse_tests.support.warm import (
    BAD_LINES,
    DEPTH,
    HOUR,
    T_MS,
    VALIDATION_REASONS,
    agg_event,
    all_hours,
)


def _write(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "binance-ws.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def _seal(warm: Client, hours: HourRange) -> None:
    seal_bronze(warm, hours)
    seal_silver(warm, hours)
    seal_gold(warm, hours)


def test_every_dlq_reason_is_recorded_with_the_verbatim_payload(warm: Client, tmp_path: Path) -> None:
    path = _write(tmp_path, [agg_event(1), *BAD_LINES.values(), DEPTH])
    summary = ingest_file(warm, path)
    assert summary.dlq == {reason: 1 for reason in BAD_LINES}
    rows = dict(warm.query("SELECT toString(reason), payload FROM k2.silver_trades_dlq").result_rows)
    assert rows == BAD_LINES


def test_dlq_reasons_and_payloads_survive_a_seal_unchanged(warm: Client, tmp_path: Path) -> None:
    ingest_file(warm, _write(tmp_path, [agg_event(1), *BAD_LINES.values(), DEPTH]))
    _seal(warm, all_hours())
    rows = warm.query("SELECT toString(reason), payload FROM k2.silver_trades_dlq").result_rows
    assert sorted(rows) == sorted(BAD_LINES.items())


def test_a_file_ingested_twice_leaves_each_validation_reject_once_with_its_payload_after_a_seal(
        warm: Client, tmp_path: Path) -> None:
    path = _write(tmp_path, [agg_event(1), *BAD_LINES.values()])
    ingest_file(warm, path)
    ingest_file(warm, path)
    _seal(warm, all_hours())
    rows = warm.query("SELECT toString(reason), payload FROM k2.silver_trades_dlq WHERE stage = 'validate'").result_rows
    assert sorted(rows) == sorted((reason, line) for reason, line in BAD_LINES.items() if reason in VALIDATION_REASONS)


def test_a_reject_whose_raw_row_expired_stays_in_the_dlq_on_a_reseal(warm: Client, tmp_path: Path) -> None:
    ingest_file(warm, _write(tmp_path, [agg_event(1), BAD_LINES["non_positive_price"]]))
    warm.command("DELETE FROM k2.trades_raw WHERE payload = {line:String}",
                 parameters={"line": BAD_LINES["non_positive_price"]})
    seal_silver(warm, all_hours())
    rows = warm.query("SELECT toString(stage), toString(reason), payload FROM k2.silver_trades_dlq").result_rows
    assert rows == [("validate", "non_positive_price", "")]


def test_the_summary_counts_as_new_only_the_trades_no_earlier_ingest_stored(warm: Client, tmp_path: Path) -> None:
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    first.write_text("\n".join(agg_event(i) for i in (1, 2, 3, 4)) + "\n")
    second.write_text("\n".join(agg_event(i) for i in (3, 4, 5, 6, 6)) + "\n")
    ingest_file(warm, first)
    summary = ingest_file(warm, second)
    assert (summary.messages, summary.trades, summary.duplicates) == (5, 2, 3)


def test_non_trade_messages_are_skipped_and_counted_not_dlqd(warm: Client, tmp_path: Path) -> None:
    summary = ingest_file(warm, _write(tmp_path, [agg_event(1), DEPTH, DEPTH]))
    assert (summary.skipped, summary.dlq_total, summary.trades) == (2, 0, 1)


def test_accounting_balances_with_duplicates_and_malformed_input(warm: Client, tmp_path: Path) -> None:
    lines = [agg_event(1), agg_event(11), agg_event(1), *BAD_LINES.values(), DEPTH]
    ingest_file(warm, _write(tmp_path, lines))
    ingest_file(warm, _write(tmp_path, lines))  # a whole replay
    hours = all_hours()
    _seal(warm, hours)
    books = accounting(warm, hours)
    assert books.raw == 2 * len(lines)
    # Messages too broken to carry a trade id stay in the DLQ once per copy; a replayed trade that
    # fails validation collapses onto its first copy in bronze and counts as a duplicate.
    unparsed = {"unparseable", "missing_field", "wrong_type"}
    expected_dlq = 2 * len(unparsed) + len(BAD_LINES) - len(unparsed)
    assert (books.silver, books.skipped, books.dlq) == (2, 2, expected_dlq)
    assert books.duplicates == 2 * len(lines) - 2 - 2 - expected_dlq
    assert books.balanced


def test_accounting_is_unbalanced_when_a_silver_row_goes_missing(warm: Client, tmp_path: Path) -> None:
    ingest_file(warm, _write(tmp_path, [agg_event(1), agg_event(11)]))
    hours = all_hours()
    _seal(warm, hours)
    warm.command("DELETE FROM k2.silver_trades WHERE trade_id = '11'")
    assert not accounting(warm, hours).balanced


def test_replayed_messages_do_not_double_count_candles_after_sealing(warm: Client, tmp_path: Path) -> None:
    path = _write(tmp_path, [agg_event(1), agg_event(11)])
    ingest_file(warm, path)
    ingest_file(warm, path)
    _seal(warm, all_hours())
    volume, trades = warm.query("SELECT sum(volume), sum(trade_count) FROM k2.gold_ohlcv_1d_view").result_rows[0]
    assert (str(volume.normalize()), trades) == ("1", 6)  # 2 aggTrades of 0.5, each standing for 3 trades


def test_a_late_trade_into_a_sealed_hour_is_counted_once_resealed(warm: Client, tmp_path: Path) -> None:
    ingest_file(warm, _write(tmp_path, [agg_event(1)]))
    hours = all_hours()
    _seal(warm, hours)
    late = tmp_path / "late"
    late.mkdir()
    ingest_file(warm, _write(late, [agg_event(12, p="60001.00000000")]))
    _seal(warm, hours)
    count, high = warm.query("SELECT sum(trade_count), max(high) FROM k2.gold_ohlcv_1h_view").result_rows[0]
    assert (count, str(high.normalize())) == (6, "60001")
    assert accounting(warm, hours).balanced


def test_equal_trade_ids_on_two_symbols_are_two_trades(warm: Client, tmp_path: Path) -> None:
    # Binance numbers aggTrades per symbol: the same id on BTCUSDT and ETHUSDT is two different trades.
    ingest_file(warm, _write(tmp_path, [agg_event(1), agg_event(1, s="ETHUSDT")]))
    _seal(warm, all_hours())
    assert warm.command("SELECT count() FROM k2.silver_trades FINAL") == 2


def test_gold_checks_pass_for_the_last_hour_of_a_day_with_trades_the_next_day(warm: Client, tmp_path: Path) -> None:
    from k2_lakehouse.warm.checks import gold_equals_recomputation, ohlcv_sanity

    midnight = (HOUR - timedelta(days=1)).replace(hour=0)
    at = [midnight - timedelta(minutes=30), midnight + timedelta(minutes=30)]
    lines = [agg_event(20 + i, T=int(t.timestamp() * 1000)) for i, t in enumerate(at)]
    ingest_file(warm, _write(tmp_path, lines))
    last_hour = HourRange(midnight - timedelta(hours=1), midnight)
    _seal(warm, HourRange(midnight - timedelta(hours=1), midnight + timedelta(hours=1)))
    assert ohlcv_sanity(warm, last_hour).passed
    assert gold_equals_recomputation(warm, last_hour).passed


@pytest.mark.parametrize(("price", "reason"), [
    ("1.000000000000000000", ""),  # zeros past the 12th fraction digit carry no value
    ("0001.5", ""),
    ("99999999999999999999999999.999999999999", ""),  # 26 + 12 digits: the most Decimal(38, 12) holds
    ("5.", "wrong_type"),
    ("1e5", "wrong_type"),
    (" 1.5", "wrong_type"),
    ("123456789012345678901234567", "too_many_digits"),
    ("0.0000000000001", "too_many_digits"),
])
def test_prices_are_decimals_that_fit_exactly_or_are_rejected_with_the_rule_they_break(
        warm: Client, tmp_path: Path, price: str, reason: str) -> None:
    # The smallest quantity, so that even the largest price's quote volume fits Decimal(38, 24).
    ingest_file(warm, _write(tmp_path, [agg_event(1, p=price, q="0.000000000001")]))
    silver = [Decimal(p) for (p,) in warm.query("SELECT toString(price) FROM k2.silver_trades").result_rows]
    dlq = [r for (r,) in warm.query("SELECT toString(reason) FROM k2.silver_trades_dlq").result_rows]
    if reason:
        assert (silver, dlq) == ([], [reason])
    else:
        assert (silver, dlq) == ([Decimal(price)], [])


# Decimal(38, 24) holds 14 integer digits: price * quantity must stay below 10^14.
@pytest.mark.parametrize(("price", "quantity", "reason"), [
    ("99999999999999.999999999999", "1", ""),
    ("99999999999999999999999999", "0.000000000001", ""),  # the largest price times the smallest quantity
    ("100000000000000", "1", "quote_volume_out_of_range"),
    ("99999999999999999999999999", "0.000000000002", "quote_volume_out_of_range"),
    ("1000000000", "1000000", "quote_volume_out_of_range"),  # 10^15: past what ClickHouse's 128 bits hold at scale 24
    ("99999999999999999999999999", "99999999999999999999999999", "quote_volume_out_of_range"),
])
def test_a_trade_whose_quote_volume_does_not_fit_decimal_38_24_is_dlqd(
        warm: Client, tmp_path: Path, price: str, quantity: str, reason: str) -> None:
    ingest_file(warm, _write(tmp_path, [agg_event(1, p=price, q=quantity)]))
    silver = warm.query("SELECT count() FROM k2.silver_trades").result_rows[0][0]
    dlq = [r for (r,) in warm.query("SELECT toString(reason) FROM k2.silver_trades_dlq").result_rows]
    assert (silver, dlq) == ((0, [reason]) if reason else (1, []))


@pytest.mark.parametrize("sealed", [False, True], ids=["live", "sealed"])
def test_candles_leave_out_a_trade_whose_quote_volume_does_not_fit_and_keep_every_other_trade(
        warm: Client, tmp_path: Path, sealed: bool) -> None:
    good = [agg_event(1, p="60000.5", q="0.5"), agg_event(3, p="60001.25", q="2")]
    ingest_file(warm, _write(tmp_path, [good[0], agg_event(2, p="1000000000", q="1000000"), good[1]]))
    if sealed:
        _seal(warm, all_hours())
    events = [json.loads(line)["data"] for line in good]
    expected = (sum(Decimal(e["p"]) * Decimal(e["q"]) for e in events), sum(Decimal(e["q"]) for e in events),
                sum(e["l"] - e["f"] + 1 for e in events))
    for timeframe in ("1m", "1h", "1d"):
        candle = warm.query(f"SELECT quote_volume, volume, trade_count FROM k2.gold_ohlcv_{timeframe}_view").result_rows
        assert candle == [expected], timeframe
    dlq = warm.query("SELECT toString(reason), source_position FROM k2.silver_trades_dlq").result_rows
    assert dlq == [("quote_volume_out_of_range", 2)]


def test_a_candle_whose_quote_volume_wraps_fails_the_sanity_check(warm: Client, tmp_path: Path) -> None:
    from k2_lakehouse.warm.checks import ohlcv_sanity

    # Each trade's quote volume (9e13) fits, but one window's sum (1.8e14) is past what Decimal(38, 24) holds.
    ingest_file(warm, _write(tmp_path, [agg_event(1, p="90000000", q="1000000"), agg_event(2, p="90000000", q="1000000")]))
    _seal(warm, all_hours())
    assert warm.query("SELECT count() FROM k2.silver_trades").result_rows == [(2,)]

    outcome = ohlcv_sanity(warm, all_hours())

    assert not outcome.passed
    assert any("malformed 1m candles" in problem for problem in outcome.problems)


T_S = f"{(HOUR + timedelta(minutes=1)).timestamp():.4f}"


def _kraken_file(tmp_path: Path, source_format: str, times: list[str]) -> Path:
    """One trade per time, in `source_format`; the times go in verbatim (a REST page's as JSON numbers)."""
    if source_format == "kraken-csv":
        path = tmp_path / "XBTUSD-kraken.csv"
        path.write_text("".join(f"{t},60000.{i},0.5\n" for i, t in enumerate(times)))
    elif source_format == "kraken-ws":
        path = tmp_path / "kraken-ws.jsonl"
        path.write_text("".join(f'[42,[["60000.{i}","0.5","{t}","b","l",""]],"trade","XBT/USD"]\n'
                                for i, t in enumerate(times)))
    else:
        trades = ",".join(f'["60000.{i}","0.5",{t},"b","l","",{i + 1}]' for i, t in enumerate(times))
        path = tmp_path / "kraken.rest.json"
        path.write_text(f'{{"error":[],"result":{{"XXBTZUSD":[{trades}],"last":"1"}}}}')
    return path


@pytest.mark.parametrize("source_format", ["kraken-csv", "kraken-ws", "kraken-rest"])
@pytest.mark.parametrize(("bad_time", "reason"), [
    (f"{T_S.replace('.', '')}00", "timestamp_in_future"),  # microseconds where seconds belong
    ("1e30", "timestamp_in_future"),
    ("99999999999999999999999999.5", "timestamp_in_future"),
    ("-1e30", "timestamp_too_old"),
])
def test_a_kraken_time_beyond_int64_microseconds_is_dlqd_and_the_rest_of_the_file_loads(
        warm: Client, tmp_path: Path, source_format: str, bad_time: str, reason: str) -> None:
    times = [T_S, bad_time, T_S]
    summary = ingest_file(warm, _kraken_file(tmp_path, source_format, times), source_format=source_format)
    assert (summary.messages, summary.trades, summary.dlq) == (len(times), len(times) - 1, {reason: 1})
    dlq = warm.query("SELECT source_position FROM k2.silver_trades_dlq").result_rows
    assert dlq == [(times.index(bad_time) + 1,)]


def test_a_combined_stream_message_is_a_trade_whatever_its_key_order_or_spacing(warm: Client, tmp_path: Path) -> None:
    events = [json.loads(agg_event(agg_id))["data"] for agg_id in (1, 2, 3)]
    lines = [
        json.dumps({"stream": "btcusdt@aggTrade", "data": events[0]}, separators=(",", ":")),
        json.dumps({"data": events[1], "stream": "btcusdt@aggTrade"}, separators=(",", ":")),  # keys sorted (jq -S)
        json.dumps({"stream": "btcusdt@aggTrade", "data": events[2]}).replace("{", "{ ", 1),
    ]
    summary = ingest_file(warm, _write(tmp_path, lines))
    assert (summary.trades, summary.skipped, summary.dlq) == (len(lines), 0, {})
    bronze = warm.query("SELECT trade_id, toUnixTimestamp64Milli(exchange_ts) FROM k2.bronze_trades ORDER BY trade_id")
    assert bronze.result_rows == [(str(event["a"]), event["T"]) for event in events]


def _binance_combined(line: str) -> str:
    """`line` as Binance writes a combined-stream message, no spaces: the layout the parser's fast path reads."""
    return json.dumps(json.loads(line), separators=(",", ":"))


def _binance_bare(line: str) -> str:
    """The event of `line` alone, as a raw stream sends it, no spaces."""
    return json.dumps(json.loads(line)["data"], separators=(",", ":"))


@pytest.mark.parametrize("layout", [_binance_combined, _binance_bare, str], ids=["combined", "bare", "spaced"])
@pytest.mark.parametrize("field", [
    {"a": -7}, {"a": 7.5}, {"a": "7"}, {"f": -1}, {"l": 12.5}, {"T": str(T_MS)}, {"T": T_MS + 0.5}, {"m": 1}, {"m": "true"},
    {"s": 12345}, {"s": 1.5}, {"s": True}, {"s": ["BTCUSDT"]},
], ids=str)
def test_a_binance_event_whose_symbol_id_time_or_side_has_the_wrong_json_type_is_dlqd_as_wrong_type(
        warm: Client, tmp_path: Path, field: dict[str, object], layout: Callable[[str], str]) -> None:
    summary = ingest_file(warm, _write(tmp_path, [layout(agg_event(1)), layout(agg_event(2, **field))]))
    assert (summary.trades, summary.dlq) == (1, {"wrong_type": 1})
    assert warm.query("SELECT source_position, toString(stage) FROM k2.silver_trades_dlq").result_rows == [(2, "parse")]
