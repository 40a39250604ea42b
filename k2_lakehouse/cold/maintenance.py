"""Nightly maintenance over the cold tables: which partitions, which sort, and the audit.

The engines themselves live in the compaction package and retention.py; this module decides what they act on.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import cast

from clickhouse_connect.driver.client import Client
from pyiceberg.catalog import Catalog
from pyiceberg.table import Table
from pyiceberg.transforms import DayTransform, HourTransform, MonthTransform

from k2_lakehouse.cold.compaction import CompactionEngine, CompactionResult, compact_table, partitions_needing_compaction
from k2_lakehouse.cold.compaction.model import PartitionRef
from k2_lakehouse.cold.tables import COLD_TABLES
from k2_lakehouse.cold.verify import matches_warm
from k2_lakehouse.hours import EPOCH, HourRange, in_hours

# The common scan of each table: per symbol (or source) in time order.
SORT_COLUMNS: dict[str, tuple[str, ...]] = {
    "raw_trades": ("exchange", "source_name", "source_position", "source_element"),
    "bronze_trades": ("exchange", "exchange_symbol", "exchange_ts", "trade_id"),
    "silver_trades": ("exchange", "symbol", "exchange_ts", "trade_id"),
    **{name: ("exchange", "symbol", "window_start") for name in COLD_TABLES if name.startswith("gold_ohlcv_")},
}

def _ordinal(moment: datetime, transform: object) -> int:
    if isinstance(transform, HourTransform):
        return int((moment - EPOCH).total_seconds() // 3600)
    if isinstance(transform, DayTransform):
        return (moment - EPOCH).days
    if isinstance(transform, MonthTransform):
        return (moment.year - 1970) * 12 + moment.month - 1
    raise ValueError(f"no time transform {transform!r} on the table's first partition field")


def partitions_touching(table: Table, hours: HourRange, min_files: int = 2) -> list[PartitionRef]:
    """Partitions needing compaction whose time value overlaps the hours."""
    spec = table.spec()
    transform = spec.fields[0].transform
    low, high = _ordinal(hours.start, transform), _ordinal(hours.end - timedelta(microseconds=1), transform)
    return [ref for ref in partitions_needing_compaction(table, min_files=min_files)
            if ref.spec_id == spec.spec_id and low <= cast(int, ref.values[0]) <= high]


def compact_cold_table(table: Table, name: str, engine: CompactionEngine, hours: HourRange | None = None,
                       min_files: int = 2) -> list[CompactionResult]:
    partitions = partitions_touching(table, hours, min_files) if hours else None
    if partitions == []:
        return []
    return compact_table(table, engine, SORT_COLUMNS[name], min_files=min_files, partitions=partitions)


@dataclass(frozen=True)
class AuditRow:
    cold_table: str
    hour: datetime
    warm_rows: int
    cold_rows: int
    warm_checksum: int
    cold_checksum: int

    @property
    def matches(self) -> bool:
        return (self.warm_rows, self.warm_checksum) == (self.cold_rows, self.cold_checksum)


def warm_hours(client: Client, hours: HourRange | None = None) -> list[datetime]:
    """The hours warm holds raw messages for (all, or those within `hours`)."""
    where, params = "", {}
    if hours is not None:
        where, params = f"WHERE {in_hours('event_hour')}", hours.parameters
    rows = client.query(f"SELECT DISTINCT event_hour FROM k2.trades_raw {where} ORDER BY event_hour", parameters=params)
    return [h.replace(tzinfo=UTC) for (h,) in rows.result_rows]


def audit(client: Client, catalog: Catalog, hours: Iterable[datetime],
          tables: Iterable[str] = tuple(COLD_TABLES)) -> list[AuditRow]:
    """Warm against cold, per table and hour: exact row counts and checksums, no tolerance."""
    found = []
    hours = list(hours)
    for name in tables:
        for hour in hours:
            verdict = matches_warm(client, catalog, name, HourRange.of_hour(hour))
            found.append(AuditRow(name, hour, verdict.warm_rows, verdict.cold_rows, verdict.warm_checksum,
                                  verdict.cold_checksum))
    return found


def record_audit(client: Client, rows: list[AuditRow], run_id: str) -> None:
    now = datetime.now(UTC)
    client.insert("k2.audit_results", [
        [now, run_id, r.cold_table, r.hour, r.warm_rows, r.cold_rows, r.warm_checksum, r.cold_checksum, r.matches]
        for r in rows], column_names=["audited_at", "run_id", "cold_table", "hour", "warm_rows", "cold_rows",
                                      "warm_checksum", "cold_checksum", "matches"])
