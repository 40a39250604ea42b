"""Cold offload benchmark: ClickHouse-written Parquet (fast path) against rows through Python (naive).

Prints a markdown table:
- a 2,000,000-trade silver hour: fast and naive offload (median of 3 each, run in turns), rows/s, the
  ratio, and matches_warm (median of 3);
- peak RSS of a process offloading a 10,000,000-trade hour (its own subprocess, measured by the OS);
- a 24-hour backfill of all nine tables: Iceberg commits (one per table) and total time.

Targets: fast >= 3x naive and >= 2,000,000 rows/s; peak RSS <= 1 GiB at 10M rows; matches_warm <= 1 s
on 2M rows. Everything runs in a temporary K2_HOME, which is also the working directory: embedded
ClickHouse reads icebergLocal() only below it.

    .venv/bin/python benchmarks/cold_offload.py [--rows 2000000] [--rss-rows 10000000] [--backfill-rows-per-hour 100000]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from clickhouse_connect.driver.client import Client
from pyiceberg.catalog import Catalog

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks may import k2_lakehouse_tests.support

from k2_lakehouse.hours import HourRange

HOUR = datetime(2024, 1, 1, tzinfo=UTC)
BACKFILL_DAY = datetime(2024, 2, 1, tzinfo=UTC)
SEAL = {"log_comment": "k2:seal"}  # keeps the gold views from firing on the synthetic silver rows

# Synthetic silver trades spread over one hour, two exchanges, twenty symbols, exact decimals.
SILVER_ROWS_SQL = """
INSERT INTO k2.silver_trades
SELECT
    if(number % 2 = 0, 'binance', 'kraken') AS exchange,
    concat('SYM', toString(number % 20), '/USDT') AS symbol,
    concat('SYM', toString(number % 20), 'USDT') AS exchange_symbol,
    toString(number) AS trade_id,
    number AS trade_seq,
    toDecimal128(30000 + (number % 100000) / 100, 12) AS price,
    toDecimal128(((number * 7919) % 100000 + 1) / 100000, 12) AS quantity,
    if(number % 3 = 0, 'sell', 'buy') AS side,
    toDateTime64({hour:DateTime('UTC')}, 6, 'UTC') + toIntervalMicrosecond(intDiv(number * 3600000000, {rows:UInt64}))
        AS exchange_ts,
    toUInt32(1) AS underlying_trades,
    'binance-ws' AS source_format,
    'benchmark' AS source_name,
    toUInt32(0) AS source_partition,
    number AS source_position,
    toUInt32(0) AS source_element,
    now64(6, 'UTC') AS received_at
FROM numbers({rows:UInt64})
"""

# Synthetic raw Binance aggTrades CSV lines; the live views parse them into bronze, silver and gold.
RAW_ROWS_SQL = """
INSERT INTO k2.trades_raw (exchange, source_format, source_name, source_position, source_element, source_symbol,
                           payload, received_at)
SELECT 'binance', 'binance-aggtrades-csv', concat('backfill-', sym), number, 0, sym,
       concat(toString(number), ',', toString(0.0014 + (number % 1000) / 10000000), ',',
              toString(1 + number % 50), '.0,', toString(number), ',', toString(number), ',',
              toString(toUnixTimestamp64Milli(toDateTime64({start:DateTime('UTC')}, 3, 'UTC'))
                       + intDiv(number * 86400000, {rows:UInt64})), ',True,True'),
       now64(6, 'UTC')
FROM (SELECT number, if(number % 2 = 0, 'XRPETH', 'BTCUSDT') AS sym FROM numbers({rows:UInt64}))
"""

# Run in a subprocess: builds an hour of silver, or offloads it, in the K2_HOME it is given.
CHILD = """
import os, sys
from datetime import datetime
sys.path.insert(0, {root!r})
from benchmarks.cold_offload import child_main
child_main(sys.argv[1], int(sys.argv[2]))
"""


def _median_seconds(action: Callable[[], object], runs: int = 3) -> float:
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def _interleaved_medians(actions: dict[str, Callable[[], object]], runs: int = 3) -> dict[str, float]:
    """Median wall and CPU seconds of each action, run in turns, so a noisy machine slows all alike.

    CPU seconds (this process, ClickHouse's threads included: chdb runs in-process) do not depend on
    what else the machine runs; `<name>_cpu` holds them.
    """
    timings: dict[str, list[float]] = {name: [] for name in actions}
    cpu: dict[str, list[float]] = {name: [] for name in actions}
    for _ in range(runs):
        for name, action in actions.items():
            started, cpu_started = time.perf_counter(), time.process_time()
            action()
            timings[name].append(time.perf_counter() - started)
            cpu[name].append(time.process_time() - cpu_started)
    return {**{name: statistics.median(values) for name, values in timings.items()},
            **{f"{name}_cpu": statistics.median(values) for name, values in cpu.items()}}


def open_store(home: Path) -> tuple[Client, Catalog]:
    """The warm client and the cold catalog of `home`, which becomes K2_HOME and the working directory."""
    from k2_lakehouse.cold.catalog import load_catalog
    from k2_lakehouse.cold.tables import ensure_cold_tables
    from k2_lakehouse.settings import load_settings
    from k2_lakehouse.warm.client import connect
    from k2_lakehouse.warm.schema import apply_schema

    os.environ["K2_HOME"] = str(home)
    os.environ.pop("K2_CLICKHOUSE_URL", None)
    os.environ.pop("K2_ICEBERG_CATALOG_URI", None)
    os.environ.pop("K2_ICEBERG_WAREHOUSE", None)
    home.mkdir(parents=True, exist_ok=True)
    os.chdir(home)
    settings = load_settings()
    client = connect(settings.clickhouse_url)
    apply_schema(client)
    catalog = load_catalog(settings)
    ensure_cold_tables(catalog)
    return client, catalog


def _silver_hour(client: Client, rows: int) -> None:
    client.command(SILVER_ROWS_SQL, parameters={"hour": HOUR, "rows": rows}, settings=SEAL)


def _hour_range() -> HourRange:
    return HourRange(HOUR, HOUR + timedelta(hours=1))


def child_main(mode: str, rows: int) -> None:
    """Subprocess entry: 'build' an hour of `rows` silver trades, or 'offload' it."""
    from k2_lakehouse.cold.offload import offload_hours

    client, catalog = open_store(Path(os.environ["K2_HOME"]))
    if mode == "build":
        _silver_hour(client, rows)
    else:
        result = offload_hours(client, catalog, "silver_trades", _hour_range())
        assert result.rows == rows, result


def _child_peak_rss_mib(home: Path, mode: str, rows: int) -> float:
    """Run one child and return its own peak RSS: the kernel's ru_maxrss for that child (wait4).

    posix_spawn, not fork: a forked child starts with the parent's resident pages counted as its own.
    """
    root = str(Path(__file__).resolve().parents[1])
    pid = os.posix_spawn(sys.executable, [sys.executable, "-c", CHILD.format(root=root), mode, str(rows)],
                         {**os.environ, "K2_HOME": str(home), "PWD": str(home)})
    _, status, usage = os.wait4(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{mode} child failed with {os.waitstatus_to_exitcode(status)}")
    return usage.ru_maxrss / 1024  # kB on Linux


def bench_2m(client: Client, catalog: Catalog, rows: int) -> dict[str, float]:
    from k2_lakehouse.cold.offload import offload_hours
    from k2_lakehouse.cold.verify import matches_warm
    from k2_lakehouse_tests.support.cold import offload_hours_naive

    hours = _hour_range()
    _silver_hour(client, rows)
    offload_hours(client, catalog, "silver_trades", hours)  # warm-up: caches, first table metadata
    medians = _interleaved_medians({
        "fast": lambda: offload_hours(client, catalog, "silver_trades", hours),
        "checked": lambda: offload_hours(client, catalog, "silver_trades", hours, verify_staging=True),
        "naive": lambda: offload_hours_naive(client, catalog, "silver_trades", hours),
    })
    offload_hours(client, catalog, "silver_trades", hours)
    medians["verify"] = _median_seconds(lambda: matches_warm(client, catalog, "silver_trades", hours))
    assert matches_warm(client, catalog, "silver_trades", hours).ok
    return medians


def bench_backfill(client: Client, catalog: Catalog, rows_per_hour: int) -> dict[str, float]:
    from k2_lakehouse.cold.verify import matches_warm
    from k2_lakehouse_tests.support.cold import offload_all

    day = HourRange(BACKFILL_DAY, BACKFILL_DAY + timedelta(days=1))
    client.command(RAW_ROWS_SQL, parameters={"start": BACKFILL_DAY, "rows": rows_per_hour * 24})
    started = time.perf_counter()
    results = offload_all(client, catalog, day, run_id="backfill")
    seconds = time.perf_counter() - started
    commits = sum(1 for r in results for s in catalog.load_table(("cold", r.table)).snapshots()
                  if s.summary.additional_properties.get("k2.run_id") == "backfill")
    assert all(matches_warm(client, catalog, r.table, day).ok for r in results)
    return {"commits": commits, "seconds": seconds, "rows": sum(r.rows for r in results[:3])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--rss-rows", type=int, default=10_000_000)
    parser.add_argument("--backfill-rows-per-hour", type=int, default=100_000)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="k2-bench-cold-"))
    try:
        rss_home = scratch / "rss"
        rss_home.mkdir()
        build_rss = _child_peak_rss_mib(rss_home, "build", args.rss_rows)
        offload_rss = _child_peak_rss_mib(rss_home, "offload", args.rss_rows)
        shutil.rmtree(rss_home)
        client, catalog = open_store(scratch / "main")
        speed = bench_2m(client, catalog, args.rows)
        backfill = bench_backfill(client, catalog, args.backfill_rows_per_hour)
    finally:
        os.chdir("/")
        shutil.rmtree(scratch, ignore_errors=True)
    _report(args, speed, backfill, build_rss, offload_rss)


def _report(args: argparse.Namespace, speed: dict[str, float], backfill: dict[str, float], build_rss: float,
            offload_rss: float) -> None:
    rows, fast, naive = args.rows, speed["fast"], speed["naive"]

    def verdict(ok: bool) -> str:
        return "met" if ok else "**missed**"

    print(f"Cold offload benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, "
          f"{platform.python_implementation()} {platform.python_version()}, load average "
          f"{os.getloadavg()[0]:.1f} at the end\n")
    print("| measure | value | target | |")
    print("|---|---|---|---|")
    print(f"| fast offload, {rows:,}-row silver hour (median of 3) | {fast:.2f} s = {rows / fast:,.0f} rows/s "
          f"({speed['fast_cpu']:.2f} CPU-s) | >= 2,000,000 rows/s | {verdict(rows / fast >= 2_000_000)} |")
    print(f"| fast offload with verify_staging (staged files re-checksummed) | {speed['checked']:.2f} s = "
          f"{rows / speed['checked']:,.0f} rows/s ({speed['checked_cpu']:.2f} CPU-s) | | |")
    print(f"| naive offload (query_arrow + table.overwrite, median of 3) | {naive:.2f} s = {rows / naive:,.0f} rows/s "
          f"({speed['naive_cpu']:.2f} CPU-s) | | |")
    print(f"| fast / naive | {naive / fast:.1f}x wall, {speed['naive_cpu'] / speed['fast_cpu']:.1f}x CPU | >= 3x "
          f"| {verdict(naive / fast >= 3)} |")
    print(f"| matches_warm, {rows:,} rows (median of 3) | {speed['verify']:.2f} s | <= 1 s "
          f"| {verdict(speed['verify'] <= 1)} |")
    print(f"| peak RSS, offloading a {args.rss_rows:,}-row hour (own process) | {offload_rss:,.0f} MiB | <= 1024 MiB "
          f"| {verdict(offload_rss <= 1024)} |")
    print(f"| (peak RSS of the process that built that hour) | {build_rss:,.0f} MiB | | |")
    print(f"| 24-hour backfill, all nine tables ({backfill['rows']:,.0f} raw+bronze+silver rows) | "
          f"{backfill['commits']:.0f} Iceberg commits, {backfill['seconds']:.1f} s | 9 commits "
          f"| {verdict(backfill['commits'] == 9)} |")


if __name__ == "__main__":
    main()
