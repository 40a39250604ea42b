"""The commit: swap a partition's old data files for the compacted ones in one OVERWRITE snapshot.

This is the riskiest code of compaction, kept alone so it can be read in one sitting and later replaced by
pyiceberg's own rewrite when pyiceberg has one. It writes the snapshot's manifests and manifest list with
pyiceberg's writers, from the manifest entries planning already read, and commits with
``Catalog.commit_table`` under the requirement that the branch head has not moved, so nothing a concurrent
writer did can be lost. Readers see either all old files or all new files, never both and never neither.
"""

from __future__ import annotations

import logging
import uuid
from typing import cast

import pyarrow as pa
from pyiceberg.avro.codecs import AvroCompressionCodec
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.manifest import (
    DataFile,
    ManifestEntry,
    ManifestEntryStatus,
    ManifestFile,
)
from pyiceberg.table import Table, TableProperties
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.table.refs import MAIN_BRANCH, SnapshotRefType
from pyiceberg.table.snapshots import Operation, Snapshot, Summary

from k2_lakehouse.cold.commit_retry import ConcurrentChangeError, retry_on_conflict
from k2_lakehouse.cold.compaction.files import delete_quietly
from k2_lakehouse.cold.compaction.model import (
    SNAPSHOT_ENGINE,
    SNAPSHOT_FILES_AFTER,
    SNAPSHOT_FILES_BEFORE,
    SNAPSHOT_OPERATION,
    SNAPSHOT_PARTITION,
    PartitionRef,
    table_name,
)
from k2_lakehouse.cold.compaction.planning import ManifestCache, live_entries, live_files, partition_manifests
from k2_lakehouse.cold.iceberg_internals import (
    AddSnapshotUpdate,
    AssertRefSnapshotId,
    ManifestWriter,
    SetPropertiesUpdate,
    SetSnapshotRefUpdate,
    SnapshotSummaryCollector,
    TableUpdate,
    update_snapshot_summaries,
    write_manifest,
    write_manifest_list,
)

logger = logging.getLogger(__name__)


def commit_swap(
    table: Table,
    ref: PartitionRef,
    engine_name: str,
    old_files: list[DataFile],
    new_files: list[DataFile],
    output: pa.Table | list[str],
    cache: ManifestCache,
) -> int:
    """Swap ``old_files`` for ``new_files`` in one OVERWRITE snapshot; returns its id.

    Another writer's commit that landed first (CommitFailedException) is harmless when it left the partition's
    files alone (an offload of another day): the swap is re-planned on top of it, as often as the table's
    ``commit.retry.*`` properties allow (what pyiceberg's own transaction would do for its producers). A
    change to the partition raises ConcurrentChangeError, and running out of retries CommitConflictError:
    the caller then starts over.
    """
    properties = {
        SNAPSHOT_OPERATION: "compaction",
        SNAPSHOT_ENGINE: engine_name,
        SNAPSHOT_FILES_BEFORE: str(len(old_files)),
        SNAPSHOT_FILES_AFTER: str(len(new_files)),
        SNAPSHOT_PARTITION: ref.path(table),
    }
    # Same as add_files: readers fall back to names for engine-written files without field ids.
    name_mapping = isinstance(output, list) and table.metadata.name_mapping() is None
    old_paths = {f.file_path for f in old_files}

    def attempt(number: int) -> int:
        if number > 1:
            table.refresh()
            if {f.file_path for f in live_files(table, ref, cache).get(ref, [])} != old_paths:
                raise ConcurrentChangeError("a snapshot that landed first changed the partition's files")
            logger.info("compaction of %s: another snapshot landed first; committing on top of it", ref.path(table))
        return commit_overwrite_snapshot(table, ref, old_files, new_files, properties, name_mapping, cache)

    return retry_on_conflict(table, attempt, operation="compaction commit",
                             subject=f"partition {ref.path(table)} of {table_name(table)}",
                             retry_on=(CommitFailedException,))


def commit_overwrite_snapshot(
    table: Table,
    ref: PartitionRef,
    old_files: list[DataFile],
    new_files: list[DataFile],
    properties: dict[str, str],
    name_mapping: bool,
    cache: ManifestCache,
) -> int:
    """Write the OVERWRITE snapshot's manifests and manifest list, and commit it if the branch head is unmoved.

    The same snapshot pyiceberg's ``overwrite()`` producer writes (one manifest of added files, one of deleted
    entries, manifests that also hold other files rewritten as existing entries, every other manifest carried
    over unless no live entry is left in it), but built from the manifest entries already read to plan the
    compaction. pyiceberg's producer reads every manifest of the partition twice more and deep-copies the
    table metadata about twenty times, a large share of a whole compaction. The commit requires the branch
    head to still be the snapshot the partition was checked against, so nothing a concurrent writer did can
    be lost.
    """
    metadata, io = table.metadata, table.io
    parent = metadata.current_snapshot()
    if parent is None:
        raise CommitFailedException("the table has no snapshot any more; nothing to compact")
    snapshot_id = metadata.new_snapshot_id()
    sequence_number = metadata.next_sequence_number()
    # The property names one of pyiceberg's Avro codecs; pyiceberg's writer rejects any other name.
    codec = cast("AvroCompressionCodec", metadata.properties.get(TableProperties.WRITE_AVRO_COMPRESSION,
                                                              TableProperties.WRITE_AVRO_COMPRESSION_DEFAULT))
    provider = table.location_provider()
    commit_uuid = uuid.uuid4()
    written: list[str] = []

    def manifest_writer(spec_id: int) -> ManifestWriter:
        path = provider.new_metadata_location(f"{commit_uuid}-m{len(written)}.avro")
        written.append(path)
        return write_manifest(metadata.format_version, metadata.specs()[spec_id], metadata.schema(),
                              io.new_output(path), snapshot_id, codec)

    old_paths = {f.file_path for f in old_files}
    all_manifests = parent.manifests(io)
    candidates = partition_manifests(table, ref, all_manifests)
    live = {m.manifest_path: e for m, e in zip(candidates, live_entries(table, candidates, cache), strict=True)}
    try:
        carried: list[ManifestFile] = []
        deleted: list[ManifestEntry] = []
        for manifest in all_manifests:
            entries = live.get(manifest.manifest_path)
            gone = [e for e in entries or [] if e.data_file.file_path in old_paths]
            if not gone:
                # A manifest with no added or existing entry (the DELETED entries an earlier overwrite
                # wrote) lets no snapshot read anything: dropped, as Java Iceberg's and pyiceberg's
                # append producers drop it, so later snapshots stop naming files long replaced.
                if manifest.has_added_files() or manifest.has_existing_files():
                    carried.append(manifest)
                continue
            deleted.extend(gone)
            if kept := [e for e in entries or [] if e.data_file.file_path not in old_paths]:
                with manifest_writer(manifest.partition_spec_id) as writer:
                    for entry in kept:
                        writer.existing(entry)
                carried.append(writer.to_manifest_file())
        if len(deleted) != len(old_files):
            raise CommitFailedException(f"{len(old_files) - len(deleted)} of the compacted files are no longer live")
        with manifest_writer(ref.spec_id) as added:
            for data_file in new_files:
                added.add(ManifestEntry.from_args(status=ManifestEntryStatus.ADDED, snapshot_id=snapshot_id,
                                                  data_file=data_file))
        with manifest_writer(ref.spec_id) as removed:
            for entry in deleted:
                removed.delete(entry)
        manifests = [added.to_manifest_file(), removed.to_manifest_file(), *carried]
        manifest_list = provider.new_metadata_location(f"snap-{snapshot_id}-0-{commit_uuid}.avro")
        written.append(manifest_list)
        with write_manifest_list(metadata.format_version, io.new_output(manifest_list), snapshot_id,
                                 parent.snapshot_id, sequence_number, codec) as list_writer:
            list_writer.add_manifests(manifests)
        snapshot = Snapshot(
            snapshot_id=snapshot_id,
            parent_snapshot_id=parent.snapshot_id,
            sequence_number=sequence_number,
            manifest_list=manifest_list,
            summary=_overwrite_summary(metadata, parent, old_files, new_files, properties),
            schema_id=metadata.current_schema_id,
        )
        updates: list[TableUpdate] = []
        if name_mapping:
            updates.append(SetPropertiesUpdate(
                updates={TableProperties.DEFAULT_NAME_MAPPING: metadata.schema().name_mapping.model_dump_json()}))
        updates += [AddSnapshotUpdate(snapshot=snapshot),
                    # pydantic's mypy plugin misses the defaults pyiceberg declares in Annotated[..., Field(default=None)]
                    SetSnapshotRefUpdate(ref_name=MAIN_BRANCH, type=SnapshotRefType.BRANCH, snapshot_id=snapshot_id)]  # type: ignore[call-arg]
        response = table.catalog.commit_table(
            table, (AssertRefSnapshotId(snapshot_id=parent.snapshot_id, ref=MAIN_BRANCH),), tuple(updates))
    except CommitFailedException:
        delete_quietly(io, written)  # the commit did not land: nothing references them
        raise
    table.metadata, table.metadata_location = response.metadata, response.metadata_location
    return snapshot_id


def _overwrite_summary(
    metadata: TableMetadata,
    parent: Snapshot,
    old_files: list[DataFile],
    new_files: list[DataFile],
    properties: dict[str, str],
) -> Summary:
    """The snapshot summary pyiceberg's producer writes (file, row and size totals), plus ``properties``."""
    limit = int(metadata.properties.get(TableProperties.WRITE_PARTITION_SUMMARY_LIMIT,
                                        TableProperties.WRITE_PARTITION_SUMMARY_LIMIT_DEFAULT))
    collector = SnapshotSummaryCollector(partition_summary_limit=limit)
    schema, specs = metadata.schema(), metadata.specs()
    for data_file in new_files:
        collector.add_file(data_file, partition_spec=specs[data_file.spec_id], schema=schema)
    for data_file in old_files:
        collector.remove_file(data_file, partition_spec=specs[data_file.spec_id], schema=schema)
    return update_snapshot_summaries(Summary(operation=Operation.OVERWRITE, **collector.build(), **properties),
                                     previous_summary=parent.summary)
