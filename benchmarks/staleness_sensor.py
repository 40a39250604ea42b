"""A cold_staleness_sensor tick over 30 days x 9 tables of offloaded hourly partitions (target: <= 2 s).

`--days N` builds N days instead (cost_growth.py compares 365 days with 30); `--json` prints the medians as JSON.
Builds 720 hours (24 x N) of raw trades in warm and records every cold partition as materialized in a Dagster instance
(9 x 720 events, reported after the rows were inserted, as offloads are); raw_trades' late hour is offloaded for
real. Times a tick with nothing new (baseline), the tick that must find exactly the hour a late trade lands
in, and a first tick with no cursor (it reads every event once); medians of several runs.
The sensor's visibility margin (2 minutes: inserts stamp inserted_at when they start) is shortened to one
second here so the steady state is reached without waiting; nothing else inserts meanwhile.
Run: .venv/bin/python benchmarks/staleness_sensor.py
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path


def measure(days: int = 30, runs: int = 5) -> dict[str, object]:
    """Medians of the idle tick and of the tick finding one late hour, over `days` days x 9 tables."""
    hours_count = 24 * days
    home = Path(tempfile.mkdtemp(prefix="k2bench-", dir=Path.cwd()))
    started_in = Path.cwd()
    try:
        os.environ.update({"K2_HOME": str(home), "K2_PARTITIONS_START": "2024-01-01-00:00"})
        os.chdir(home)
        import dagster as dg

        from k2_lakehouse.cold import staleness
        from k2_lakehouse.cold.catalog import load_catalog
        from k2_lakehouse.cold.names import COLD_TO_WARM
        from k2_lakehouse.cold.offload import offload_hours
        from k2_lakehouse.cold.tables import ensure_cold_tables
        from k2_lakehouse.definitions import defs
        from k2_lakehouse.hours import HourRange
        from k2_lakehouse.hours import partition_key as partition_key_of
        from k2_lakehouse.warm.client import connect
        from k2_lakehouse.warm.schema import apply_schema

        client = connect(f"chdb://{home / 'clickhouse'}")
        apply_schema(client)
        end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
        start = end - timedelta(days=days)
        received = datetime.now(UTC) - timedelta(minutes=30)
        # hours_count hours x 50 Binance aggTrades, arrived half an hour ago.
        client.command(
            "INSERT INTO k2.trades_raw (exchange, source_format, source_name, source_position, payload, received_at) "
            "SELECT 'binance', 'binance-aggtrades-csv', 'bench', number, "
            "concat(toString(number), ',1.5,2.0,', toString(number), ',', toString(number), ',', "
            "toString(toUnixTimestamp64Milli(toDateTime64({start:DateTime('UTC')}, 3) + toIntervalSecond(number * 72))), "
            "',true,true'), "
            "{received:DateTime64(6, 'UTC')} FROM numbers({rows:UInt64})",
            parameters={"start": start, "received": received, "rows": 50 * hours_count},
            settings={"log_comment": "k2:seal", "max_partitions_per_insert_block": 0})  # a year spans >100 partitions
        staleness.VISIBILITY_MARGIN = timedelta(seconds=1)
        time.sleep(1.5)
        catalog = load_catalog()
        ensure_cold_tables(catalog)
        late_hour = end - timedelta(days=30) + timedelta(days=12, hours=5)  # the same age whatever `days`
        offload_hours(client, catalog, "raw_trades", HourRange(late_hour, late_hour + timedelta(hours=1)))
        hours = [start + timedelta(hours=i) for i in range(hours_count)]
        instance = dg.DagsterInstance.ephemeral()
        for name in COLD_TO_WARM:
            for hour in hours:
                instance.report_runless_asset_event(dg.AssetMaterialization(["cold", name], partition=partition_key_of(hour)))
        sensor = defs.resolve_sensor_def("cold_staleness_sensor")
        resources = {"warm": defs.resources["warm"], "cold_store": defs.resources["cold_store"]}
        with dg.build_sensor_context(instance=instance, cursor=None, resources=resources) as context:
            first_tick = time.perf_counter()
            cursor = sensor.evaluate_tick(context).cursor
            first_tick = time.perf_counter() - first_tick
        if json.loads(cursor)["events_after"] == 0:
            raise SystemExit("the first tick read no events; the benchmark is void")

        def tick(at_cursor: str) -> tuple[float, object]:
            started = time.perf_counter()
            with dg.build_sensor_context(instance=instance, cursor=at_cursor, resources=resources) as context:
                result = sensor.evaluate_tick(context)
            return time.perf_counter() - started, result

        idle = [tick(cursor)[0] for _ in range(runs)]
        client.command(
            "INSERT INTO k2.trades_raw (exchange, source_format, source_name, source_position, payload, received_at) VALUES "
            "('binance', 'binance-aggtrades-csv', 'late', 1, {payload:String}, now64(6))",
            parameters={"payload": f"999999,1.6,1.0,999999,999999,{int((late_hour + timedelta(minutes=3)).timestamp() * 1000)},"
                                   "true,true"})
        found = []
        for _ in range(runs):
            seconds, result = tick(cursor)
            found.append(seconds)
        requested = [(r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"])
                     for r in result.run_requests]
        return {"days": days, "partitions": 9 * hours_count, "runs": runs, "idle": statistics.median(idle),
                "found": statistics.median(found), "first_tick": first_tick, "requested": requested,
                "expected": [[partition_key_of(late_hour)] * 2], "load": os.getloadavg()[0]}
    finally:
        os.chdir(started_in)
        shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print the medians as one JSON object")
    args = parser.parse_args()
    figures = measure(args.days, args.runs)
    if args.json:
        print(json.dumps(figures))
        return
    partitions = figures["partitions"]
    print(f"\nstaleness sensor, {args.days} days x 9 tables = {partitions:,} partitions, {os.cpu_count()} cores, "
          f"{datetime.now(UTC):%Y-%m-%d}, medians of {args.runs}, load average {figures['load']:.1f}\n")
    print("| measure | median (s) | target |")
    print("|---|---|---|")
    print(f"| tick, nothing arrived (baseline) | {figures['idle']:.3f} | — |")
    print(f"| tick finding one late hour among {partitions // 9:,} | {figures['found']:.3f} | ≤ 2 |")
    print(f"| first tick, no cursor: reads all {partitions:,} events (one run) | {figures['first_tick']:.3f} | — |")
    print(f"\nrequested: {figures['requested']} (expected {figures['expected']})")


if __name__ == "__main__":
    main()
