"""`k2 ingest` as a user runs it: every file reported, bad files never stopping the others, one-line errors."""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from k2_lakehouse.cli import main

K2 = str(Path(sys.executable).with_name("k2"))  # the console script of this venv
HOUR = datetime(2025, 1, 1, 0, tzinfo=UTC)
LONGEST_LINE = 256 * 1024 * 1024  # bytes, as the README states


def _kraken_csv(path: Path, seconds: list[int]) -> Path:
    """A Kraken CSV dump with one trade at each of `seconds` (Unix time)."""
    path.write_text("".join(f"{s},100.{i},0.5\n" for i, s in enumerate(seconds)))
    return path


def _summary_rows(stdout: str) -> dict[str, list[str]]:
    """The summary table's rows by file name (the cells after it)."""
    rows = [[cell.strip() for cell in line.split("|")] for line in stdout.splitlines() if "|" in line]
    return {row[0]: row[1:] for row in rows[1:]}


def test_a_file_nested_too_deeply_to_detect_is_reported_and_the_files_after_it_are_ingested(
        warm: Client, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    start = int(HOUR.timestamp())
    first = _kraken_csv(tmp_path / "XBTUSD-first.csv", [start + 1, start + 2])
    nested = tmp_path / "nested.jsonl"
    nested.write_text("[" * 10_000 + "]" * 10_000 + "\n")
    last = _kraken_csv(tmp_path / "XBTUSD-last.csv", [start + 3, start + 4, start + 5])
    code = main(["ingest", str(first), str(nested), str(last)])
    out = capsys.readouterr().out
    assert code == 1
    rows = _summary_rows(out)
    assert [rows[name][1] for name in ("XBTUSD-first.csv", "nested.jsonl", "XBTUSD-last.csv")] == ["ok", "failed", "ok"]
    assert f"failed: {nested}: unknown format" in out and "nested too deeply to read: line 1" in out
    assert warm.command("SELECT count() FROM k2.silver_trades FINAL") == 5


def test_a_line_longer_than_a_raw_row_holds_fails_its_file_naming_the_line_and_the_next_file_is_ingested(
        warm: Client, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    start = int(HOUR.timestamp())
    long_line = tmp_path / "XBTUSD-long.csv"
    with long_line.open("w") as out:
        out.write(f"{start + 1},100.0,0.5\n")
        out.write("9" * (LONGEST_LINE + 1) + "\n")
        out.write(f"{start + 2},100.0,0.5\n")
    after = _kraken_csv(tmp_path / "XBTUSD-after.csv", [start + 3])
    code = main(["ingest", "--format", "kraken-csv", str(long_line), str(after)])  # detection would refuse it whole
    out = capsys.readouterr().out
    long_line.unlink()
    assert code == 1
    rows = _summary_rows(out)
    assert rows["XBTUSD-long.csv"][1:3] == ["failed", "1"]  # status, and the one message before the long line
    assert rows["XBTUSD-after.csv"][1] == "ok"
    assert f"failed: {long_line}, line 2: the line is longer than 256 MiB" in out
    assert warm.command("SELECT count() FROM k2.trades_raw") == 2


def test_data_before_k2_partitions_start_is_ingested_with_a_warning_naming_the_variable_and_the_earliest_hour(
        warm: Client, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("K2_PARTITIONS_START", "2024-01-01-00:00")
    early = int(datetime(2019, 10, 11, 13, 20, tzinfo=UTC).timestamp())
    path = _kraken_csv(tmp_path / "XBTUSD-2019.csv", [early, early + 3600, int(HOUR.timestamp())])
    with caplog.at_level(logging.WARNING, logger="k2_lakehouse.ingest"):
        code = main(["ingest", str(path)])
    out = capsys.readouterr().out
    assert code == 0
    assert _summary_rows(out)["XBTUSD-2019.csv"][1] == "warning"
    expected = "2 of its 3 messages lie before K2_PARTITIONS_START=2024-01-01-00:00 (the earliest in hour 2019-10-11-13:00"
    assert f"warning: {path}: {expected}" in out
    assert [r.getMessage() for r in caplog.records if expected in r.getMessage()]
    assert warm.command("SELECT count() FROM k2.silver_trades FINAL") == 3


def test_a_directory_is_refused_as_a_directory_not_as_a_missing_file(
        warm: Client, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _kraken_csv(tmp_path / "XBTUSD-in-a-directory.csv", [int(HOUR.timestamp())])
    code = main(["ingest", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert f"{tmp_path} is a directory; pass the files in it" in err and "no such file" not in err
    assert warm.command("SELECT count() FROM k2.trades_raw") == 0


def _closed_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nothing listens on it once the socket is closed


def test_an_unreachable_server_is_one_line_naming_host_and_port_without_the_password(tmp_path: Path) -> None:
    port = _closed_loopback_port()
    path = _kraken_csv(tmp_path / "XBTUSD.csv", [int(HOUR.timestamp())])
    env = {**os.environ, "K2_HOME": str(tmp_path / "home"),
           "K2_CLICKHOUSE_URL": f"http://k2user:pa55-w0rd-secret@127.0.0.1:{port}",
           "K2_ICEBERG_WAREHOUSE": "s3://k2-lakehouse/warehouse"}
    done = subprocess.run([K2, "ingest", str(path)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"k2 ingest: cannot reach the ClickHouse server at 127.0.0.1:{port} (K2_CLICKHOUSE_URL): Connection refused. "
        "Start the server, or point K2_CLICKHOUSE_URL at one that runs"]
    assert "pa55-w0rd-secret" not in done.stdout + done.stderr


def test_waiting_for_a_held_store_prints_the_busy_message_and_none_of_the_engines_lock_errors(
        warm: Client, warm_url: str, tmp_path: Path) -> None:
    path = _kraken_csv(tmp_path / "XBTUSD.csv", [int(HOUR.timestamp())])
    env = {**os.environ, "K2_CLICKHOUSE_URL": warm_url, "K2_BUSY_TIMEOUT_S": "2"}  # this process holds the store
    done = subprocess.run([K2, "ingest", str(path)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 3
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("k2: the embedded ClickHouse store at ")
    assert "in use by another process (waited 2s)" in lines[0]


def _aggtrade_lines(path: Path, trades: int) -> None:
    """Binance spot aggTrade events, ~190 bytes each: a few batches of the reader per million."""
    t = int(HOUR.timestamp() * 1000)
    line = ('{{"stream":"btcusdt@aggTrade","data":{{"e":"aggTrade","E":{t},"s":"BTCUSDT","a":{i},"p":"60000.10000000",'
            '"q":"0.50000000","f":{i},"l":{i},"T":{t},"m":true,"M":true}}}}\n')
    with path.open("w") as out:
        for start in range(0, trades, 100_000):
            out.write("".join(line.format(t=t + i // 1000, i=i) for i in range(start, min(start + 100_000, trades))))


def test_ctrl_c_during_an_ingest_prints_one_line_keeps_what_was_inserted_and_exits_130(tmp_path: Path) -> None:
    small = _kraken_csv(tmp_path / "XBTUSD.csv", [int(HOUR.timestamp())])
    big = tmp_path / "binance-ws-big.jsonl"
    _aggtrade_lines(big, 700_000)  # about four 32 MiB batches: the ingest is mid-file when the first is counted
    env = {**os.environ, "K2_HOME": str(tmp_path / "home")}
    env.pop("K2_CLICKHOUSE_URL", None)
    ingest = subprocess.Popen([K2, "ingest", str(small), str(big)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    err: list[str] = []
    reader = threading.Thread(target=lambda: err.extend(iter(lambda: ingest.stderr.read(1), "")), daemon=True)
    reader.start()
    deadline = time.monotonic() + 300
    while f"{big.name}: " not in "".join(err) and ingest.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    ingest.send_signal(signal.SIGINT)
    out = ingest.stdout.read()
    assert ingest.wait(timeout=120) == 130
    reader.join(10)
    last = "".join(err).splitlines()[-1]
    assert "Traceback" not in "".join(err) and out == ""
    kept = re.fullmatch(rf"k2 ingest: interrupted during {re.escape(str(big))}, after 1 of 2 files and at least "
                        r"([\d,]+) of its messages; what was inserted is kept\. Running the same command again is "
                        r"safe: a re-ingest deduplicates", last)
    assert kept, last
    count = subprocess.run([K2, "sql", "SELECT count() FROM k2.trades_raw WHERE source_format = 'binance-ws'"],
                           env=env, capture_output=True, text=True, timeout=120, check=True)
    assert 0 < int(kept.group(1).replace(",", "")) <= int(count.stdout.splitlines()[2]) < 700_000
