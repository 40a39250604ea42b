"""Binance's @trade and @aggTrade streams of one symbol are never mixed: a file carrying both is refused whole."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from k2_lakehouse.hours import HourRange
from k2_lakehouse.ingest.formats import FormatError
from k2_lakehouse.ingest.load import ingest_file
from k2_lakehouse.warm.checks import mixed_trade_streams
from k2_lakehouse.warm.seal import seal_bronze

HOUR = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
T_MS = int((HOUR + timedelta(minutes=10)).timestamp() * 1000)


def _trade(trade_id: int, symbol: str = "BTCUSDT") -> dict[str, object]:
    """A spot @trade event: its id is "t"."""
    return {"e": "trade", "E": T_MS, "s": symbol, "t": trade_id, "p": "60000.10", "q": "0.25", "T": T_MS, "m": True,
            "M": True}


def _agg(agg_id: int, symbol: str = "BTCUSDT") -> dict[str, object]:
    """A spot @aggTrade event: its id is "a", in another numbering than the trades it aggregates."""
    return {"e": "aggTrade", "E": T_MS, "s": symbol, "a": agg_id, "p": "60000.10", "q": "0.50", "f": 10, "l": 11,
            "T": T_MS, "m": True, "M": True}


def _combined(event: dict[str, object]) -> str:
    stream = f"{str(event['s']).lower()}@{event['e']}"
    return json.dumps({"stream": stream, "data": event}, separators=(",", ":"))


def _bare(event: dict[str, object]) -> str:
    return json.dumps(event, separators=(",", ":"))


def _spaced(event: dict[str, object]) -> str:
    return json.dumps({"stream": f"{str(event['s']).lower()}@{event['e']}", "data": event})


def _escaped(event: dict[str, object]) -> str:
    """The event name written with a JSON escape, which every JSON reader (and the parser) reads as the name."""
    return _combined(event).replace(f'"e":"{event["e"]}"', '"e":"' + "".join(f"\\u{ord(c):04x}" for c in str(event["e"])) + '"')


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


@pytest.mark.parametrize("layout", [_combined, _bare, _spaced, _escaped], ids=["combined", "bare", "spaced", "escaped"])
def test_a_file_with_trade_and_aggtrade_events_of_one_symbol_is_refused_naming_the_file_symbol_and_lines(
        warm: Client, tmp_path: Path, layout: Callable[[dict[str, object]], str]) -> None:
    # aggTrade 1 is trades 10 and 11 again, and the unrelated trade 1 shares its id.
    lines = [layout(_agg(1)), layout(_trade(10)), layout(_trade(11)), layout(_trade(1))]
    path = _write(tmp_path / "btcusdt-both-streams.jsonl", lines)
    with pytest.raises(FormatError, match=rf"^{re.escape(str(path))}: .*BTCUSDT.*line 2.*line 1\b"):
        ingest_file(warm, path, source_format="binance-ws")
    assert warm.command("SELECT count() FROM k2.trades_raw") == 0


def test_a_file_whose_second_stream_starts_after_the_first_batch_is_refused_before_any_insert(
        warm: Client, tmp_path: Path) -> None:
    lines = [_combined(_trade(i)) for i in range(1, 2001)] + [_combined(_agg(1))]
    path = _write(tmp_path / "btcusdt-trades-then-aggtrades.jsonl", lines)
    with pytest.raises(FormatError, match=rf"BTCUSDT.*line 1\b.*line {len(lines)}\b"):
        ingest_file(warm, path, batch_bytes=4096)
    assert warm.command("SELECT count() FROM k2.trades_raw") == 0


@pytest.mark.parametrize("source_format", ["binance-ws", "binance-futures-ws"])
def test_trade_events_of_one_symbol_and_aggtrade_events_of_another_land_whole(
        warm: Client, tmp_path: Path, source_format: str) -> None:
    lines = [_combined(_trade(1, "SUSHIUSDT")), _combined(_agg(1, "CTKUSDT")), _combined(_trade(2, "SUSHIUSDT"))]
    summary = ingest_file(warm, _write(tmp_path / "two-symbols.jsonl", lines), source_format=source_format)
    assert (summary.trades, summary.dlq) == (len(lines), {})


def _hour_range() -> HourRange:
    return HourRange(HOUR, HOUR + timedelta(hours=1))


def test_the_two_streams_of_one_symbol_in_two_files_fail_the_bronze_check_naming_symbol_and_hour(
        warm: Client, tmp_path: Path) -> None:
    # Each file carries one stream, so the ingest takes both: aggTrade 1 is trades 10 and 11 again.
    ingest_file(warm, _write(tmp_path / "btcusdt-aggtrades.jsonl", [_combined(_agg(1))]))
    ingest_file(warm, _write(tmp_path / "btcusdt-trades.jsonl", [_combined(_trade(10)), _combined(_trade(11))]))
    seal_bronze(warm, _hour_range())

    outcome = mixed_trade_streams(warm, _hour_range())

    assert not outcome.passed
    assert outcome.measured == {"symbol_hours_with_two_streams": 1}
    assert outcome.problems[0].startswith(f"binance BTCUSDT at {HOUR:%Y-%m-%d %H}:00 has trades of aggTrade and trade")


def test_one_stream_per_symbol_passes_the_bronze_check(warm: Client, tmp_path: Path) -> None:
    ingest_file(warm, _write(tmp_path / "btcusdt-trades.jsonl", [_combined(_trade(10)), _combined(_trade(11))]))
    ingest_file(warm, _write(tmp_path / "ctkusdt-aggtrades.jsonl", [_combined(_agg(1, "CTKUSDT"))]))
    seal_bronze(warm, _hour_range())

    assert mixed_trade_streams(warm, _hour_range()).passed
