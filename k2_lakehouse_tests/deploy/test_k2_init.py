"""`k2 init` prepares a home, says what it did, and is what `make ui` and every `k2` command ensure.

Each test runs the real commands in processes of their own on an empty home (the embedded store admits one
process, and this one keeps the session's store).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import dagster as dg

from k2_lakehouse.cold.catalog import catalog_at
from k2_lakehouse.cold.tables import COLD_TABLES
from k2_lakehouse.defs.run_worker import K2RunLauncher
from k2_lakehouse.instance import INSTANCE_CONFIG
from k2_lakehouse_tests.support.daemon import BIN, home_environment


def k2(folder: Path, *args: str) -> str:
    done = subprocess.run([str(BIN / "k2"), *args], cwd=folder, env=home_environment(folder), check=True,
                          capture_output=True, text=True)
    return done.stdout


def test_k2_init_prepares_the_instance_the_cold_tables_and_the_warm_schema_and_says_so(tmp_path: Path) -> None:
    said = k2(tmp_path, "init")
    home = tmp_path / "k2"
    assert f"{home / 'dagster' / 'dagster.yaml'}: written" in said
    assert f"{len(COLD_TABLES)} tables ({len(COLD_TABLES)} created, 0 already there)" in said
    assert "schema applied" in said
    assert (home / "dagster" / "dagster.yaml").read_text() == INSTANCE_CONFIG
    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
        assert isinstance(instance.run_launcher, K2RunLauncher)
        assert instance.run_monitoring_enabled and instance.run_retries_enabled
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 1
    catalog = catalog_at(f"sqlite:///{home / 'iceberg' / 'catalog.db'}", f"file://{home / 'iceberg' / 'warehouse'}")
    assert {name for (_, name) in catalog.list_tables("cold")} == set(COLD_TABLES)
    tables = k2(tmp_path, "sql", "SELECT count() FROM system.tables WHERE database = 'k2' AND name = 'silver_trades'")
    assert tables.splitlines()[2].strip() == "1"


def test_k2_init_again_changes_nothing_and_says_so(tmp_path: Path) -> None:
    k2(tmp_path, "init")
    config = tmp_path / "k2" / "dagster" / "dagster.yaml"
    written = config.stat().st_mtime_ns
    said = k2(tmp_path, "init")
    assert "k2's current configuration, unchanged" in said
    assert f"(0 created, {len(COLD_TABLES)} already there)" in said
    assert config.stat().st_mtime_ns == written


def test_make_ui_prepares_the_home_k2_init_prepares(tmp_path: Path) -> None:
    subprocess.run([str(BIN / "python"), "-m", "k2_lakehouse.instance"], cwd=tmp_path,
                   env=home_environment(tmp_path), check=True)
    said = k2(tmp_path, "init")
    assert "k2's current configuration, unchanged" in said
    assert f"(0 created, {len(COLD_TABLES)} already there)" in said


def test_any_k2_command_prepares_the_home(tmp_path: Path) -> None:
    k2(tmp_path, "sql", "SELECT 1")
    said = k2(tmp_path, "init")
    assert "k2's current configuration, unchanged" in said
    assert f"(0 created, {len(COLD_TABLES)} already there)" in said
