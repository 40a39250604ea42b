"""How K2RunLauncher judges a run's process (defs/run_worker.py), on real processes of this machine."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from k2_lakehouse.defs.run_worker import RunWorker, WorkerStatus, check_health, is_alive, run_worker, this_host
from k2_lakehouse_tests.support.daemon import wait_for


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    yield process
    process.kill()
    process.wait()


def test_a_recorded_process_that_runs_is_alive(sleeper: subprocess.Popen[bytes]) -> None:
    assert is_alive(run_worker(sleeper.pid))


def test_a_recorded_process_killed_is_dead_even_before_it_is_reaped(sleeper: subprocess.Popen[bytes]) -> None:
    worker = run_worker(sleeper.pid)
    os.kill(sleeper.pid, signal.SIGKILL)
    # Not waited for: a zombie keeps its pid until its parent reaps it, and is dead all the same.
    wait_for(lambda: Path(f"/proc/{sleeper.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z", 10,
             "the killed process to become a zombie", every=0.01)
    assert not is_alive(worker)


def test_a_pid_reused_by_a_later_process_is_not_the_recorded_one() -> None:
    earlier = RunWorker(host=this_host(), pid=os.getpid(), started=run_worker(os.getpid()).started + "0")
    assert not is_alive(earlier)


def health(tags: dict[str, str], grace_seconds: float = 180) -> WorkerStatus:
    with dg.DagsterInstance.ephemeral() as instance:
        run = instance.add_run(dg.DagsterRun(job_name="offload_job", run_id=str(uuid.uuid4()), tags=tags,
                                             status=dg.DagsterRunStatus.STARTED))
        return check_health(instance, run, grace_seconds).status


def test_a_run_whose_recorded_process_is_gone_is_failed(sleeper: subprocess.Popen[bytes]) -> None:
    tags = run_worker(sleeper.pid).tags()
    sleeper.kill()
    sleeper.wait()
    assert health(tags) == WorkerStatus.FAILED


def test_a_run_whose_recorded_process_runs_is_running(sleeper: subprocess.Popen[bytes]) -> None:
    assert health(run_worker(sleeper.pid).tags()) == WorkerStatus.RUNNING


def test_a_run_recorded_on_another_host_is_not_judged_from_here() -> None:
    assert health(RunWorker(host=f"not-{this_host()}", pid=1, started="").tags()) == WorkerStatus.RUNNING


def test_a_run_that_has_not_recorded_its_process_yet_is_given_time() -> None:
    assert health({}) == WorkerStatus.RUNNING


@dg.op
def nothing() -> None:
    """A step that sets up no k2 resource, so its run records no process."""


@dg.job
def records_nothing() -> None:
    nothing()


def test_a_run_that_never_recorded_its_process_is_failed_once_the_start_timeout_passed() -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        result = records_nothing.execute_in_process(instance=instance)
        run = instance.get_run_by_id(result.run_id)
        assert run is not None
        assert check_health(instance, run, grace_seconds=0).status == WorkerStatus.FAILED
        assert check_health(instance, run, grace_seconds=3600).status == WorkerStatus.RUNNING
