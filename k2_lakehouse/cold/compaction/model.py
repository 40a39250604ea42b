"""The vocabulary of compaction: partitions, results, the engine protocol, errors and snapshot tags.

Every other module of the package speaks in these types, so they sit apart from any engine, planning or
commit code: an engine only needs :class:`CompactionEngine` and :class:`PartitionRef` to be written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import pyarrow as pa
from pyiceberg.manifest import DataFile
from pyiceberg.table import Table
from pyiceberg.typedef import Record

from k2_lakehouse.cold.commit_retry import CommitConflictError

DEFAULT_TARGET_FILE_BYTES = 128 * 1024 * 1024

SNAPSHOT_OPERATION = "k2.operation"
SNAPSHOT_ENGINE = "k2.engine"
SNAPSHOT_FILES_BEFORE = "k2.files-before"
SNAPSHOT_FILES_AFTER = "k2.files-after"
SNAPSHOT_PARTITION = "k2.partition"


class CompactionError(RuntimeError):
    """Compaction could not produce a correct rewrite; the table was left unchanged."""


class CompactionConflictError(CompactionError, CommitConflictError):
    """Concurrent writers kept changing the partition; every attempt was abandoned before commit."""


@dataclass(frozen=True)
class PartitionRef:
    """A partition of one partition spec, by its Iceberg partition values (e.g. days since epoch, exchange).

    ``values`` are the transformed values as stored in manifests (``day(exchange_ts)`` is an ``int`` of days
    since 1970-01-01), so a PartitionRef compares equal to exactly the files Iceberg groups together.
    """

    spec_id: int
    values: tuple[object, ...]

    @classmethod
    def of(cls, data_file: DataFile) -> PartitionRef:
        record = data_file.partition
        return cls(spec_id=data_file.spec_id, values=tuple(record[pos] for pos in range(len(record))))

    def record(self) -> Record:
        return Record(*self.values)

    def as_dict(self, table: Table) -> dict[str, object]:
        spec = table.specs()[self.spec_id]
        return {f.name: value for f, value in zip(spec.fields, self.values, strict=True)}

    def path(self, table: Table) -> str:
        """Human form, as in data paths: ``exchange_ts_day=2024-01-01/exchange=binance``."""
        return table.specs()[self.spec_id].partition_to_path(self.record(), table.schema())


@dataclass(frozen=True)
class CompactionResult:
    table: str
    partition: dict[str, object]
    partition_path: str
    files_before: int
    files_after: int
    rows: int
    seconds: float
    snapshot_id: int | None
    engine: str
    attempts: int = 1
    bytes_before: int = 0
    bytes_after: int = 0


@runtime_checkable
class CompactionEngine(Protocol):
    """Reads a partition's data files and produces the compacted, sorted data.

    Return either an Arrow table (in the table's current schema; the caller writes it with pyiceberg's
    Parquet writer) or the URIs of Parquet files already written under the table location (the caller
    registers them). Engines never commit: the swap is done by :func:`compact_partition`.
    """

    name: str

    def rewrite(
        self, table: Table, files: list[DataFile], sort_columns: list[str], target_file_bytes: int
    ) -> pa.Table | list[str]: ...


def table_name(table: Table) -> str:
    """``namespace.table``, as error messages and results name a table."""
    return ".".join(table.name())
