"""The containers' Dagster instance (docker/dagster/dagster.yaml) loads for real against PostgreSQL.

The file baked into the image is loaded unchanged by Dagster itself, with K2_DAGSTER_POSTGRES_URL pointing at
a database of its own on the machine's PostgreSQL (127.0.0.1:5432), so its storage classes, the run queue,
run monitoring and retries are what Dagster builds from it, not what the text says. The database is created
for the module and dropped after it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import psycopg2
import pytest
import yaml
from psycopg2 import sql

ROOT = Path(__file__).resolve().parents[2]
INSTANCE_DIR = ROOT / "docker" / "dagster"


def administer(statement: sql.Composable) -> None:
    """One statement outside a transaction (CREATE/DROP DATABASE refuse to run inside one)."""
    try:
        connection = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
    except psycopg2.OperationalError as exc:
        pytest.fail(f"PostgreSQL at 127.0.0.1:5432 (user postgres) is needed for this test: {exc}")
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(statement)
    finally:
        connection.close()


@pytest.fixture(scope="module")
def instance() -> Iterator[dg.DagsterInstance]:
    name = f"k2_deploy_instance_{os.getpid()}"
    administer(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    previous = os.environ.get("K2_DAGSTER_POSTGRES_URL")
    os.environ["K2_DAGSTER_POSTGRES_URL"] = f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
    try:
        loaded = dg.DagsterInstance.from_config(str(INSTANCE_DIR))
        yield loaded
        loaded.dispose()
    finally:
        if previous is None:
            os.environ.pop("K2_DAGSTER_POSTGRES_URL")
        else:
            os.environ["K2_DAGSTER_POSTGRES_URL"] = previous
        administer(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def test_runs_event_logs_and_schedules_are_stored_in_postgresql(instance: dg.DagsterInstance) -> None:
    storages = {type(instance.run_storage).__name__, type(instance.event_log_storage).__name__,
                type(instance.schedule_storage).__name__}
    assert storages == {"PostgresRunStorage", "PostgresEventLogStorage", "PostgresScheduleStorage"}
    assert instance.get_runs() == []  # the schema was created and answers


def test_runs_wait_in_a_queue_two_at_a_time(instance: dg.DagsterInstance) -> None:
    assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
    assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 2


def test_two_runs_never_work_on_one_tables_pool_at_once(instance: dg.DagsterInstance) -> None:
    assert instance.get_concurrency_config().pool_config.default_pool_limit == 1


def test_dead_runs_are_detected_by_run_monitoring(instance: dg.DagsterInstance) -> None:
    assert instance.run_monitoring_enabled
    assert instance.run_monitoring_settings["start_timeout_seconds"] == 180


def test_only_jobs_that_ask_are_retried(instance: dg.DagsterInstance) -> None:
    assert instance.run_retries_enabled
    assert instance.run_retries_max_retries == 0  # offload_job asks with its dagster/max_retries tag


def test_the_instance_file_holds_no_credentials() -> None:
    storage = yaml.safe_load((INSTANCE_DIR / "dagster.yaml").read_text())["storage"]
    assert storage == {"postgres": {"postgres_url": {"env": "K2_DAGSTER_POSTGRES_URL"}}}


def test_the_workspace_reaches_the_code_location_through_the_code_server() -> None:
    (location,) = yaml.safe_load((INSTANCE_DIR / "workspace.yaml").read_text())["load_from"]
    pyproject_location = "k2_lakehouse"  # [tool.dagster] code_location_name, and `--location-name` in entrypoint.sh
    assert location == {"grpc_server": {"host": "code-server", "port": 4000, "location_name": pyproject_location}}
    assert f"--location-name {pyproject_location}" in (ROOT / "docker" / "entrypoint.sh").read_text()
