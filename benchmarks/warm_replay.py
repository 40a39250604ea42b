"""What exact live candles under replays cost: ingest through the views, this checkout against a baseline checkout.

Each run is a fresh process and a fresh embedded store per checkout (`--baseline`, default ../main: the code and
sql/ of the branch the change is measured against), taken in turns so that drift on a noisy machine hits both
alike. Per run and input: the same file into a table with no views (the floor), through the views (a first
ingest: no replays), the same file again (every trade a replay), and one read of the hourly view after it; wall and CPU time
(the embedded engine runs in the process, so its CPU time is the process's, less sensitive to a loaded machine).
Inputs: the largest real file of ../shared/datasets (Binance XRPETH aggTrades, 12,477 lines) and a generated
hour of Binance websocket aggTrades (--trades, as benchmarks/warm_ingest_and_seal.py). Medians; every figure also
as a ratio to its same-run floor.
Run: .venv/bin/python benchmarks/warm_replay.py [--baseline ../main] [--trades 2000000] [--runs 5]
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
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
REAL_FILE = HERE.parent / "shared" / "datasets" / "binance" / "XRPETH-aggTrades-2019-10-11_13.csv"

# One run in a fresh process: the checkout under test comes first on sys.path (PYTHONPATH), with its sql/.
# The editable install's finder would find this checkout first whatever PYTHONPATH says, so it is set aside.
ONE_RUN = """
import json, resource, shutil, sys, time
from pathlib import Path

sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in getattr(f, "__module__", "")]

from k2_lakehouse.ingest.load import ingest_file
from k2_lakehouse.warm.client import connect
from k2_lakehouse.warm.schema import apply_schema

store, files = Path(sys.argv[1]), sys.argv[2:]
client = connect(f"chdb://{store}")
apply_schema(client)
client.command("CREATE TABLE k2.bench_raw_only AS k2.trades_raw ENGINE = MergeTree ORDER BY tuple()")
result = {}
for name in files:
    path = Path(name)
    copy = store.parent / "again" / path.name
    copy.parent.mkdir(exist_ok=True)
    shutil.copy(path, copy)
    for table in ("trades_raw", "bronze_trades", "silver_trades", "silver_trades_dlq", "trades_skipped", "bench_raw_only",
                  *(f"gold_ohlcv_{tf}" for tf in ("1m", "5m", "15m", "30m", "1h", "1d"))):
        client.command(f"TRUNCATE TABLE k2.{table}")
    if client.command("EXISTS TABLE k2.gold_replays") == 1:
        client.command("TRUNCATE TABLE k2.gold_replays")
    def timed(*args, **kwargs):
        usage, t = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        ingest_file(client, *args, **kwargs)
        after = resource.getrusage(resource.RUSAGE_SELF)
        return time.perf_counter() - t, after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime

    (floor, floor_cpu), (first, first_cpu) = timed(path, table="k2.bench_raw_only"), timed(path)
    replay, replay_cpu = timed(copy)
    t = time.perf_counter()
    trades, = client.query("SELECT sum(trade_count) FROM k2.gold_ohlcv_1h_view").result_rows[0]
    read = time.perf_counter() - t
    silver = int(client.command("SELECT sum(underlying_trades) FROM k2.silver_trades FINAL"))
    result[path.name] = {"floor": floor, "first": first, "replay": replay, "read": read, "exact": int(trades) == silver,
                         "floor_cpu": floor_cpu, "first_cpu": first_cpu, "replay_cpu": replay_cpu}
print(json.dumps(result))
"""


def _one_run(checkout: Path, files: list[Path], work: Path) -> dict[str, dict[str, float]]:
    store = work / "store" / "clickhouse"
    shutil.rmtree(work / "store", ignore_errors=True)
    store.parent.mkdir(parents=True)
    env = {**os.environ, "PYTHONPATH": str(checkout), "K2_SQL_DIR": str(checkout / "sql"), "K2_HOME": str(store.parent)}
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", ONE_RUN, str(store), *map(str, files)], env=env,
                         check=True, capture_output=True, text=True).stdout
    shutil.rmtree(work / "store", ignore_errors=True)
    result: dict[str, dict[str, float]] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--baseline", type=Path, default=HERE.parent / "main")
    parser.add_argument("--trades", type=int, default=2_000_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    sys.path.insert(0, str(HERE / "benchmarks"))
    from warm_ingest_and_seal import write_binance_ws

    work = Path(tempfile.mkdtemp(prefix="k2bench-replay-"))
    try:
        generated = work / "binance-ws-bench.jsonl"
        write_binance_ws(generated, args.trades, (datetime.now(UTC) - timedelta(hours=2)).replace(minute=0, second=0,
                                                                                                  microsecond=0))
        files = [REAL_FILE, generated]
        checkouts = {"baseline": args.baseline.resolve(), "this": HERE}
        runs: dict[str, list[dict[str, dict[str, float]]]] = {name: [] for name in checkouts}
        for _ in range(args.runs):
            for name, checkout in checkouts.items():
                runs[name].append(_one_run(checkout, files, work))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    med = statistics.median
    print(f"\nreplay handling, {os.cpu_count()} cores, {datetime.now(UTC):%Y-%m-%d}, medians of {args.runs} runs, "
          f"baseline {checkouts['baseline']}\n")
    print("| input | checkout | no views (s) | first ingest (s) | first ÷ no views | same file again (s) "
          "| again ÷ no views | read 1h view after (s) | live gold exact |")
    print("|---|---|---|---|---|---|---|---|---|")
    for path in files:
        for name in checkouts:
            rows = [run[path.name] for run in runs[name]]
            floor, first, replay, read = (med(r[k] for r in rows) for k in ("floor", "first", "replay", "read"))
            exact = all(r["exact"] for r in rows)
            print(f"| {_label(path, args.trades)} | {name} | {floor:.3f} | {first:.3f} | "
                  f"{med(r['first'] / r['floor'] for r in rows):.2f} | {replay:.3f} | "
                  f"{med(r['replay'] / r['floor'] for r in rows):.2f} | {read:.3f} | {'yes' if exact else 'no'} |")
    print("\n| input | this ÷ baseline, first ingest | this ÷ baseline, same file again | target (issue 13) |")
    print("|---|---|---|---|")
    pairs = list(zip(runs["baseline"], runs["this"], strict=True))
    for path in files:
        for unit, suffix in (("wall", ""), ("CPU", "_cpu")):
            first_ratios, again_ratios = ([t[path.name][key + suffix] / b[path.name][key + suffix] for b, t in pairs]
                                          for key in ("first", "replay"))
            print(f"| {_label(path, args.trades)}, {unit} | {med(first_ratios):.2f} "
                  f"(runs {', '.join(f'{x:.2f}' for x in first_ratios)}) | {med(again_ratios):.2f} "
                  f"(runs {', '.join(f'{x:.2f}' for x in again_ratios)}) | first ingest ≤ 1.15 |")
    print("\n| input | checkout | CPU-s no views | CPU-s first ingest | ÷ no views | CPU-s same file again |")
    print("|---|---|---|---|---|---|")
    for path in files:
        for name in checkouts:
            rows = [run[path.name] for run in runs[name]]
            print(f"| {_label(path, args.trades)} | {name} | {med(r['floor_cpu'] for r in rows):.2f} | "
                  f"{med(r['first_cpu'] for r in rows):.2f} | {med(r['first_cpu'] / r['floor_cpu'] for r in rows):.2f} | "
                  f"{med(r['replay_cpu'] for r in rows):.2f} |")

def _label(path: Path, trades: int) -> str:
    return f"{path.name} ({'real, 12,477 lines' if path == REAL_FILE else f'{trades:,} generated'})"

if __name__ == "__main__":
    main()
