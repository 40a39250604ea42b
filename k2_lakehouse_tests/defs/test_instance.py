"""The Dagster instance k2 prepares queues runs one at a time: an embedded store admits one process."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import dagster as dg
import pytest

from k2_lakehouse.cli import ensure_dagster_instance
from k2_lakehouse.settings import load_settings


def test_the_prepared_instance_runs_one_run_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    home = ensure_dagster_instance(dataclasses.replace(load_settings(), home=tmp_path))
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 1
