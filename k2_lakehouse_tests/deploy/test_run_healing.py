"""Runs heal themselves: a run whose process was killed is failed by the daemon's run monitoring, and an offload
run is then launched again, whole, so the queue moves.

Each test prepares a home as `make ui` does and runs Dagster's daemon on it as `make ui` does (`dagster-daemon
run -w workspace.yaml`, the instance k2 wrote: K2RunLauncher and run monitoring). The processes are real and
killed with SIGKILL: nothing is patched.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest

from k2_lakehouse.defs.cold.jobs import offload_job
from k2_lakehouse.defs.run_worker import PID_TAG
from k2_lakehouse.hours import HourRange
from k2_lakehouse.instance import RUN_MONITORING_POLL_SECONDS
from k2_lakehouse_tests.support.daemon import (
    BIN,
    daemon,
    home_environment,
    hour_files,
    ingest,
    kill_group,
    launch,
    prepare_home_as_make_ui,
    wait_for,
)

HOUR = HourRange.of_hour(datetime(2025, 11, 10, 17, tzinfo=UTC))
# The daemon must be up before it can poll: its code server loads the definitions (seconds on a busy machine).
DAEMON_START_ALLOWANCE_S = 60
PASS_S = 5  # one monitoring pass over the runs, on a shared machine
RUN_S = 120  # an offload of one small hour, with the machine shared


@dataclass
class Home:
    folder: Path
    env: dict[str, str]
    workspace: Path
    instance: dg.DagsterInstance
    log: Path


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Home]:
    """A home prepared as `make ui` prepares it, with one hour of simulated trades ingested."""
    env = home_environment(tmp_path)
    workspace = prepare_home_as_make_ui(tmp_path, env)
    ingest(tmp_path, env, hour_files(tmp_path, HOUR.start))
    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        yield Home(tmp_path, env, workspace, instance, tmp_path / "daemon.log")


def run_of(home: Home, run_id: str) -> dg.DagsterRun:
    run = home.instance.get_run_by_id(run_id)
    assert run is not None, f"no run {run_id}"
    return run


def recorded_pid(home: Home, run_id: str) -> int | None:
    run = home.instance.get_run_by_id(run_id)
    if run is None or run.status != dg.DagsterRunStatus.STARTED or PID_TAG not in run.tags:
        return None
    return int(run.tags[PID_TAG])


def failed(home: Home, run_id: str) -> bool:
    return run_of(home, run_id).status == dg.DagsterRunStatus.FAILURE


def retry_of(home: Home, run_id: str) -> dg.DagsterRun | None:
    retries = home.instance.get_runs(filters=dg.RunsFilter(tags={"dagster/parent_run_id": run_id}))
    return retries[0] if retries else None


def cold_rows_of_the_hour(home: Home) -> tuple[int, int]:
    """(silver trades of HOUR in cold, in warm), read once the daemon is gone (it may hold the embedded store)."""
    from k2_lakehouse.cold.catalog import catalog_at
    from k2_lakehouse.warm.client import as_int, close_all, connect

    k2_home = Path(home.env["K2_HOME"])
    catalog = catalog_at(f"sqlite:///{k2_home / 'iceberg' / 'catalog.db'}", f"file://{k2_home / 'iceberg' / 'warehouse'}")
    cold = catalog.load_table(("cold", "silver_trades")).scan().to_arrow().num_rows
    try:
        warm = as_int(connect(f"chdb://{k2_home / 'clickhouse'}").command(
            "SELECT count() FROM k2.silver_trades FINAL WHERE exchange_ts >= {start:DateTime64(6, 'UTC')} "
            "AND exchange_ts < {end:DateTime64(6, 'UTC')}", parameters={"start": HOUR.start, "end": HOUR.end}))
    finally:
        close_all()
    return cold, warm


def test_an_offload_run_killed_with_everything_that_knew_it_is_failed_and_retried_whole(home: Home) -> None:
    """The power cut of `make ui`: its daemon, code server and the run they launched, all SIGKILLed mid-run.
    Nothing is left that knows the run's process, so only run monitoring can fail it."""
    run_id = str(uuid.uuid4())
    with home.log.open("a") as log:
        with daemon(home.folder, home.env, home.workspace, log) as first:
            launch(home.folder, home.env, home.workspace, "offload_job", run_id, {**offload_job.run_tags, **HOUR.tags()})
            wait_for(lambda: recorded_pid(home, run_id), RUN_S, "the offload run to start and record its process")
            kill_group(first, signal.SIGKILL)
            first.wait()
        assert run_of(home, run_id).status == dg.DagsterRunStatus.STARTED, "the killed run looks alive"

        restarted = time.monotonic()
        with daemon(home.folder, home.env, home.workspace, log):
            wait_for(lambda: failed(home, run_id), DAEMON_START_ALLOWANCE_S + RUN_MONITORING_POLL_SECONDS,
                     "run monitoring to fail the killed run")
            detected = time.monotonic() - restarted
            retry = finished_retry(home, run_id)
    print(f"killed run failed {detected:.1f} s after the daemon was started again")
    assert_retried_whole_and_offloaded(home, retry)


def test_an_offload_run_whose_process_alone_was_killed_is_failed_within_one_poll_and_retried_whole(
        home: Home) -> None:
    """The OOM killer's case: the run's process alone is SIGKILLed; the daemon and the code server live on."""
    run_id = str(uuid.uuid4())
    with home.log.open("a") as log, daemon(home.folder, home.env, home.workspace, log):
        launch(home.folder, home.env, home.workspace, "offload_job", run_id, {**offload_job.run_tags, **HOUR.tags()})
        pid = wait_for(lambda: recorded_pid(home, run_id), RUN_S, "the offload run to start and record its process")
        os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        wait_for(lambda: failed(home, run_id), RUN_MONITORING_POLL_SECONDS + PASS_S,
                 "the killed run to be failed within one poll")
        detected = time.monotonic() - killed
        retry = finished_retry(home, run_id)
    print(f"killed run failed {detected:.1f} s after the kill")
    assert_retried_whole_and_offloaded(home, retry)


def finished_retry(home: Home, run_id: str) -> dg.DagsterRun:
    """The retry the daemon launched of failed run `run_id`, once finished (call while the daemon runs)."""
    retry = wait_for(lambda: retry_of(home, run_id), 60, "the retry of the failed run")
    wait_for(lambda: run_of(home, retry.run_id).is_finished, RUN_S, "the retry to finish")
    return run_of(home, retry.run_id)


def assert_retried_whole_and_offloaded(home: Home, retry: dg.DagsterRun) -> None:
    assert retry.status == dg.DagsterRunStatus.SUCCESS, f"the retry failed; see {home.log}"
    assert retry.tags.get("dagster/retry_strategy") == "ALL_STEPS", "the retry seals again before it offloads"
    cold, warm = cold_rows_of_the_hour(home)
    assert warm > 0
    assert cold == warm, "the hour is sealed and offloaded: cold holds each of its trades"


def test_a_foreground_run_killed_is_failed_by_the_running_daemon_within_one_poll(home: Home) -> None:
    """`dagster job execute` runs in the terminal's process; no launcher knows it. Kill that process."""
    run_id_tag = {"k2/test_run": str(uuid.uuid4()), **HOUR.tags()}
    with home.log.open("a") as log, daemon(home.folder, home.env, home.workspace, log):
        foreground = subprocess.Popen(
            [str(BIN / "dagster"), "job", "execute", "-m", "k2_lakehouse.definitions", "-j", "offload_job",
             "--tags", json.dumps(run_id_tag)], cwd=home.folder, env=home.env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def foreground_run() -> dg.DagsterRun | None:
            runs = home.instance.get_runs(filters=dg.RunsFilter(tags={"k2/test_run": run_id_tag["k2/test_run"]}))
            return runs[0] if runs and recorded_pid(home, runs[0].run_id) else None

        run = wait_for(foreground_run, RUN_S, "the foreground run to start and record its process")
        assert int(run.tags[PID_TAG]) == foreground.pid, "the run records the terminal's process"
        foreground.kill()
        killed = time.monotonic()
        foreground.wait()
        wait_for(lambda: failed(home, run.run_id), RUN_MONITORING_POLL_SECONDS + PASS_S,
                 "run monitoring to fail the killed foreground run within one poll")
        detected = time.monotonic() - killed
    print(f"killed foreground run failed {detected:.1f} s after the kill")
    assert "is gone" in " ".join(e.message for e in home.instance.all_logs(run.run_id) if e.message)
