"""The snapshot expiry job and the federated k2.*_all views pinned to a cold table's metadata file."""

from __future__ import annotations

import dagster as dg
from clickhouse_connect.driver.client import Client

from k2_lakehouse_tests.support.defs import cold_catalog, run_job

PREVIOUS_VERSIONS_MAX = 2  # write.metadata.previous-versions-max is 100 by default; 2 needs fewer commits


def test_the_snapshot_expiry_job_keeps_the_views_readable_when_their_metadata_file_left_the_metadata_log(
        offloaded: dg.ExecuteInProcessResult, warm: Client, instance: dg.DagsterInstance) -> None:
    from k2_lakehouse.cold.federation import view_name
    from k2_lakehouse.cold.storage import exists
    from k2_lakehouse.cold.tables import cold_table
    from k2_lakehouse.cold.verify import pinned_snapshot

    cold = cold_table("raw_trades")
    rows_before = warm.query(f"SELECT count() FROM {view_name(cold)}").result_rows
    table = cold_catalog().load_table(cold.identifier)
    pinned = pinned_snapshot(table)
    assert pinned is not None
    # Commits that do not refresh the views (as a nightly compaction's, one per partition), enough to push
    # the pinned metadata file out of the metadata log.
    with table.transaction() as txn:
        txn.set_properties({"write.metadata.previous-versions-max": str(PREVIOUS_VERSIONS_MAX)})
    for i in range(PREVIOUS_VERSIONS_MAX + 1):
        with table.transaction() as txn:
            txn.set_properties({"k2.test.commit": str(i)})

    assert run_job(instance, "snapshot_expiry_job").success

    assert not exists(table.io, pinned.metadata)  # expiry deleted the metadata file the views were pinned to
    assert warm.query(f"SELECT count() FROM {view_name(cold)}").result_rows == rows_before
