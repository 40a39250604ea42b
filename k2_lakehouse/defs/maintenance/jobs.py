"""One job per nightly maintenance asset, so each runs at its own hour and fails on its own."""

import dagster as dg

compaction_job = dg.define_asset_job("compaction_job", selection=dg.AssetSelection.assets(["maintenance", "compaction"]))
snapshot_expiry_job = dg.define_asset_job("snapshot_expiry_job",
                                          selection=dg.AssetSelection.assets(["maintenance", "snapshot_expiry"]))
audit_job = dg.define_asset_job("audit_job", selection=dg.AssetSelection.assets(["maintenance", "audit"]))

maintenance_jobs = [compaction_job, snapshot_expiry_job, audit_job]
