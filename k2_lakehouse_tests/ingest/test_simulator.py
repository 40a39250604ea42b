"""Tests for the market simulator.

The files are checked by parsing them independently with json, never through simulator internals, so
the counts in SimulationResult are verified against what a consumer would actually read.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from k2_lakehouse.ingest.formats import detect_format
from k2_lakehouse.ingest.simulator import SimulationConfig, SimulationResult, simulate_market

START = datetime(2024, 1, 1, tzinfo=UTC)
REASONS = ("unparseable", "non_positive_price", "unknown_symbol", "missing_field")
REFERENCE = {"BTCUSDT": 60000, "ETHUSDT": 3000, "XRPETH": 0.00014, "XBT/USD": 60000, "ETH/EUR": 2800}
EIGHT_DECIMALS = re.compile(r"^\d+\.\d{8}$")
FILE_NAME = re.compile(r"^(binance|kraken)-ws-(\d{8}T\d{2})\.jsonl$")


def _simulate(
    tmp_path: Path, name: str = "out", **overrides: Any
) -> tuple[SimulationConfig, SimulationResult]:
    config = SimulationConfig(start=START, **overrides)
    return config, simulate_market(config, tmp_path / name)


@dataclass
class Trade:
    """One valid trade as read back from a file."""

    symbol: str
    time: Decimal  # seconds since the epoch
    price: str
    quantity: str
    raw: dict[str, Any] | list[Any]


@dataclass
class Line:
    text: str
    kind: str  # "trade", "non_trade" or a malformed reason
    trades: list[Trade] = field(default_factory=list)


@dataclass
class ParsedFile:
    exchange: str
    hour_start: datetime
    lines: list[Line]


def _classify(exchange: str, text: str, known: set[str]) -> Line:
    try:
        msg = json.loads(text)
    except json.JSONDecodeError:
        return Line(text, "unparseable")
    if exchange == "binance":
        data = msg.get("data") if isinstance(msg, dict) else None
        if not isinstance(data, dict) or data.get("e") != "aggTrade":
            return Line(text, "non_trade")
        if "p" not in data:
            return Line(text, "missing_field")
        if data["s"] not in known:
            return Line(text, "unknown_symbol")
        if Decimal(data["p"]) <= 0:
            return Line(text, "non_positive_price")
        trade = Trade(data["s"], Decimal(data["T"]) / 1000, data["p"], data["q"], data)
        return Line(text, "trade", [trade])
    if isinstance(msg, dict):
        return Line(text, "non_trade")
    _channel, entries, kind, pair = msg
    assert kind == "trade"
    if pair not in known:
        return Line(text, "unknown_symbol")
    if any(len(entry) != 6 for entry in entries):
        return Line(text, "missing_field")
    if any(Decimal(entry[0]) <= 0 for entry in entries):
        return Line(text, "non_positive_price")
    trades = [Trade(pair, Decimal(entry[2]), entry[0], entry[1], entry) for entry in entries]
    return Line(text, "trade", trades)


def _parse(config: SimulationConfig, result: SimulationResult) -> list[ParsedFile]:
    known = {symbol for _, symbol in config.symbols}
    parsed = []
    for path in result.files:
        match = FILE_NAME.match(path.name)
        assert match, path.name
        exchange = match.group(1)
        hour_start = datetime.strptime(match.group(2), "%Y%m%dT%H").replace(tzinfo=UTC)
        texts = path.read_text(encoding="utf-8").splitlines()
        parsed.append(ParsedFile(exchange, hour_start, [_classify(exchange, t, known) for t in texts]))
    return parsed


def _first_occurrences(parsed: ParsedFile) -> tuple[list[Line], list[Line]]:
    """Valid trade lines split into (first occurrence, repeated verbatim later in the same file)."""
    seen: set[str] = set()
    first, repeated = [], []
    for line in parsed.lines:
        if line.kind == "trade":
            (repeated if line.text in seen else first).append(line)
            seen.add(line.text)
    return first, repeated


def _binance_data(line: Line) -> dict[str, Any]:
    data = line.trades[0].raw
    assert isinstance(data, dict)
    return data


def _is_late(parsed: ParsedFile, line: Line) -> bool:
    start = Decimal(int(parsed.hour_start.timestamp()))
    return all(trade.time < start for trade in line.trades)


def test_same_config_and_seed_writes_byte_identical_files(tmp_path: Path) -> None:
    _, first = _simulate(tmp_path, "a")
    _, second = _simulate(tmp_path, "b")
    assert [p.name for p in first.files] == [p.name for p in second.files]
    assert [p.read_bytes() for p in first.files] == [p.read_bytes() for p in second.files]
    assert first == SimulationResult(
        files=tuple(tmp_path / "a" / p.name for p in second.files),
        trades=second.trades,
        duplicates=second.duplicates,
        late=second.late,
        malformed=second.malformed,
        non_trade=second.non_trade,
    )


def test_a_different_seed_writes_different_files(tmp_path: Path) -> None:
    _, first = _simulate(tmp_path, "a", seed=1)
    _, second = _simulate(tmp_path, "b", seed=2)
    assert [p.read_bytes() for p in first.files] != [p.read_bytes() for p in second.files]


def test_writes_one_file_per_exchange_per_hour(tmp_path: Path) -> None:
    _, result = _simulate(tmp_path, hours=2)
    assert sorted(p.name for p in result.files) == [
        "binance-ws-20240101T00.jsonl",
        "binance-ws-20240101T01.jsonl",
        "kraken-ws-20240101T00.jsonl",
        "kraken-ws-20240101T01.jsonl",
    ]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in result.files)


def test_result_counts_match_an_independent_parse_of_the_files(tmp_path: Path) -> None:
    config, result = _simulate(tmp_path, hours=3)
    trades = duplicates = late = non_trade = 0
    malformed: Counter[str] = Counter()
    for parsed in _parse(config, result):
        first, repeated = _first_occurrences(parsed)
        trades += sum(len(line.trades) for line in first)
        duplicates += len(repeated)
        late += sum(len(line.trades) for line in first if _is_late(parsed, line))
        non_trade += sum(1 for line in parsed.lines if line.kind == "non_trade")
        malformed.update(line.kind for line in parsed.lines if line.kind in REASONS)
    assert (trades, duplicates, late, non_trade) == (
        result.trades,
        result.duplicates,
        result.late,
        result.non_trade,
    )
    assert {reason: malformed[reason] for reason in REASONS} == result.malformed
    assert min(result.duplicates, result.late, result.non_trade, *result.malformed.values()) > 0


def test_duplicates_are_verbatim_copies_of_an_earlier_line_of_the_same_file(tmp_path: Path) -> None:
    config, result = _simulate(tmp_path, duplicate_rate=0.05)
    repeats = 0
    for parsed in _parse(config, result):
        # A trade's identity: Binance (symbol, aggregate id); Kraken (pair, time of its first trade).
        originals: dict[tuple[str, Any], str] = {}
        for line in parsed.lines:
            if line.kind != "trade":
                continue
            trade = line.trades[0]
            key = (trade.symbol, _binance_data(line)["a"] if parsed.exchange == "binance" else trade.time)
            if key in originals:
                assert line.text == originals[key]  # same trade again means the very same bytes
                repeats += 1
            originals[key] = line.text
    assert repeats == result.duplicates > 0


def test_duplicate_count_follows_the_duplicate_rate(tmp_path: Path) -> None:
    config, result = _simulate(tmp_path, duplicate_rate=0.05)
    messages = sum(len(_first_occurrences(parsed)[0]) for parsed in _parse(config, result))
    assert result.duplicates == pytest.approx(0.05 * messages, rel=0.2)


def test_late_trades_belong_to_the_hour_before_the_file_they_are_in(tmp_path: Path) -> None:
    config, result = _simulate(tmp_path, hours=3, late_rate=0.05)
    for parsed in _parse(config, result):
        start = Decimal(int(parsed.hour_start.timestamp()))
        lates = 0
        for line in parsed.lines:
            for trade in line.trades:
                assert start - 3600 <= trade.time < start + 3600, (parsed.hour_start, trade)
                if trade.time < start:
                    assert _is_late(parsed, line)  # a message never mixes hours
                    lates += 1
        if parsed.hour_start == START:
            assert lates == 0
        else:
            assert lates > 0


def test_late_count_follows_the_late_rate(tmp_path: Path) -> None:
    _, result = _simulate(tmp_path, hours=3, late_rate=0.05)
    movable = result.trades * 2 / 3  # the last hour's trades stay in its own file
    assert result.late == pytest.approx(0.05 * movable, rel=0.25)


def test_last_hour_keeps_its_late_trades_in_its_own_file(tmp_path: Path) -> None:
    config, result = _simulate(tmp_path, hours=1, late_rate=0.5)
    assert result.late == 0
    for parsed in _parse(config, result):
        start = Decimal(int(parsed.hour_start.timestamp()))
        assert all(start <= t.time < start + 3600 for line in parsed.lines for t in line.trades)


def test_malformed_counts_per_reason_follow_the_rate_and_match_the_result_exactly(tmp_path: Path) -> None:
    config, result = _simulate(tmp_path, trades_per_hour=4000, malformed_rate=0.02)
    parsed_files = _parse(config, result)
    messages = sum(1 for parsed in parsed_files for line in parsed.lines if line.kind == "trade")
    counted = Counter(line.kind for parsed in parsed_files for line in parsed.lines if line.kind in REASONS)
    assert {reason: counted[reason] for reason in REASONS} == result.malformed
    expected_per_reason = 0.02 * (messages - result.duplicates) / len(REASONS)
    for reason in REASONS:
        assert result.malformed[reason] == pytest.approx(expected_per_reason, rel=0.3), reason


def test_malformed_binance_trades_never_reuse_a_valid_aggregate_id(tmp_path: Path) -> None:
    config, result = _simulate(tmp_path, malformed_rate=0.05)
    for parsed in _parse(config, result):
        if parsed.exchange != "binance":
            continue
        valid_ids = {_binance_data(line)["a"] for line in parsed.lines if line.kind == "trade"}
        bad_ids = [
            json.loads(line.text)["data"]["a"]
            for line in parsed.lines
            if line.kind in ("non_positive_price", "unknown_symbol", "missing_field")
        ]
        assert bad_ids
        assert len(set(bad_ids)) == len(bad_ids)
        assert min(bad_ids) > max(valid_ids)


def test_binance_aggregate_ids_strictly_increase_per_symbol(tmp_path: Path) -> None:
    config, result = _simulate(tmp_path, hours=3)
    by_symbol: dict[str, dict[int, dict[str, Any]]] = defaultdict(dict)
    for parsed in _parse(config, result):
        if parsed.exchange != "binance":
            continue
        last_in_file: dict[str, int] = {}
        first, _ = _first_occurrences(parsed)
        for line in first:
            data = _binance_data(line)
            by_symbol[data["s"]][data["a"]] = data
            if not _is_late(parsed, line):
                assert data["a"] > last_in_file.get(data["s"], -1)
                last_in_file[data["s"]] = data["a"]
    assert set(by_symbol) == {"BTCUSDT", "ETHUSDT", "XRPETH"}
    for trades in by_symbol.values():
        ordered = [trades[a] for a in sorted(trades)]
        for previous, current in pairwise(ordered):
            assert current["a"] == previous["a"] + 1  # no gaps: every generated trade was written once
            assert current["f"] == previous["l"] + 1
            assert current["T"] >= previous["T"]
        assert all(t["l"] >= t["f"] for t in ordered)


def test_trade_times_are_non_decreasing_per_symbol_within_a_file_except_late_ones(tmp_path: Path) -> None:
    config, result = _simulate(tmp_path, hours=2)
    for parsed in _parse(config, result):
        last: dict[str, Decimal] = {}
        first, _ = _first_occurrences(parsed)
        for line in first:
            if _is_late(parsed, line):
                continue
            for trade in line.trades:
                assert trade.time >= last.get(trade.symbol, Decimal(0)), (parsed.hour_start, trade)
                last[trade.symbol] = trade.time


def test_prices_and_quantities_are_positive_8_decimal_strings_near_reference_levels(tmp_path: Path) -> None:
    config, result = _simulate(tmp_path, hours=3)
    seen: set[str] = set()
    for parsed in _parse(config, result):
        for line in parsed.lines:
            for trade in line.trades:
                assert EIGHT_DECIMALS.match(trade.price) and EIGHT_DECIMALS.match(trade.quantity)
                assert Decimal(trade.quantity) > 0
                reference = Decimal(str(REFERENCE[trade.symbol]))
                assert reference * Decimal("0.8") < Decimal(trade.price) < reference * Decimal("1.2")
                seen.add(trade.symbol)
    assert seen == set(REFERENCE)


def test_binance_messages_have_the_combined_stream_agg_trade_shape(tmp_path: Path) -> None:
    config, result = _simulate(tmp_path, hours=1)
    binance = [p for p in _parse(config, result) if p.exchange == "binance"]
    for line in (line for parsed in binance for line in parsed.lines if line.kind == "trade"):
        msg = json.loads(line.text)
        data = msg["data"]
        assert list(data) == ["e", "E", "s", "a", "p", "q", "f", "l", "T", "m", "M"]
        assert msg["stream"] == f"{data['s'].lower()}@aggTrade"
        assert data["E"] >= data["T"]
        assert isinstance(data["m"], bool) and data["M"] is True
        assert line.text == json.dumps(msg, separators=(",", ":"))


def test_kraken_messages_hold_one_to_three_trades_without_ids(tmp_path: Path) -> None:
    config, result = _simulate(tmp_path, hours=1)
    kraken = [p for p in _parse(config, result) if p.exchange == "kraken"]
    channels: dict[str, set[int]] = defaultdict(set)
    sizes: Counter[int] = Counter()
    for line in (line for parsed in kraken for line in parsed.lines if line.kind == "trade"):
        channel, entries, _, pair = json.loads(line.text)
        channels[pair].add(channel)
        sizes[len(entries)] += 1
        for price, volume, time, side, order_type, misc in entries:
            assert re.fullmatch(r"\d{10}\.\d{6}", time)
            assert (side, order_type, misc) in {(s, o, "") for s in "bs" for o in "lm"}
            assert EIGHT_DECIMALS.match(price) and EIGHT_DECIMALS.match(volume)
    assert set(sizes) == {1, 2, 3}
    assert set(channels) == {"XBT/USD", "ETH/EUR"}
    assert all(len(ids) == 1 for ids in channels.values())
    assert channels["XBT/USD"] != channels["ETH/EUR"]


def test_trade_count_per_hour_varies_around_trades_per_hour(tmp_path: Path) -> None:
    config, result = _simulate(tmp_path, hours=3, trades_per_hour=1000, late_rate=0.0, duplicate_rate=0.0)
    per_symbol_hour: Counter[tuple[str, datetime]] = Counter()
    for parsed in _parse(config, result):
        for line in parsed.lines:
            for trade in line.trades:
                per_symbol_hour[trade.symbol, parsed.hour_start] += 1
    counts = list(per_symbol_hour.values())
    assert len(counts) == 5 * 3
    assert all(850 <= count <= 1150 for count in counts)
    assert len(set(counts)) > 1
    assert sum(counts) == result.trades


def test_zero_rates_write_only_clean_trades_and_connection_messages(tmp_path: Path) -> None:
    config, result = _simulate(tmp_path, duplicate_rate=0.0, late_rate=0.0, malformed_rate=0.0)
    kinds = Counter(line.kind for parsed in _parse(config, result) for line in parsed.lines)
    assert (result.duplicates, result.late, sum(result.malformed.values())) == (0, 0, 0)
    assert set(kinds) == {"trade", "non_trade"}
    assert kinds["non_trade"] == result.non_trade


def test_first_kraken_file_opens_with_the_connection_messages(tmp_path: Path) -> None:
    _, result = _simulate(tmp_path, hours=2)
    first = next(p for p in result.files if p.name == "kraken-ws-20240101T00.jsonl")
    head = [json.loads(line) for line in first.read_text(encoding="utf-8").splitlines()[:3]]
    assert head[0]["event"] == "systemStatus"
    assert [(m["event"], m["pair"], m["status"]) for m in head[1:]] == [
        ("subscriptionStatus", "XBT/USD", "subscribed"),
        ("subscriptionStatus", "ETH/EUR", "subscribed"),
    ]


def test_every_file_is_detected_as_its_exchange_websocket_format(tmp_path: Path) -> None:
    _, result = _simulate(tmp_path, hours=2)
    assert {p.name: detect_format(p) for p in result.files} == {
        p.name: f"{p.name.split('-', 1)[0]}-ws" for p in result.files
    }


@pytest.mark.parametrize(
    ("start", "message"),
    [
        (datetime(2024, 1, 1), "timezone-aware UTC"),
        (datetime(2024, 1, 1, 1, tzinfo=timezone(timedelta(hours=1))), "timezone-aware UTC"),
        (datetime(2024, 1, 1, 0, 30, tzinfo=UTC), "whole hour"),
    ],
)
def test_rejects_a_start_that_is_not_an_hour_aligned_utc_time(start: datetime, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SimulationConfig(start=start)


def test_rejects_an_unsupported_exchange() -> None:
    with pytest.raises(ValueError, match="unsupported exchange"):
        SimulationConfig(start=START, symbols=(("coinbase", "BTC-USD"),))
