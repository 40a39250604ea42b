"""Lines however nested or long are stored verbatim and DLQ'd with a reason, or refused naming the file and line."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from k2_lakehouse.ingest.load import ingest_file

DEPTH = 10_000  # far past Python's recursion limit (1,000), which its JSON parser recurses into
T = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
T_MS = int(T.timestamp() * 1000)


def _aggtrade(agg_id: int, price: str = "60000.10000000", quantity: str = "0.50000000", spot: bool = True) -> str:
    symbol = "BTCUSDT" if spot else "SUSHIUSDT"
    event = {"e": "aggTrade", "E": T_MS, "s": symbol, "a": agg_id, "p": price, "q": quantity,
             "f": agg_id * 10, "l": agg_id * 10, "T": T_MS, "m": True, **({"M": True} if spot else {})}
    return json.dumps({"stream": f"{symbol.lower()}@aggTrade", "data": event}, separators=(",", ":"))


def _kraken_trade(n: int) -> str:
    return json.dumps([42, [["5541.20000", "0.15850568", f"{T.timestamp() + n:.6f}", "s", "l", ""]], "trade", "XBT/USD"])


# Per format: (good lines, a line nested DEPTH deep in that format's shape). The Binance one has a backslash, so the
# ingest also reads it line by line looking for mixed trade streams (reader.refuse_mixed_trade_streams).
NESTED = {
    "kraken-ws": ([_kraken_trade(1), _kraken_trade(2)], "[" * DEPTH + "]" * DEPTH),
    "binance-ws": ([_aggtrade(1), _aggtrade(2)],
                   '{"stream":"btcusdt@aggTrade\\u0041","data":' + "[" * DEPTH + "]" * DEPTH + "}"),
    "binance-futures-ws": ([_aggtrade(1, spot=False)], '{"e":' * DEPTH + "1" + "}" * DEPTH),
}


@pytest.mark.parametrize("source_format", NESTED)
def test_a_line_nested_10000_deep_is_dlqd_verbatim_and_the_files_trades_land(
        warm: Client, tmp_path: Path, source_format: str) -> None:
    good, nested = NESTED[source_format]
    path = tmp_path / f"{source_format}.jsonl"
    path.write_text("\n".join([good[0], nested, *good[1:]]) + "\n")
    summary = ingest_file(warm, path)  # the format is detected, past the nested line
    assert (summary.source_format, summary.trades, summary.dlq) == (source_format, len(good), {"unparseable": 1})
    assert warm.query("SELECT payload, source_position FROM k2.silver_trades_dlq").result_rows == [(nested, 2)]
    assert warm.command("SELECT count() FROM k2.silver_trades FINAL") == len(good)


def test_a_kraken_rest_response_nested_10000_deep_is_dlqd_whole_and_verbatim(warm: Client, tmp_path: Path) -> None:
    document = '{"error":[],"result":{"XXBTZUSD":' + "[" * DEPTH + "]" * DEPTH + ',"last":"1"}}'
    path = tmp_path / "XXBTZUSD.rest.json"
    path.write_text(document)
    summary = ingest_file(warm, path, "kraken-rest")
    assert (summary.messages, summary.dlq) == (1, {"unparseable": 1})
    assert warm.query("SELECT payload FROM k2.silver_trades_dlq").result_rows == [(document,)]


@pytest.mark.parametrize(("field", "digits"), [
    ("price", 400),  # past the largest float (~1.8e308): toFloat64 reads it as inf
    ("quantity", 400),
    ("price", 50 * 1024 * 1024),
], ids=["price-400", "quantity-400", "price-50MiB"])
def test_a_plain_decimal_too_long_for_a_float_is_too_many_digits_not_non_finite(
        warm: Client, tmp_path: Path, field: str, digits: int) -> None:
    value = "9" * digits
    line = _aggtrade(1, **{field: value})
    path = tmp_path / "binance-ws.jsonl"
    path.write_text(line + "\n")
    summary = ingest_file(warm, path, "binance-ws")  # detection reads a file's first 64 KiB: the line runs past them
    assert summary.dlq == {"too_many_digits": 1}
    assert warm.query("SELECT stage, length(payload) FROM k2.silver_trades_dlq").result_rows == [
        ("validate", len(line))]
