"""The run executor: chosen from configuration (K2_CLICKHOUSE_URL, K2_RUN_EXECUTOR), never by editing code.

How a run's steps may execute depends on where the warm store lives:

* embedded ClickHouse (``chdb://``, the default) admits one process per store, so every step of a run executes
  in the run's own process: ``in_process``, the only choice there;
* a ClickHouse server (``http(s)://``) is reached by any number of processes, so steps run as subprocesses of
  the run worker (``multiprocess``, the default there) or, on Kubernetes, each in its own pod
  (``k8s``: dagster-k8s's ``k8s_job_executor``).

``K2_RUN_EXECUTOR`` picks one of the three explicitly; a choice that cannot work with the configured store is
refused when the definitions load, with the variable, the cause and the fix, rather than failing inside a run.

Each step pod of the ``k8s`` executor asks for the resources of ``K2_K8S_STEP_{CPU,MEMORY}_{REQUEST,LIMIT}``.
The defaults follow the plan's budgets: a step is one Iceberg-side process (the plan gave the Iceberg side
1.5 CPU / 2 GB), and it requests a third of that CPU and half that memory so a node packs several.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import dagster as dg

from k2_lakehouse.settings import ConfigurationError, Settings, load_settings
from k2_lakehouse.warm.client import is_embedded

RUN_EXECUTOR_VARIABLE = "K2_RUN_EXECUTOR"
IN_PROCESS, MULTIPROCESS, K8S = "in_process", "multiprocess", "k8s"
RUN_EXECUTORS = (IN_PROCESS, MULTIPROCESS, K8S)

# A Kubernetes resource quantity ("500m", "2", "1.5", "512Mi", "2G", "1e3"), as the API server parses it.
QUANTITY = re.compile(r"^(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+|m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")


@dataclass(frozen=True)
class StepResources:
    """Kubernetes requests and limits for the container of each step pod."""

    cpu_request: str = "500m"
    memory_request: str = "1Gi"
    cpu_limit: str = "1500m"
    memory_limit: str = "2Gi"

    def as_k8s(self) -> dict[str, dict[str, str]]:
        return {
            "requests": {"cpu": self.cpu_request, "memory": self.memory_request},
            "limits": {"cpu": self.cpu_limit, "memory": self.memory_limit},
        }


STEP_RESOURCE_VARIABLES = {
    "cpu_request": "K2_K8S_STEP_CPU_REQUEST",
    "memory_request": "K2_K8S_STEP_MEMORY_REQUEST",
    "cpu_limit": "K2_K8S_STEP_CPU_LIMIT",
    "memory_limit": "K2_K8S_STEP_MEMORY_LIMIT",
}


def step_resources_from_env() -> StepResources:
    """StepResources from K2_K8S_STEP_*, each checked to be a Kubernetes quantity."""
    defaults = StepResources()
    values: dict[str, str] = {}
    for field, variable in STEP_RESOURCE_VARIABLES.items():
        value = os.environ.get(variable, "").strip() or getattr(defaults, field)
        if not QUANTITY.match(value):
            raise ConfigurationError(
                f"{variable}={value!r} is not a Kubernetes resource quantity: write CPU as cores or millicores "
                f"('1', '500m') and memory with a unit ('512Mi', '2Gi'), or unset it for {getattr(defaults, field)!r}"
            )
        values[field] = value
    return StepResources(**values)


def k8s_executor_config(resources: StepResources) -> dict[str, object]:
    """The k8s_job_executor's configuration: every step's container gets `resources`.

    The image, namespace, service account and instance come from the K8sRunLauncher that launched the run
    (docker/k8s/values.yaml), so only what differs per step is set here.
    """
    return {"step_k8s_config": {"container_config": {"resources": resources.as_k8s()}}}


def run_executor_name(clickhouse_url: str, requested: str) -> str:
    """The executor for a warm store at `clickhouse_url`, given K2_RUN_EXECUTOR=`requested` ('' when unset)."""
    embedded = is_embedded(clickhouse_url)
    choice = requested.strip().lower()
    if not choice:
        return IN_PROCESS if embedded else MULTIPROCESS
    if choice not in RUN_EXECUTORS:
        raise ConfigurationError(
            f"{RUN_EXECUTOR_VARIABLE}={requested!r} is not one of {', '.join(RUN_EXECUTORS)}; unset it for the default "
            f"({IN_PROCESS} with embedded ClickHouse, {MULTIPROCESS} with a ClickHouse server)"
        )
    if embedded and choice != IN_PROCESS:
        raise ConfigurationError(
            f"{RUN_EXECUTOR_VARIABLE}={choice} needs a ClickHouse server, but K2_CLICKHOUSE_URL is embedded (chdb://): "
            f"an embedded store admits one process, so every step must run in the run's process. Set "
            f"K2_CLICKHOUSE_URL to http(s)://user:password@host:port, or {RUN_EXECUTOR_VARIABLE}={IN_PROCESS} (or unset it)"
        )
    return choice


def executor_from_env(settings: Settings | None = None) -> dg.ExecutorDefinition:
    """The executor K2_CLICKHOUSE_URL (from `settings`, or the environment's) and K2_RUN_EXECUTOR call for."""
    url = (settings or load_settings()).clickhouse_url
    name = run_executor_name(url, os.environ.get(RUN_EXECUTOR_VARIABLE, ""))
    if name == IN_PROCESS:
        return dg.in_process_executor
    if name == MULTIPROCESS:
        return dg.multiprocess_executor
    # dagster_k8s imports the Kubernetes client; only a k8s deployment pays for it.
    from dagster_k8s import k8s_job_executor

    return k8s_job_executor.configured(k8s_executor_config(step_resources_from_env()))
