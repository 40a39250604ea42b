"""Plain helpers for tests that run the Dagster definitions: the definitions, a job run, the cold catalog."""

from __future__ import annotations

import dagster as dg
from pyiceberg.catalog.sql import SqlCatalog

KRAKEN_RANGE = {"dagster/asset_partition_range_start": "2025-11-10-17:00",
                "dagster/asset_partition_range_end": "2025-11-11-00:00"}
"""The run tags of a ranged run over the hours of the real Kraken sample (`support.cold.KRAKEN_HOURS`)."""


def definitions() -> dg.Definitions:
    """The project's definitions for the environment now: resources hold the settings of their load, so a test's
    K2_HOME and catalog need definitions built after the test set them."""
    from k2_lakehouse.definitions import build_defs
    from k2_lakehouse.settings import load_settings

    return build_defs(load_settings())


def run_job(instance: dg.DagsterInstance, job: str, tags: dict[str, str] | None = None,
            run_config: dict | None = None) -> dg.ExecuteInProcessResult:
    """Run a job of the definitions in this process, as a launched run would; failures are returned."""
    return definitions().resolve_job_def(job).execute_in_process(instance=instance, tags=tags or {},
                                                                 run_config=run_config, raise_on_error=False)


def cold_catalog() -> SqlCatalog:
    """The cold catalog the environment configures (as the definitions' resources see it)."""
    from k2_lakehouse.cold.catalog import load_catalog

    return load_catalog()
