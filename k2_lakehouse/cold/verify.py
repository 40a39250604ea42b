"""Does cold hold exactly what warm holds? Checked in ClickHouse, with the warm side's own checksum.

The cold side is read as the exact list of data files of the snapshot the catalog points at (planned by
pyiceberg from that metadata file), never "the latest metadata file": a killed commit can leave a newer
metadata file that the catalog never adopted. ClickHouse reads that list itself (`storage.clickhouse_reader`:
file() or s3()), wherever the warehouse is and whatever the working directory. Both sides use the same checksum expression
(warm.tables.checksum_sql) and the same hour or window predicate, so equal numbers mean equal rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError
from pyiceberg.catalog import Catalog
from pyiceberg.table import Table

from k2_lakehouse.cold.storage import clickhouse_reader, prepare_clickhouse, query_size
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


PINNED_COLD = "<pinned cold snapshot>"
"""Where a `query_pinned` SELECT names its FROM: replaced by the pinned snapshot's exact data files."""


@dataclass(frozen=True)
class PinnedSnapshot:
    """What the catalog says is current: its metadata file, snapshot, that snapshot's data files, and the SQL
    (a table function over exactly those files) ClickHouse reads them with."""

    metadata: str
    snapshot_id: int
    files: tuple[str, ...]
    source: str


def pinned_snapshot(table: Table) -> PinnedSnapshot | None:
    """The table's current state as the catalog records it; None before the first commit.

    Reading "the latest metadata file" is wrong: a commit killed after writing its metadata file but
    before the catalog's swap leaves a newer file that was never committed (and a later real commit
    may reuse its version number). So the data files are those pyiceberg plans for the snapshot of the
    metadata file the catalog points at, and ClickHouse is given that exact list.
    """
    snapshot = table.current_snapshot()
    if snapshot is None:
        return None
    cold = cold_table(table.name()[-1])
    files = []
    for task in table.scan(snapshot_id=snapshot.snapshot_id).plan_files():
        if task.delete_files:
            raise NotImplementedError(f"{cold.name} has row-level delete files; the cold tier is copy-on-write")
        files.append(task.file.file_path)
    return PinnedSnapshot(table.metadata_location, snapshot.snapshot_id, tuple(files),
                          clickhouse_reader(table.io, files, cold.cold_structure))


class ColdNotReadable(RuntimeError):
    """ClickHouse refused to read the cold table's files."""


def query_pinned(client: Client, pinned: PinnedSnapshot, select: str, parameters: dict[str, object]) -> Sequence[Sequence[Any]]:
    """Run `select`, whose FROM is PINNED_COLD, on exactly the pinned snapshot's files."""
    query = select.replace(PINNED_COLD, pinned.source)
    try:
        return client.query(query, parameters=parameters, settings=query_size(query)).result_rows
    except DatabaseError as exc:
        if "PATH_ACCESS_DENIED" not in str(exc):
            raise
        # Embedded ClickHouse reads local files anywhere; a ClickHouse server only below its user_files_path.
        raise ColdNotReadable(
            f"ClickHouse may not read the cold files of snapshot {pinned.snapshot_id} ({pinned.metadata}): a "
            "ClickHouse server reads local files only below its user_files_path; give it an object-store "
            "warehouse (K2_ICEBERG_WAREHOUSE=s3://...)") from None


def cold_checksum(client: Client, table: Table, cold_name: str, hours: HourRange) -> tuple[int, int]:
    """(rows, checksum) of the range in the table's current snapshot, computed by ClickHouse."""
    cold = cold_table(cold_name)
    pinned = pinned_snapshot(table)
    if pinned is None:
        return 0, 0
    prepare_clickhouse(client, table.io, table.location())
    rows, checksum = query_pinned(
        client, pinned,
        f"SELECT count(), {checksum_sql(cold.warm)} FROM {PINNED_COLD} WHERE {cold.range_predicate}",
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
