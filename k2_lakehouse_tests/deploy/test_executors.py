"""The run executor follows configuration: the real code location is loaded under each setting.

Each case executes `k2_lakehouse/definitions.py` afresh (runpy, so the module the rest of the suite imported
stays as it was) with one environment, as a code server would load it, and reads back the executor of every
job and the executor configuration Dagster resolves for a run. So the wiring in definitions.py is tested, not
only the function that chooses; `validate_run_config` runs the k8s configuration through dagster-k8s's own
executor schema.
"""

from __future__ import annotations

import runpy
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pytest

from k2_lakehouse.settings import ConfigurationError

JOBS = ["offload_job", "warm_seal_job", "compaction_job", "snapshot_expiry_job", "audit_job"]
SERVER = "http://k2:secret@clickhouse.example:8123"
VARIABLES = ("K2_CLICKHOUSE_URL", "K2_ICEBERG_WAREHOUSE", "K2_RUN_EXECUTOR", "K2_K8S_STEP_CPU_REQUEST",
             "K2_K8S_STEP_MEMORY_REQUEST", "K2_K8S_STEP_CPU_LIMIT", "K2_K8S_STEP_MEMORY_LIMIT")


Loader = Callable[..., dg.Definitions]


@pytest.fixture
def load_definitions(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Loader:
    """Execute the code location's module with exactly the given executor-related variables set."""

    def load(**env: str) -> dg.Definitions:
        monkeypatch.setenv("K2_HOME", str(tmp_path))
        for name in VARIABLES:
            monkeypatch.delenv(name, raising=False)
        if env.get("K2_CLICKHOUSE_URL", "chdb://").startswith("http"):
            # A server writes the cold tier's files itself, so its warehouse is object storage (settings refuse
            # a local one); nothing here reaches it.
            monkeypatch.setenv("K2_ICEBERG_WAREHOUSE", "s3://k2-lakehouse/warehouse")
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return runpy.run_module("k2_lakehouse.definitions", run_name="k2_definitions_under_test")["defs"]

    return load


def executors(defs: dg.Definitions) -> dict[str, str]:
    return {name: defs.resolve_job_def(name).executor_def.name for name in JOBS}


def execution(defs: dg.Definitions) -> dict[str, object]:
    return dg.validate_run_config(defs.resolve_job_def("offload_job"), {})["execution"]


def test_embedded_clickhouse_by_default_runs_every_job_in_process(load_definitions: Loader) -> None:
    assert executors(load_definitions()) == dict.fromkeys(JOBS, "in_process")


def test_an_explicit_chdb_url_runs_every_job_in_process(load_definitions: Loader, tmp_path: Path) -> None:
    defs = load_definitions(K2_CLICKHOUSE_URL=f"chdb://{tmp_path}/clickhouse")
    assert executors(defs) == dict.fromkeys(JOBS, "in_process")


def test_a_clickhouse_server_runs_steps_in_subprocesses(load_definitions: Loader) -> None:
    defs = load_definitions(K2_CLICKHOUSE_URL=SERVER)
    assert executors(defs) == dict.fromkeys(JOBS, "multiprocess")
    assert "multiprocess" in execution(defs)


def test_a_clickhouse_server_may_keep_the_in_process_executor(load_definitions: Loader) -> None:
    defs = load_definitions(K2_CLICKHOUSE_URL=SERVER, K2_RUN_EXECUTOR="in_process")
    assert executors(defs) == dict.fromkeys(JOBS, "in_process")


def test_k8s_runs_each_step_in_a_pod_with_the_default_requests_and_limits(load_definitions: Loader) -> None:
    defs = load_definitions(K2_CLICKHOUSE_URL=SERVER, K2_RUN_EXECUTOR="k8s")

    assert executors(defs) == dict.fromkeys(JOBS, "k8s")
    container = execution(defs)["k8s"]["step_k8s_config"]["container_config"]  # type: ignore[index]
    assert container["resources"] == {
        "requests": {"cpu": "500m", "memory": "1Gi"},
        "limits": {"cpu": "1500m", "memory": "2Gi"},
    }


def test_k8s_step_resources_come_from_the_environment(load_definitions: Loader) -> None:
    defs = load_definitions(
        K2_CLICKHOUSE_URL=SERVER, K2_RUN_EXECUTOR="K8S",
        K2_K8S_STEP_CPU_REQUEST="250m", K2_K8S_STEP_MEMORY_REQUEST="512Mi",
        K2_K8S_STEP_CPU_LIMIT="2", K2_K8S_STEP_MEMORY_LIMIT="3Gi",
    )

    container = execution(defs)["k8s"]["step_k8s_config"]["container_config"]  # type: ignore[index]
    assert container["resources"] == {
        "requests": {"cpu": "250m", "memory": "512Mi"},
        "limits": {"cpu": "2", "memory": "3Gi"},
    }


@pytest.mark.parametrize("executor", ["multiprocess", "k8s"])
def test_executors_that_need_several_processes_are_refused_with_embedded_clickhouse(
    load_definitions: Loader, executor: str
) -> None:
    with pytest.raises(ConfigurationError, match=f"K2_RUN_EXECUTOR={executor} needs a ClickHouse server") as failure:
        load_definitions(K2_RUN_EXECUTOR=executor)
    assert "K2_CLICKHOUSE_URL" in str(failure.value)


def test_an_unknown_executor_is_refused_naming_the_variable_and_the_choices(load_definitions: Loader) -> None:
    with pytest.raises(ConfigurationError, match=r"K2_RUN_EXECUTOR='celery' is not one of in_process, multiprocess, k8s"):
        load_definitions(K2_CLICKHOUSE_URL=SERVER, K2_RUN_EXECUTOR="celery")


def test_the_refusal_never_shows_the_server_password(load_definitions: Loader) -> None:
    with pytest.raises(ConfigurationError) as failure:
        load_definitions(K2_CLICKHOUSE_URL=SERVER, K2_RUN_EXECUTOR="celery")
    assert "secret" not in str(failure.value)


@pytest.mark.parametrize("value", ["lots", "2 Gi", "1.5GB", "-1"])
def test_a_step_resource_that_is_not_a_kubernetes_quantity_is_refused(load_definitions: Loader, value: str) -> None:
    with pytest.raises(ConfigurationError, match=r"K2_K8S_STEP_MEMORY_LIMIT=.* is not a Kubernetes resource quantity"):
        load_definitions(K2_CLICKHOUSE_URL=SERVER, K2_RUN_EXECUTOR="k8s", K2_K8S_STEP_MEMORY_LIMIT=value)
