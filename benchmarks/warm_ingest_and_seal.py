"""Warm tier figures: JSON ingest through every view, sealing a 2,000,000-trade hour, loading defs.

Prints a markdown table. Medians of several runs; the baseline (the same messages into a plain table
with no views) is measured in the same run, so the ratio holds on a noisy machine.
Run: .venv/bin/python benchmarks/warm_ingest_and_seal.py [--trades 2000000] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path


def write_binance_ws(path: Path, trades: int, hour: datetime) -> None:
    start_ms = int(hour.timestamp() * 1000)
    step = 3_600_000 / trades
    symbols = ("BTCUSDT", "ETHUSDT", "XRPETH")
    with path.open("w") as out:
        lines = []
        for i in range(trades):
            t = start_ms + int(i * step)
            s = symbols[i % 3]
            lines.append(json.dumps({"stream": f"{s.lower()}@aggTrade", "data": {
                "e": "aggTrade", "E": t, "s": s, "a": i, "p": f"{60000 + (i % 997) / 100:.8f}",
                "q": f"{(i % 89 + 1) / 1000:.8f}", "f": 3 * i, "l": 3 * i + 2, "T": t, "m": i % 2 == 0, "M": True}},
                separators=(",", ":")))
            if len(lines) == 100_000:
                out.write("\n".join(lines) + "\n")
                lines = []
        if lines:
            out.write("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trades", type=int, default=2_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="k2bench-"))
    try:
        os.environ["K2_HOME"] = str(home)
        from k2_lakehouse.hours import HourRange
        from k2_lakehouse.ingest.load import ingest_file
        from k2_lakehouse.warm.client import connect
        from k2_lakehouse.warm.schema import apply_schema
        from k2_lakehouse.warm.seal import seal_bronze, seal_gold, seal_silver

        client = connect(f"chdb://{home / 'clickhouse'}")
        apply_schema(client)
        client.command("CREATE TABLE IF NOT EXISTS k2.bench_raw_only AS k2.trades_raw ENGINE = MergeTree ORDER BY tuple()")
        hour = (datetime.now(UTC) - timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
        path = home / "binance-ws-bench.jsonl"
        write_binance_ws(path, args.trades, hour)

        ingest_s, baseline_s, seal_s = [], [], []
        for _ in range(args.runs):
            for table in ("trades_raw", "bronze_trades", "silver_trades", "silver_trades_dlq", "trades_skipped",
                          "bench_raw_only", *(f"gold_ohlcv_{tf}" for tf in ("1m", "5m", "15m", "30m", "1h", "1d"))):
                client.command(f"TRUNCATE TABLE k2.{table}")
            # Baseline: the same reader and parallel insert path into a table with no views.
            t = time.perf_counter()
            ingest_file(client, path, table="k2.bench_raw_only")
            baseline_s.append(time.perf_counter() - t)
            t = time.perf_counter()
            summary = ingest_file(client, path)
            ingest_s.append(time.perf_counter() - t)
            assert summary.trades == args.trades, summary
            hours = HourRange(hour, hour + timedelta(hours=1))
            t = time.perf_counter()
            seal_bronze(client, hours)
            seal_silver(client, hours)
            seal_gold(client, hours)
            seal_s.append(time.perf_counter() - t)

        defs_s = []
        for _ in range(args.runs):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-W", "ignore", "-c", "import k2_lakehouse.definitions"], check=True)
            defs_s.append(time.perf_counter() - t)
        py_s = []
        for _ in range(args.runs):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-c", "pass"], check=True)
            py_s.append(time.perf_counter() - t)

        med = statistics.median
        n = args.trades
        print(f"\nwarm tier, {n:,} trades, {os.cpu_count()} cores, {datetime.now(UTC):%Y-%m-%d}, medians of {args.runs}\n")
        print("| measure | median | runs | target |")
        print("|---|---|---|---|")
        print(f"| ingest JSON through raw→bronze→silver→6 gold (trades/s) | {n / med(ingest_s):,.0f} | "
              f"{', '.join(f'{n / s:,.0f}' for s in ingest_s)} | ≥ 300,000 |")
        print(f"| baseline: same insert into a table with no views (trades/s) | {n / med(baseline_s):,.0f} | | — |")
        print(f"| views' cost vs baseline | {med(ingest_s) / med(baseline_s):.2f}× | | — |")
        print(f"| seal one hour (bronze, silver, six gold) (s) | {med(seal_s):.2f} | {', '.join(f'{s:.2f}' for s in seal_s)} "
              "| ≤ 5 |")
        print(f"| load defs, fresh process (s) | {med(defs_s):.2f} | {', '.join(f'{s:.2f}' for s in defs_s)} | ≤ 2 |")
        print(f"| of which a bare python start (s) | {med(py_s):.2f} | | — |")
    finally:
        shutil.rmtree(home, ignore_errors=True)  # ~1 GB of store and input per invocation


if __name__ == "__main__":
    main()
