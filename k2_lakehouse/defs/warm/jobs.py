"""Jobs over the warm assets."""

import dagster as dg

warm_seal_job = dg.define_asset_job(
    "warm_seal_job", selection=dg.AssetSelection.groups("warm"),
    description="Seal hours of every warm layer: raw -> bronze -> silver -> gold.",
)

warm_jobs = [warm_seal_job]
