"""The Dagster instance k2 prepares: runs queue one at a time (an embedded store admits one process), a run whose
process died is failed by run monitoring, and a failed offload run is launched again by the daemon."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import dagster as dg
import pytest
import yaml

from k2_lakehouse.defs.run_worker import HOST_TAG, PID_TAG, STARTED_TAG, K2RunLauncher, process_started, this_host
from k2_lakehouse.instance import INSTANCE_CONFIG, RUN_MONITORING_POLL_SECONDS, ensure_dagster_instance
from k2_lakehouse.settings import load_settings

RETRIES_ONLY_CONFIG = (  # what k2 wrote before run monitoring
    "# Written by k2: embedded ClickHouse admits one process, so runs queue one at a time. Runs tagged\n"
    "# dagster/max_retries (the offload job's) are launched again by the daemon when they fail.\n"
    "concurrency:\n  runs:\n    max_concurrent_runs: 1\nrun_retries:\n  enabled: true\ntelemetry:\n  enabled: false\n")
MONITORING_CONFIG = (  # what k2 wrote before the table pools
    "# Written by k2: embedded ClickHouse admits one process, so runs queue one at a time. Runs tagged\n"
    "# dagster/max_retries (the offload job's) are launched again by the daemon when they fail.\n"
    "concurrency:\n  runs:\n    max_concurrent_runs: 1\nrun_retries:\n  enabled: true\n"
    "# A run whose process died (killed, or the machine or `make ui` with it) is marked failed by the daemon's run\n"
    "# monitoring, which asks K2RunLauncher whether the process each run recorded when it started is alive.\n"
    "run_launcher:\n  module: k2_lakehouse.defs.run_worker\n  class: K2RunLauncher\n"
    "run_monitoring:\n  enabled: true\n  poll_interval_seconds: 10\n  start_timeout_seconds: 180\n"
    "  cancel_timeout_seconds: 180\n  max_resume_run_attempts: 0\ntelemetry:\n  enabled: false\n")
SESSION_5_CONFIG = ("# Written by k2: embedded ClickHouse admits one process, so runs queue one at a time.\n"
                    "concurrency:\n  runs:\n    max_concurrent_runs: 1\ntelemetry:\n  enabled: false\n")


@pytest.fixture
def prepared_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    monkeypatch.delenv("K2_DAGSTER_POSTGRES_URL", raising=False)  # the instance's storage: SQLite files in the home
    return ensure_dagster_instance(dataclasses.replace(load_settings(), home=tmp_path))


def test_the_prepared_instance_runs_one_run_at_a_time(prepared_home: Path) -> None:
    with dg.DagsterInstance.from_config(str(prepared_home)) as instance:
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 1


def test_the_embedded_instance_runs_one_step_per_table_pool_at_a_time(prepared_home: Path) -> None:
    with dg.DagsterInstance.from_config(str(prepared_home)) as instance:
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1


def test_a_server_profile_runs_side_by_side_with_one_step_per_table_pool(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    monkeypatch.delenv("K2_DAGSTER_POSTGRES_URL", raising=False)
    server = dataclasses.replace(load_settings(), home=tmp_path, clickhouse_url="https://k2:pw@clickhouse.internal:8443",
                                 iceberg_warehouse="s3://k2-lakehouse/warehouse")
    home = ensure_dagster_instance(server)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        concurrency = instance.get_concurrency_config()
        assert concurrency.run_queue_config.max_concurrent_runs == 4
        assert concurrency.pool_config.default_pool_limit == 1
        assert isinstance(instance.run_launcher, K2RunLauncher) and instance.run_retries_enabled
    assert "pw" not in (home / "dagster.yaml").read_text()


def test_k2s_own_file_follows_the_profile_when_it_changes(prepared_home: Path, tmp_path: Path) -> None:
    server = dataclasses.replace(load_settings(), home=tmp_path, clickhouse_url="http://clickhouse.internal:8123",
                                 iceberg_warehouse="s3://k2-lakehouse/warehouse")
    ensure_dagster_instance(server)
    with dg.DagsterInstance.from_config(str(prepared_home)) as instance:
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 4
    ensure_dagster_instance(dataclasses.replace(load_settings(), home=tmp_path))
    assert (prepared_home / "dagster.yaml").read_text() == INSTANCE_CONFIG


def test_the_prepared_instance_retries_runs_that_ask_for_it(prepared_home: Path) -> None:
    with dg.DagsterInstance.from_config(str(prepared_home)) as instance:
        assert instance.run_retries_enabled
        assert instance.run_retries_max_retries == 0, "only runs tagged dagster/max_retries are retried"


def test_the_prepared_instance_fails_runs_whose_process_died(prepared_home: Path) -> None:
    with dg.DagsterInstance.from_config(str(prepared_home)) as instance:
        assert isinstance(instance.run_launcher, K2RunLauncher)
        assert instance.run_launcher.supports_check_run_worker_health, "run monitoring asks the launcher"
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_poll_interval_seconds == RUN_MONITORING_POLL_SECONDS
        assert instance.run_monitoring_max_resume_run_attempts == 0, "a dead run is failed, then retried whole"


@pytest.mark.parametrize("earlier", [SESSION_5_CONFIG, RETRIES_ONLY_CONFIG, MONITORING_CONFIG],
                         ids=["queue only", "with retries", "with run monitoring"])
def test_an_instance_file_k2_wrote_earlier_is_brought_up_to_date(prepared_home: Path, tmp_path: Path,
                                                                 earlier: str) -> None:
    (prepared_home / "dagster.yaml").write_text(earlier)
    ensure_dagster_instance(dataclasses.replace(load_settings(), home=tmp_path))
    assert (prepared_home / "dagster.yaml").read_text() == INSTANCE_CONFIG


def test_an_instance_file_someone_else_wrote_is_left_alone(prepared_home: Path, tmp_path: Path) -> None:
    own = "run_retries:\n  enabled: false\n"
    (prepared_home / "dagster.yaml").write_text(own)
    ensure_dagster_instance(dataclasses.replace(load_settings(), home=tmp_path))
    assert (prepared_home / "dagster.yaml").read_text() == own


def test_an_instance_file_k2_wrote_and_an_operator_edited_is_left_alone(
        prepared_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    edited = SESSION_5_CONFIG + "storage:\n  postgres:\n    postgres_url:\n      env: DAGSTER_PG_URL\n"
    (prepared_home / "dagster.yaml").write_text(edited)
    ensure_dagster_instance(dataclasses.replace(load_settings(), home=tmp_path))
    assert (prepared_home / "dagster.yaml").read_text() == edited
    warnings = capsys.readouterr().err
    assert "does not enable run_retries" in warnings
    assert "does not enable run_monitoring" in warnings


def test_a_failed_offload_run_is_marked_for_the_daemon_to_launch_again(
        prepared_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from k2_lakehouse.definitions import build_defs

    monkeypatch.setenv("K2_CLICKHOUSE_URL", "http://127.0.0.1:9")  # nothing listens: the run fails
    monkeypatch.setenv("K2_ICEBERG_WAREHOUSE", "s3://k2-lakehouse/warehouse")  # a server's warehouse
    with dg.DagsterInstance.from_config(str(prepared_home)) as instance:
        result = build_defs(load_settings()).resolve_job_def("offload_job").execute_in_process(
            instance=instance, partition_key="2025-11-10-17:00", raise_on_error=False)
        assert not result.success
        run = instance.get_run_by_id(result.run_id)
        assert run is not None
        assert run.tags["dagster/will_retry"] == "true"
        assert run.tags["dagster/max_retries"] == "2"
        assert run.tags["dagster/retry_strategy"] == "ALL_STEPS", "a retry seals again before it offloads"


def test_a_run_records_the_process_that_runs_it(prepared_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from k2_lakehouse.definitions import build_defs

    monkeypatch.setenv("K2_CLICKHOUSE_URL", "http://127.0.0.1:9")  # the resources are set up before the run fails
    monkeypatch.setenv("K2_ICEBERG_WAREHOUSE", "s3://k2-lakehouse/warehouse")  # a server's warehouse
    with dg.DagsterInstance.from_config(str(prepared_home)) as instance:
        result = build_defs(load_settings()).resolve_job_def("offload_job").execute_in_process(
            instance=instance, partition_key="2025-11-10-17:00", raise_on_error=False)
        run = instance.get_run_by_id(result.run_id)
        assert run is not None
        assert (run.tags[HOST_TAG], run.tags[PID_TAG]) == (this_host(), str(os.getpid()))
        assert run.tags[STARTED_TAG] == process_started(os.getpid())


def test_with_a_postgres_url_the_instance_file_stores_in_postgresql_naming_the_variable_never_the_url(
        prepared_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("K2_DAGSTER_POSTGRES_URL", "postgresql+psycopg2://k2:s3cret@db.example:5432/dagster")
    ensure_dagster_instance(dataclasses.replace(load_settings(), home=tmp_path))  # k2's own file: brought up to date
    text = (prepared_home / "dagster.yaml").read_text()
    assert yaml.safe_load(text)["storage"] == {"postgres": {"postgres_url": {"env": "K2_DAGSTER_POSTGRES_URL"}}}
    assert "s3cret" not in text and "db.example" not in text
