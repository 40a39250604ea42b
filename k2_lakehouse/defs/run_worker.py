"""Which process runs a run, and whether it is still alive: what lets Dagster's run monitoring heal k2's runs.

Dagster's run monitoring (the daemon's `run_monitoring`) fails a STARTED run whose worker is gone only when the
instance's run launcher can check a worker's health, and Dagster's DefaultRunLauncher cannot. Its code server
notices a run process of its own that died while the server lives; nothing notices a run whose code server died
with it (`make ui` or the machine killed mid-run), nor a run executed in the foreground (`dagster asset
materialize`, `dagster job execute`), which no launcher launched at all. Such a run stays STARTED forever, and with
runs queued one at a time it blocks every later run.

So every run records its own process when it starts: the warm and cold resources call `record_run_worker` when
they are set up, which happens in the process that executes the run's steps before the first step, for launched
and foreground runs alike. The record is three run tags: the host, the pid, and the process's start (the boot's
id and the kernel's start time of the pid), so a pid reused by a later process is not mistaken for the run's.
`K2RunLauncher`, Dagster's DefaultRunLauncher with `check_run_worker_health`, reads them: a run recorded on this
host whose process is gone (or a zombie) is FAILED, and run monitoring marks it failed; run retries then launch
it again if its job asks (offload_job does). A run recorded on another host is not judged from here (reported
RUNNING, with the reason). A run that recorded nothing is given the instance's start timeout from its start to
do so (every k2 job sets up the warm or cold resource before its first step), then is FAILED too.

Which process executes the run is what its executor announced in the event log: the resource's own process (the
in-process executor, the only one with embedded ClickHouse, and every `execute_in_process`), or, with the
multiprocess executor, the parent of the step subprocess setting the resource up, which outlives the steps. A step
pod of Kubernetes' executor is neither, so it records nothing (and K8sRunLauncher, which checks its own pods, does
not read these tags).
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

# Dagster exports the launcher base classes but not the types of a health check's answer; K8sRunLauncher takes them
# from here too. This module alone uses them.
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus

if TYPE_CHECKING:
    from dagster import DagsterInstance

HOST_TAG = "k2/run_worker_host"
PID_TAG = "k2/run_worker_pid"
STARTED_TAG = "k2/run_worker_started"
PROC = Path("/proc")


@dataclass(frozen=True)
class RunWorker:
    """One process on one host, as the run's tags record it."""

    host: str
    pid: int
    started: str  # "<boot id>:<start time in clock ticks since boot>"; "" where /proc cannot tell

    def tags(self) -> dict[str, str]:
        return {HOST_TAG: self.host, PID_TAG: str(self.pid), STARTED_TAG: self.started}

    @classmethod
    def from_tags(cls, tags: dict[str, str]) -> RunWorker | None:
        if not (tags.get(HOST_TAG) and tags.get(PID_TAG, "").isdigit()):
            return None
        return cls(host=tags[HOST_TAG], pid=int(tags[PID_TAG]), started=tags.get(STARTED_TAG, ""))

    def __str__(self) -> str:
        return f"process {self.pid} on {self.host}"


def _process_stat(pid: int) -> tuple[str, str] | None:
    """(state, start time in clock ticks since boot) of `pid` from /proc; None if there is no such process."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except FileNotFoundError:
        return None
    except OSError:
        return ("?", "")
    # The command name (field 2) is in parentheses and may hold spaces: the fields after it are split safely.
    fields = stat[stat.rindex(")") + 2:].split()
    return fields[0], fields[19]  # fields 3 (state) and 22 (starttime) of proc(5)


def _boot_id() -> str:
    try:
        return (PROC / "sys" / "kernel" / "random" / "boot_id").read_text().strip()
    except OSError:
        return ""


def process_started(pid: int) -> str:
    """When `pid` started, as STARTED_TAG holds it ("" where /proc cannot tell, or if there is no such process)."""
    stat = _process_stat(pid)
    return f"{_boot_id()}:{stat[1]}" if stat and stat[1] else ""


def this_host() -> str:
    return socket.gethostname()


def run_worker(pid: int) -> RunWorker:
    """`pid` of this host, as a run's tags record it."""
    return RunWorker(host=this_host(), pid=pid, started=process_started(pid))


def is_alive(worker: RunWorker) -> bool:
    """Whether `worker` (a process of this host) still runs: it exists, is not a zombie, and started when recorded."""
    stat = _process_stat(worker.pid)
    if stat is None:
        if PROC.is_dir():
            return False
        try:  # no /proc here: only whether the pid exists can be told
            os.kill(worker.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    state, _ = stat
    if state in ("Z", "X"):  # killed, and its parent has not reaped it yet
        return False
    return not worker.started or process_started(worker.pid) == worker.started


def orchestrating_pid(instance: DagsterInstance, run_id: str) -> int | None:
    """The pid of the process executing run `run_id`'s plan, as the run's executor announced it.

    Dagster's in-process and multiprocess executors each log, from that process and before any step, an engine
    event with its pid (as does the code server's run process, when it starts); steps' own events name a step.
    """
    for record in reversed(instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)):
        event = record.dagster_event
        if event is None or event.step_key is not None:
            continue
        pid = event.engine_event_data.metadata.get("pid")
        if pid is not None and str(pid.value).isdigit():
            return int(str(pid.value))
    return None


def record_run_worker(instance: DagsterInstance, run_id: str) -> None:
    """Tag run `run_id` with the process that executes it: this one, or, in a step subprocess, its parent.

    Nothing is recorded by a process that is neither (a step pod of Kubernetes' executor).
    """
    pid = orchestrating_pid(instance, run_id) or os.getpid()
    if pid not in (os.getpid(), os.getppid()):
        return
    worker = run_worker(pid)
    run = instance.get_run_by_id(run_id)
    if run is None or RunWorker.from_tags(dict(run.tags)) == worker:
        return
    instance.add_run_tags(run_id, worker.tags())


def check_health(instance: DagsterInstance, run: dg.DagsterRun, grace_seconds: float) -> CheckRunHealthResult:
    """The health of `run`'s worker, from the tags its process wrote when it started."""
    worker = RunWorker.from_tags(dict(run.tags))
    if worker is None:
        record = instance.get_run_record_by_id(run.run_id)
        started = record.start_time if record else None
        if started is None or time.time() - started < grace_seconds:
            return CheckRunHealthResult(WorkerStatus.RUNNING, "the run's process has not recorded itself yet")
        return CheckRunHealthResult(
            WorkerStatus.FAILED, f"the run's process never recorded itself (tag {PID_TAG}) in the {grace_seconds:.0f} s "
                                 "after it started: it died before setting up its resources")
    if worker.host != this_host():
        return CheckRunHealthResult(WorkerStatus.RUNNING, f"the run's {worker} cannot be checked from {this_host()}")
    if is_alive(worker):
        return CheckRunHealthResult(WorkerStatus.RUNNING, f"the run's {worker} is alive")
    return CheckRunHealthResult(WorkerStatus.FAILED, f"the run's {worker} is gone (killed, or its machine restarted)")


class K2RunLauncher(dg.DefaultRunLauncher):
    """Dagster's DefaultRunLauncher (runs are subprocesses of the code server), which can also tell run monitoring
    whether a run's process is alive (see the module's docstring)."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: dg.DagsterRun) -> CheckRunHealthResult:
        instance = self._instance
        return check_health(instance, run, grace_seconds=float(instance.run_monitoring_start_timeout_seconds))
