"""Schedules and sensors: the platform runs itself. All times UTC; everything is on by default."""

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import dagster as dg

from k2_lakehouse.cold.names import COLD_TO_WARM
from k2_lakehouse.defs.cold.assets import cold_key
from k2_lakehouse.defs.partitions import hourly_partitions
from k2_lakehouse.defs.resources import ColdStore, WarmStore
from k2_lakehouse.defs.warm.assets import warm_key
from k2_lakehouse.hours import ONE_HOUR, contiguous_ranges, hour_of, partition_key, range_of_tags
from k2_lakehouse.warm.client import WarmStoreBusy

if TYPE_CHECKING:
    from dagster._core.storage.event_log.base import EventLogRecord

    from k2_lakehouse.cold.staleness import Offload
    from k2_lakehouse.cold.verify import VerifyResult

DATA_VERSION_TAG = "dagster/data_version"  # what a reported materialization's data version is read from
EVENT_PAGE = 1000

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


# How far back each tick looks for closed hours no offload has covered. After a downtime the daemon evaluates
# only the latest missed tick of a schedule, so that tick must find every hour the missed ones would have.
OFFLOAD_CATCH_UP = timedelta(hours=48)


def hours_offload_covers(instance: dg.DagsterInstance, since: datetime) -> set[datetime]:
    """The hours covered by an offload_job run (any status) created after the hour had closed, since `since`.

    A schedule's run key only stops a retried tick from launching twice: Dagster compares it among the runs of
    the same tick. So the four ticks of an hour, and the tick after a downtime, look at the runs themselves.
    """
    covered: set[datetime] = set()
    records = instance.get_run_records(dg.RunsFilter(job_name=offload_job.name, created_after=since))
    for record in records:
        hours = range_of_tags(record.dagster_run.tags)
        if hours is None:
            continue
        # A run of a still-open hour is no offload of it.
        covered.update(hour for hour in hours.hours() if hour + ONE_HOUR <= record.create_timestamp)
    return covered


@dg.schedule(job=offload_job, cron_schedule="*/15 * * * *", execution_timezone="UTC",
             default_status=dg.DefaultScheduleStatus.RUNNING,
             description="Seal and offload every hour that closed since the last tick (after a downtime, every closed "
                         "hour of the last 48 with no offload run), batched into ranged runs; offloading an hour "
                         "rewrites the day's gold windows it touches. Hours changed later are the staleness sensor's "
                         "job; a failed run is retried by the daemon, not by the next tick.")
def offload_schedule(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest] | dg.SkipReason:
    now = context.scheduled_execution_time
    last = last_closed_hour(now)
    first = max(last - OFFLOAD_CATCH_UP + timedelta(hours=1), hourly_partitions.start.astimezone(UTC))
    if first > last:
        return dg.SkipReason(f"no hour has closed since K2_PARTITIONS_START ({partition_key(first)})")
    covered = hours_offload_covers(context.instance, since=first)
    due = [first + timedelta(hours=n) for n in range(int((last - first) / timedelta(hours=1)) + 1)]
    due = [hour for hour in due if hour not in covered]
    if not due:
        return dg.SkipReason(f"every hour closed since {partition_key(first)} has an offload run")
    requests = []
    for hours in contiguous_ranges(due):
        first, last = partition_key(hours.start), partition_key(hours.end - ONE_HOUR)
        if first == last:
            requests.append(dg.RunRequest(run_key=f"offload:{first}", partition_key=first))
        else:
            requests.append(dg.RunRequest(run_key=f"offload:{first}...{last}", tags=hours.tags()))
    return requests


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


def materializations_after(instance: dg.DagsterInstance, key: dg.AssetKey, storage_id: int,
                           up_to: int) -> list["EventLogRecord"]:
    """Every materialization of `key` recorded after `storage_id`, up to storage id `up_to`, oldest first."""
    records: list[EventLogRecord] = []
    page_cursor = None
    while True:
        window = dg.AssetRecordsFilter(asset_key=key, after_storage_id=storage_id, before_storage_id=up_to + 1)
        page = instance.fetch_materializations(window, limit=EVENT_PAGE, cursor=page_cursor, ascending=True)
        records.extend(page.records)
        if not page.has_more:
            return records
        page_cursor = page.cursor


def latest_materializations(instance: dg.DagsterInstance, key: dg.AssetKey,
                            partition_keys: list[str]) -> dict[str, "EventLogRecord"]:
    """partition -> its latest materialization of `key`, for those of `partition_keys` that have one."""
    latest: dict[str, EventLogRecord] = {}
    for first in range(0, len(partition_keys), EVENT_PAGE):
        wanted = partition_keys[first:first + EVENT_PAGE]
        page_cursor = None
        while True:
            page = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=key, asset_partitions=wanted),
                                                   limit=EVENT_PAGE, cursor=page_cursor)
            for record in page.records:  # newest first
                latest.setdefault(record.partition_key, record)  # type: ignore[arg-type]
            if not page.has_more or all(key in latest for key in wanted):
                break
            page_cursor = page.cursor
    return latest


def read_from(instance: dg.DagsterInstance, record: "EventLogRecord", run_starts: dict[str, datetime]) -> datetime:
    """The earliest moment the materialization's run may have read warm: the run's start (an event reported
    without a run: its own time)."""
    if record.run_id not in run_starts:
        run = instance.get_run_record_by_id(record.run_id) if record.run_id else None
        started = run.start_time if run is not None and run.start_time is not None else record.timestamp
        run_starts[record.run_id] = datetime.fromtimestamp(started, UTC)
    return run_starts[record.run_id]


def warm_changed_outside_a_run(offload: "Offload", verdict: "VerifyResult") -> dg.AssetMaterialization:
    """A warm table's hour that no longer equals its cold copy because rows arrived after the seal: the live views
    changed it outside any run.

    Reported with the warm content's checksum as its data version, so the UI marks the cold partition stale (a new
    dependency data version) until the re-seal and re-offload the sensor requests.
    """
    return dg.AssetMaterialization(
        asset_key=warm_key(COLD_TO_WARM[offload.cold_name]), partition=partition_key(offload.hour),
        description="Rows arrived after this hour was sealed and offloaded, and the live views carried them here. "
                    "Reported by cold_staleness_sensor, which requested the hour's re-seal and re-offload.",
        metadata={"rows": verdict.warm_rows, "rows_in_cold": verdict.cold_rows},
        tags={DATA_VERSION_TAG: f"{verdict.warm_checksum:016x}"})


@dg.sensor(job=offload_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Finds offloaded hours that changed in warm after their offload read it (raw rows inserted "
                       "later, a layer re-sealed later), compares those with warm, and requests a re-seal and "
                       "re-offload of exactly the hours that differ, batched into ranged runs.")
def cold_staleness_sensor(context: dg.SensorEvaluationContext, warm: WarmStore,
                          cold_store: ColdStore) -> dg.SensorResult | dg.SkipReason:
    from k2_lakehouse.cold.staleness import (
        VISIBILITY_MARGIN,
        Arrivals,
        Offload,
        changes_since_offload,
        inserts_since,
        stale_offloads,
    )

    cursor = json.loads(context.cursor) if context.cursor else {}
    arrivals = Arrivals.from_json(cursor)
    events_after = int(cursor.get("events_after", 0))
    instance = context.instance
    # Offloads recorded since the last tick (rows may have arrived while they ran) and re-seals since then.
    # Every key is read up to one mark taken first, and the cursor moves to it: an event recorded while this tick
    # reads (an offload finishing) is read by the next tick, never passed by a later event of another key.
    up_to = instance.event_log_storage.get_maximum_record_id() or 0
    offloaded = {name: materializations_after(instance, cold_key(name), events_after, up_to) for name in COLD_TO_WARM}
    resealed = {name: materializations_after(instance, warm_key(warm_name), events_after, up_to)
                for name, warm_name in COLD_TO_WARM.items()}
    new_records = [r for records in (*offloaded.values(), *resealed.values()) for r in records]
    try:
        with warm.client() as client:
            arrived, arrivals = arrivals.next(client)
            hours = sorted(arrived | {hour_of(r.partition_key) for r in new_records if r.partition_key})
            run_starts: dict[str, datetime] = {}
            offloads: list[Offload] = []
            reseals: dict[tuple[str, datetime], datetime] = {}
            for name in COLD_TO_WARM:
                latest = latest_materializations(instance, cold_key(name), [partition_key(h) for h in hours])
                offloads += [Offload(name, hour_of(key), read_from(instance, record, run_starts))
                             for key, record in latest.items()]
                for record in resealed[name]:  # a seal in the offload's own run is what the offload copied
                    if (record.run_id  # not this sensor's own report of arrivals (above): a seal runs in a run
                            and record.partition_key in latest and record.run_id != latest[record.partition_key].run_id):
                        reseals[(name, hour_of(record.partition_key))] = datetime.fromtimestamp(record.timestamp, UTC)
            inserts = inserts_since(client, min(o.read_from for o in offloads) - VISIBILITY_MARGIN,
                                     {o.hour for o in offloads}) if offloads else {}
            changed = changes_since_offload(offloads, inserts, reseals)
            stale = stale_offloads(client, cold_store.catalog(), offloads, changed)
            # A re-seal recorded its own materialization; rows that arrived changed warm without one.
            changed_by_arrivals = [warm_changed_outside_a_run(o, verdict) for o, verdict in stale.items() if o.hour in inserts]
    except WarmStoreBusy as busy:
        return dg.SkipReason(f"warm store busy, trying again next tick: {busy}")
    next_cursor = json.dumps({**arrivals.to_json(),
                              "events_after": max(events_after, up_to)})
    stale_hours = sorted({o.hour for o in stale})
    if not stale_hours:
        return dg.SensorResult(skip_reason=f"{len(hours)} hours changed or were offloaded since the last tick; "
                                           f"{len(changed)} compared with warm, none differ", cursor=next_cursor)
    last_change: dict[datetime, datetime] = {}
    for o in stale:  # the run key names the change, so a retried tick or the next one requests it once
        change = changed[(o.cold_name, o.hour)]
        last_change[o.hour] = max(change, last_change.get(o.hour, change))
    requests = [
        dg.RunRequest(
            run_key=f"stale:{partition_key(hours.start)}...{partition_key(hours.end - ONE_HOUR)}:"
                    f"{max(t for h, t in last_change.items() if hours.start <= h < hours.end).isoformat()}",
            tags=hours.tags())
        for hours in contiguous_ranges(stale_hours)
    ]
    return dg.SensorResult(run_requests=requests, cursor=next_cursor, asset_events=changed_by_arrivals)


jobs = [warm_seal_job, offload_job, compaction_job, snapshot_expiry_job, audit_job]
schedules = [offload_schedule, compaction_schedule, snapshot_expiry_schedule, audit_schedule]
sensors = [cold_staleness_sensor]
