"""The offload job: seal hours in warm and copy them to Iceberg, in one run."""

import dagster as dg

# A failed offload is launched again by the daemon (run_retries in the instance k2 prepares): the schedule's run
# key and the staleness sensor's cursor have moved on, so nothing else would. The whole run again, seal included
# (it is idempotent), so the offload reads warm as sealed in its own run, which the staleness sensor assumes.
OFFLOAD_RETRIES = 2

offload_job = dg.define_asset_job(
    "offload_job", selection=dg.AssetSelection.groups("warm", "cold"),
    description="Seal hours in warm, then offload them to Iceberg. The warm checks are blocking, so an hour that "
                f"fails them is never offloaded. A failed run is retried whole, {OFFLOAD_RETRIES} times.",
    run_tags={"dagster/max_retries": str(OFFLOAD_RETRIES), "dagster/retry_strategy": "ALL_STEPS"},
)

cold_jobs = [offload_job]
