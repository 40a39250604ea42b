"""Does cold hold exactly what warm holds? Checked in ClickHouse, with the warm side's own checksum.

The cold side is read with icebergLocal() pinned to the metadata file the catalog points at and to
its current snapshot (iceberg_snapshot_id), never "the latest metadata file": a killed commit can
leave a newer metadata file that the catalog never adopted. Both sides use the same checksum expression
(warm.tables.checksum_sql) and the same hour or window predicate, so equal numbers mean equal rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError
from pyiceberg.catalog import Catalog
from pyiceberg.table import Table

from k2_lakehouse.cold.storage import local_path
from k2_lakehouse.cold.tables import cold_table
from k2_lakehouse.hours import HourRange
from k2_lakehouse.warm.content import table_checksum
from k2_lakehouse.warm.tables import checksum_sql

WARM_TTL = timedelta(days=30)  # sql/: TTL toDateTime(received_at) + INTERVAL 30 DAY
EXPIRY_HORIZON = timedelta(hours=48)


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    warm_rows: int
    cold_rows: int
    warm_checksum: int
    cold_checksum: int


def table_root(table: Table) -> str:
    """The table's local folder, which icebergLocal() reads (it holds metadata/)."""
    root = local_path(table.location())
    if root is None:
        raise NotImplementedError(f"ClickHouse reads the cold tier with icebergLocal(): {table.location()} is not local")
    return str(root)


PINNED_ICEBERG = "icebergLocal({root:String}, SETTINGS iceberg_metadata_file_path = {metadata:String})"
"""The FROM of every cold read: the metadata file the catalog points at, not the newest one on disk."""


@dataclass(frozen=True)
class PinnedSnapshot:
    """What the catalog says is current: the table folder, its metadata file (relative) and snapshot."""

    root: str
    metadata: str
    snapshot_id: int


def pinned_snapshot(table: Table) -> PinnedSnapshot | None:
    """The table's current state as the catalog records it; None before the first commit.

    Reading "the latest metadata file" is wrong: a commit killed after writing its metadata file but
    before the catalog's swap leaves a newer file that was never committed (and a later real commit
    may reuse its version number). So ClickHouse is told the exact file, and the snapshot id too.
    """
    snapshot = table.current_snapshot()
    if snapshot is None:
        return None
    root = table_root(table)
    metadata = local_path(table.metadata_location)
    if metadata is None or not metadata.is_relative_to(root):
        raise NotImplementedError(f"metadata file {table.metadata_location} is not inside the table folder {root}")
    return PinnedSnapshot(root, str(metadata.relative_to(root)), snapshot.snapshot_id)


class ColdNotReadable(RuntimeError):
    """ClickHouse refused to read the cold table's folder."""


def query_pinned(client: Client, pinned: PinnedSnapshot, select: str, parameters: dict[str, object]) -> Sequence[Sequence[Any]]:
    """Run `select`, whose FROM is PINNED_ICEBERG, on exactly the pinned snapshot."""
    try:
        return client.query(select, parameters={**parameters, "root": pinned.root, "metadata": pinned.metadata},
                            settings={"iceberg_snapshot_id": pinned.snapshot_id}).result_rows
    except DatabaseError as exc:
        if "PATH_ACCESS_DENIED" not in str(exc):
            raise
        # Embedded ClickHouse (clickhouse-local) lets icebergLocal() read only below the process's
        # working directory, checked at query time; a ClickHouse server only below its user_files_path.
        raise ColdNotReadable(
            f"ClickHouse may not read {pinned.root}: with embedded ClickHouse the Iceberg warehouse must be "
            f"inside the working directory ({Path.cwd()}); keep K2_HOME under it (the default ./.k2 is) or run "
            "from a parent folder. A ClickHouse server needs the warehouse inside its user_files_path."
        ) from exc


def cold_checksum(client: Client, table: Table, cold_name: str, hours: HourRange) -> tuple[int, int]:
    """(rows, checksum) of the range in the table's current snapshot, computed by ClickHouse."""
    cold = cold_table(cold_name)
    pinned = pinned_snapshot(table)
    if pinned is None:
        return 0, 0
    rows, checksum = query_pinned(
        client, pinned,
        f"SELECT count(), {checksum_sql(cold.warm)} FROM {PINNED_ICEBERG} WHERE {cold.range_predicate}",
        hours.parameters)[0]
    return int(rows), int(checksum)


def matches_warm(client: Client, catalog: Catalog, cold_name: str, hours: HourRange) -> VerifyResult:
    """Compare the range in cold (current snapshot) with the range in warm, now."""
    cold = cold_table(cold_name)
    warm_rows, warm_sum = table_checksum(client, cold.warm, hours)
    cold_rows, cold_sum = cold_checksum(client, catalog.load_table(cold.identifier), cold_name, hours)
    return VerifyResult((warm_rows, warm_sum) == (cold_rows, cold_sum), warm_rows, cold_rows, warm_sum, cold_sum)


def hours_expiring_unverified(client: Client, verified_hours: Iterable[datetime], now: datetime | None = None,
                              ttl: timedelta = WARM_TTL, horizon: timedelta = EXPIRY_HORIZON) -> list[datetime]:
    """Hours that may start leaving warm within `horizon` and have no passing verification.

    An hour can start to leave once its earliest-received rows pass the TTL (whole parts drop when
    all their rows have expired, so min(received_at) + ttl is the earliest possible moment). Raw and
    silver are both looked at: silver places trades by trade time, raw by message time.
    """
    now = now or datetime.now(UTC)
    verified = {h.astimezone(UTC).replace(minute=0, second=0, microsecond=0) for h in verified_hours}
    rows = client.query(
        "SELECT hour FROM ("
        " SELECT event_hour AS hour, min(received_at) AS first_received FROM k2.trades_raw GROUP BY hour"
        " UNION ALL"
        " SELECT toStartOfHour(toDateTime(exchange_ts, 'UTC')) AS hour, min(received_at) AS first_received"
        " FROM k2.silver_trades GROUP BY hour"
        ") GROUP BY hour HAVING min(first_received) <= {deadline:DateTime64(6, 'UTC')} ORDER BY hour",
        parameters={"deadline": now + horizon - ttl},
    ).result_rows
    hours = [hour.replace(tzinfo=UTC) if hour.tzinfo is None else hour.astimezone(UTC) for (hour,) in rows]
    return [hour for hour in hours if hour not in verified]


@dataclass(frozen=True)
class RangeVerdict:
    """`matches_warm` of a range and of each of its hours, from one comparison per hour."""

    range: VerifyResult
    per_hour: list[tuple[HourRange, VerifyResult]]


def _windows_of(cold_name: str, hour: HourRange) -> datetime:
    # Hours whose comparisons read the same rows: a daily candle's predicate takes the whole day for any of
    # its hours (content.gold_windows_predicate); every other table's hours read disjoint rows.
    if cold_table(cold_name).timeframe == "1d":
        return hour.start.replace(hour=0)
    return hour.start


def matches_warm_by_hour(client: Client, catalog: Catalog, cold_name: str, hours: HourRange) -> RangeVerdict:
    """`matches_warm` of each hour of the range, and of the range derived from them without comparing it again.

    Rows and checksums add up over hours that read disjoint rows (the checksum is a wrapping UInt64 sum), so
    the range's figures are the sums over the distinct row sets of its hours, and it matches exactly when
    every hour does. The table is loaded once: every hour is read at the same snapshot.
    """
    cold = cold_table(cold_name)
    table = catalog.load_table(cold.identifier)
    compared: dict[datetime, VerifyResult] = {}
    per_hour: list[tuple[HourRange, VerifyResult]] = []
    for hour in hours.each_hour():
        key = _windows_of(cold_name, hour)
        if key not in compared:
            warm_rows, warm_sum = table_checksum(client, cold.warm, hour)
            cold_rows, cold_sum = cold_checksum(client, table, cold_name, hour)
            compared[key] = VerifyResult((warm_rows, warm_sum) == (cold_rows, cold_sum), warm_rows, cold_rows,
                                         warm_sum, cold_sum)
        per_hour.append((hour, compared[key]))
    results = compared.values()
    total = VerifyResult(all(r.ok for r in results), sum(r.warm_rows for r in results),
                         sum(r.cold_rows for r in results), sum(r.warm_checksum for r in results) % 2**64,
                         sum(r.cold_checksum for r in results) % 2**64)
    return RangeVerdict(total, per_hour)
