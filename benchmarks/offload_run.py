"""A whole `offload_job` run, as the daemon or a user launches it, for 24 hours of the demo's market, split up.

    .venv/bin/python benchmarks/offload_run.py [--trades-per-hour 2000] [--runs 3]

The 24 hours are simulated and ingested first (`k2 demo`'s simulator, not measured; the same preparation as
`deploy_resources.py`). Each run is `dagster job execute -m k2_lakehouse.definitions -j offload_job` with the
range's tags, in a fresh process against k2's Dagster instance: seal of every warm layer, then the nine cold
offloads. Its wall time is split into

* process start, imports of Dagster, definitions load: fresh processes doing only that, in the same run
  (`python -c pass`, `import dagster`, `import k2_lakehouse.definitions`), medians;
* the rest before the run's first step (the CLI, the run's creation and plan);
* resource initialisation (RESOURCE_INIT_STARTED→SUCCESS: the imports every step needs and the catalog);
* each step (STEP_START→STEP_SUCCESS), and within it the library's own `seconds` metadata;
* what is left (between steps, after the run: events, shutdown).

Reported as shares of the run's wall time, and against the floor: the library's work (the sum of the steps'
`seconds`). Medians of `--runs` runs on the same prepared hours (each run re-seals and re-offloads them);
the load average is recorded with each, since the machine is shared.
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
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.deploy_resources import environment  # noqa: E402

BIN = Path(sys.executable).parent
HOURS = 24

PREPARE = """
import sys
from datetime import datetime
from k2_lakehouse.instance import ensure_dagster_instance
from k2_lakehouse.warm.schema import open_store
from k2_lakehouse.ingest.load import ingest_file
from k2_lakehouse.ingest.simulator import SimulationConfig, simulate_market
from k2_lakehouse.settings import load_settings

settings = load_settings()
ensure_dagster_instance(settings)
client = open_store(settings)
start, hours, trades_per_hour = datetime.fromisoformat(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
simulated = simulate_market(SimulationConfig(start=start, hours=hours, trades_per_hour=trades_per_hour),
                            settings.home / "landing")
for path in simulated.files:
    ingest_file(client, path)
print(simulated.trades)
"""


def fresh_process_s(env: dict[str, str], cwd: Path, code: str, runs: int) -> float:
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-W", "ignore", "-c", code], env=env, cwd=cwd, check=True)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def run_once(home: Path, env: dict[str, str], tags: dict[str, str]) -> dict[str, float]:
    """One `dagster job execute` of offload_job; the run's parts from its event log."""
    import dagster as dg

    instance_dir = home / "dagster"
    with dg.DagsterInstance.from_config(str(instance_dir)) as instance:
        before = {r.run_id for r in instance.get_runs()}
    spawned = time.time()
    started = time.perf_counter()
    done = subprocess.run([str(BIN / "dagster"), "job", "execute", "-m", "k2_lakehouse.definitions", "-j", "offload_job",
                           "--tags", json.dumps(tags)], cwd=home.parent, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"offload_job failed:\n{done.stderr[-3000:]}")
    with dg.DagsterInstance.from_config(str(instance_dir)) as instance:
        (run_id,) = [r.run_id for r in instance.get_runs() if r.run_id not in before]
        records = instance.all_logs(run_id)
    starts: dict[str, float] = {}
    figures: dict[str, float] = defaultdict(float)
    seconds: dict[str, float] = defaultdict(float)
    resource_started = None
    first_step = last_event = None
    inits = 0
    for record in records:
        event = record.dagster_event
        if event is None:
            continue
        kind, key, at = event.event_type.name, event.step_key or "", record.timestamp
        last_event = at
        if kind == "RESOURCE_INIT_STARTED":
            resource_started = at
            if os.environ.get("K2_BENCH_VERBOSE"):
                print(f"    resource init before step {key}: {record.user_message}")
        elif kind == "RESOURCE_INIT_SUCCESS" and resource_started is not None:
            figures["resource init"] += at - resource_started
            inits += 1
        elif kind == "STEP_START":
            starts[key] = at
            first_step = first_step if first_step is not None else (resource_started or at)
        elif kind == "STEP_SUCCESS":
            figures[f"step {key}"] = at - starts[key]
        elif kind == "ASSET_MATERIALIZATION":
            value = event.event_specific_data.materialization.metadata.get("seconds")  # type: ignore[union-attr]
            if value is not None:  # a ranged run reports the range's seconds on each partition's materialization
                seconds[key] = max(seconds[key], float(value.value))
        elif kind == "STEP_FAILURE":
            raise SystemExit(f"step {key} failed in run {run_id}")
    if first_step is None or last_event is None:
        raise SystemExit(f"run {run_id} executed no step")
    figures["until the first step"] = first_step - spawned
    figures["after the last event"] = spawned + wall - last_event
    figures["wall"] = wall
    figures["library seconds"] = sum(seconds.values())
    figures["resource inits"] = inits
    for key, value in seconds.items():
        figures[f"seconds {key}"] = value
    return dict(figures)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trades-per-hour", type=int, default=2000, help="per symbol, as `k2 demo`")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="k2-bench-run-"))
    home = root / ".k2"  # below the working directory: embedded ClickHouse reads Iceberg only there
    env = environment(home)
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=HOURS + 3)
    first, last = start.strftime("%Y-%m-%d-%H:%M"), (start + timedelta(hours=HOURS - 1)).strftime("%Y-%m-%d-%H:%M")
    tags = {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}
    runs: list[dict[str, float]] = []
    try:
        prepared = subprocess.run([sys.executable, "-c", PREPARE, start.isoformat(), str(HOURS),
                                   str(args.trades_per_hour)], env=env, cwd=root, capture_output=True, text=True)
        if prepared.returncode != 0:
            raise SystemExit(f"prepare failed:\n{prepared.stderr[-3000:]}")
        trades = int(prepared.stdout.strip().splitlines()[-1])
        python_s = fresh_process_s(env, root, "pass", 5)
        dagster_s = fresh_process_s(env, root, "import dagster", 3)
        defs_s = fresh_process_s(env, root, "import k2_lakehouse.definitions", 3)
        for _ in range(args.runs):
            figures = run_once(home, env, tags)
            figures["load"] = os.getloadavg()[0]
            runs.append(figures)
            print(f"  run {figures['wall']:.1f} s, steps {sum(v for k, v in figures.items() if k.startswith('step ')):.1f} s, "
                  f"load {figures['load']:.1f}", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    report(runs, trades, first, last, python_s, dagster_s, defs_s)


def report(runs: list[dict[str, float]], trades: int, first: str, last: str, python_s: float, dagster_s: float,
           defs_s: float) -> None:
    def med(name: str) -> float:
        return statistics.median(r.get(name, 0.0) for r in runs)

    wall, floor = med("wall"), med("library seconds")
    steps = sorted({k for r in runs for k in r if k.startswith("step ")})
    step_sum = statistics.median(sum(r[k] for k in steps) for r in runs)
    loads = [r["load"] for r in runs]
    rest_before = med("until the first step") - defs_s
    print(f"\noffload_job, {HOURS} hours ({first} .. {last}) of the demo's market ({trades:,} trades), "
          f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, medians of {len(runs)} runs, load average "
          f"{min(loads):.1f}-{max(loads):.1f}; resource initialisations per run: {med('resource inits'):.0f}\n")
    print("| part of the run | seconds (median) | share of the run's wall time | × the library's work (floor) |")
    print("|---|---|---|---|")

    def row(name: str, value: float) -> None:
        print(f"| {name} | {value:.2f} | {value / wall:.0%} | {value / floor:.2f}× |")

    row("process start (`python -c pass`, measured apart)", python_s)
    row("imports of Dagster (`import dagster` less a bare start, apart)", dagster_s - python_s)
    row("definitions load (`import k2_lakehouse.definitions` less `import dagster`, apart)", defs_s - dagster_s)
    row("the rest before the first step (CLI, run creation, plan)", rest_before)
    row("resource initialisation (imports every step needs, the catalog)", med("resource init"))
    for key in steps:
        name = key.removeprefix("step ")
        print(f"| step `{name}` | {med(key):.2f} (library {med('seconds ' + name):.2f}) | {med(key) / wall:.0%} | "
              f"{med(key) / max(med('seconds ' + name), 1e-9):.2f}× its own |")
    between = wall - med("until the first step") - step_sum - med("resource init") - med("after the last event")
    row("between steps (events, resource init excluded)", max(between, 0.0))
    row("after the last event (shutdown)", med("after the last event"))
    row("**whole run** (wall, spawn to exit)", wall)
    row("of which steps", step_sum)
    row("floor: the library's work (Σ `seconds`)", floor)
    print(f"\nfixed cost per run (wall less the steps) {wall - step_sum:.2f} s = {(wall - step_sum) / wall:.0%} of the run; "
          f"Dagster's share of the steps (steps less the library) {step_sum - floor:.2f} s")


if __name__ == "__main__":
    main()
