"""With K2_DAGSTER_POSTGRES_URL set, the home k2 prepares keeps Dagster's state in PostgreSQL.

`k2 init` writes the instance; the daemon runs on it as `make ui` runs it; what it stores is read back from
PostgreSQL's own tables (127.0.0.1:5432, a database of the test's own, dropped after it).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import psycopg2
import pytest
import yaml
from psycopg2 import sql

from k2_lakehouse.defs.cold.jobs import offload_job
from k2_lakehouse.hours import HourRange
from k2_lakehouse_tests.support.daemon import (
    daemon,
    home_environment,
    hour_files,
    ingest,
    launch,
    prepare_home_as_make_ui,
    wait_for,
)

HOUR = HourRange.of_hour(datetime(2025, 11, 10, 17, tzinfo=UTC))
RUN_S = 180


def administer(statement: sql.Composable, database: str = "postgres") -> list[tuple[object, ...]]:
    """One statement outside a transaction (CREATE/DROP DATABASE refuse to run inside one); its rows, if any."""
    try:
        connection = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname=database)
    except psycopg2.OperationalError as exc:
        pytest.fail(f"PostgreSQL at 127.0.0.1:5432 (user postgres) is needed for this test: {exc}")
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(statement)
            return cursor.fetchall() if cursor.description else []
    finally:
        connection.close()


@pytest.fixture
def database() -> Iterator[str]:
    name = f"k2_home_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    administer(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield name
    administer(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def test_runs_sensor_cursors_and_schedules_of_the_home_live_in_postgresql(
        tmp_path: Path, database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    env = {**home_environment(tmp_path),
           "K2_DAGSTER_POSTGRES_URL": f"postgresql+psycopg2://postgres@127.0.0.1:5432/{database}"}
    workspace = prepare_home_as_make_ui(tmp_path, env)
    config = Path(env["DAGSTER_HOME"]) / "dagster.yaml"
    assert yaml.safe_load(config.read_text())["storage"] == {
        "postgres": {"postgres_url": {"env": "K2_DAGSTER_POSTGRES_URL"}}}
    assert database not in config.read_text(), "the URL reaches Dagster through the environment only"
    ingest(tmp_path, env, hour_files(tmp_path, HOUR.start))

    def query(statement: str) -> list[tuple[object, ...]]:
        try:
            return administer(sql.SQL(statement), database)  # type: ignore[arg-type]  # fixed test text
        except psycopg2.errors.UndefinedTable:  # Dagster creates its schema when a process first opens the instance
            return []

    run_id = str(uuid.uuid4())
    with (tmp_path / "daemon.log").open("a") as log, daemon(tmp_path, env, workspace, log):
        wait_for(lambda: query("SELECT 1 FROM job_ticks WHERE selector_id IS NOT NULL AND tick_body LIKE "
                               "'%cold_staleness_sensor%'"), RUN_S, "the staleness sensor's first tick")
        launch(tmp_path, env, workspace, "offload_job", run_id, {**offload_job.run_tags, **HOUR.tags()})
        wait_for(lambda: query(f"SELECT 1 FROM runs WHERE run_id = '{run_id}' AND status IN ('SUCCESS', 'FAILURE')"),
                 RUN_S, "the offload run to finish")

    (status,) = query(f"SELECT status FROM runs WHERE run_id = '{run_id}'")[0]
    assert status == "SUCCESS", f"see {tmp_path / 'daemon.log'}"
    assert query(f"SELECT count(*) FROM event_logs WHERE run_id = '{run_id}'")[0][0] > 0  # type: ignore[operator]
    sensor = query("SELECT instigator_body FROM instigators WHERE instigator_body LIKE '%cold_staleness_sensor%'")
    assert sensor and '"cursor"' in str(sensor[0][0]) and '"cursor": null' not in str(sensor[0][0]), \
        "the sensor's cursor is stored"
    schedules = {row[0] for row in query("SELECT instigator_body FROM instigators WHERE instigator_type = 'SCHEDULE'")}
    assert any("offload_schedule" in str(body) for body in schedules), "the schedules' state is stored"
    monkeypatch.setenv("K2_DAGSTER_POSTGRES_URL", env["K2_DAGSTER_POSTGRES_URL"])
    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
