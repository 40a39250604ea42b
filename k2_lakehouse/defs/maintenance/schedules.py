"""Nightly maintenance, UTC, on by default: compaction, then snapshot expiry, then the audit."""

import dagster as dg

from k2_lakehouse.defs.maintenance.jobs import audit_job, compaction_job, snapshot_expiry_job


def nightly(job_name: str, cron: str, what: str) -> dg.ScheduleDefinition:
    """A daily schedule of `job_name` whose run key is the day, so a retried tick launches the day's run once."""

    def daily_run(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        return dg.RunRequest(run_key=f"{job_name}:{context.scheduled_execution_time:%Y-%m-%d}")

    return dg.ScheduleDefinition(name=job_name.replace("_job", "_schedule"), job_name=job_name, cron_schedule=cron,
                                 execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.RUNNING,
                                 execution_fn=daily_run, description=what)


compaction_schedule = nightly(compaction_job.name, "0 2 * * *", "Compact small cold files, every night at 02:00 UTC.")
snapshot_expiry_schedule = nightly(snapshot_expiry_job.name, "20 2 * * *",
                                   "Expire old snapshots and orphan files, every night at 02:20 UTC.")
audit_schedule = nightly(audit_job.name, "30 2 * * *", "Audit warm against cold, every night at 02:30 UTC.")

maintenance_schedules = [compaction_schedule, snapshot_expiry_schedule, audit_schedule]
