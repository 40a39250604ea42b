"""`k2 demo`: simulate a few hours of several exchanges, ingest, seal and offload through Dagster, report.

The demo runs the jobs the schedules run, in this process and on the instance `k2` prepared, so their runs,
checks and materializations show in the UI afterwards (`make ui`). It prints what a reader would check by
hand: rows per layer, the DLQ, the last candles, every check, and each cold table against warm.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import dagster as dg

from k2_lakehouse.console import format_table, print_ingest_summary
from k2_lakehouse.hours import HourRange
from k2_lakehouse.ingest.load import ingest_file
from k2_lakehouse.ingest.simulator import SimulationConfig, simulate_market
from k2_lakehouse.settings import Settings
from k2_lakehouse.warm.client import as_int
from k2_lakehouse.warm.schema import open_store
from k2_lakehouse.warm.tables import TIMEFRAMES


def closed_hours(hours: int, now: datetime | None = None) -> tuple[datetime, datetime]:
    """The last `hours` whole hours before `now`: [start, end), end the current hour's start."""
    end = (now or datetime.now(UTC)).replace(minute=0, second=0, microsecond=0)
    return end - timedelta(hours=hours), end


def _run_job(name: str, tags: dict[str, str]) -> tuple[dg.ExecuteInProcessResult, float]:
    from k2_lakehouse.definitions import defs

    started = time.perf_counter()
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    result = defs.resolve_job_def(name).execute_in_process(instance=dg.DagsterInstance.get(), tags=tags,
                                                           run_config=quiet, raise_on_error=False)
    return result, time.perf_counter() - started


def _print_checks(result: dg.ExecuteInProcessResult) -> bool:
    evaluations = result.get_asset_check_evaluations()
    rows = sorted({(e.asset_key.to_user_string(), e.check_name, "passed" if e.passed else "FAILED")
                   for e in evaluations})
    print(format_table(("asset", "check", "result"), rows))
    return all(e.passed for e in evaluations)


def run_demo(settings: Settings, hours: int = 3, trades_per_hour: int = 2000) -> int:
    client = open_store(settings)
    start, end = closed_hours(hours)
    landing = settings.home / "landing" / "simulated"
    timings: dict[str, float] = {}

    t = time.perf_counter()
    simulated = simulate_market(SimulationConfig(start=start, hours=hours, trades_per_hour=trades_per_hour), landing)
    timings["simulate"] = time.perf_counter() - t
    print(f"\n== Simulated {simulated.trades:,} trades over {hours} h ({start:%Y-%m-%d %H:00} .. {end:%H:00} UTC), "
          f"{simulated.duplicates} duplicates, {simulated.late} late, {sum(simulated.malformed.values())} malformed")

    t = time.perf_counter()
    summaries = [ingest_file(client, path) for path in simulated.files]
    timings["ingest"] = time.perf_counter() - t
    print("\n== Ingest")
    print_ingest_summary(summaries)

    print("\n== Seal every warm partition through Dagster (warm_seal_job)")
    result, timings["seal"] = _run_job("warm_seal_job", HourRange(start, end).tags())
    ok = result.success and _print_checks(result)

    print("\n== Rows per layer")
    layers = [(table, client.command(f"SELECT count() FROM k2.{table}{final}")) for table, final in (
        ("trades_raw", ""), ("bronze_trades", " FINAL"), ("silver_trades", " FINAL"), ("silver_trades_dlq", ""),
        ("trades_skipped", ""), *((f"gold_ohlcv_{tf}_view", "") for tf in TIMEFRAMES))]
    print(format_table(("table", "rows"), layers))
    silver = as_int(layers[2][1])
    verdict = "exact" if silver == simulated.trades else "MISMATCH"
    ok = ok and silver == simulated.trades
    print(f"silver holds {silver:,} trades; the simulator wrote {simulated.trades:,} distinct valid trades: {verdict}")
    print("\n== DLQ by reason")
    dlq = client.query("SELECT toString(reason), toString(stage), count() FROM k2.silver_trades_dlq GROUP BY ALL "
                       "ORDER BY 3 DESC").result_rows
    print(format_table(("reason", "stage", "messages"), dlq))
    print("\n== Last 1h candle per symbol")
    candles = client.query(
        "SELECT exchange, symbol, window_start, open, high, low, close, volume, trade_count FROM k2.gold_ohlcv_1h_view "
        "ORDER BY exchange, symbol, window_start DESC LIMIT 1 BY exchange, symbol").result_rows
    print(format_table(("exchange", "symbol", "hour", "open", "high", "low", "close", "volume", "trades"),
                       [(*r[:3], *(f"{v.normalize():f}" if hasattr(v, "normalize") else v for v in r[3:])) for r in candles]))

    ok = offload_and_report(start, end, timings) and ok

    print("\n== Timings (s)")
    print(format_table(("step", "seconds"), [(k, f"{v:.2f}") for k, v in timings.items()]))
    print("\nOpen the UI on this state: make ui  (dagster dev; then http://127.0.0.1:3000, Assets -> lineage)")
    print("Query it:                  .venv/bin/k2 sql \"SELECT * FROM k2.gold_ohlcv_1h_view LIMIT 5\"")
    return 0 if ok else 1


def offload_and_report(start: datetime, end: datetime, timings: dict[str, float]) -> bool:
    """The demo's cold half: offload every sealed hour through Dagster, verify, and report per cold table."""
    from k2_lakehouse.cold.catalog import load_catalog
    from k2_lakehouse.cold.names import COLD_TO_WARM

    print("\n== Offload every sealed hour to Iceberg through Dagster (offload_job: seal, offload, matches_warm)")
    result, timings["offload"] = _run_job("offload_job", HourRange(start, end).tags())
    cold_checks = [e for e in result.get_asset_check_evaluations() if e.check_name == "matches_warm" and e.partition]
    ok = result.success and _print_checks(result)
    catalog = load_catalog()
    verdicts: dict[str, bool] = {}
    for e in cold_checks:
        name = e.asset_key.path[-1]
        verdicts[name] = verdicts.get(name, True) and e.passed
    rows = []
    for name in COLD_TO_WARM:
        table = catalog.load_table(("cold", name))
        snapshot = table.current_snapshot()
        files = table.inspect.files()
        count = sum(files.column("record_count").to_pylist())
        rows.append((f"cold.{name}", count, files.num_rows, snapshot.snapshot_id if snapshot else "-",
                     "passed" if verdicts.get(name) else "FAILED"))
    print("\n== Cold tables")
    print(format_table(("table", "rows", "files", "snapshot id", "matches_warm (every hour)"), rows))
    return ok and all(verdicts.get(name) for name in COLD_TO_WARM)
