"""The nine cold tables: Iceberg copies of the warm tables, column for column, in namespace `cold`.

Each `ColdTable` ties a cold table to its `WarmTable` (whose checksum expressions are reused on the
cold side), to the SELECT that reads the warm rows of an hour range already cast to the cold types,
and to the predicate that finds the same rows in the cold copy.

Types are exact: prices and quantities stay Decimal(38, 12) (quote volume 38, 24), times are
microsecond timestamptz. Iceberg has no unsigned integers, so UInt32 is stored as long and UInt64
as decimal(20, 0), which holds every UInt64 without overflow.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.expressions import And, BooleanExpression, GreaterThanOrEqual, LessThan, Reference
from pyiceberg.expressions.literals import literal
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table, TableProperties
from pyiceberg.transforms import DayTransform, HourTransform, IdentityTransform, MonthTransform, Transform
from pyiceberg.types import DecimalType, IcebergType, LongType, NestedField, StringType, TimestamptzType

from k2_lakehouse.cold.catalog import NAMESPACE
from k2_lakehouse.hours import HourRange, in_hours
from k2_lakehouse.warm.content import gold_windows_predicate
from k2_lakehouse.warm.tables import BRONZE_TRADES, SILVER_TRADES, TIMEFRAMES, TRADES_RAW, WarmTable, gold_table

FILE_SPANS = {"Hour": timedelta(hours=1), "Day": timedelta(days=1)}


@dataclass(frozen=True)
class Column:
    """One column: its Iceberg type, its ClickHouse type in the cold Parquet files, its warm type."""

    name: str
    iceberg_type: IcebergType
    cold_type: str  # what ClickHouse writes to Parquet and reads back (file() or s3())
    warm_type: str  # what the warm table (or gold _view) calls it; the federated views return this

    @property
    def from_warm(self) -> str:
        """The SELECT expression turning the warm column into the cold one.

        LowCardinality(String) is written as is: Parquet stores it as a dictionary-encoded string either
        way, and skipping the cast saves materialising every value.
        """
        if self.warm_type in (self.cold_type, f"LowCardinality({self.cold_type})"):
            return self.name
        return f"CAST({self.name} AS {self.cold_type}) AS {self.name}"


def _string(name: str, low_cardinality: bool = False) -> Column:
    return Column(name, StringType(), "String", "LowCardinality(String)" if low_cardinality else "String")


def _timestamp(name: str, warm_seconds: bool = False) -> Column:
    return Column(name, TimestamptzType(), "DateTime64(6, 'UTC')",
                  "DateTime('UTC')" if warm_seconds else "DateTime64(6, 'UTC')")


def _uint32(name: str) -> Column:
    return Column(name, LongType(), "Int64", "UInt32")


def _uint64(name: str) -> Column:
    return Column(name, DecimalType(20, 0), "Decimal(20, 0)", "UInt64")


def _decimal(name: str, scale: int = 12) -> Column:
    return Column(name, DecimalType(38, scale), f"Decimal(38, {scale})", f"Decimal(38, {scale})")


_LINEAGE = (
    _string("source_format", True), _string("source_name"), _uint32("source_partition"), _uint64("source_position"),
    _uint32("source_element"),
)

RAW_COLUMNS = (
    _string("exchange", True), *_LINEAGE, _string("source_symbol", True), _string("payload"),
    _timestamp("received_at"), _timestamp("message_ts"), _timestamp("event_hour", warm_seconds=True),
)
BRONZE_COLUMNS = (
    _string("exchange", True), _string("exchange_symbol"), _string("trade_id"), _uint64("trade_seq"),
    _string("price_text"), _string("quantity_text"), _string("side", True), _timestamp("exchange_ts"),
    _uint32("underlying_trades"), _string("message_type", True), _timestamp("event_hour", warm_seconds=True), *_LINEAGE,
    _timestamp("received_at"),
)
SILVER_COLUMNS = (
    _string("exchange", True), _string("symbol", True), _string("exchange_symbol"), _string("trade_id"),
    _uint64("trade_seq"), _decimal("price"), _decimal("quantity"), _string("side", True), _timestamp("exchange_ts"),
    _uint32("underlying_trades"), *_LINEAGE, _timestamp("received_at"),
)
GOLD_COLUMNS = (
    _string("exchange", True), _string("symbol", True), _timestamp("window_start", warm_seconds=True),
    _decimal("open"), _decimal("high"), _decimal("low"), _decimal("close"), _decimal("volume"),
    _decimal("quote_volume", 24), _uint64("trade_count"), _decimal("vwap"),
)


@dataclass(frozen=True)
class ColdTable:
    name: str
    warm: WarmTable
    columns: tuple[Column, ...]
    hour_column: str  # the cold (and warm) column that places a row in an hour or a window
    partitioning: tuple[tuple[str, Transform[Any, Any]], ...]  # (source column, transform)
    file_span: str  # a key of FILE_SPANS: a staged Parquet file holds one span of one exchange, so one partition

    @property
    def identifier(self) -> tuple[str, str]:
        return (NAMESPACE, self.name)

    @property
    def timeframe(self) -> str | None:
        return self.name.removeprefix("gold_ohlcv_") if self.name.startswith("gold_ohlcv_") else None

    @property
    def schema(self) -> Schema:
        # Required, like the warm columns: ClickHouse writes them non-nullable and reads them back so.
        return Schema(*(NestedField(i, c.name, c.iceberg_type, required=True) for i, c in enumerate(self.columns, 1)))

    @property
    def spec(self) -> PartitionSpec:
        ids = {c.name: i for i, c in enumerate(self.columns, 1)}
        return PartitionSpec(*(
            PartitionField(ids[column], 1000 + n, transform, f"{column}_{_transform_name(transform)}")
            for n, (column, transform) in enumerate(self.partitioning)
        ))

    @property
    def warm_source(self) -> str:
        """Where the warm rows are read: final candles for gold, deduplicated rows for bronze and silver."""
        return self.source(final=True)

    def source(self, final: bool) -> str:
        """`warm_source`, or with final=False the stored rows of bronze and silver as they are, without FINAL.

        Those are the same rows whenever no two stored rows of the range share a sorting key (ReplacingMergeTree
        without a version or is_deleted column: FINAL only collapses rows with equal keys).
        """
        if self.timeframe is not None:
            return f"k2.{self.warm.name}_view"
        return f"{self.warm.qualified}{' FINAL' if final and self.warm.final else ''}"

    @property
    def range_predicate(self) -> str:
        """ClickHouse predicate (binding {start} and {end}) selecting a range's rows, warm or cold alike.

        For gold these are the windows the hours touch; a daily window is taken whole.
        """
        if self.timeframe is not None:
            return gold_windows_predicate(self.timeframe)
        return in_hours(self.hour_column)

    def select(self, final: bool) -> str:
        """The warm rows of an hour range, cast column by column to the cold schema, read from `source(final)`."""
        columns = ", ".join(c.from_warm for c in self.columns)
        return f"SELECT {columns} FROM {self.source(final)} WHERE {self.range_predicate}"

    @property
    def cold_structure(self) -> str:
        """The Parquet files' structure for ClickHouse's file(), so no type is left to inference."""
        return ", ".join(f"{c.name} {c.cold_type}" for c in self.columns)

    @property
    def file_start(self) -> str:
        """ClickHouse expression: the start (Unix seconds) of the span whose staged file holds the row."""
        return f"toUnixTimestamp(toStartOf{self.file_span}({self.hour_column}))"

    @property
    def file_predicate(self) -> str:
        """ClickHouse predicate (binding {file_start}, {file_end}, {exchange}): the rows of one staged file.

        Column bounds rather than `file_start` itself, so ClickHouse prunes with the primary key (every warm
        sorting key starts with the hour and/or the exchange).
        """
        return f"{in_hours(self.hour_column, 'file_start', 'file_end')} AND exchange = {{exchange:String}}"

    def range_filter(self, hours: HourRange) -> BooleanExpression:
        """The Iceberg row filter equal to `range_predicate`: the rows an offload of `hours` replaces."""
        start = hours.start
        if self.timeframe == "1d":
            start = datetime(start.year, start.month, start.day, tzinfo=UTC)
        column = Reference(self.hour_column)
        return And(GreaterThanOrEqual(term=column, value=literal(_iso(start))),
                   LessThan(term=column, value=literal(_iso(hours.end))))


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _transform_name(transform: Transform[Any, Any]) -> str:
    names: dict[type[Transform[Any, Any]], str] = {HourTransform: "hour", DayTransform: "day", MonthTransform: "month"}
    return names.get(type(transform), "identity")


def _trades_table(name: str, warm: WarmTable, columns: tuple[Column, ...], hour_column: str,
                  time_transform: Transform[Any, Any]) -> ColdTable:
    # Staged files are cut per hour even where the partition is a day: re-offloading an hour then
    # drops whole files, never rewrites a day's worth of trades.
    return ColdTable(name, warm, columns, hour_column, ((hour_column, time_transform), ("exchange", IdentityTransform())),
                     "Hour")


def _gold_table(timeframe: str) -> ColdTable:
    # Gold is small: one staged file per day and exchange; a later sub-day re-offload rewrites it.
    return ColdTable(f"gold_ohlcv_{timeframe}", gold_table(timeframe), GOLD_COLUMNS, "window_start",
                     (("window_start", MonthTransform()), ("exchange", IdentityTransform())), "Day")


COLD_TABLES: dict[str, ColdTable] = {
    t.name: t for t in (
        _trades_table("raw_trades", TRADES_RAW, RAW_COLUMNS, "event_hour", HourTransform()),
        _trades_table("bronze_trades", BRONZE_TRADES, BRONZE_COLUMNS, "event_hour", DayTransform()),
        _trades_table("silver_trades", SILVER_TRADES, SILVER_COLUMNS, "exchange_ts", DayTransform()),
        *(_gold_table(tf) for tf in TIMEFRAMES),
    )
}


def cold_table(name: str) -> ColdTable:
    try:
        return COLD_TABLES[name]
    except KeyError:
        raise ValueError(f"unknown cold table {name!r}; one of {', '.join(COLD_TABLES)}") from None


def table_properties(cold: ColdTable) -> dict[str, str]:
    return {
        # add_files matches Parquet columns to Iceberg fields by name: ClickHouse writes no field ids.
        TableProperties.DEFAULT_NAME_MAPPING: cold.schema.name_mapping.model_dump_json(),
        # Partition values are inferred from column bounds: keep the exchange bound untruncated.
        f"{TableProperties.METRICS_MODE_COLUMN_CONF_PREFIX}.exchange": "full",
        TableProperties.PARQUET_COMPRESSION: "zstd",
        # Concurrent offloads are validated, not merged blindly: a writer whose range gained or lost
        # files since it planned must re-plan (see offload.py).
        TableProperties.WRITE_DELETE_ISOLATION_LEVEL: "serializable",
        TableProperties.WRITE_UPDATE_ISOLATION_LEVEL: "serializable",
    }


def ensure_cold_table(catalog: Catalog, cold: ColdTable) -> Table:
    """Create the table if missing; add the columns the code has and the table lacks, drop those it no longer has.

    Dropping is a metadata change: files already written keep the column and readers no longer see it.
    """
    try:
        table = catalog.load_table(cold.identifier)
    except NoSuchTableError:
        return catalog.create_table_if_not_exists(
            cold.identifier, cold.schema, partition_spec=cold.spec, properties=table_properties(cold))
    present = {f.name for f in table.schema().fields}
    missing = [c for c in cold.columns if c.name not in present]
    dropped = sorted(present - {c.name for c in cold.columns})
    if missing or dropped:
        # Columns added to an existing table are optional: the files already written lack them.
        added = Schema(*(NestedField(i, c.name, c.iceberg_type, required=False) for i, c in enumerate(missing, 1)))
        with table.transaction() as txn:
            with txn.update_schema() as update:
                update.union_by_name(added)
                for name in dropped:
                    update.delete_column(name)
            txn.set_properties({TableProperties.DEFAULT_NAME_MAPPING: txn.table_metadata.schema().name_mapping
                                .model_dump_json()})
        table = catalog.load_table(cold.identifier)
    return table


def ensure_cold_tables(catalog: Catalog) -> dict[str, Table]:
    """Every cold table, created or evolved as needed. Idempotent; safe to call before each run."""
    catalog.create_namespace_if_not_exists(NAMESPACE)
    return {name: ensure_cold_table(catalog, cold) for name, cold in COLD_TABLES.items()}
