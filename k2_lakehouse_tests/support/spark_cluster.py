"""A real Spark standalone cluster on loopback, started from pyspark's own package: one master, one worker.

pyspark's wheel ships Spark itself (`bin/spark-class` and the jars), so no download is needed: the master
(`org.apache.spark.deploy.master.Master`) and a worker (`...deploy.worker.Worker`) run as two JVMs bound to
127.0.0.1 on free ports, exactly as `docker/compose.yaml` runs them on their own hosts. `spark_cluster()`
returns once the worker has registered with the master (read from the master's web UI JSON, as an operator
would), and stops both JVMs when the block ends, whatever happened inside it.

Used by the deploy tests and by `benchmarks/spark_cluster.py`; plain functions, no pytest here.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

START_TIMEOUT_S = 120.0  # two JVM starts on a busy two-core machine


class SparkClusterError(RuntimeError):
    """The cluster did not come up; the message names the log that says why."""


@dataclass(frozen=True)
class SparkCluster:
    master_url: str  # spark://127.0.0.1:PORT, what K2_SPARK_MASTER is set to
    web_ui_url: str  # http://127.0.0.1:PORT, the master's web UI
    log_dir: Path

    def status(self) -> dict[str, object]:
        """The master's state as its web UI reports it (workers, active and completed applications)."""
        with urllib.request.urlopen(f"{self.web_ui_url}/json/", timeout=5) as response:
            return json.load(response)

    def applications(self) -> list[dict[str, object]]:
        status = self.status()
        return [*status.get("activeapps", []), *status.get("completedapps", [])]  # type: ignore[misc]


def spark_home() -> Path:
    spec = find_spec("pyspark")
    if spec is None or not spec.submodule_search_locations:
        raise SparkClusterError("pyspark is not installed: run `make venv`")
    return Path(spec.submodule_search_locations[0])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def cluster_environment(log_dir: Path) -> dict[str, str]:
    home = spark_home()
    return {
        **os.environ,
        "SPARK_HOME": str(home),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_LOG_DIR": str(log_dir),
        "SPARK_WORKER_DIR": str(log_dir / "work"),
        # The daemons themselves need little; executors get the worker's --memory.
        "SPARK_DAEMON_MEMORY": "512m",
        "SPARK_NO_DAEMONIZE": "1",
    }


@contextmanager
def _process(name: str, args: list[str], env: dict[str, str], log_dir: Path) -> Iterator[subprocess.Popen[bytes]]:
    log = (log_dir / f"{name}.log").open("wb")
    # A session of its own, so stopping it reaches the JVM that spark-class execs and nothing else.
    process = subprocess.Popen([str(spark_home() / "bin" / "spark-class"), *args], env=env, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=20)
        log.close()


def _wait_for_worker(cluster: SparkCluster, processes: dict[str, subprocess.Popen[bytes]], cores: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        for name, process in processes.items():
            if process.poll() is not None:
                raise SparkClusterError(
                    f"the Spark {name} exited with code {process.returncode}: see {cluster.log_dir / name}.log")
        try:
            workers = cluster.status().get("workers", [])
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            workers = []
        if any(w.get("state") == "ALIVE" and w.get("cores") == cores for w in workers):  # type: ignore[union-attr]
            return
        time.sleep(0.5)
    raise SparkClusterError(f"no worker registered with {cluster.master_url} within {START_TIMEOUT_S:.0f} s: "
                            f"see {cluster.log_dir}/master.log and worker.log")


@contextmanager
def spark_cluster(log_dir: Path, cores: int = 2, memory: str = "2g") -> Iterator[SparkCluster]:
    """A master and one worker (`cores`, `memory`) on 127.0.0.1, up until the block ends."""
    log_dir.mkdir(parents=True, exist_ok=True)
    env = cluster_environment(log_dir)
    port, ui_port, worker_ui_port = free_port(), free_port(), free_port()
    cluster = SparkCluster(f"spark://127.0.0.1:{port}", f"http://127.0.0.1:{ui_port}", log_dir)
    with ExitStack() as stack:
        master = stack.enter_context(_process("master", [
            "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
            "--webui-port", str(ui_port)], env, log_dir))
        worker = stack.enter_context(_process("worker", [
            "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1", "--cores", str(cores),
            "--memory", memory, "--webui-port", str(worker_ui_port), cluster.master_url], env, log_dir))
        _wait_for_worker(cluster, {"master": master, "worker": worker}, cores)
        yield cluster
