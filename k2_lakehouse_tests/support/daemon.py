"""Plain helpers for tests that run Dagster's daemon as `make ui` does, on a home of their own.

`make ui` prepares the home (`python -m k2_lakehouse.instance`), then runs `dagster dev -w workspace.yaml`, whose
daemon (`dagster-daemon run`) drains the run queue, retries failed runs and monitors running ones. These helpers
do the same in a temporary folder: the folder is the code location's working directory (embedded ClickHouse
reads and writes files only below it), so the workspace file is the project's with that one entry changed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import IO, TypeVar

import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
T = TypeVar("T")

# Settings a developer's shell may hold that would point the home's runs elsewhere.
FOREIGN_SETTINGS = ("K2_CLICKHOUSE_URL", "K2_ICEBERG_CATALOG_URI", "K2_ICEBERG_WAREHOUSE", "K2_RUN_EXECUTOR",
                    "K2_LANDING_DIR", "K2_DAGSTER_POSTGRES_URL")


def home_environment(folder: Path) -> dict[str, str]:
    """The environment of every process of a home in `folder`: K2_HOME and DAGSTER_HOME inside it."""
    env = {name: value for name, value in os.environ.items() if name not in FOREIGN_SETTINGS}
    env["K2_HOME"] = str(folder / "k2")
    env["DAGSTER_HOME"] = str(folder / "k2" / "dagster")
    return env


def prepare_home_as_make_ui(folder: Path, env: dict[str, str]) -> Path:
    """Run `make ui`'s first step in `folder` and write its workspace file; returns the workspace file."""
    subprocess.run([str(BIN / "python"), "-m", "k2_lakehouse.instance"], cwd=folder, env=env, check=True)
    workspace = yaml.safe_load((ROOT / "workspace.yaml").read_text())
    for location in workspace["load_from"]:
        location["python_module"]["working_directory"] = str(folder)
    path = folder / "workspace.yaml"
    path.write_text(yaml.safe_dump(workspace))
    return path


def ingest(folder: Path, env: dict[str, str], files: list[Path]) -> None:
    """`k2 ingest FILE...` in the home, in a process of its own (so this one never holds the embedded store)."""
    subprocess.run([str(BIN / "k2"), "ingest", *map(str, files)], cwd=folder, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@contextmanager
def daemon(folder: Path, env: dict[str, str], workspace: Path, log: IO[str]) -> Iterator[subprocess.Popen[str]]:
    """`dagster-daemon run -w workspace`, in a process group of its own (its code server and runs join it);
    the whole group is stopped on exit, if still there."""
    process = subprocess.Popen([str(BIN / "dagster-daemon"), "run", "-w", str(workspace)], cwd=folder, env=env,
                               stdout=log, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        yield process
    finally:
        kill_group(process, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            kill_group(process, signal.SIGKILL)
            process.wait()
        # Its code server and any run of it exit once the daemon is gone; give them the moment they take.
        wait_for(lambda: not group_alive(process.pid), 30, "the daemon's process group to exit")


def kill_group(process: subprocess.Popen[str], sig: signal.Signals) -> None:
    """Send `sig` to every process of `process`'s group (a power cut, with SIGKILL)."""
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def launch(folder: Path, env: dict[str, str], workspace: Path, job: str, run_id: str, tags: dict[str, str]) -> None:
    """`dagster job launch`: the run is queued for the daemon, with `run_id` and `tags`.

    Dagster's CLI (1.13) gives a launched run the job's definition tags, not its `run_tags` as schedules, sensors
    and the UI do: pass the job's run tags in `tags` to launch the run a schedule would."""
    subprocess.run([str(BIN / "dagster"), "job", "launch", "-w", str(workspace), "-j", job, "--run-id", run_id,
                    "--tags", json.dumps(tags)], cwd=folder, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_for(probe: Callable[[], T | None], timeout: float, what: str, every: float = 0.2) -> T:
    """The first truthy answer of `probe`, polled until `timeout` seconds have passed (then AssertionError)."""
    deadline = time.monotonic() + timeout
    while True:
        answer = probe()
        if answer:
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:.0f} s for {what}")
        time.sleep(every)


def hour_files(folder: Path, hour: datetime, trades_per_hour: int = 200) -> list[Path]:
    """Simulated trades of `hour` (one file per exchange), written under `folder`."""
    from k2_lakehouse.ingest.simulator import SimulationConfig, simulate_market

    return simulate_market(SimulationConfig(start=hour, hours=1, trades_per_hour=trades_per_hour),
                           folder / "landing").files
