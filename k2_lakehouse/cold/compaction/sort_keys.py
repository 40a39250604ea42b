"""Sorting a partition's rows in the table's order: plain polars and numpy, no Iceberg.

Sorting is most of an in-process compaction's CPU, and polars' general multi-column sort row-encodes every
key. The rows a compaction sorts are special: few distinct leading values (exchange, symbol), integer or
timestamp keys, and files that are each already sorted. :func:`sort_frame` exploits that and gives exactly
the order ``DataFrame.sort`` gives (ascending, nulls first).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import cast

import numpy as np
import polars as pl

from k2_lakehouse.cold.compaction.model import CompactionError

LOW_CARDINALITY = 65_536
MAX_RUNS_TO_SLICE = 4_096


def sort_frame(frame: pl.DataFrame, sort_columns: Sequence[str]) -> pl.DataFrame:
    """Rows in ``sort_columns`` order (ascending, nulls first, as ``DataFrame.sort``).

    The leading sort columns that fit are packed into one uint64 per row (a low-cardinality string as its
    rank among its sorted distinct values, an integer or timestamp as its offset from the column minimum,
    null as 0), so the sort is one integer argsort instead of polars' multi-column sort, which row-encodes
    every key. Rows whose packed keys tie are then ordered by the remaining
    columns; that is usually a small fraction (trades sharing a microsecond).

    The argsort is a stable one (timsort), which merges runs that are already in order instead of sorting
    from scratch: an offloaded file is written in the warm table's sorting key, the cold table's order, so
    a partition of 96 offloads is a few hundred sorted runs (one per file and symbol), which timsort merges
    far faster than a quicksort sorts. The rows are then assembled from those runs as slices (see ``_take``).
    """
    if not sort_columns or frame.height < 2:
        return frame
    missing = [c for c in sort_columns if c not in frame.columns]
    if missing:
        raise CompactionError(f"sort columns {missing} are not in the table; choose from {frame.columns}")
    packed, rest = packed_sort_key(frame, sort_columns)
    if packed is None:
        return frame.sort(list(sort_columns), multithreaded=True)
    order = np.argsort(packed, kind="stable")
    if rest:
        order = _order_ties(frame, packed, order, rest)
    return _take(frame, order)


def _take(frame: pl.DataFrame, order: np.ndarray) -> pl.DataFrame:
    """The rows of ``frame`` in ``order``.

    An order made of few ascending runs of consecutive rows (sorted input files) becomes zero-copy slices,
    leaving the one copy to the Parquet writer, which reads them chunk by chunk; joining the chunks and
    gathering would copy every row twice. Any other order is gathered, after
    joining the chunks: gathering across one chunk per input file costs more than the join.
    """
    breaks = np.flatnonzero(np.diff(order) != 1) + 1
    if len(breaks) >= MAX_RUNS_TO_SLICE:
        return frame.rechunk()[order]
    bounds = [0, *breaks.tolist(), len(order)]
    return pl.concat([frame.slice(int(order[start]), end - start) for start, end in itertools.pairwise(bounds)],
                     rechunk=False)


def packed_sort_key(frame: pl.DataFrame, sort_columns: Sequence[str]) -> tuple[np.ndarray | None, list[str]]:
    """One uint64 per row encoding the longest packable prefix of the sort columns, and the columns left."""
    key: np.ndarray | None = None
    used_bits = 0
    for position, name in enumerate(sort_columns):
        codes = sort_codes(frame.get_column(name))
        if codes is None:
            return key, list(sort_columns[position:])
        values, bits = codes
        if used_bits + bits > 64:
            return key, list(sort_columns[position:])
        key = values if key is None else (key << np.uint64(bits)) | values
        used_bits += bits
    return key, []


def sort_codes(column: pl.Series) -> tuple[np.ndarray, int] | None:
    """Order-preserving non-negative codes of a column (null -> 0) and the bits they need, if cheap to build."""
    dtype = column.dtype
    if dtype == pl.String:
        if (by_runs := _string_codes_by_runs(column)) is not None:
            return by_runs
        # A HyperLogLog estimate, cheap, rules out ids and other high-cardinality strings before the exact
        # distinct values are computed, which is costly for millions of unique strings.
        if cast(int, column.approx_n_unique()) > 2 * LOW_CARDINALITY:  # polars types any scalar it returns
            return None
        distinct = column.drop_nulls().unique()
        if distinct.len() > LOW_CARDINALITY:
            return None
        # Python sorts str by code point, polars compares UTF-8 bytes: the same order.
        ranks = column.cast(pl.Enum(sorted(distinct.to_list()))).to_physical().cast(pl.UInt64) + 1
        return ranks.fill_null(0).to_numpy(), distinct.len().bit_length()
    if not (dtype.is_integer() or dtype.is_temporal()):
        return None
    physical = column.to_physical()
    # The physical form of an integer or temporal column is an integer column: polars types its min and max as any scalar.
    low, high = cast("int | None", physical.min()), cast(int, physical.max())
    if low is None:  # all null
        return np.zeros(column.len(), dtype=np.uint64), 0
    span = int(high) - int(low) + 1
    if span >= 2**63:
        return None
    # Subtracting in Int64 (UInt64 first checked to fit) keeps the offset exact.
    if physical.dtype == pl.UInt64 and int(high) >= 2**63:
        offsets = physical - low + 1
    else:
        offsets = (physical.cast(pl.Int64) - int(low) + 1).cast(pl.UInt64)
    return offsets.fill_null(0).to_numpy(), span.bit_length()


def _string_codes_by_runs(column: pl.Series) -> tuple[np.ndarray, int] | None:
    """Codes of a string column whose equal values sit together in at most LOW_CARDINALITY runs, else None.

    Each offloaded file is in the table's order, so a leading sort column (the exchange, the symbol) forms a
    few runs per file. Ranking the runs' values costs one comparison per row, several times less than
    hashing every value to rank it. Codes start at 0 when there is no null.
    """
    if column.is_empty():
        return np.zeros(0, dtype=np.uint64), 0
    # Ids and other unsorted strings show too many runs within their first rows: stop before comparing them all.
    head = column.head(LOW_CARDINALITY + 1)
    if head.ne_missing(head.shift(1)).sum() > LOW_CARDINALITY:
        return None
    starts = np.flatnonzero(column.ne_missing(column.shift(1)).to_numpy())
    if len(starts) == 0 or starts[0] != 0:  # a leading null equals the null shifted in
        starts = np.insert(starts, 0, 0)
    if len(starts) > LOW_CARDINALITY:
        return None
    values = column.gather(starts).to_list()
    distinct = sorted({v for v in values if v is not None})  # code point order is polars' UTF-8 byte order
    first = 1 if None in values else 0
    rank = {v: code for code, v in enumerate(distinct, first)}
    codes = np.array([0 if v is None else rank[v] for v in values], dtype=np.uint64)
    return np.repeat(codes, np.diff(starts, append=column.len())), (first + len(distinct) - 1).bit_length()


def _order_ties(frame: pl.DataFrame, packed: np.ndarray, order: np.ndarray, rest: list[str]) -> np.ndarray:
    """Within each run of equal packed keys, reorder rows by the remaining sort columns."""
    sorted_keys = packed[order]
    tie = sorted_keys[1:] == sorted_keys[:-1]
    if not tie.any():
        return order
    in_run = np.zeros(len(order), dtype=bool)
    in_run[1:] |= tie
    in_run[:-1] |= tie
    positions = np.flatnonzero(in_run)
    rows = order[positions]
    # Sorting the tied rows by (packed key, rest) only permutes rows within their own run, because the
    # runs already sit in packed-key order.
    tied = frame[rows].select(rest).with_columns(pl.Series("__k2_key", packed[rows]), pl.int_range(pl.len()).alias("__k2_row"))
    within = tied.sort(["__k2_key", *rest], multithreaded=True).get_column("__k2_row").to_numpy()
    order = order.copy()
    order[positions] = rows[within]
    return order
