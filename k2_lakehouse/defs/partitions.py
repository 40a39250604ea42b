"""The one hourly partitioning every warm and cold asset shares."""


from datetime import datetime

import dagster as dg

from k2_lakehouse.settings import PARTITIONS_START_FORMAT, load_settings
from k2_lakehouse.warm.seal import HourRange

hourly_partitions = dg.HourlyPartitionsDefinition(
    start_date=load_settings().partitions_start.strftime(PARTITIONS_START_FORMAT),
    timezone="UTC",
    fmt=PARTITIONS_START_FORMAT,
)


def hours_of(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> HourRange:
    """The run's hours, one partition or a whole range (single-run backfills)."""
    window = context.partition_time_window
    return HourRange(window.start, window.end)


def partition_key_of(hour: datetime) -> str:
    return hour.strftime(PARTITIONS_START_FORMAT)
