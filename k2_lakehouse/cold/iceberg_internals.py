"""Every pyiceberg name the project uses that pyiceberg does not promise to keep, behind one version check.

pyiceberg 0.12 lacks compaction, a strict metrics evaluator in its public API and a way to write data files
without committing them, so the cold tier builds on its internals: underscore names, and the building
blocks of its own writers (manifest writers, table updates and requirements, snapshot summaries, the
file-format writer, scan and file-conversion helpers of ``pyiceberg.io.pyarrow``, its thread pool). Those
change between releases without notice. They are imported here only, under their own names (without the
leading underscore), and other modules, tests and benchmarks import them from here.

pyiceberg's public API (catalogs, ``Table``, scans, transactions, expressions, schemas, types, the table
metadata model: ``DataFile``, ``ManifestFile``, ``Snapshot``...) is imported directly where it is used.

At import, :func:`check_pyiceberg` checks that the installed pyiceberg is in :data:`SUPPORTED_VERSIONS`
and has every attribute in :data:`USED`, and otherwise fails with one message naming both versions, so
an upgrade fails at start-up with the fix, not deep inside a commit.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Sequence

import pyiceberg

SUPPORTED_VERSIONS = ">=0.12,<0.13"
SUPPORTED_RANGE = ((0, 12), (0, 13))
"""(lowest supported major.minor, first unsupported): the ``SUPPORTED_VERSIONS`` range as numbers."""

USED: tuple[str, ...] = (
    "pyiceberg.expressions.visitors:_StrictMetricsEvaluator",
    "pyiceberg.expressions.visitors:manifest_evaluator",
    "pyiceberg.io.fileformat:FileFormatFactory",
    "pyiceberg.io.pyarrow:ArrowScan",
    "pyiceberg.io.pyarrow:PyArrowFileIO.fs_by_scheme",
    "pyiceberg.io.pyarrow:PyArrowFileIO.parse_location",
    "pyiceberg.io.pyarrow:_dataframe_to_data_files",
    "pyiceberg.io.pyarrow:_to_requested_schema",
    "pyiceberg.io.pyarrow:parquet_file_to_data_file",
    "pyiceberg.io.pyarrow:pyarrow_to_schema",
    "pyiceberg.io.pyarrow:schema_to_pyarrow",
    "pyiceberg.manifest:ManifestWriter",
    "pyiceberg.manifest:write_manifest",
    "pyiceberg.manifest:write_manifest_list",
    "pyiceberg.schema:sanitize_column_names",
    "pyiceberg.table.locations:load_location_provider",
    "pyiceberg.table.snapshots:SnapshotSummaryCollector",
    "pyiceberg.table.snapshots:ancestors_of",
    "pyiceberg.table.snapshots:update_snapshot_summaries",
    "pyiceberg.table.update:AddSnapshotUpdate",
    "pyiceberg.table.update:AssertRefSnapshotId",
    "pyiceberg.table.update:SetPropertiesUpdate",
    "pyiceberg.table.update:SetSnapshotRefUpdate",
    "pyiceberg.table.update:TableUpdate",
    "pyiceberg.utils.concurrent:ExecutorFactory",
)
"""``module:attribute`` of every internal this module re-exports (methods as ``Class.method``)."""


class PyIcebergVersionError(ImportError):
    """The installed pyiceberg is not one whose internals the project was written against."""


def missing_internals(used: Sequence[str] = USED) -> list[str]:
    """The entries of ``used`` the installed pyiceberg lacks (module or attribute)."""
    missing = []
    for entry in used:
        module_name, _, path = entry.partition(":")
        try:
            found: object = importlib.import_module(module_name)
        except ImportError:
            missing.append(entry)
            continue
        for part in path.split("."):
            if isinstance(found, type) and part in getattr(found, "__annotations__", {}):
                break  # an instance attribute the class declares (PyArrowFileIO.fs_by_scheme)
            if not hasattr(found, part):
                missing.append(entry)
                break
            found = getattr(found, part)
    return missing


def _release(version: str) -> tuple[int, int] | None:
    match = re.match(r"(\d+)\.(\d+)", version)
    return (int(match.group(1)), int(match.group(2))) if match else None


def check_pyiceberg(version: str, missing: Sequence[str] = ()) -> None:
    """Raise :class:`PyIcebergVersionError` unless ``version`` is supported and nothing is ``missing``."""
    release = _release(version)
    low, high = SUPPORTED_RANGE
    if release is not None and low <= release < high and not missing:
        return
    lacking = f"; it lacks {', '.join(missing)}" if missing else ""
    raise PyIcebergVersionError(
        f"installed pyiceberg {version} is not supported: k2_lakehouse relies on pyiceberg internals that change "
        f"between releases and supports pyiceberg {SUPPORTED_VERSIONS}{lacking}. Install a supported version "
        "(pyproject.toml pins pyiceberg==0.12.*: run `make venv`), or port k2_lakehouse/cold/iceberg_internals.py "
        "to the new release and widen SUPPORTED_VERSIONS")


check_pyiceberg(pyiceberg.__version__, missing_internals())

# Only now, with every name known to exist. Each alias drops the leading underscore: from here on it is ours.
from pyiceberg.expressions.visitors import _StrictMetricsEvaluator as StrictMetricsEvaluator  # noqa: E402
from pyiceberg.expressions.visitors import manifest_evaluator  # noqa: E402
from pyiceberg.io.fileformat import FileFormatFactory  # noqa: E402
from pyiceberg.io.pyarrow import (  # noqa: E402
    ArrowScan,
    PyArrowFileIO,
    parquet_file_to_data_file,
    pyarrow_to_schema,
    schema_to_pyarrow,
)
from pyiceberg.io.pyarrow import _dataframe_to_data_files as dataframe_to_data_files  # noqa: E402
from pyiceberg.io.pyarrow import _to_requested_schema as to_requested_schema  # noqa: E402
from pyiceberg.manifest import ManifestWriter, write_manifest, write_manifest_list  # noqa: E402
from pyiceberg.schema import sanitize_column_names  # noqa: E402
from pyiceberg.table.locations import load_location_provider  # noqa: E402
from pyiceberg.table.snapshots import SnapshotSummaryCollector, ancestors_of, update_snapshot_summaries  # noqa: E402
from pyiceberg.table.update import (  # noqa: E402
    AddSnapshotUpdate,
    AssertRefSnapshotId,
    SetPropertiesUpdate,
    SetSnapshotRefUpdate,
    TableUpdate,
)
from pyiceberg.utils.concurrent import ExecutorFactory  # noqa: E402

__all__ = [
    "AddSnapshotUpdate",
    "ArrowScan",
    "AssertRefSnapshotId",
    "ExecutorFactory",
    "FileFormatFactory",
    "ManifestWriter",
    "PyArrowFileIO",
    "SetPropertiesUpdate",
    "SetSnapshotRefUpdate",
    "SnapshotSummaryCollector",
    "StrictMetricsEvaluator",
    "TableUpdate",
    "ancestors_of",
    "dataframe_to_data_files",
    "load_location_provider",
    "manifest_evaluator",
    "parquet_file_to_data_file",
    "pyarrow_to_schema",
    "sanitize_column_names",
    "schema_to_pyarrow",
    "to_requested_schema",
    "update_snapshot_summaries",
    "write_manifest",
    "write_manifest_list",
]
