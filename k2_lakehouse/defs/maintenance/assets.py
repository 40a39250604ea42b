"""Nightly maintenance as assets downstream of the nine cold tables, so the lineage shows what acts on what.

Each is unpartitioned: launched plain it processes everything that needs it; launched with a partition
range (run config `partition_range`, or Dagster's partition range tags) only those hours.
"""

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal

import dagster as dg
from pydantic import Field

from k2_lakehouse.cold.names import COLD_TO_WARM
from k2_lakehouse.defs.cold.assets import cold_key
from k2_lakehouse.defs.partitions import hourly_partitions
from k2_lakehouse.defs.policies import MAINTENANCE_POOL, OWNERS
from k2_lakehouse.defs.resources import ColdStore, Spark, WarmStore
from k2_lakehouse.hours import HourRange, partition_key, range_of_tags

if TYPE_CHECKING:
    from k2_lakehouse.cold.compaction import CompactionEngine

GROUP = "maintenance"
COLD_KEYS = [cold_key(name) for name in COLD_TO_WARM]


class MaintenanceConfig(dg.Config):
    partition_range: str = Field(
        default="", description="Hours to act on, as Dagster partition keys 'A...B' (inclusive); empty: everything.")
    # A Literal, so a misspelt engine fails run-config validation at launch instead of the step mid-run.
    engine: Literal["in_process", "spark"] = Field(
        default="in_process", description="Compaction engine: in_process (polars, in the run's process) or spark "
                                          "(K2_SPARK_MASTER).")
    dry_run: bool = Field(default=False, description="Orphan files: list what would be deleted, delete nothing.")


# An hour is offloaded within 15 minutes of its end (offload_schedule); the margin covers runs queued behind
# others. Hours closed more recently than this are not yet due in cold, so the audit leaves them out.
OFFLOAD_DUE_AFTER = timedelta(minutes=75)


def requested_hours(config: MaintenanceConfig, tags: Mapping[str, str]) -> HourRange | None:
    """The hours a run was launched for (run config, a partition range, or one partition); None for everything."""
    if not config.partition_range:
        return range_of_tags(tags)
    first, _, last = config.partition_range.partition("...")
    try:
        return HourRange.of_keys(first, last or first)
    except ValueError:
        raise dg.Failure(f"partition_range {config.partition_range!r} is not "
                         "'YYYY-MM-DD-HH:MM...YYYY-MM-DD-HH:MM'") from None


def compaction_engine(config: MaintenanceConfig, spark: Spark) -> "CompactionEngine":
    from k2_lakehouse.cold.compaction import InProcessEngine, SparkEngine

    return SparkEngine(spark.spark_session) if config.engine == "spark" else InProcessEngine()


@dg.asset(key=["maintenance", "compaction"], deps=COLD_KEYS, group_name=GROUP, owners=OWNERS, pool=MAINTENANCE_POOL,
          kinds={"iceberg", "spark"},
          description="Rewrites cold partitions holding several small files into sorted files of the target size, "
                      "in one atomic commit per partition; content is unchanged (checksummed).")
def compaction(context: dg.AssetExecutionContext, config: MaintenanceConfig, cold_store: ColdStore,
               spark: Spark) -> dg.MaterializeResult[None]:
    from k2_lakehouse.cold import maintenance
    from k2_lakehouse.cold.tables import ensure_cold_tables

    hours = requested_hours(config, context.run.tags)
    engine = compaction_engine(config, spark)
    tables = ensure_cold_tables(cold_store.catalog())
    report = {}
    for name, table in tables.items():
        results = maintenance.compact_cold_table(table, name, engine, hours)
        report[name] = {"partitions": len(results), "files_before": sum(r.files_before for r in results),
                        "files_after": sum(r.files_after for r in results), "rows": sum(r.rows for r in results)}
        context.log.info(f"cold.{name}: compacted {len(results)} partitions")
    return dg.MaterializeResult(metadata={"engine": engine.name, "tables": dg.MetadataValue.json(report),
                                          "partitions_compacted": sum(r["partitions"] for r in report.values())})


@dg.asset(key=["maintenance", "snapshot_expiry"], deps=COLD_KEYS, group_name=GROUP, owners=OWNERS, pool=MAINTENANCE_POOL,
          kinds={"iceberg"},
          description="Expires snapshots older than 7 days (keeping the last 3), deletes the files no remaining "
                      "snapshot references, and removes orphan files older than 3 days (debris of killed offloads).")
def snapshot_expiry(context: dg.AssetExecutionContext, config: MaintenanceConfig, warm: WarmStore,
                    cold_store: ColdStore) -> dg.MaterializeResult[None]:
    from k2_lakehouse.cold.federation import refresh_federated_views
    from k2_lakehouse.cold.retention import expire_snapshots, remove_orphan_files
    from k2_lakehouse.cold.tables import ensure_cold_tables

    catalog = cold_store.catalog()
    tables = ensure_cold_tables(catalog)
    # The k2.*_all views are pinned to a metadata file and snapshot, refreshed only by offloads; commits
    # in between (a compaction commits once per partition) can push that file out of the metadata log and
    # that snapshot past retention, and expiry would then delete what the views read. Re-pinning them
    # *before* expiring is the one refresh that closes this: expiry always keeps the current snapshot and
    # the current metadata file (it stays in the log), while a refresh afterwards would leave the views
    # broken between the delete and the refresh, or for good if the run died in between. Compaction needs
    # no refresh of its own: it deletes nothing, and the pinned snapshot has the same rows.
    with warm.client() as client:
        refresh_federated_views(client, catalog)
    report = {}
    for name, table in tables.items():
        expired = expire_snapshots(table)
        orphans = remove_orphan_files(table, dry_run=config.dry_run)
        report[name] = {"snapshots_expired": expired.snapshots_expired, "files_deleted": expired.total_files_deleted,
                        "orphans": len(orphans.orphans), "orphans_deleted": orphans.files_deleted}
        context.log.info(f"cold.{name}: {report[name]}")
    return dg.MaterializeResult(metadata={"tables": dg.MetadataValue.json(report), "dry_run": config.dry_run})


@dg.asset(key=["maintenance", "audit"], deps=COLD_KEYS, group_name=GROUP, owners=OWNERS, pool=MAINTENANCE_POOL,
          kinds={"iceberg", "clickhouse"},
          description="Compares warm and cold per table and hour (exact rows and checksums, no tolerance); results "
                      "go to k2.audit_results.",
          check_specs=[
              dg.AssetCheckSpec("no_mismatch", asset=["maintenance", "audit"],
                                description="Every audited (table, hour) matches exactly. Audited: every hour warm "
                                            "holds that closed more than 75 minutes ago (in the run's range, if any)."),
              dg.AssetCheckSpec("verified_before_expiry", asset=["maintenance", "audit"],
                                description="No hour (of the run's range, if any) leaves warm (TTL) within 48 h "
                                            "without a passing comparison."),
              dg.AssetCheckSpec("no_missing_cold_hours", asset=["maintenance", "audit"],
                                description="Every hour warm holds, closed more than 75 minutes ago, is in every cold "
                                            "table (the freshness policy alone sees only the newest hour)."),
          ])
def audit(context: dg.AssetExecutionContext, config: MaintenanceConfig, warm: WarmStore,
          cold_store: ColdStore) -> Iterator[dg.MaterializeResult[None] | dg.AssetCheckResult]:
    from k2_lakehouse.cold import maintenance
    from k2_lakehouse.cold.tables import ensure_cold_tables
    from k2_lakehouse.cold.verify import hours_expiring_unverified

    hours = requested_hours(config, context.run.tags)
    catalog = cold_store.catalog()
    ensure_cold_tables(catalog)
    cutoff = datetime.now(UTC) - OFFLOAD_DUE_AFTER
    with warm.client() as client:
        held = maintenance.warm_hours(client, hours)
        # Live ingest goes on during the audit: the open hour, and hours closed since, are not in cold yet.
        audited_hours = [h for h in held if h + timedelta(hours=1) <= cutoff]
        rows = maintenance.audit(client, catalog, audited_hours)
        maintenance.record_audit(client, rows, context.run.run_id)
        verified = {h for h in audited_hours if all(r.matches for r in rows if r.hour == h)}
        # A ranged audit judges its own hours; the others were verified, or not, by other audits.
        expiring = [h for h in hours_expiring_unverified(client, verified) if hours is None or hours.start <= h < hours.end]
    mismatches = [r for r in rows if not r.matches]
    missing = {}
    partition_keys = set(hourly_partitions.get_partition_keys())
    for key in COLD_KEYS:
        done = context.instance.get_materialized_partitions(key)
        gaps = [key for key in map(partition_key, audited_hours) if key not in done and key in partition_keys]
        if gaps:
            missing[key.to_user_string()] = gaps
    yield dg.MaterializeResult(metadata={
        "hours_audited": len(audited_hours), "hours_not_yet_due": len(held) - len(audited_hours),
        "comparisons": len(rows), "mismatches": len(mismatches),
        "mismatched": dg.MetadataValue.json([[r.cold_table, r.hour.isoformat()] for r in mismatches][:200]),
        "query": "SELECT * FROM k2.audit_results WHERE NOT matches ORDER BY audited_at DESC",
    })
    yield dg.AssetCheckResult(check_name="no_mismatch", passed=not mismatches,
                              metadata={"mismatches": len(mismatches)})
    yield dg.AssetCheckResult(check_name="verified_before_expiry", passed=not expiring,
                              metadata={"hours": dg.MetadataValue.json([h.isoformat() for h in expiring])})
    yield dg.AssetCheckResult(check_name="no_missing_cold_hours", passed=not missing,
                              metadata={"missing": dg.MetadataValue.json(missing)})
    if mismatches:
        raise dg.Failure(f"audit: {len(mismatches)} (table, hour) pairs differ between warm and cold; "
                         "see k2.audit_results", metadata={"first": f"{mismatches[0].cold_table} {mismatches[0].hour}"})


maintenance_assets = [compaction, snapshot_expiry, audit]
