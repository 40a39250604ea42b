"""`k2 doctor`: the profile as configured, each part tried for real, what to fix, and never a secret."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from k2_lakehouse.doctor import scrub
from k2_lakehouse_tests.support.postgres import fresh_database

K2 = str(Path(sys.executable).with_name("k2"))
PARTS = ("warm store", "Iceberg catalog", "warehouse", "Dagster instance", "Spark master")


def _closed_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nothing listens on it once the socket is closed


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A fresh K2_HOME with every K2_* variable but it unset, prepared as `make ui` prepares it."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("K2_", "DAGSTER_", "AWS_"))}
    environment = {**clean, "K2_HOME": str(tmp_path / "home")}
    subprocess.run([sys.executable, "-m", "k2_lakehouse.instance"], env=environment, check=True, timeout=120)
    return environment


def doctor(env: dict[str, str]) -> tuple[int, dict[str, str], str]:
    """Exit code, each part's status cell, and the whole output of `k2 doctor`."""
    done = subprocess.run([K2, "doctor"], env=env, capture_output=True, text=True, timeout=180)
    rows = [line.split(" | ") for line in done.stdout.splitlines() if line.split(" | ")[0].strip() in PARTS]
    return done.returncode, {row[0].strip(): row[2].strip() for row in rows}, done.stdout + done.stderr


def test_a_prepared_embedded_profile_is_ok_in_every_part(env: dict[str, str]) -> None:
    code, status, output = doctor(env)
    assert status == dict.fromkeys(PARTS, "ok"), output
    assert code == 0
    assert f"embedded ClickHouse (chdb) at {env['K2_HOME']}/clickhouse" in output


def test_the_catalog_on_postgresql_is_checked_with_a_round_trip(env: dict[str, str]) -> None:
    with fresh_database() as uri:
        code, status, output = doctor({**env, "K2_ICEBERG_CATALOG_URI": uri})
    assert status["Iceberg catalog"] == "ok" and code == 0, output
    assert "SQL catalog at postgresql+psycopg2://postgres@127.0.0.1:5432/" in output


def test_unreachable_servers_are_named_with_their_fix_without_a_password_and_exit_1(env: dict[str, str]) -> None:
    spark_port, catalog_port = _closed_loopback_port(), _closed_loopback_port()
    broken = {**env, "K2_SPARK_MASTER": f"spark://127.0.0.1:{spark_port}",
              "K2_ICEBERG_CATALOG_URI": f"postgresql+psycopg2://k2:doctor-pa55@127.0.0.1:{catalog_port}/k2"}
    code, status, output = doctor(broken)
    assert code == 1
    assert (status["warm store"], status["warehouse"], status["Dagster instance"]) == ("ok", "ok", "ok"), output
    assert status["Iceberg catalog"].startswith(
        f"FAILED: cannot reach the Iceberg catalog at postgresql+psycopg2://k2:***@127.0.0.1:{catalog_port}/k2")
    assert status["Spark master"] == f"FAILED: cannot reach the master at 127.0.0.1:{spark_port}: Connection refused"
    for part in ("Iceberg catalog", "Spark master"):
        assert f"fix the {part}: " in output
    assert "doctor-pa55" not in output


def test_a_warehouse_that_cannot_be_written_is_named_with_the_reason(env: dict[str, str], tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("a file where the warehouse's folder should be")
    code, status, output = doctor({**env, "K2_ICEBERG_WAREHOUSE": f"file://{blocker}/warehouse"})
    assert code == 1
    assert status["warehouse"] == (f"FAILED: K2_ICEBERG_WAREHOUSE=file://{blocker}/warehouse: cannot create the "
                                   f"folder {blocker}/warehouse: Not a directory")
    assert "fix the warehouse: " in output


def test_an_unprepared_dagster_home_is_reported_with_how_to_prepare_it(env: dict[str, str]) -> None:
    Path(env["K2_HOME"], "dagster", "dagster.yaml").unlink()
    code, status, output = doctor(env)
    assert code == 1
    assert status["Dagster instance"].startswith("FAILED: ") and "dagster.yaml does not exist" in status["Dagster instance"]
    assert "fix the Dagster instance: run `k2 init`" in output


def test_scrub_keeps_the_first_line_and_removes_every_secret() -> None:
    text = "login failed for k2:hunter22@db\nTraceback (most recent call last): hunter22"
    assert scrub(text, ["hunter22"]) == "login failed for k2:***@db"
