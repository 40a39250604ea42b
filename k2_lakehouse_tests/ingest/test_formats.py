"""Each exchange-native format is recognised, and unknown or ambiguous files are refused clearly."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from k2_lakehouse.ingest.formats import FormatError, detect_format
from k2_lakehouse.ingest.reader import read_batches, read_rows

SAMPLES = {
    "kraken/XBTUSDT-trades-2025-11-10.rest.json": "kraken-rest",
    "kraken/BCHEUR-2023-01-01.csv": "kraken-csv",
    "kraken/ws-v1-2021-04-17.jsonl": "kraken-ws",
    "binance/XRPETH-aggTrades-2019-10-11_13.csv": "binance-aggtrades-csv",
    "binance/ws-combined-spot-2021-10-12.jsonl": "binance-ws",
    "binance/ws-combined-futures-2021-07-22.jsonl": "binance-futures-ws",
}


@pytest.mark.parametrize(("sample", "expected"), SAMPLES.items())
def test_detects_the_format_of_each_real_sample(datasets: Path, sample: str, expected: str) -> None:
    assert detect_format(datasets / sample) == expected


def test_detects_a_binance_trades_dump(tmp_path: Path) -> None:
    path = tmp_path / "BTCUSDT-trades-2025-01-01.csv"
    path.write_text("id,price,qty,quote_qty,time,is_buyer_maker,is_best_match\n1,1.0,2.0,2.0,1735689600000000,true,true\n")
    assert detect_format(path) == "binance-trades-csv"


def test_refuses_an_unknown_csv_naming_the_file_and_the_field_count(tmp_path: Path) -> None:
    path = tmp_path / "odd.csv"
    path.write_text("1,2,3,4,5\n")
    with pytest.raises(FormatError, match=r"odd\.csv.*\[5\]"):
        detect_format(path)


def test_refuses_a_file_mixing_binance_and_kraken_messages(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_text('{"e":"trade","s":"BTCUSDT"}\n[1,[["1","1","1.0","b","l",""]],"trade","XBT/USD"]\n')
    with pytest.raises(FormatError, match="ambiguous"):
        detect_format(path)


SPOT_AGGTRADE = ('{"stream":"sushiusdt@aggTrade","data":{"e":"aggTrade","E":1,"s":"SUSHIUSDT","a":1,"p":"7.6","q":"5",'
                 '"f":1,"l":1,"T":1,"m":false,"M":true}}')
FUTURES_DEPTH = ('{"stream":"sushiusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"T":1,"s":"SUSHIUSDT","U":2,"u":3,'
                 '"pu":1,"b":[],"a":[]}}')
KLINE = '{"stream":"sushiusdt@kline_1m","data":{"e":"kline","E":1,"s":"SUSHIUSDT","k":{"t":0,"s":"SUSHIUSDT"}}}'


@pytest.mark.parametrize(("name", "lines", "why"), [
    ("both-markets.jsonl", [SPOT_AGGTRADE, FUTURES_DEPTH], "both spot and USD-M futures"),
    ("klines.jsonl", [KLINE], "no event that tells spot from USD-M futures"),
], ids=["both", "neither"])
def test_refuses_a_binance_file_whose_market_is_not_clear_naming_the_file(tmp_path: Path, name: str, lines: list[str],
                                                                          why: str) -> None:
    path = tmp_path / name
    path.write_text("".join(f"{line}\n" for line in lines))
    with pytest.raises(FormatError, match=rf"{re.escape(name)}.*{why}.*--format binance-ws or binance-futures-ws"):
        detect_format(path)


def test_tells_the_binance_market_from_events_past_the_first_twenty_lines(tmp_path: Path) -> None:
    path = tmp_path / "klines-then-a-trade.jsonl"
    path.write_text(f"{KLINE}\n" * 30 + f"{SPOT_AGGTRADE}\n")
    assert detect_format(path) == "binance-ws"


def test_kraken_rest_trades_keep_the_exchanges_digits_verbatim(datasets: Path) -> None:
    rows = read_rows(datasets / "kraken" / "XBTUSDT-trades-2025-11-10.rest.json", "kraken-rest")
    assert len(rows) == 1000
    assert rows[0] == (1, 0, "XBTUSDT", '["105433.60000","0.00027625",1762795433.9717445,"b","l","",10218208]')


def test_kraken_ws_messages_are_stored_once_per_trade_they_carry(datasets: Path) -> None:
    rows = read_rows(datasets / "kraken" / "ws-v1-2021-04-17.jsonl", "kraken-ws")
    multi = [r for r in rows if r[1] == 1]
    assert multi, "the sample has a message with two trades"
    assert all(any(o[0] == r[0] and o[1] == 0 for o in rows) for r in multi)


@pytest.mark.parametrize("message", [
    '[42,["5698.40000","5700.00000","1542057299.545897","1.01234567","0.98765432"],"spread","XBT/USD"]',
    '[42,["1542057314.748456","1542057360.435743","3586.70000","3586.70000","3586.60000","3586.60000",'
    '"3586.68894","0.03373000",2],"ohlc-5","XBT/USD"]',
], ids=["spread", "ohlc"])
def test_a_kraken_ws_message_of_another_channel_is_stored_once(tmp_path: Path, message: str) -> None:
    path = tmp_path / "kraken-ws.jsonl"
    path.write_text(message + "\n")
    assert read_rows(path, "kraken-ws") == [(1, 0, "", message)]


def test_identical_kraken_csv_lines_get_distinct_ordinals(tmp_path: Path) -> None:
    path = tmp_path / "BCHEUR-2023-01-01.csv"
    path.write_text("1672531436,90.54,1.1\n1672531436,90.54,1.1\n")
    assert [r[1] for r in read_rows(path, "kraken-csv")] == [0, 1]


def test_lines_keep_their_file_line_numbers_past_blank_lines_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "BTCUSDT-aggTrades-2025-01-01.csv"
    path.write_bytes(b"1,2\r\n\r\n  \n3,4\n5,6")
    assert read_rows(path, "binance-aggtrades-csv") == [(1, 0, "BTCUSDT", "1,2"), (4, 0, "BTCUSDT", "3,4"),
                                                        (5, 0, "BTCUSDT", "5,6")]


@pytest.mark.parametrize("batch_bytes", [4, 7, 1 << 20])
def test_lines_longer_than_a_batch_are_read_whole_with_their_line_numbers(tmp_path: Path, batch_bytes: int) -> None:
    path = tmp_path / "BTCUSDT-aggTrades-2025-01-01.csv"
    path.write_bytes(b"1,2\r\n\r\n  \n3,4444444444444\n5,6")
    rows = [row for batch in read_batches(path, "binance-aggtrades-csv", batch_bytes=batch_bytes)
            for row in zip(batch["source_position"].to_pylist(), batch["payload"].to_pylist(), strict=True)]
    assert rows == [(1, b"1,2"), (4, b"3,4444444444444"), (5, b"5,6")]


def test_a_line_that_is_not_utf8_is_kept_byte_for_byte(tmp_path: Path) -> None:
    path = tmp_path / "BTCUSDT-aggTrades-2025-01-01.csv"
    path.write_bytes(b"1,2\n\xff\xfe,3\n")
    payloads = [p for batch in read_batches(path, "binance-aggtrades-csv") for p in batch["payload"].to_pylist()]
    assert payloads == [b"1,2", b"\xff\xfe,3"]


def test_small_batches_give_the_same_rows_as_one_batch(datasets: Path) -> None:
    path = datasets / "kraken" / "ws-v1-2021-04-17.jsonl"
    whole = [row for batch in read_batches(path, "kraken-ws") for row in zip(*batch.to_pydict().values(), strict=True)]
    small = list(read_batches(path, "kraken-ws", batch_bytes=200))
    assert len(small) > 1
    assert [row for batch in small for row in zip(*batch.to_pydict().values(), strict=True)] == whole
