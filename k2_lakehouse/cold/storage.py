"""Where the cold tier's files live: a local folder or S3-compatible object storage, one code path for both.

The one module that knows about location schemes; no other module branches on ``file://`` or ``s3://``.
Everything here starts from the table's pyiceberg ``FileIO`` and a location, so callers never ask which kind
of storage they are on:

- pyiceberg and Python reach the files through pyarrow's filesystems (the ones ``PyArrowFileIO`` opens for
  each scheme): listing, footers, existence, deletion.
- ClickHouse reads and writes them itself, rows never passing through Python: :func:`clickhouse_reader`
  names an exact list of Parquet files (``file()`` for local paths, ``s3()`` for object storage) and
  :func:`clickhouse_writer` the table function an ``INSERT INTO FUNCTION`` writes one file with. Exact lists,
  not ``icebergLocal()``: embedded ClickHouse lets ``icebergLocal()`` read only below the process's working
  directory, while ``file()`` reads an absolute path anywhere, so K2_HOME may live anywhere.
- S3 credentials reach ClickHouse through the named collection :data:`CLICKHOUSE_S3_COLLECTION`
  (:func:`prepare_clickhouse`), never through SQL text that is stored: a view's definition is readable by
  every ClickHouse user with ``SHOW CREATE``, and the named collection shows its secrets as ``[HIDDEN]``.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow.fs as pafs
import pyarrow.parquet as pq
from pyiceberg.io import (
    PY_IO_IMPL,
    S3_ACCESS_KEY_ID,
    S3_ENDPOINT,
    S3_REGION,
    S3_SECRET_ACCESS_KEY,
    S3_SESSION_TOKEN,
    FileIO,
)

from k2_lakehouse.cold.iceberg_internals import PyArrowFileIO
from k2_lakehouse.settings import ConfigurationError, ServiceUnreachable

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

LOCAL_SCHEME = "file"
S3_SCHEMES = ("s3", "s3a", "s3n")
CLICKHOUSE_S3_COLLECTION = "k2_cold_s3"
"""The ClickHouse named collection holding the S3 credentials every cold read and write uses."""


class StorageError(RuntimeError):
    """A location cannot be reached the way the caller needs (listed, read, written, or its bucket found)."""


class WarehouseUnreachable(StorageError, ServiceUnreachable):
    """The warehouse's bucket is missing or refuses these credentials; the message names bucket and endpoint."""


@dataclass(frozen=True)
class StoredFile:
    """A file found on storage: its URI in the same form as the listed location, size and mtime."""

    path: str
    size: int
    mtime: datetime


@dataclass(frozen=True)
class ObjectStore:
    """How to reach S3-compatible storage: the endpoint (None: AWS), region and credentials.

    The credentials are never part of the repr, so a logged or printed ObjectStore shows none of them.
    """

    endpoint: str | None = None
    region: str | None = None
    access_key_id: str | None = field(default=None, repr=False)
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)

    @classmethod
    def from_environment(cls, endpoint: str | None = None) -> ObjectStore:
        """The standard AWS variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION)."""

        def env(name: str) -> str | None:
            return os.environ.get(name, "").strip() or None

        return cls(endpoint=endpoint, region=env("AWS_REGION"),
                   access_key_id=env("AWS_ACCESS_KEY_ID"), secret_access_key=env("AWS_SECRET_ACCESS_KEY"),
                   session_token=env("AWS_SESSION_TOKEN"))

    def fileio_properties(self) -> dict[str, str]:
        """The catalog properties pyiceberg's PyArrowFileIO reads (unset ones are left to pyarrow's defaults)."""
        values = {S3_ENDPOINT: self.endpoint, S3_REGION: self.region, S3_ACCESS_KEY_ID: self.access_key_id,
                  S3_SECRET_ACCESS_KEY: self.secret_access_key, S3_SESSION_TOKEN: self.session_token}
        return {PY_IO_IMPL: "pyiceberg.io.pyarrow.PyArrowFileIO", **{k: v for k, v in values.items() if v}}


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


def join(location: str, *parts: str) -> str:
    """``location/part/...``: locations are URIs (or paths), joined with '/' whatever the storage."""
    return "/".join([location.rstrip("/"), *(p.strip("/") for p in parts)])


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


# Free space below this on a local warehouse's filesystem, after a write that failed or left a file cut short, is
# read as a full disk: the engine's own error for it varies (or, for a file cut short, there is none).
FULL_DISK_BYTES = 64 * 2**20


def free_bytes(location: str) -> int | None:
    """Free space on the filesystem holding a local location (or its nearest existing folder); None for
    object storage, which has no such limit to report."""
    path = local_path(location)
    if path is None:
        return None
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


def write_failure(location: str, what: str) -> str:
    """Why writing `what` into `location` failed, as the operator needs it: a full disk says so, with the path."""
    free = free_bytes(location)
    if free is not None and free < FULL_DISK_BYTES:
        return (f"no space left on the device holding {local_path(location)} ({free:,} bytes free) while writing "
                f"{what}; free space there or point K2_ICEBERG_WAREHOUSE elsewhere")
    return f"writing {what} into {location} failed"


def exists(io: FileIO, location: str) -> bool:
    return io.new_input(location).exists()


def parquet_rows(io: FileIO, location: str) -> int:
    """Rows of a Parquet file, from its footer: no data is read."""
    with io.new_input(location).open() as stream:
        return int(pq.read_metadata(stream).num_rows)


def delete_files(io: FileIO, locations: Sequence[str]) -> None:
    """Delete files that may or may not exist (a half-written stage, a file already collected)."""
    for location in locations:
        try:
            io.delete(location)
        except FileNotFoundError:
            pass


def _scheme(io: FileIO, location: str) -> tuple[str, str, str]:
    return PyArrowFileIO.parse_location(location, io.properties)


def _endpoint(io: FileIO) -> str:
    """The S3 endpoint ClickHouse is given: K2_S3_ENDPOINT, else AWS's regional one."""
    if endpoint := io.properties.get(S3_ENDPOINT):
        return str(endpoint).rstrip("/")
    region = io.properties.get(S3_REGION)
    return f"https://s3.{region}.amazonaws.com" if region else "https://s3.amazonaws.com"


def _engine_path(io: FileIO, location: str) -> str:
    """What ClickHouse is given for a location: an absolute path, or the object's http(s) URL (path style)."""
    scheme, _, path = _scheme(io, location)
    if scheme == LOCAL_SCHEME:
        return os.path.normpath(path)
    if scheme in S3_SCHEMES:
        return f"{_endpoint(io)}/{path}"
    raise StorageError(f"ClickHouse cannot read or write {location}: only file:// and s3:// warehouses are supported")


def is_object_store(io: FileIO, location: str) -> bool:
    return _scheme(io, location)[0] in S3_SCHEMES


# Values embedded in SQL that is stored (a view definition) cannot be bound parameters. A file list is
# embedded as a glob (`prefix{a,b}`), so every path must be plain: no quote, backslash, space, comma, glob
# character or '..' can pass; '=' is allowed for Iceberg's partition folders (`exchange=kraken`).
_SAFE_PATH = re.compile(r"(https?://[A-Za-z0-9.-]+(:[0-9]+)?)?/[A-Za-z0-9._+=/-]+")


def quote_path(path: str) -> str:
    """An absolute path or http(s) URL as a ClickHouse string literal, refusing anything but a plain one."""
    if not _SAFE_PATH.fullmatch(path) or ".." in path.split("/"):
        raise ValueError(
            f"refusing to embed {path!r} in ClickHouse SQL: a warehouse path may hold only letters, digits "
            "and ._+=-/")
    return f"'{path}'"


def check_plain(io: FileIO, location: str) -> None:
    """Refuse, before anything is written, a location ClickHouse would misread in a file list."""
    quote_path(_engine_path(io, location))


def _string_literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _glob(paths: Sequence[str]) -> str:
    """One ClickHouse path pattern naming exactly `paths`: their common folder, then `{a,b,...}`."""
    if len(paths) == 1:
        return paths[0]
    # Character-wise on purpose, then cut at a '/': commonpath would fold the '//' of an http:// URL.
    prefix = os.path.commonprefix(list(paths))  # noqa: RUF071
    prefix = prefix[: prefix.rfind("/") + 1]
    return prefix + "{" + ",".join(p[len(prefix):] for p in paths) + "}"


def clickhouse_reader(io: FileIO, locations: Sequence[str], structure: str) -> str:
    """SQL text of a table function reading exactly these Parquet files, with the given structure.

    Safe to store in a view: paths are checked plain (:func:`quote_path`) and S3 credentials come from the
    named collection. No files at all reads as an empty table of that structure.
    """
    if not locations:
        return f"null({_string_literal(structure)})"
    paths = sorted({_engine_path(io, location) for location in locations})
    for path in paths:
        quote_path(path)
    glob = quote_path(_glob(paths)) if len(paths) == 1 else "'" + _glob(paths) + "'"
    if is_object_store(io, locations[0]):
        return (f"s3({CLICKHOUSE_S3_COLLECTION}, url = {glob}, format = 'Parquet', "
                f"structure = {_string_literal(structure)})")
    return f"file({glob}, 'Parquet', {_string_literal(structure)})"


def clickhouse_writer(io: FileIO, location: str) -> tuple[str, dict[str, str]]:
    """(table function, its parameters) for ``INSERT INTO FUNCTION`` writing one Parquet file at `location`."""
    path = _engine_path(io, location)
    if is_object_store(io, location):
        return f"s3({CLICKHOUSE_S3_COLLECTION}, url = {{k2_target:String}}, format = 'Parquet')", {"k2_target": path}
    return "file({k2_target:String}, 'Parquet')", {"k2_target": path}


def query_size(sql: str) -> dict[str, int]:
    """Settings letting ClickHouse parse `sql` whatever its length (a long file list makes a long query)."""
    return {"max_query_size": max(262_144, 2 * len(sql))}


def prepare_clickhouse(client: Client, io: FileIO, location: str) -> None:
    """Make ClickHouse able to read and write `location`: for S3, (re)store the credentials in the collection.

    The collection is created once and then updated, never dropped, so a concurrent reader of a view never
    finds it missing. With no key in the configuration ClickHouse uses the environment's credentials chain
    (an instance role). Errors never quote the statement: it holds the secret.
    """
    if not is_object_store(io, location):
        return
    from clickhouse_connect.driver.exceptions import DatabaseError

    props = io.properties
    values = {"access_key_id": props.get(S3_ACCESS_KEY_ID, ""), "secret_access_key": props.get(S3_SECRET_ACCESS_KEY, ""),
              "session_token": props.get(S3_SESSION_TOKEN, "")}
    pairs = ", ".join([f"{key} = {_string_literal(value)}" for key, value in values.items()]
                      + ["use_environment_credentials = 1"])
    try:
        client.command(f"CREATE NAMED COLLECTION IF NOT EXISTS {CLICKHOUSE_S3_COLLECTION} AS {pairs}")
        client.command(f"ALTER NAMED COLLECTION {CLICKHOUSE_S3_COLLECTION} SET {pairs}")
    except DatabaseError as exc:
        code = re.search(r"\(([A-Z_]+)\)", str(exc))
        raise StorageError(
            f"ClickHouse refused to store the S3 credentials in its named collection {CLICKHOUSE_S3_COLLECTION} "
            f"({code.group(1) if code else type(exc).__name__}); the ClickHouse user needs the "
            "NAMED COLLECTION ADMIN grant") from None


def _redacted(message: str, io: FileIO) -> str:
    for key in (S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY, S3_SESSION_TOKEN):
        if secret := io.properties.get(key):
            message = message.replace(secret, "***")
    return message


def check_location(io: FileIO, location: str) -> None:
    """Fail early, with one clear error, when the warehouse cannot be reached.

    A local folder is created. On object storage the bucket must exist beforehand (as with MinIO); a missing
    bucket or refused credentials name the bucket and the endpoint, never a credential.
    """
    if (path := local_path(location)) is not None:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigurationError(
                f"K2_ICEBERG_WAREHOUSE={location}: cannot create the folder {path}: {exc.strerror}") from None
        return
    fs, root = _filesystem(io, location)
    bucket = root.split("/", 1)[0]
    endpoint = _endpoint(io)
    try:
        info = fs.get_file_info(bucket)
    except OSError as exc:
        raise WarehouseUnreachable(
            f"cannot reach the bucket {bucket!r} at {endpoint}: {_redacted(str(exc), io)}; check K2_S3_ENDPOINT, "
            "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_REGION") from None
    if info.type == pafs.FileType.NotFound:
        raise WarehouseUnreachable(
            f"the bucket {bucket!r} does not exist at {endpoint} (or these credentials may not see it); create it "
            f"before using K2_ICEBERG_WAREHOUSE={location}")
