"""The code location: assembles Definitions from k2_lakehouse/defs."""

from __future__ import annotations

import dagster as dg

from k2_lakehouse.defs.resources import warm_store_from_env
from k2_lakehouse.defs.warm.assets import warm_assets

warm_seal_job = dg.define_asset_job(
    "warm_seal_job", selection=dg.AssetSelection.groups("warm"),
    description="Seal hours of every warm layer: raw -> bronze -> silver -> gold.",
)

defs = dg.Definitions(
    assets=[*warm_assets],
    jobs=[warm_seal_job],
    resources={"warm": warm_store_from_env()},
    # Embedded ClickHouse is one process per store: every step of a run executes in the run's process.
    executor=dg.in_process_executor,
)
