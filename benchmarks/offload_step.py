"""The offload step as the UI shows it: `dagster asset materialize` of a 2,000,000-row silver hour.

Each materialization is the dagster CLI in a fresh process (`dagster asset materialize -m k2_lakehouse.definitions
--select cold/silver_trades --partition ...`), against k2's Dagster instance, exactly as a user runs it. Its figures
come from the run's event log: the step's duration (STEP_START to STEP_SUCCESS, what "Finished execution of step
in ..." says), the offload's own `seconds` metadata, and the step's time beyond it. In the same invocation, in
turns with the materializations, a fresh process runs the naive path (`query_arrow` + pyiceberg `overwrite`,
`support.cold.offload_hours_naive`, timed around the call alone: its imports are not counted) and times
`matches_warm` on the hour.

Targets (issue 16), each a ratio to a baseline measured in the same run:
- naive / step >= 2.5;
- step - seconds <= one matches_warm + 0.3 s.

Medians of `--runs` (default 5); the load average is recorded with every run, since the machine is shared.

    .venv/bin/python benchmarks/offload_step.py [--rows 2000000] [--runs 5]
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
sys.path.insert(0, str(ROOT))  # benchmarks may import k2_lakehouse_tests.support and each other

from benchmarks.cold_offload import HOUR  # noqa: E402

BIN = Path(sys.executable).parent
ASSET = "cold/silver_trades"
PARTITION = HOUR.strftime("%Y-%m-%d-%H:%M")

# Builds the hour, or times the naive path and matches_warm on it; one process each (one per embedded store).
CHILD = """
import json, os, statistics, sys, time
from pathlib import Path
sys.path.insert(0, {root!r})
from benchmarks.cold_offload import _hour_range, _silver_hour, open_store
from k2_lakehouse.instance import ensure_dagster_instance
from k2_lakehouse.settings import load_settings

mode, rows = sys.argv[1], int(sys.argv[2])
client, catalog = open_store(Path(os.environ["K2_HOME"]))
if mode == "build":
    ensure_dagster_instance(load_settings())
    _silver_hour(client, rows)
    sys.exit(0)
from k2_lakehouse.cold.verify import matches_warm
from k2_lakehouse_tests.support.cold import offload_hours_naive

hours = _hour_range()
started = time.perf_counter()
naive = offload_hours_naive(client, catalog, "silver_trades", hours)
naive_s = time.perf_counter() - started
assert naive.rows == rows, naive
verify_s = []
for _ in range(3):
    started = time.perf_counter()
    assert matches_warm(client, catalog, "silver_trades", hours).ok
    verify_s.append(time.perf_counter() - started)
print(json.dumps({{"naive": naive_s, "matches_warm": statistics.median(verify_s)}}))
"""


def environment(home: Path) -> dict[str, str]:
    env = {**os.environ, "K2_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"), "PWD": str(home),
           "K2_SQL_DIR": str(ROOT / "sql"), "K2_PARTITIONS_START": "2024-01-01-00:00", "PYTHONWARNINGS": "ignore"}
    for name in ("K2_CLICKHOUSE_URL", "K2_ICEBERG_CATALOG_URI", "K2_ICEBERG_WAREHOUSE"):
        env.pop(name, None)
    return env


def run_child(home: Path, mode: str, rows: int) -> str:
    done = subprocess.run([sys.executable, "-c", CHILD.format(root=str(ROOT)), mode, str(rows)], cwd=home,
                          env=environment(home), capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{mode} child failed:\n{done.stderr[-3000:]}")
    return done.stdout.strip()


def step_figures(instance_dir: Path, run_id: str, step_key: str) -> dict[str, float]:
    """From the run's event log: the step's duration, its `seconds` metadata, and the run's own span."""
    import dagster as dg

    with dg.DagsterInstance.from_config(str(instance_dir)) as instance:
        records = instance.all_logs(run_id)
    stamps: dict[str, float] = {}
    seconds = None
    for record in records:
        event = record.dagster_event
        if event is None:
            continue
        kind = event.event_type.name
        if event.step_key == step_key and kind in ("STEP_START", "STEP_SUCCESS"):
            stamps[kind] = record.timestamp
        if kind in ("RUN_START", "RUN_SUCCESS"):
            stamps[kind] = record.timestamp
        if kind == "ASSET_MATERIALIZATION":
            seconds = event.event_specific_data.materialization.metadata["seconds"].value  # type: ignore[union-attr]
    if seconds is None or "STEP_SUCCESS" not in stamps:
        raise SystemExit(f"run {run_id} has no successful step {step_key}")
    return {"step": stamps["STEP_SUCCESS"] - stamps["STEP_START"], "seconds": float(seconds),
            "run": stamps["RUN_SUCCESS"] - stamps["RUN_START"]}


def materialize(home: Path) -> dict[str, float]:
    """`dagster asset materialize` of the hour in a fresh process; its wall time and the step's figures."""
    import dagster as dg

    instance_dir = home / "dagster"
    with dg.DagsterInstance.from_config(str(instance_dir)) as instance:
        before = {r.run_id for r in instance.get_runs()}
    started = time.perf_counter()
    done = subprocess.run([str(BIN / "dagster"), "asset", "materialize", "-m", "k2_lakehouse.definitions",
                           "--select", ASSET, "--partition", PARTITION], cwd=home, env=environment(home),
                          capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"dagster asset materialize failed:\n{done.stderr[-3000:]}")
    with dg.DagsterInstance.from_config(str(instance_dir)) as instance:
        (run_id,) = [r.run_id for r in instance.get_runs() if r.run_id not in before]
    return {**step_figures(instance_dir, run_id, "cold__silver_trades"), "process": wall}


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="k2-bench-step-"))
    home = root / ".k2"  # below the working directory: embedded ClickHouse reads Iceberg only there
    home.mkdir()
    runs: list[dict[str, float]] = []
    try:
        run_child(home, "build", args.rows)
        materialize(home)  # warm-up: the first offload of the hour, the first run on the instance
        for _ in range(args.runs):
            figures = materialize(home)
            figures.update(json.loads(run_child(home, "naive", args.rows)))
            figures["load"] = os.getloadavg()[0]
            runs.append(figures)
            print(f"  step {figures['step']:.2f} s (seconds {figures['seconds']:.2f}), naive {figures['naive']:.2f} s, "
                  f"matches_warm {figures['matches_warm']:.2f} s, load {figures['load']:.1f}", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    report(args, runs)


def report(args: argparse.Namespace, runs: list[dict[str, float]]) -> None:
    def med(name: str) -> float:
        return statistics.median(r[name] for r in runs)

    def spread(name: str) -> str:
        return ", ".join(f"{r[name]:.2f}" for r in runs)

    step, seconds, naive, verify = med("step"), med("seconds"), med("naive"), med("matches_warm")
    beyond = statistics.median(r["step"] - r["seconds"] for r in runs)
    allowance = statistics.median(r["matches_warm"] + 0.3 for r in runs)
    ratio = statistics.median(r["naive"] / r["step"] for r in runs)
    loads = [r["load"] for r in runs]
    print(f"\noffload step as the UI shows it, {args.rows:,}-row silver hour, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
          f"{os.cpu_count()} CPUs, medians of {len(runs)}, load average {min(loads):.1f}-{max(loads):.1f} "
          f"(median {statistics.median(loads):.1f})\n")
    print("| figure | ratio to its same-run baseline | target | | absolute (median; runs) |")
    print("|---|---|---|---|---|")
    print(f"| naive path / offload step (STEP_START→STEP_SUCCESS) | {ratio:.2f}× | ≥ 2.5× | {verdict(ratio >= 2.5)} "
          f"| step {step:.2f} s ({spread('step')}); naive {naive:.2f} s ({spread('naive')}) |")
    print(f"| step's time beyond its `seconds` / (one matches_warm + 0.3 s) | {beyond / allowance:.2f} | ≤ 1 "
          f"| {verdict(beyond <= allowance)} | beyond {beyond:.2f} s; matches_warm {verify:.2f} s ({spread('matches_warm')}) |")
    print(f"| (the offload's own `seconds` metadata) | naive / seconds {naive / seconds:.2f}× | | | {seconds:.2f} s "
          f"({spread('seconds')}) |")
    print(f"| (the run, RUN_START→RUN_SUCCESS; the CLI process) | | | | run {med('run'):.2f} s; process "
          f"{med('process'):.2f} s |")


if __name__ == "__main__":
    main()
