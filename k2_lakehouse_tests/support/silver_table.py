"""Silver-shaped Iceberg tables and synthetic trades for compaction and retention tests and benchmarks.

The shape of ``cold.silver_trades`` in nine columns (required keys, optional measures, decimal(38,12),
timestamptz), partitioned by day and exchange, a trade generator for it, ways to fragment a partition as
offloads do, and checks of the files a compaction leaves. Fixtures built on these stay
in the conftest files; tests and benchmarks import these plain names.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pyiceberg.io import FileIO
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.transforms import DayTransform, IdentityTransform
from pyiceberg.types import DecimalType, LongType, NestedField, StringType, TimestamptzType

from k2_lakehouse.cold.storage import exists, list_files

DAY = dt.date(2024, 3, 1)
SORT_COLUMNS = ["symbol", "exchange_ts"]
SYMBOLS = np.array(["BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT"])

# The shape of cold.silver_trades: required keys, optional measures, decimal(38,12), timestamptz (us).
SILVER_SCHEMA = Schema(
    NestedField(1, "exchange", StringType(), required=True),
    NestedField(2, "symbol", StringType(), required=True),
    NestedField(3, "trade_id", StringType(), required=True),
    NestedField(4, "trade_seq", LongType(), required=True),
    NestedField(5, "price", DecimalType(38, 12), required=False),
    NestedField(6, "quantity", DecimalType(38, 12), required=False),
    NestedField(7, "side", StringType(), required=False),
    NestedField(8, "exchange_ts", TimestamptzType(), required=True),
    NestedField(9, "received_at", TimestamptzType(), required=False),
)
SILVER_SPEC = PartitionSpec(
    PartitionField(source_id=8, field_id=1000, transform=DayTransform(), name="exchange_ts_day"),
    PartitionField(source_id=1, field_id=1001, transform=IdentityTransform(), name="exchange"),
)

TradeMaker = Callable[..., pa.Table]
TableMaker = Callable[..., Table]


def _decimal(unscaled: np.ndarray) -> pa.Array:
    """decimal128(38,12) from int64 unscaled values without going through Python Decimal objects."""
    words = np.empty((len(unscaled), 2), dtype=np.int64)
    words[:, 0] = unscaled
    words[:, 1] = unscaled >> 63
    return pa.Array.from_buffers(pa.decimal128(38, 12), len(unscaled), [None, pa.py_buffer(words.tobytes())])


def trades(
    n: int,
    *,
    seq_start: int,
    day: dt.date = DAY,
    hour: int | None = None,
    exchange: str = "binance",
    seed: int = 0,
) -> pa.Table:
    """n trades of one exchange on one day (one hour if given), in random time order, unique trade_seq."""
    rng = np.random.default_rng(seed)
    start = int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() * 1_000_000)
    span = 86_400_000_000
    if hour is not None:
        start, span = start + hour * 3_600_000_000, 3_600_000_000
    ts = start + rng.integers(0, span, n)
    seq = np.arange(seq_start, seq_start + n, dtype=np.int64)
    price = rng.integers(1, 100_000, n) * 10**10 + rng.integers(0, 10**10, n)
    quantity = rng.integers(1, 10**13, n)
    return pa.table(
        {
            "exchange": pa.array(np.full(n, exchange), pa.large_string()),
            "symbol": pa.array(rng.choice(SYMBOLS, n), pa.large_string()),
            "trade_id": pa.array(seq.astype(str), pa.large_string()),
            "trade_seq": pa.array(seq),
            "price": _decimal(price),
            "quantity": _decimal(quantity),
            "side": pa.array(rng.choice(np.array(["buy", "sell"]), n), pa.large_string()),
            "exchange_ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
            "received_at": pa.array(ts + rng.integers(0, 5_000_000, n), pa.timestamp("us", tz="UTC")),
        },
        schema=SILVER_SCHEMA.as_arrow(),
    )


def plain(location: str) -> str:
    """A location as these tests compare them: a local file as its path, an object as its s3:// URI."""
    return location.removeprefix("file://")


def files_under(table: Table) -> set[str]:
    """Every file under the table location (`plain`), on whichever storage the table lives."""
    return {plain(f.path) for f in list_files(table.io, table.location())}


def file_exists(table: Table, location: str) -> bool:
    return exists(table.io, location)


OTHER_DAY = DAY + dt.timedelta(days=1)
PARTITION = {"exchange_ts_day": DAY, "exchange": "binance"}


def partition_files(table: Table, day: dt.date = DAY, exchange: str = "binance") -> list[str]:
    """Live data files of one partition, read through pyiceberg's own inspect API."""
    files = table.inspect.files().to_pylist()
    return [
        f["file_path"]
        for f in files
        if f["partition"]["exchange_ts_day"] == day and f["partition"]["exchange"] == exchange
    ]


def fragmented(table: Table, make_trades: TradeMaker, appends: int = 22, rows: int = 300) -> int:
    """`appends` offload-sized appends into the DAY/binance partition; returns the next free trade_seq."""
    for i in range(appends):
        table.append(make_trades(rows, seq_start=i * rows, seed=i))
    return appends * rows


def added_without_ids(table: Table, make_trades: TradeMaker, files: int, seq_start: int = 0,
                      rows: int = 300) -> None:
    """Files as the offload's ClickHouse writes them (the table's columns by name, no Parquet field ids),
    each sorted in the table's order as a read of the warm table returns it, added one snapshot each."""
    for i in range(files):
        location = f"{table.location()}/data/added/clickhouse-{seq_start + i * rows}.parquet"
        data = make_trades(rows, seq_start=seq_start + i * rows, seed=50 + i).sort_by(
            [(c, "ascending") for c in SORT_COLUMNS])
        with table.io.new_output(location).create() as stream:
            pq.write_table(data.cast(pa.schema([pa.field(f.name, f.type, f.nullable) for f in data.schema])), stream)
        table.add_files([location])


def rows_by_seq(table: Table) -> pa.Table:
    """Full content in a canonical Arrow schema (files Spark wrote read back as string, not large_string)."""
    return table.scan().to_arrow().cast(table.schema().as_arrow()).sort_by("trade_seq")


def read_columns(io: FileIO, location: str, columns: list[str]) -> pa.Table:
    with io.new_input(location).open() as stream:
        return pq.read_table(stream, columns=columns)


def assert_sorted(io: FileIO, path: str, columns: list[str]) -> None:
    keys = read_columns(io, path, columns)
    assert keys.equals(keys.sort_by([(c, "ascending") for c in columns])), f"{path} is not sorted by {columns}"


def assert_sorted_ranges(io: FileIO, paths: list[str], columns: list[str]) -> None:
    """Each file sorted, and the files' key ranges do not overlap (files can be ordered end to end)."""
    ranges = []
    for path in paths:
        assert_sorted(io, path, columns)
        keys = read_columns(io, path, columns).to_pylist()
        ranges.append((tuple(keys[0].values()), tuple(keys[-1].values())))
    ranges.sort()
    assert all(prev[1] <= nxt[0] for prev, nxt in itertools.pairwise(ranges)), ranges
