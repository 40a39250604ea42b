"""Schedules and sensors: the platform runs itself. All times UTC; everything is on by default."""

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import dagster as dg

from k2_lakehouse.defs.cold.assets import cold_key
from k2_lakehouse.defs.partitions import hourly_partitions, partition_key_of
from k2_lakehouse.defs.resources import ColdStore, WarmStore
from k2_lakehouse.warm.client import WarmStoreBusy
from k2_lakehouse.warm.seal import HourRange

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client
    from pyiceberg.catalog import Catalog

RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"

offload_job = dg.define_asset_job(
    "offload_job", selection=dg.AssetSelection.groups("warm", "cold"),
    description="Seal hours in warm, then offload them to Iceberg. The warm checks are blocking, so an hour that "
                "fails them is never offloaded.",
)
warm_seal_job = dg.define_asset_job(
    "warm_seal_job", selection=dg.AssetSelection.groups("warm"),
    description="Seal hours of every warm layer: raw -> bronze -> silver -> gold.",
)
compaction_job = dg.define_asset_job("compaction_job", selection=dg.AssetSelection.assets(["maintenance", "compaction"]))
snapshot_expiry_job = dg.define_asset_job("snapshot_expiry_job",
                                          selection=dg.AssetSelection.assets(["maintenance", "snapshot_expiry"]))
audit_job = dg.define_asset_job("audit_job", selection=dg.AssetSelection.assets(["maintenance", "audit"]))


def last_closed_hour(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)


@dg.schedule(job=offload_job, cron_schedule="*/15 * * * *", execution_timezone="UTC",
             default_status=dg.DefaultScheduleStatus.RUNNING,
             description="Seal and offload the hour that closed last. The run key is the hour, so the four ticks of an "
                         "hour (and a tick the daemon retries) launch it once; offloading an hour rewrites the day's "
                         "gold windows it touches. Hours changed later are the staleness sensor's job.")
def offload_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    hour = last_closed_hour(context.scheduled_execution_time)
    key = partition_key_of(hour)
    if key not in hourly_partitions.get_partition_keys(current_time=context.scheduled_execution_time):
        return dg.SkipReason(f"hour {key} is before K2_PARTITIONS_START")
    return dg.RunRequest(run_key=f"offload:{key}", partition_key=key)


def _nightly(job: dg.JobDefinition, cron: str, what: str) -> dg.ScheduleDefinition:  # an unresolved asset job
    def daily_run(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        return dg.RunRequest(run_key=f"{job.name}:{context.scheduled_execution_time:%Y-%m-%d}")

    return dg.ScheduleDefinition(name=job.name.replace("_job", "_schedule"), job=job, cron_schedule=cron,
                                 execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.RUNNING,
                                 execution_fn=daily_run, description=what)


compaction_schedule = _nightly(compaction_job, "0 2 * * *", "Compact small cold files, every night at 02:00 UTC.")
snapshot_expiry_schedule = _nightly(snapshot_expiry_job, "20 2 * * *",
                                    "Expire old snapshots and orphan files, every night at 02:20 UTC.")
audit_schedule = _nightly(audit_job, "30 2 * * *", "Audit warm against cold, every night at 02:30 UTC.")


def contiguous_ranges(hours: list[datetime]) -> list[tuple[datetime, datetime]]:
    """Sorted hours grouped into runs of consecutive hours, as (first, last)."""
    ranges: list[tuple[datetime, datetime]] = []
    for hour in sorted(hours):
        if ranges and hour - ranges[-1][1] == timedelta(hours=1):
            ranges[-1] = (ranges[-1][0], hour)
        else:
            ranges.append((hour, hour))
    return ranges


def stale_hours(client: "Client", catalog: "Catalog", candidates: list[datetime], offloaded: set[str]) -> list[datetime]:
    """Candidates already offloaded whose cold raw hour no longer equals warm's (late trades, re-seals)."""
    from k2_lakehouse.cold.verify import matches_warm

    stale = []
    for hour in candidates:
        if partition_key_of(hour) in offloaded and not matches_warm(
                client, catalog, "raw_trades", HourRange(hour, hour + timedelta(hours=1))).ok:
            stale.append(hour)
    return stale


@dg.sensor(job=offload_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Finds offloaded hours whose warm content changed since (rows that arrived after the cursor, "
                       "then a checksum comparison with cold) and requests a re-seal and re-offload of exactly those "
                       "hours, batched into ranged runs.")
def cold_staleness_sensor(context: dg.SensorEvaluationContext, warm: WarmStore,
                          cold_store: ColdStore) -> dg.SensorResult | dg.SkipReason:
    cursor = json.loads(context.cursor) if context.cursor else {}
    since = datetime.fromisoformat(cursor.get("received_after", "1970-01-01T00:00:00+00:00"))
    try:
        with warm.client() as client:
            arrived = client.query(
                "SELECT event_hour, max(received_at) FROM k2.trades_raw WHERE received_at > {since:DateTime64(6, 'UTC')} "
                "GROUP BY event_hour ORDER BY event_hour", parameters={"since": since}).result_rows
            if not arrived:
                return dg.SkipReason(f"no rows arrived after {since.isoformat()}")
            offloaded = context.instance.get_materialized_partitions(cold_key("raw_trades"))
            candidates = [hour.replace(tzinfo=UTC) for hour, _ in arrived]
            stale = stale_hours(client, cold_store.catalog(), candidates, offloaded)
    except WarmStoreBusy as busy:
        return dg.SkipReason(f"warm store busy, trying again next tick: {busy}")
    newest = max(received for _, received in arrived).replace(tzinfo=UTC)
    requests = [
        dg.RunRequest(run_key=f"stale:{partition_key_of(first)}...{partition_key_of(last)}:{newest.isoformat()}",
                      tags={RANGE_START: partition_key_of(first), RANGE_END: partition_key_of(last)})
        for first, last in contiguous_ranges(stale)
    ]
    return dg.SensorResult(run_requests=requests, cursor=json.dumps({"received_after": newest.isoformat()}))


jobs = [warm_seal_job, offload_job, compaction_job, snapshot_expiry_job, audit_job]
schedules = [offload_schedule, compaction_schedule, snapshot_expiry_schedule, audit_schedule]
sensors = [cold_staleness_sensor]
