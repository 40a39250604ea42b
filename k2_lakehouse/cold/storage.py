"""Where the cold tier's files live: table locations as local paths or URIs, and the files under a location.

The one module that knows about location schemes; no other module branches on ``file://``. Today the
warehouse is a local folder: ClickHouse writes the offload's Parquet files into it and polars reads and
writes compaction's, so those fast paths ask :func:`local_path` and fall back (or refuse, naming the
location) when it answers None. Listing goes through pyarrow's filesystems, the ones pyiceberg's
``PyArrowFileIO`` opens for each scheme, so object stores (``s3://``) only need their support added here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.fs as pafs
from pyiceberg.io import FileIO

from k2_lakehouse.cold.iceberg_internals import PyArrowFileIO

LOCAL_SCHEME = "file"


class StorageError(RuntimeError):
    """A location cannot be reached the way the caller needs (listed, or read as a local file)."""


@dataclass(frozen=True)
class StoredFile:
    """A file found on storage: its URI in the same form as the listed location, size and mtime."""

    path: str
    size: int
    mtime: datetime


def local_path(location: str) -> Path | None:
    """The local filesystem path of a ``file:`` (or scheme-less) location; None for remote storage.

    Parsed as pyiceberg parses locations (``PyArrowFileIO.parse_location``), so a path here names the
    file pyiceberg reads.
    """
    scheme, _, path = PyArrowFileIO.parse_location(location)
    return Path(path) if scheme == LOCAL_SCHEME else None


def file_uri(path: Path) -> str:
    """The location pyiceberg is given for a local file (as ``add_files`` and manifests name it)."""
    return f"{LOCAL_SCHEME}://{path}"


def path_key(io: FileIO, location: str) -> tuple[str, str]:
    """Canonical (scheme, path) of a URI so ``file:///x``, ``file:/x`` and ``/x`` compare equal."""
    scheme, _, path = PyArrowFileIO.parse_location(location, io.properties)
    return scheme, os.path.normpath(path) if scheme == LOCAL_SCHEME else path


def _filesystem(io: FileIO, location: str) -> tuple[pafs.FileSystem, str]:
    scheme, netloc, path = PyArrowFileIO.parse_location(location, io.properties)
    if isinstance(io, PyArrowFileIO):
        return io.fs_by_scheme(scheme, netloc), path
    if scheme == LOCAL_SCHEME:
        return pafs.LocalFileSystem(), path
    raise StorageError(
        f"cannot list {location} with {type(io).__name__}; configure the catalog with "
        "py-io-impl=pyiceberg.io.pyarrow.PyArrowFileIO so files can be listed"
    )


def list_files(io: FileIO, location: str) -> list[StoredFile]:
    """Every file under ``location`` (recursively); an absent folder is empty, not an error."""
    fs, root = _filesystem(io, location)
    selector = pafs.FileSelector(root, recursive=True, allow_not_found=True)
    prefix = location.rstrip("/")
    root = root.rstrip("/")
    files = []
    for info in fs.get_file_info(selector):
        if info.type != pafs.FileType.File:
            continue
        relative = info.path[len(root) :] if info.path.startswith(root) else "/" + info.path.rsplit("/", 1)[-1]
        mtime = info.mtime if info.mtime is not None else datetime.now(UTC)
        if mtime.tzinfo is None:
            mtime = mtime.replace(tzinfo=UTC)
        files.append(StoredFile(path=prefix + relative, size=info.size or 0, mtime=mtime))
    return files
