"""The demo's cold half: offload every sealed hour through Dagster, verify, and report per cold table."""

from __future__ import annotations

from datetime import datetime

from k2_lakehouse.cli import format_table


def offload_and_report(start: datetime, end: datetime, timings: dict[str, float]) -> bool:
    from k2_lakehouse.cold.catalog import load_catalog
    from k2_lakehouse.cold.names import COLD_TO_WARM
    from k2_lakehouse.demo import _print_checks, _run_job
    from k2_lakehouse.hours import HourRange

    print("\n== Offload every sealed hour to Iceberg through Dagster (offload_job: seal, offload, matches_warm)")
    result, timings["offload"] = _run_job("offload_job", HourRange(start, end).tags())
    cold_checks = [e for e in result.get_asset_check_evaluations() if e.check_name == "matches_warm" and e.partition]
    ok = result.success and _print_checks(result)
    catalog = load_catalog()
    verdicts = {}
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
