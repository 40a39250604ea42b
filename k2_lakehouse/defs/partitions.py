"""The one hourly partitioning every warm and cold asset shares."""



import dagster as dg

from k2_lakehouse.defs.metadata import Metadata
from k2_lakehouse.hours import PARTITION_KEY_FORMAT, HourRange, partition_key
from k2_lakehouse.settings import load_settings

hourly_partitions = dg.HourlyPartitionsDefinition(
    start_date=partition_key(load_settings().partitions_start),
    timezone="UTC",
    fmt=PARTITION_KEY_FORMAT,
)


def hours_of(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> HourRange:
    """The run's hours, one partition or a whole range (single-run backfills)."""
    window = context.partition_time_window
    return HourRange(window.start, window.end)


def covers_several_partitions(context: dg.AssetExecutionContext) -> bool:
    return bool(context.has_partition_key_range and context.partition_key_range.start != context.partition_key_range.end)


def log_check_per_partition(context: dg.AssetExecutionContext, asset_key: dg.AssetKey, check_name: str,
                            verdicts: list[tuple[HourRange, bool, Metadata]]) -> None:
    """One evaluation per hour of a ranged run, so the UI shows the check on every partition.

    A single-partition run needs none: its yielded AssetCheckResult already carries the partition.
    """
    if not covers_several_partitions(context):
        return
    for hour, passed, metadata in verdicts:
        context.log_event(dg.AssetCheckEvaluation(
            asset_key=asset_key, check_name=check_name, passed=passed, metadata=metadata, blocking=True,
            partition=partition_key(hour.start)))
