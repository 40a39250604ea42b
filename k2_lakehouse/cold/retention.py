"""Snapshot expiry and orphan-file removal for the cold tier.

pyiceberg 0.12's ``table.maintenance.expire_snapshots()`` only edits metadata: it drops snapshots from
the table metadata but leaves their manifest lists, manifests and data files on storage. Re-offloads
(overwrite of an hour) and compactions make every replaced Parquet file garbage once the snapshots that
still see it are expired, so without the clean-up here storage grows forever.

Two jobs, two different notions of "garbage":

* :func:`expire_snapshots` expires old snapshots, then deletes exactly the files that only the expired
  snapshots reached (set difference against everything the remaining snapshots reach), plus
  ``*.metadata.json`` files that fell off the metadata log. It never lists data folders, so it is safe to
  run at any time.
* :func:`remove_orphan_files` lists every file under the table's folders and deletes those no snapshot or
  metadata file references and that are older than a grace period: the debris of killed offloads and
  compactions (Parquet written, never committed). The grace period is what protects writes in flight,
  whose files exist before their commit does.

Both treat a data file as referenced only if a remaining snapshot *reads* it, i.e. one of its manifests
holds an ADDED or EXISTING entry for it. A DELETED entry only records that the snapshot dropped the file
from its parent; counting it would keep every replaced file forever, because overwrite commits (pyiceberg's
and ours) carry the manifest holding that entry into later snapshots. A manifest itself is referenced
whenever a remaining snapshot's manifest list names it, whatever its entries.
"""

from __future__ import annotations

import itertools
import logging
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pyiceberg.io import FileIO
from pyiceberg.manifest import ManifestFile
from pyiceberg.table import Table
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.table.snapshots import Snapshot

from k2_lakehouse.cold.commit_retry import CommitConflictError, RetryPolicy, retry_on_conflict
from k2_lakehouse.cold.iceberg_internals import ExecutorFactory, ancestors_of
from k2_lakehouse.cold.storage import StoredFile, list_files, path_key
from k2_lakehouse.hours import EPOCH

logger = logging.getLogger(__name__)

METADATA_FILE_RE = re.compile(r"(\d+)-[0-9a-fA-F-]+\.metadata\.json")
KIND_DATA = "data"
KIND_MANIFEST = "manifest"
KIND_MANIFEST_LIST = "manifest_list"
KIND_METADATA = "metadata"
KINDS = (KIND_DATA, KIND_MANIFEST, KIND_MANIFEST_LIST, KIND_METADATA)


class RetentionError(RuntimeError):
    """Snapshot expiry or orphan removal could not run safely; nothing unsafe was deleted."""


class ExpiryConflictError(RetentionError, CommitConflictError):
    """Other writers committed during every expiry attempt; no snapshot was expired and nothing deleted."""


@dataclass(frozen=True)
class ExpiryResult:
    table: str
    snapshots_expired: int
    snapshots_retained: int
    expired_snapshot_ids: tuple[int, ...]
    files_deleted: dict[str, int]
    seconds: float
    delete_failures: tuple[str, ...] = ()

    @property
    def total_files_deleted(self) -> int:
        return sum(self.files_deleted.values())


@dataclass(frozen=True)
class OrphanResult:
    table: str
    orphans: tuple[str, ...]
    young_unreferenced: tuple[str, ...]
    files_deleted: int
    bytes_orphaned: int
    dry_run: bool
    seconds: float
    files_listed: int = 0
    delete_failures: tuple[str, ...] = field(default=())


# --------------------------------------------------------------------------------------------- deleting


def _delete_all(io: FileIO, paths: Iterable[str]) -> tuple[int, list[str]]:
    """Delete in parallel; a file already gone counts as deleted (a previous run may have crashed midway)."""

    def delete(path: str) -> str | None:
        try:
            io.delete(path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            logger.warning("could not delete %s: %s", path, exc)
            return path
        return None

    items = list(paths)
    failures = [p for p in ExecutorFactory.get_or_create().map(delete, items) if p is not None]
    return len(items) - len(failures), failures


# --------------------------------------------------------------------------------------------- references


def _manifests_by_snapshot(io: FileIO, snapshots: list[Snapshot]) -> list[list[ManifestFile]]:
    return list(ExecutorFactory.get_or_create().map(lambda s: list(s.manifests(io)), snapshots))


def _has_live_entries(manifest: ManifestFile) -> bool:
    # From the manifest list's counts, without reading the manifest. A v1 list may omit the counts;
    # has_*_files() then answers True, so such a manifest is read rather than skipped.
    return manifest.has_added_files() or manifest.has_existing_files()


def _entry_paths(io: FileIO, manifests: Iterable[ManifestFile]) -> set[str]:
    """Every file the manifests name, whatever the entry status (ADDED, EXISTING or DELETED)."""
    return _paths_of_entries(io, list(manifests), discard_deleted=False)


def _live_entry_paths(io: FileIO, manifests: Iterable[ManifestFile]) -> set[str]:
    """The files the manifests' ADDED and EXISTING entries name: those their snapshots read."""
    return _paths_of_entries(io, [m for m in manifests if _has_live_entries(m)], discard_deleted=True)


def _paths_of_entries(io: FileIO, manifests: list[ManifestFile], discard_deleted: bool) -> set[str]:
    def paths(manifest: ManifestFile) -> list[str]:
        return [e.data_file.file_path for e in manifest.fetch_manifest_entry(io, discard_deleted=discard_deleted)]

    found: set[str] = set()
    for chunk in ExecutorFactory.get_or_create().map(paths, manifests):
        found.update(chunk)
    return found


def _metadata_files_referenced(table: Table) -> set[str]:
    metadata = table.metadata
    referenced = {table.metadata_location, *(entry.metadata_file for entry in metadata.metadata_log)}
    referenced.update(s.statistics_path for s in metadata.statistics)
    referenced.update(s.statistics_path for s in metadata.partition_statistics)
    return referenced


def _metadata_version(path: str) -> int | None:
    match = METADATA_FILE_RE.fullmatch(path.rsplit("/", 1)[-1])
    return int(match.group(1)) if match else None


def _table_name(table: Table) -> str:
    return ".".join(table.name())


# --------------------------------------------------------------------------------------------- expiry


def _cutoff_ms(now: datetime | None, older_than: timedelta) -> tuple[datetime, int]:
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError(f"now={now!r} must be timezone-aware, e.g. datetime.now(UTC)")
    if older_than < timedelta(0):
        raise ValueError(f"older_than={older_than} must not be negative")
    return now, int((now - older_than).timestamp() * 1000)


def snapshots_to_expire(metadata: TableMetadata, cutoff_ms: int, retain_last: int) -> list[int]:
    """Snapshots older than the cutoff, minus the newest ``retain_last`` of main's history and all refs.

    "Last" follows the current snapshot's ancestry (as Iceberg's retain_last does), so a burst of
    commits on a side branch cannot push main's recent history out.
    """
    history = ancestors_of(metadata.current_snapshot(), metadata)
    keep = {s.snapshot_id for s in itertools.islice(history, retain_last)}
    keep.update(ref.snapshot_id for ref in metadata.refs.values())
    return [s.snapshot_id for s in metadata.snapshots if s.snapshot_id not in keep and s.timestamp_ms < cutoff_ms]


def expire_snapshots(
    table: Table,
    older_than: timedelta = timedelta(days=7),
    retain_last: int = 3,
    now: datetime | None = None,
    *,
    max_attempts: int | None = None,
) -> ExpiryResult:
    """Expire snapshots older than ``now - older_than`` (keeping the last ``retain_last``) and delete
    the files that only they referenced.

    Order matters: the metadata commit happens first, and files are chosen for deletion against the
    table as re-loaded *after* that commit, so a snapshot committed concurrently is counted as
    remaining and its files are kept. If deletion is interrupted the leftovers are unreferenced and
    :func:`remove_orphan_files` collects them. A commit lost to another writer is planned again, as often
    as the table's ``commit.retry.*`` properties allow (``max_attempts`` overrides their number).
    """
    if retain_last < 1:
        raise ValueError(f"retain_last={retain_last}: at least the current snapshot must be kept")
    started = time.perf_counter()
    _, cutoff_ms = _cutoff_ms(now, older_than)
    policy = RetryPolicy.of(table)
    if max_attempts is not None:
        policy = policy.with_max_attempts(max_attempts)

    def attempt(number: int) -> list[Snapshot]:
        table.refresh()
        ids = snapshots_to_expire(table.metadata, cutoff_ms, retain_last)
        if not ids:
            return []
        candidates = [s for s in table.metadata.snapshots if s.snapshot_id in set(ids)]
        _commit_expiry(table, ids)
        return candidates

    expired = retry_on_conflict(table, attempt, operation="expiry", policy=policy, error=ExpiryConflictError)

    table.refresh()
    io = table.io
    remaining = table.metadata.snapshots
    remaining_ids = {s.snapshot_id for s in remaining}
    if any(s.snapshot_id in remaining_ids for s in expired):
        raise RetentionError("an expired snapshot is still in the table metadata; no files were deleted")

    deleted = dict.fromkeys(KINDS, 0)
    failures: list[str] = []
    if expired:
        # Compared by canonical path, so "file:///x" and "/x" naming the same file never look different.
        def key(path: str) -> tuple[str, str]:
            return path_key(io, path)

        retained_manifests = {key(m.manifest_path): m for ms in _manifests_by_snapshot(io, remaining) for m in ms}
        expired_manifests = {key(m.manifest_path): m for ms in _manifests_by_snapshot(io, expired) for m in ms}
        expired_only = [m for k, m in expired_manifests.items() if k not in retained_manifests]
        retained_lists = {key(s.manifest_list) for s in remaining}

        # Candidates: every file an expired-only manifest names (a DELETED entry there names a file the
        # expired parent read). Kept: every file a remaining snapshot reads (live entries only; see the
        # module docstring), on any branch or tag, since `remaining` is every snapshot left in the metadata.
        candidates_data = _entry_paths(io, expired_only)
        retained_data = {key(p) for p in _live_entry_paths(io, retained_manifests.values())} if candidates_data else set()
        plan = {
            KIND_DATA: {p for p in candidates_data if key(p) not in retained_data},
            KIND_MANIFEST: {m.manifest_path for m in expired_only},
            KIND_MANIFEST_LIST: {s.manifest_list for s in expired if key(s.manifest_list) not in retained_lists},
        }
        for kind, paths in plan.items():
            count, failed = _delete_all(io, paths)
            deleted[kind] = count
            failures.extend(failed)

    count, failed = _delete_old_metadata_files(table)
    deleted[KIND_METADATA] = count
    failures.extend(failed)
    return ExpiryResult(
        table=_table_name(table),
        snapshots_expired=len(expired),
        snapshots_retained=len(remaining),
        expired_snapshot_ids=tuple(s.snapshot_id for s in expired),
        files_deleted=deleted,
        seconds=time.perf_counter() - started,
        delete_failures=tuple(failures),
    )


def _commit_expiry(table: Table, ids: list[int]) -> None:
    """Remove ``ids`` from the table metadata through pyiceberg's ExpireSnapshots.

    ``by_ids`` deep-copies the whole table metadata twice per snapshot id in pyiceberg 0.12 (quadratic
    in the number of snapshots), while ``older_than`` copies it twice in total. So when "everything older than
    the newest expiring snapshot" is exactly the chosen set (linear history, the normal case) the cheap
    form is used; otherwise the exact but slow ``by_ids``.
    """
    metadata = table.metadata
    wanted = set(ids)
    protected = {ref.snapshot_id for ref in metadata.refs.values()}
    threshold_ms = max(s.timestamp_ms for s in metadata.snapshots if s.snapshot_id in wanted) + 1
    by_age = {s.snapshot_id for s in metadata.snapshots if s.timestamp_ms < threshold_ms} - protected
    builder = table.maintenance.expire_snapshots()
    if by_age == wanted:
        builder.older_than(EPOCH + timedelta(milliseconds=threshold_ms))
    else:
        builder.by_ids(ids)
    builder.commit()


def _delete_old_metadata_files(table: Table) -> tuple[int, list[str]]:
    """Delete ``NNNNN-<uuid>.metadata.json`` files older than every file the metadata log still lists.

    Only versions *below* the oldest referenced one go: a higher version may belong to a commit in
    flight, and whatever is in the log is what time travel by metadata file uses.
    """
    referenced = _metadata_files_referenced(table)
    versions = [v for v in (_metadata_version(p) for p in referenced) if v is not None]
    if not versions:
        return 0, []
    oldest_kept = min(versions)
    io = table.io
    keep = {path_key(io, p) for p in referenced}
    metadata_dir = table.location_provider().metadata_path
    stale = [
        f.path
        for f in list_files(io, metadata_dir)
        if (version := _metadata_version(f.path)) is not None
        and version < oldest_kept
        and path_key(io, f.path) not in keep
    ]
    return _delete_all(io, stale)


# --------------------------------------------------------------------------------------------- orphans


def referenced_files(table: Table) -> set[tuple[str, str]]:
    """Canonical keys of every file the table's metadata reaches: metadata files of the log, statistics,
    and for every snapshot its manifest list, its manifests and the files it reads (their live entries)."""
    io = table.io
    snapshots = table.metadata.snapshots
    manifests = {m.manifest_path: m for ms in _manifests_by_snapshot(io, snapshots) for m in ms}
    paths: set[str] = set(_metadata_files_referenced(table))
    paths.update(s.manifest_list for s in snapshots)
    paths.update(manifests)
    paths.update(_live_entry_paths(io, manifests.values()))
    return {path_key(io, p) for p in paths}


def _iter_stored(table: Table) -> Iterator[StoredFile]:
    """Files under the table location only.

    A ``write.data.path`` or ``write.metadata.path`` outside the location may be shared with other
    tables, whose files this table's metadata knows nothing about, so it is never listed (a warning says so).
    """
    location = table.location().rstrip("/")
    provider = table.location_provider()
    for external in {provider.data_path, provider.metadata_path}:
        if not external.startswith(location + "/"):
            logger.warning("%s lies outside %s and is not scanned for orphans", external, location)
    yield from list_files(table.io, location)


def remove_orphan_files(
    table: Table,
    older_than: timedelta = timedelta(days=3),
    dry_run: bool = False,
    now: datetime | None = None,
) -> OrphanResult:
    """Delete files under the table's folders that nothing references and whose mtime is before
    ``now - older_than``. ``dry_run`` reports the same list without deleting.

    The grace period must exceed the longest possible offload or compaction (files are written before
    their commit); three days is far beyond that. ``version-hint.text`` is never treated as an orphan.
    """
    started = time.perf_counter()
    now, cutoff_ms = _cutoff_ms(now, older_than)
    table.refresh()
    io = table.io
    stored = list(_iter_stored(table))  # list before reading references: a file committed meanwhile is kept
    referenced = referenced_files(table)
    orphans: list[StoredFile] = []
    young: list[str] = []
    for f in stored:
        if path_key(io, f.path) in referenced or f.path.endswith("/version-hint.text"):
            continue
        if f.mtime.timestamp() * 1000 < cutoff_ms:
            orphans.append(f)
        else:
            young.append(f.path)
    deleted, failures = (0, []) if dry_run else _delete_all(io, [f.path for f in orphans])
    return OrphanResult(
        table=_table_name(table),
        orphans=tuple(sorted(f.path for f in orphans)),
        young_unreferenced=tuple(sorted(young)),
        files_deleted=deleted,
        bytes_orphaned=sum(f.size for f in orphans),
        dry_run=dry_run,
        seconds=time.perf_counter() - started,
        files_listed=len(stored),
        delete_failures=tuple(failures),
    )
