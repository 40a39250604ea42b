"""Sort keys on plain polars frames: every order is checked against polars' own ``sort`` of the same data."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from k2_lakehouse.cold.compaction import CompactionError, sort_keys
from k2_lakehouse.cold.compaction.sort_keys import packed_sort_key, sort_codes, sort_frame

RNG_SEED = 11


def polars_order(frame: pl.DataFrame, columns: list[str]) -> np.ndarray:
    """Row positions in the order polars' stable sort puts them (ascending, nulls first)."""
    return (frame.with_row_index("__row").sort(columns, nulls_last=False, maintain_order=True)
            .get_column("__row").to_numpy().astype(np.int64))


def column_cases() -> dict[str, pl.Series]:
    rng = np.random.default_rng(RNG_SEED)
    n = 3_000
    nulls = rng.random(n) < 0.1
    return {
        # Equal values together in a few runs, as in a sorted file.
        "strings in runs": pl.Series(np.sort(rng.choice(np.array(["kraken", "binance", "bybit"]), n))),
        # A new run on every row (more runs than the run-by-run ranking takes), few distinct values.
        "strings scattered": pl.Series(["b", "a", "\u00e4", "B", ""] * 14_000),
        "strings with nulls": pl.Series(rng.choice(np.array(["b", "a", "\u00e4", "B", ""]), n)).set(pl.Series(nulls), None),
        "signed integers": pl.Series(rng.integers(-1_000, 1_000, n)).set(pl.Series(nulls), None),
        "unsigned above 2**63": pl.Series(rng.integers(0, 50, n).astype(np.uint64) + np.uint64(2**63), dtype=pl.UInt64),
        "timestamps": pl.Series(rng.integers(0, 10**9, n) + 1_700_000_000_000_000).cast(pl.Datetime("us", "UTC")),
        "dates": pl.Series([dt.date(2024, 1, 1) + dt.timedelta(days=int(d)) for d in rng.integers(0, 400, n)]),
        "all null": pl.Series([None] * n, dtype=pl.Int64),
    }


@pytest.mark.parametrize("case", list(column_cases()))
def test_sort_codes_order_rows_as_polars_sorts_the_column(case: str) -> None:
    column = column_cases()[case]

    codes = sort_codes(column)

    assert codes is not None, f"{case} is packable"
    values, bits = codes
    frame = pl.DataFrame({"v": column})
    assert np.array_equal(np.argsort(values, kind="stable"), polars_order(frame, ["v"]))
    assert int(values.max()) < 2**bits or (bits == 0 and int(values.max()) == 0)
    assert len(np.unique(values)) == column.n_unique()  # equal values, equal codes; null is a value of its own


@pytest.mark.parametrize(("case", "column"), [
    ("floats", pl.Series([0.5, 0.25, 1.0])),
    ("unique strings out of order", pl.Series([f"id-{v}" for v in np.random.default_rng(RNG_SEED).permutation(200_000)])),
    ("integers spanning 2**63 or more", pl.Series([-(2**62), 2**62, 0], dtype=pl.Int64) * 2),
])
def test_sort_codes_decline_columns_that_do_not_pack(case: str, column: pl.Series) -> None:
    assert sort_codes(column) is None, case


def test_packed_sort_key_orders_rows_as_polars_sorts_every_packed_column() -> None:
    rng = np.random.default_rng(RNG_SEED)
    n = 5_000
    frame = pl.DataFrame({
        "exchange": rng.choice(np.array(["kraken", "binance"]), n),
        "symbol": rng.choice(np.array(["ETH/USDT", "BTC/USDT", "SOL/USDT"]), n),
        "exchange_ts": pl.Series(rng.integers(0, 86_400_000_000, n)).cast(pl.Datetime("us", "UTC")),
        "trade_seq": rng.integers(0, 10**6, n),
    })
    columns = ["exchange", "symbol", "exchange_ts", "trade_seq"]

    key, rest = packed_sort_key(frame, columns)

    assert key is not None and rest == []
    assert np.array_equal(np.argsort(key, kind="stable"), polars_order(frame, columns))


def test_packed_sort_key_leaves_out_the_columns_past_64_bits() -> None:
    # Each column spans 2**30 values, so its codes (offsets 1 .. 2**30) need 31 bits: two fit, a third does not.
    rng = np.random.default_rng(RNG_SEED)
    n = 2_000
    frame = pl.DataFrame({name: np.concatenate([[0, 2**30 - 1], rng.integers(0, 2**30, n - 2)]) for name in "abc"})

    key, rest = packed_sort_key(frame, ["a", "b", "c"])

    assert rest == ["c"]
    assert key is not None
    assert np.array_equal(np.argsort(key, kind="stable"), polars_order(frame, ["a", "b"]))


@pytest.mark.parametrize("layout", ["sorted files concatenated", "reversed rows", "random rows"])
def test_sort_frame_gives_the_rows_polars_sort_gives(layout: str) -> None:
    rng = np.random.default_rng(RNG_SEED)
    columns = ["symbol", "exchange_ts", "price"]  # price (float) is unpackable: it breaks the packed ties
    parts = []
    for i in range(8):
        n = int(rng.integers(1, 2_000))
        parts.append(pl.DataFrame({
            "symbol": rng.choice(np.array(["b", "a", "c"]), n),
            "exchange_ts": rng.integers(0, 50, n) + i * 10,
            "price": rng.integers(0, 4, n) / 4,
            "row": rng.integers(0, 10**9, n),
        }).sort(columns))
    frame = pl.concat(parts, rechunk=False)
    if layout == "reversed rows":
        frame = frame.sort(columns, descending=True)
    elif layout == "random rows":
        frame = frame.sample(fraction=1.0, shuffle=True, seed=RNG_SEED)

    got = sort_frame(frame, columns)

    assert got.select(columns).equals(frame.sort(columns).select(columns))
    assert got.sort(frame.columns).equals(frame.sort(frame.columns))  # the same rows, whole


def test_sort_frame_assembles_sorted_files_as_slices_without_copying_rows() -> None:
    files = [pl.DataFrame({"symbol": ["a"] * 100 + ["b"] * 100, "seq": [i] * 200}) for i in range(3)]
    frame = pl.concat(files, rechunk=False)

    got = sort_frame(frame, ["symbol", "seq"])

    assert got.equals(frame.sort(["symbol", "seq"]))
    assert got.n_chunks("all") == [6, 6]  # one slice per run of consecutive rows: each file's "a" rows, then its "b" rows


def test_sort_frame_refuses_a_sort_column_the_frame_lacks() -> None:
    frame = pl.DataFrame({"symbol": ["b", "a"]})

    with pytest.raises(CompactionError, match=r"\['exchange_ts'\] are not in the table"):
        sort_frame(frame, ["symbol", "exchange_ts"])


def test_sort_frame_without_sort_columns_keeps_the_row_order() -> None:
    frame = pl.DataFrame({"symbol": ["b", "a", "c"]})

    assert sort_frame(frame, []).equals(frame)


@pytest.mark.parametrize("sort_columns", [
    ["exchange", "symbol", "exchange_ts", "trade_id"],  # silver's order, every column packed
    ["symbol", "exchange_ts", "price"],  # ties of the packed prefix broken by an unpackable float
    ["symbol", "bucket", "wide", "trade_id"],  # ... by a range too wide to pack, then a string
    ["big", "symbol"],  # unsigned values above 2**63
    ["wide", "symbol"],  # nothing packable first: polars' own multi-column sort
])
@pytest.mark.parametrize("string_codes", ["by runs", "by hashing"])
def test_sort_frame_orders_rows_as_dataframe_sort(sort_columns: list[str], string_codes: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    if string_codes == "by hashing":  # random strings form ~4,000 runs here: too many to rank run by run
        monkeypatch.setattr(sort_keys, "LOW_CARDINALITY", 64)
    rng = np.random.default_rng(3)
    n = 5_000

    def with_nulls(values: pl.Series) -> pl.Series:
        return pl.select(pl.when(pl.lit(pl.Series(rng.random(n) < 0.1))).then(None).otherwise(values)).to_series()

    frame = pl.DataFrame({
        "exchange": rng.choice(np.array(["kraken", "binance"]), n),
        "symbol": with_nulls(pl.Series(rng.choice(np.array(["b", "a", "\u00e4", "B", ""]), n))),
        "exchange_ts": pl.Series(rng.integers(0, 40, n) * 1_000 + 1_700_000_000_000_000).cast(pl.Datetime("us", "UTC")),
        "trade_id": with_nulls(pl.Series([str(v) for v in rng.integers(0, 3 * n, n)])),
        "bucket": with_nulls(pl.Series(rng.integers(-3, 3, n))),
        "big": pl.Series(rng.integers(0, 50, n).astype(np.uint64) + np.uint64(2**63), dtype=pl.UInt64),
        "wide": pl.Series(rng.choice(np.array([-(2**62), 0, 2**62]), n)),
        "price": with_nulls(pl.Series(rng.integers(0, 5, n) / 4)),
    })

    got = sort_frame(frame, sort_columns)

    assert got.select(sort_columns).equals(frame.sort(sort_columns).select(sort_columns))
    assert got.sort(frame.columns).equals(frame.sort(frame.columns))  # the same rows, whole


def test_sort_frame_merges_files_that_are_each_sorted_into_one_order() -> None:
    """Offloaded files arrive each in the table's order, in any file order, with keys tied across files."""
    rng = np.random.default_rng(5)
    files = []
    for i in range(12):
        n = int(rng.integers(1, 400))
        files.append(pl.DataFrame({
            "exchange": ["binance"] * n,
            "symbol": rng.choice(np.array(["ETH/USDT", "BTC/USDT", "SOL/USDT"]), n),
            "exchange_ts": pl.Series((i % 5) * 1_000 + rng.integers(0, 2_000, n)).cast(pl.Datetime("us", "UTC")),
            "trade_id": [str(v) for v in rng.integers(0, 10**6, n)],
        }).sort(["exchange", "symbol", "exchange_ts", "trade_id"]))
    frame = pl.concat(files, rechunk=False)  # one chunk per file, as a read of the files returns them
    columns = ["exchange", "symbol", "exchange_ts", "trade_id"]

    got = sort_frame(frame, columns)

    assert got.equals(frame.sort(columns))
