"""How cost grows with the hour and with history: seal + offload of 0.5M, 2M and 8M trades; the staleness sensor
over 365 days against 30.

    .venv/bin/python benchmarks/cost_growth.py [--sizes 500000,2000000,8000000] [--runs 3] [--sensor-days 30,365]

For each size, in a K2_HOME of its own and processes of their own (one embedded store per process):

* a raw hour of that many Binance aggTrades (two symbols) is inserted without firing the views, as
  `cold_offload.py`'s backfill builds them; then `--runs` times, the seal of the hour (bronze, silver, six gold:
  `warm.seal`) and the offload of all nine cold tables (`cold.offload.offload_hours`, one commit each), each
  timed; time per million trades is the figure;
* a fresh process offloads the hour once more and reports its own peak RSS (the kernel's, `wait4`), beside a
  process that only opens the same store (the floor of any process holding it).

Targets (issue 16), ratios within this run: seal + offload time per million trades at the largest size at most
1.25x that at the smallest; the offload's peak RSS is reported against the floor and against the smallest
size's. The sensor: `staleness_sensor.py --days N` in a process of its own for each N; the tick that finds one
late hour over 365 days x 9 tables at most 3x the same tick over 30 days. The load average is recorded with
every figure: the machine is shared.
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
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

HOUR = datetime(2024, 3, 1, 12, tzinfo=UTC)

# One hour of synthetic raw Binance aggTrades CSV lines, two symbols; inserted as a seal does (log_comment
# 'k2:seal'), so no view fires: the seal then derives bronze, silver and gold from raw, which is what is timed.
RAW_HOUR_SQL = """
INSERT INTO k2.trades_raw (exchange, source_format, source_name, source_position, source_element, source_symbol,
                           payload, received_at)
SELECT 'binance', 'binance-aggtrades-csv', concat('growth-', sym), number, 0, sym,
       concat(toString(number), ',', toString(0.0014 + (number % 1000) / 10000000), ',',
              toString(1 + number % 50), '.0,', toString(number), ',', toString(number), ',',
              toString(toUnixTimestamp64Milli(toDateTime64({start:DateTime('UTC')}, 3, 'UTC'))
                       + intDiv(number * 3600000, {rows:UInt64})), ',True,True'),
       now64(6, 'UTC')
FROM (SELECT number, if(number % 2 = 0, 'XRPETH', 'BTCUSDT') AS sym FROM numbers({rows:UInt64}))
"""

CHILD = """
import json, os, sys, time
from datetime import datetime, timedelta
from pathlib import Path
sys.path.insert(0, {root!r})
from benchmarks.cold_offload import open_store
from benchmarks.cost_growth import HOUR, RAW_HOUR_SQL
from k2_lakehouse.hours import HourRange

mode, rows, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
client, catalog = open_store(Path(os.environ["K2_HOME"]))
hours = HourRange(HOUR, HOUR + timedelta(hours=1))
if mode == "open":
    client.command("SELECT 1")
    sys.exit(0)
from k2_lakehouse_tests.support.cold import offload_all, seal_all
if mode == "offload":
    results = offload_all(client, catalog, hours)
    assert results[0].rows == rows, results[0]
    sys.exit(0)
client.command(RAW_HOUR_SQL, parameters={{"start": HOUR, "rows": rows}}, settings={{"log_comment": "k2:seal"}})
seal_s, offload_s, loads = [], [], []
for _ in range(runs):
    started = time.perf_counter()
    seal_all(client, hours)
    seal_s.append(time.perf_counter() - started)
    started = time.perf_counter()
    results = offload_all(client, catalog, hours)
    offload_s.append(time.perf_counter() - started)
    loads.append(os.getloadavg()[0])
    assert [r.rows for r in results[:2]] == [rows] * 2, results[:2]  # raw, bronze (validation drops some)
print(json.dumps({{"seal": seal_s, "offload": offload_s, "load": loads}}))
"""


def environment(home: Path) -> dict[str, str]:
    env = {**os.environ, "K2_HOME": str(home), "PWD": str(home), "K2_SQL_DIR": str(ROOT / "sql"),
           "PYTHONWARNINGS": "ignore"}
    for name in ("K2_CLICKHOUSE_URL", "K2_ICEBERG_CATALOG_URI", "K2_ICEBERG_WAREHOUSE"):
        env.pop(name, None)
    return env


def child(home: Path, mode: str, rows: int, runs: int = 1) -> tuple[str, float]:
    """Run the child in `mode`; its output and its own peak RSS in MiB (wait4, posix_spawn: nothing inherited)."""
    out = home.parent / f"{home.name}-{mode}.out"
    with out.open("wb") as handle:
        pid = os.posix_spawn(sys.executable, [sys.executable, "-c", CHILD.format(root=str(ROOT)), mode, str(rows),
                                              str(runs)], environment(home),
                             file_actions=[(os.POSIX_SPAWN_DUP2, handle.fileno(), 1)])
        _, status, usage = os.wait4(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{mode} child ({rows:,} trades) failed with {os.waitstatus_to_exitcode(status)}")
    return out.read_text().strip(), usage.ru_maxrss / 1024


def grow(sizes: list[int], runs: int, scratch: Path) -> list[dict[str, float]]:
    figures = []
    for rows in sizes:
        home = scratch / f"h{rows}"
        home.mkdir()
        os.chdir(home)  # posix_spawn's child starts here: embedded ClickHouse reads Iceberg only below it
        output, _ = child(home, "measure", rows, runs)
        timed = json.loads(output.splitlines()[-1])
        _, floor_rss = child(home, "open", rows)
        _, offload_rss = child(home, "offload", rows)
        os.chdir(scratch)
        shutil.rmtree(home, ignore_errors=True)
        million = rows / 1e6
        figures.append({"rows": rows, "seal": statistics.median(timed["seal"]) / million,
                        "offload": statistics.median(timed["offload"]) / million,
                        "total": statistics.median(s + o for s, o in zip(timed["seal"], timed["offload"], strict=True))
                        / million, "rss": offload_rss, "floor_rss": floor_rss,
                        "load": statistics.median(timed["load"])})
        figures[-1]["loads"] = f"{min(timed['load']):.1f}-{max(timed['load']):.1f}"
        f = figures[-1]
        print(f"  {rows:,} trades: seal {f['seal']:.2f} + offload {f['offload']:.2f} s per million, offload peak RSS "
              f"{offload_rss:,.0f} MiB (floor {floor_rss:,.0f}), load {f['loads']}", flush=True)
    return figures


def sensor(days: int, runs: int) -> dict[str, float]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-W", "ignore", str(ROOT / "benchmarks" / "staleness_sensor.py"), "--days",
                           str(days), "--runs", str(runs), "--json"], capture_output=True, text=True,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"}, cwd=tempfile.gettempdir())
    if done.returncode != 0:
        raise SystemExit(f"staleness_sensor.py --days {days} failed:\n{done.stderr[-3000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    if figures["requested"] != figures["expected"]:
        raise SystemExit(f"the {days}-day tick requested {figures['requested']}, expected {figures['expected']}")
    print(f"  sensor over {days} days: tick finding the late hour {figures['found']:.3f} s, idle {figures['idle']:.3f} s, "
          f"load {figures['load']:.1f} ({time.perf_counter() - started:.0f} s to build and measure)", flush=True)
    return figures


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="500000,2000000,8000000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sensor-days", default="30,365")
    parser.add_argument("--sensor-runs", type=int, default=5)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]  # --sizes '' measures the sensor alone
    small_days, large_days = (int(d) for d in args.sensor_days.split(","))
    scratch = Path(tempfile.mkdtemp(prefix="k2-bench-growth-"))
    started_in = Path.cwd()
    try:
        grown = grow(sizes, args.runs, scratch) if sizes else []
    finally:
        os.chdir(started_in)
        shutil.rmtree(scratch, ignore_errors=True)
    small_tick, large_tick = sensor(small_days, args.sensor_runs), sensor(large_days, args.sensor_runs)
    report(args, grown, small_tick, large_tick)


def report(args: argparse.Namespace, grown: list[dict[str, float]], small: dict[str, float],
           large: dict[str, float]) -> None:
    def per_size(value: str, unit: str, digits: str = ".2f") -> str:
        return " · ".join(f"{g['rows'] / 1e6:g}M: {g[value]:{digits}} {unit}" for g in grown)

    def growth_rows() -> None:
        first, last = grown[0], grown[-1]
        growth = last["total"] / first["total"]
        loads = " · ".join(str(g["loads"]) for g in grown)
        over_floor = " · ".join(f"{g['rss'] / g['floor_rss']:.2f}×" for g in grown)
        floors = " · ".join(f"{g['floor_rss']:,.0f}" for g in grown)
        print(f"| seal + offload per million trades, {last['rows']:,} / {first['rows']:,} trades | {growth:.2f}× | ≤ 1.25× "
              f"| {verdict(growth <= 1.25)} | {per_size('total', 's/M')} | {loads} |")
        for part in ("seal", "offload"):
            print(f"| — {part} alone, same runs | {last[part] / first[part]:.2f}× | | | {per_size(part, 's/M')} | |")
        print(f"| offload's peak RSS, {last['rows']:,} / {first['rows']:,} trades | {last['rss'] / first['rss']:.2f}× "
              f"(rows {last['rows'] / first['rows']:.0f}×) | bounded: reported | — | {per_size('rss', 'MiB', ',.0f')} | |")
        print(f"| — against a process that only opens the store | {over_floor} | | | floor {floors} MiB | |")

    print(f"\ncost growth, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, medians of {args.runs} "
          f"(sensor: {args.sensor_runs})\n")
    print("| figure | ratio | target | | absolute (medians) | load average |")
    print("|---|---|---|---|---|---|")
    if grown:
        growth_rows()
    ratio = large["found"] / small["found"]
    print(f"| staleness tick finding one late hour, {large['days']} / {small['days']} days × 9 tables | {ratio:.2f}× "
          f"| ≤ 3× | {verdict(ratio <= 3)} | {large['found']:.3f} s / {small['found']:.3f} s "
          f"({large['partitions']:,} / {small['partitions']:,} partitions) | {large['load']:.1f} / {small['load']:.1f} |")
    print(f"| — idle tick, same | {large['idle'] / small['idle']:.2f}× | | | {large['idle']:.3f} s / "
          f"{small['idle']:.3f} s | |")
    print(f"| — first tick, no cursor (reads every event), same | {large['first_tick'] / small['first_tick']:.2f}× | | | "
          f"{large['first_tick']:.2f} s / {small['first_tick']:.2f} s | |")


if __name__ == "__main__":
    main()
