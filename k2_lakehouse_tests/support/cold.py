"""Plain helpers for cold-tier tests and benchmarks (no fixtures: those stay in the conftest files).

Tests and benchmarks import these by name; nothing in ``k2_lakehouse`` does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl
import pyarrow as pa
from pyiceberg.expressions import AlwaysTrue, BooleanExpression
from pyiceberg.table import Table

from k2_lakehouse.cold.iceberg_internals import schema_to_pyarrow


@dataclass
class _Checksum:
    rows: int = 0
    value: int = 0
    schema: pa.Schema | None = field(default=None)

    def add(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows == 0:
            return
        frame = pl.from_arrow(batch.cast(self.schema) if self.schema is not None else batch)
        assert isinstance(frame, pl.DataFrame)
        # uint64 addition wraps, which is exactly the sum modulo 2**64.
        batch_sum = int(frame.hash_rows().to_numpy().sum(dtype=np.uint64))
        self.value = (self.value + batch_sum) % 2**64
        self.rows += batch.num_rows


def content_checksum(table: Table, row_filter: str | BooleanExpression | None = None) -> tuple[int, int]:
    """(row count, order-independent checksum) of the table's current content, streamed batch by batch.

    Each row is hashed with polars' ``DataFrame.hash_rows`` and the hashes are summed modulo 2**64: the sum
    does not depend on row order or file layout (so it survives compaction) but does change when a row is
    lost, altered or duplicated. Batches are cast to one canonical Arrow schema first, because the same
    values as ``string`` and ``large_string`` would hash differently. The hash is only stable within one
    polars version: compare checksums computed by the same process, never stored ones.
    """
    scan = table.scan(row_filter=row_filter if row_filter is not None else AlwaysTrue())
    checksum = _Checksum(schema=schema_to_pyarrow(scan.projection(), include_field_ids=False))
    for batch in scan.to_arrow_batch_reader():
        checksum.add(batch)
    return checksum.rows, checksum.value


