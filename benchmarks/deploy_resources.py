"""What k2's own processes need, for sizing containers: CPU-seconds and peak memory of real processes.

    .venv/bin/python benchmarks/deploy_resources.py [--trades-per-hour 2000] [--idle-seconds 30]

Measured, each in a process of its own (as a run worker, the webserver or the daemon is one):

* an `offload_job` run (seal the warm layers, offload all nine cold tables, `matches_warm`) of one hour of
  the demo's simulated trades (`k2 demo`'s simulator and ingest, prepared beforehand and not measured);
* the nightly jobs after it: `compaction_job`, `snapshot_expiry_job`, `audit_job`;
* dagster-webserver and dagster-daemon idle for `--idle-seconds` on the same instance (the webserver's and
  the daemon's code-server subprocesses included: a container holds the whole process tree).

A job's figures come from `os.wait4` on its process: user + system CPU, and the peak resident set of the
process (ClickHouse runs inside it, embedded). A server's are sampled from /proc every 0.5 s over its
process tree: the peak of the tree's summed RSS, and its CPU-seconds over the start-up (first 10 s) and the
rest. The instance is k2's embedded one (SQLite storage, runs in process); compose runs the same processes
against servers, which moves ClickHouse's share out of the run.

The plan's budgets the figures are compared with: the Iceberg side 1.5 CPU / 2 GB, the whole stack
~17.5 CPU / ~20 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
ICEBERG_BUDGET = (1.5, 2048)  # CPU, MiB: the plan's, for a run
SERVER_LIMIT = (1.0, 1024)  # docker/compose.yaml's limit for the webserver and the daemon
STARTUP_S = 10.0

PREPARE = """
import sys
from datetime import datetime
from pathlib import Path
from k2_lakehouse.instance import ensure_dagster_instance
from k2_lakehouse.warm.schema import open_store
from k2_lakehouse.ingest.load import ingest_file
from k2_lakehouse.ingest.simulator import SimulationConfig, simulate_market
from k2_lakehouse.settings import load_settings

settings = load_settings()
ensure_dagster_instance(settings)
client = open_store(settings)
start, trades_per_hour = datetime.fromisoformat(sys.argv[1]), int(sys.argv[2])
simulated = simulate_market(SimulationConfig(start=start, hours=1, trades_per_hour=trades_per_hour),
                            settings.home / "landing")
for path in simulated.files:
    ingest_file(client, path)
print(simulated.trades)
"""

RUN_JOB = """
import json, sys
import dagster as dg
from k2_lakehouse.definitions import defs

name, tags = sys.argv[1], json.loads(sys.argv[2])
quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
result = defs.resolve_job_def(name).execute_in_process(instance=dg.DagsterInstance.get(), tags=tags,
                                                       run_config=quiet, raise_on_error=False)
sys.exit(0 if result.success else 1)
"""


@dataclass(frozen=True)
class Usage:
    what: str
    wall_s: float
    cpu_s: float
    peak_rss_mib: float
    note: str = ""


def environment(home: Path) -> dict[str, str]:
    return {**os.environ, "K2_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"),
            "K2_SQL_DIR": str(ROOT / "sql"), "PYTHONWARNINGS": "ignore"}


def run_measured(what: str, args: list[str], env: dict[str, str], cwd: Path) -> Usage:
    """Run a process to its end; its CPU and peak RSS from the kernel's accounting (wait4)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(args, env=env, cwd=cwd, stdout=out, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)  # reaps it: Popen must not wait again
        wall = time.perf_counter() - started
        code = os.waitstatus_to_exitcode(status)
        process.returncode = code
        out.seek(0), err.seek(0)
        if code != 0:
            raise SystemExit(f"{what} failed (exit {code}):\n{err.read().decode()[-3000:]}")
        note = out.read().decode().strip()[-80:]
    return Usage(what, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, note)


def tree(root: int) -> list[int]:
    """The pid and every live descendant, from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(parents.get(pid, []))
    return found


def tree_usage(root: int) -> tuple[float, float]:
    """(CPU-seconds, RSS MiB) of the live tree; CPU includes children the tree already reaped."""
    cpu, rss = 0.0, 0.0
    for pid in tree(root):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        cpu += sum(int(f) for f in fields[11:15]) / CLOCK_TICKS  # utime stime cutime cstime
        rss += int(fields[21]) * PAGE / 2**20
    return cpu, rss


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_idle(what: str, args: list[str], env: dict[str, str], cwd: Path, seconds: float) -> Usage:
    """Start a server, sample its process tree while it idles, stop it."""
    process = subprocess.Popen(args, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    started = time.perf_counter()
    peak, cpu_at_startup, cpu = 0.0, 0.0, 0.0
    try:
        while (elapsed := time.perf_counter() - started) < seconds:
            if process.poll() is not None:
                raise SystemExit(f"{what} exited early with code {process.returncode}")
            cpu, rss = tree_usage(process.pid)
            peak = max(peak, rss)
            if elapsed < STARTUP_S:
                cpu_at_startup = cpu
            time.sleep(0.5)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    idle_rate = (cpu - cpu_at_startup) / (seconds - STARTUP_S)
    return Usage(what, seconds, cpu, peak, f"start-up {cpu_at_startup:.1f} CPU-s, then {idle_rate:.3f} CPU-s/s")


def range_tags(start: datetime) -> dict[str, str]:
    key = start.strftime("%Y-%m-%d-%H:%M")
    return {"dagster/asset_partition_range_start": key, "dagster/asset_partition_range_end": key}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trades-per-hour", type=int, default=2000, help="per symbol, as `k2 demo`")
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="k2-deploy-bench-"))
    home = root / ".k2"  # below the working directory: embedded ClickHouse reads Iceberg only there
    env = environment(home)
    python = str(BIN / "python")
    # Closed well over 75 minutes ago, so the audit compares it too.
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    results: list[Usage] = []
    try:
        prepared = run_measured("prepare (not a figure)", [python, "-c", PREPARE, hour.isoformat(),
                                                           str(args.trades_per_hour)], env, root)
        print(f"one hour ({hour:%Y-%m-%d %H:00} UTC) of the demo's market: {prepared.note} trades ingested; "
              f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}", flush=True)
        for job, tags in (("offload_job", range_tags(hour)), ("compaction_job", {}), ("snapshot_expiry_job", {}),
                          ("audit_job", {})):
            results.append(run_measured(job, [python, "-c", RUN_JOB, job, json.dumps(tags)], env, root))
            print(f"  {results[-1].what}: {results[-1].cpu_s:.1f} CPU-s, {results[-1].peak_rss_mib:.0f} MiB", flush=True)
        workspace = ROOT / "workspace.yaml"
        results.append(run_idle("dagster-webserver, idle", [str(BIN / "dagster-webserver"), "-w", str(workspace),
                                "-h", "127.0.0.1", "-p", str(free_port())], env, ROOT, args.idle_seconds))
        print(f"  {results[-1].what}: {results[-1].cpu_s:.1f} CPU-s, {results[-1].peak_rss_mib:.0f} MiB", flush=True)
        results.append(run_idle("dagster-daemon, idle", [str(BIN / "dagster-daemon"), "run", "-w", str(workspace)],
                                env, ROOT, args.idle_seconds))
        print(f"  {results[-1].what}: {results[-1].cpu_s:.1f} CPU-s, {results[-1].peak_rss_mib:.0f} MiB", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    print(f"\nload average at the end {os.getloadavg()[0]:.1f} (the machine is shared: wall times include others' work)")
    print("| process | wall s | CPU-s | peak RSS MiB | budget | against it |")
    print("|---|---|---|---|---|---|")
    for u in results:
        server = u.what.endswith("idle")
        cpus, mib = SERVER_LIMIT if server else ICEBERG_BUDGET
        budget = f"compose limit {cpus:g} CPU / {mib // 1024} GiB" if server else f"Iceberg side {cpus:g} CPU / 2 GB"
        against = f"{u.peak_rss_mib / mib:.0%} of the memory, {u.cpu_s / u.wall_s / cpus:.0%} of the CPU while it runs"
        if u.what == "offload_job":
            against += f"; {u.cpu_s / (cpus * 3600):.2%} of an hour's CPU (one offload per hour)"
        print(f"| {u.what} | {u.wall_s:.1f} | {u.cpu_s:.1f} | {u.peak_rss_mib:.0f} | {budget} | {against}"
              f"{'; ' + u.note if u.note else ''} |")

if __name__ == "__main__":
    main()
