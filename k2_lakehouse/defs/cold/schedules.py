"""The offload schedule: every closed hour is sealed and offloaded once, within 15 minutes of its close.

UTC, on by default. Hours that change after their offload are the staleness sensor's (sensors.py).
"""

from datetime import UTC, datetime, timedelta

import dagster as dg

from k2_lakehouse.defs.cold.jobs import offload_job
from k2_lakehouse.defs.partitions import hourly_partitions
from k2_lakehouse.hours import ONE_HOUR, contiguous_ranges, partition_key, range_of_tags

# How far back each tick looks for closed hours no offload has covered. After a downtime the daemon evaluates
# only the latest missed tick of a schedule, so that tick must find every hour the missed ones would have.
OFFLOAD_CATCH_UP = timedelta(hours=48)


def last_closed_hour(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(minute=0, second=0, microsecond=0) - ONE_HOUR


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
    first = max(last - OFFLOAD_CATCH_UP + ONE_HOUR, hourly_partitions.start.astimezone(UTC))
    if first > last:
        return dg.SkipReason(f"no hour has closed since K2_PARTITIONS_START ({partition_key(first)})")
    covered = hours_offload_covers(context.instance, since=first)
    due = [first + timedelta(hours=n) for n in range(int((last - first) / ONE_HOUR) + 1)]
    due = [hour for hour in due if hour not in covered]
    if not due:
        return dg.SkipReason(f"every hour closed since {partition_key(first)} has an offload run")
    requests = []
    for hours in contiguous_ranges(due):
        first_key, last_key = partition_key(hours.start), partition_key(hours.end - ONE_HOUR)
        if first_key == last_key:
            requests.append(dg.RunRequest(run_key=f"offload:{first_key}", partition_key=first_key))
        else:
            requests.append(dg.RunRequest(run_key=f"offload:{first_key}...{last_key}", tags=hours.tags()))
    return requests


cold_schedules = [offload_schedule]
