"""Cold assets: materialising an hour offloads it to Iceberg (k2_lakehouse.cold.offload) and verifies it."""

from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING

import dagster as dg

from k2_lakehouse.cold.names import COLD_TO_WARM, NAMESPACE
from k2_lakehouse.defs.metadata import Metadata
from k2_lakehouse.defs.partitions import hourly_partitions, hours_of, log_check_per_partition
from k2_lakehouse.defs.policies import OWNERS, table_pool
from k2_lakehouse.defs.resources import ColdStore, WarmStore
from k2_lakehouse.defs.warm.assets import warm_key

if TYPE_CHECKING:
    from k2_lakehouse.cold.verify import VerifyResult

GROUP = "cold"
KINDS = {"iceberg", "parquet"}

# A closed hour must be in Iceberg within 15 minutes of its end: the newest hour is then at most
# 75 minutes old. The policy only sees the newest materialization; the audit's check no_missing_cold_hours finds gaps.
COLD_FRESHNESS = dg.FreshnessPolicy.time_window(fail_window=timedelta(minutes=75), warn_window=timedelta(minutes=65))


def cold_key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["cold", name])


def _verdict_metadata(verdict: "VerifyResult") -> Metadata:
    return {"warm_rows": verdict.warm_rows, "cold_rows": verdict.cold_rows,
            "warm_checksum": f"{verdict.warm_checksum:016x}", "cold_checksum": f"{verdict.cold_checksum:016x}"}


def _offload_asset(name: str, warm_name: str) -> dg.AssetsDefinition:
    key = cold_key(name)

    @dg.asset(
        key=key,
        deps=[warm_key(warm_name)],
        group_name=GROUP,
        partitions_def=hourly_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        kinds=KINDS,
        owners=OWNERS,
        pool=table_pool(warm_name),
        freshness_policy=COLD_FRESHNESS,
        description=f"cold.{name} in Iceberg: the sealed warm hours of k2.{warm_name}, replaced "
                    "hour by hour in one atomic commit per run.",
        check_specs=[dg.AssetCheckSpec(
            "matches_warm", asset=key, blocking=True, partitions_def=hourly_partitions,
            description="Row count and order-independent checksum of the hours equal warm's, computed by ClickHouse "
                        "on both sides (cold read at the committed snapshot)."),
        ],
    )
    def offload(context: dg.AssetExecutionContext, warm: WarmStore, cold_store: ColdStore) -> Iterator[object]:
        from k2_lakehouse.cold.federation import refresh_federated_view
        from k2_lakehouse.cold.offload import offload_hours
        from k2_lakehouse.cold.tables import cold_table, ensure_cold_table
        from k2_lakehouse.cold.verify import matches_warm_by_hour

        hours = hours_of(context)
        cold = cold_table(name)
        catalog = cold_store.catalog()
        # Only this table: each federated view reads its own table, and the other eight assets ensure theirs.
        catalog.create_namespace_if_not_exists(NAMESPACE)
        ensure_cold_table(catalog, cold)
        with warm.client() as client:
            result = offload_hours(client, catalog, name, hours, run_id=context.run.run_id)
            refresh_federated_view(client, catalog, cold)
            verified = matches_warm_by_hour(client, catalog, name, hours)
        per_hour = [(hour, check.ok, _verdict_metadata(check)) for hour, check in verified.per_hour]
        yield dg.MaterializeResult(
            metadata={
                "dagster/row_count": result.rows,
                "dagster/table_name": f"cold.{name}",
                "content_checksum": f"{result.checksum:016x}",
                "snapshot_id": str(result.snapshot_id),
                "files_added": result.files_added,
                "files_removed": result.files_removed,
                "commit_attempts": result.attempts,
                "seconds": round(result.seconds, 3),
            },
            data_version=dg.DataVersion(f"{result.checksum:016x}"),
        )
        log_check_per_partition(context, key, "matches_warm", per_hour)
        yield dg.AssetCheckResult(check_name="matches_warm", passed=verified.range.ok,
                                  metadata=_verdict_metadata(verified.range))

    return offload


cold_assets = [_offload_asset(name, warm_name) for name, warm_name in COLD_TO_WARM.items()]
