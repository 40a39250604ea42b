"""Planning: which partitions need compaction and which live data files each one holds.

Everything here reads the current snapshot's manifests and writes nothing. The live file set of a
partition is read before the rewrite and again before the commit; comparing the two is how a concurrent
writer is detected, so both reads go through the same function (:func:`live_files`) and the same cache of
manifest entries (manifests are immutable, so entries read once stay valid).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from pyiceberg.expressions import AlwaysTrue, And, BooleanExpression, EqualTo, IsNull, Reference
from pyiceberg.expressions.literals import literal
from pyiceberg.manifest import DataFile, DataFileContent, ManifestContent, ManifestEntry, ManifestFile
from pyiceberg.table import Table
from pyiceberg.types import DateType

from k2_lakehouse.cold.compaction.model import CompactionError, PartitionRef, table_name
from k2_lakehouse.cold.iceberg_internals import ExecutorFactory, manifest_evaluator
from k2_lakehouse.hours import EPOCH


def _partition_filter(table: Table, ref: PartitionRef) -> BooleanExpression:
    spec = table.specs()[ref.spec_id]
    terms: list[BooleanExpression] = [
        IsNull(term=Reference(f.name)) if value is None else EqualTo(term=Reference(f.name), value=literal(value))
        for f, value in zip(spec.fields, ref.values, strict=True)
    ]
    if not terms:
        return AlwaysTrue()
    return terms[0] if len(terms) == 1 else And(*terms)


ManifestCache = dict[str, list[ManifestEntry]]
"""Manifest path -> its live entries. Manifests are immutable, so entries read for one snapshot are valid for
every later snapshot that still lists the same manifest (and for the commit that rewrites them)."""


def partition_manifests(table: Table, ref: PartitionRef, manifests: list[ManifestFile]) -> list[ManifestFile]:
    """The manifests that may hold files of ``ref`` (by spec and partition summaries); the others cannot."""
    evaluate = manifest_evaluator(table.specs()[ref.spec_id], table.schema(), _partition_filter(table, ref))
    return [m for m in manifests if m.partition_spec_id == ref.spec_id and evaluate(m)]


def live_entries(table: Table, manifests: list[ManifestFile], cache: ManifestCache | None) -> list[list[ManifestEntry]]:
    """The live (added or existing) entries of each manifest, read in parallel, through ``cache``."""
    io = table.io

    def entries(manifest: ManifestFile) -> list[ManifestEntry]:
        if cache is not None and (hit := cache.get(manifest.manifest_path)) is not None:
            return hit
        live = manifest.fetch_manifest_entry(io, discard_deleted=True)
        if cache is not None:
            cache[manifest.manifest_path] = live
        return live

    return list(ExecutorFactory.get_or_create().map(entries, manifests))


def live_files(
    table: Table, ref: PartitionRef | None = None, cache: ManifestCache | None = None
) -> dict[PartitionRef, list[DataFile]]:
    """Live data files of the current snapshot grouped by partition (only ``ref``'s partition if given).

    Raises if the partition has delete files: pyiceberg can neither apply-and-drop them in a rewrite nor
    write them, so a table with delete files was written by another engine and must be compacted there.
    """
    snapshot = table.current_snapshot()
    if snapshot is None:
        return {}
    manifests = snapshot.manifests(table.io)
    if ref is not None:
        manifests = partition_manifests(table, ref, manifests)
    grouped: dict[PartitionRef, list[DataFile]] = {}
    for manifest, entries in zip(manifests, live_entries(table, manifests, cache), strict=True):
        for entry in entries:
            data_file = entry.data_file
            key = PartitionRef.of(data_file)
            if ref is not None and key != ref:
                continue
            if manifest.content == ManifestContent.DELETES or data_file.content != DataFileContent.DATA:
                raise CompactionError(
                    f"partition {key.values} of {table_name(table)} has delete files ({data_file.file_path}); "
                    "pyiceberg cannot rewrite them: compact this table with Spark + the Iceberg runtime instead"
                )
            grouped.setdefault(key, []).append(data_file)
    return grouped


def partitions_needing_compaction(table: Table, min_files: int = 2) -> list[PartitionRef]:
    """Partitions of the current spec holding at least ``min_files`` live data files, most files first.

    Files written under an older partition spec are left alone: the overwrite commit adds files to the
    current spec only, and re-partitioning old data is a different job (rewrite by the new spec).
    """
    if min_files < 2:
        raise ValueError(f"min_files={min_files}: a partition needs at least 2 files for compaction to help")
    spec_id = table.spec().spec_id
    grouped = live_files(table)
    candidates = [(ref, len(files)) for ref, files in grouped.items() if ref.spec_id == spec_id]
    return [ref for ref, count in sorted(candidates, key=lambda rc: (-rc[1], repr(rc[0].values))) if count >= min_files]


def resolve_partition(table: Table, partition: PartitionRef | Mapping[str, object]) -> PartitionRef:
    """Accept a PartitionRef or ``{partition field name: value}`` of the current spec.

    Values are the Iceberg partition values; for a ``day`` transform a ``datetime.date`` is accepted too.
    """
    if isinstance(partition, PartitionRef):
        return partition
    spec = table.spec()
    names = [f.name for f in spec.fields]
    if set(partition) != set(names):
        raise ValueError(f"partition {dict(partition)} must name exactly the fields of the current spec: {names}")
    partition_type = spec.partition_type(table.schema())
    values: list[object] = []
    for struct_field in partition_type.fields:
        value = partition[struct_field.name]
        if isinstance(struct_field.field_type, DateType) and isinstance(value, dt.date):
            value = (value - EPOCH.date()).days
        values.append(value)
    return PartitionRef(spec_id=spec.spec_id, values=tuple(values))
