"""Storage: the one place that turns table locations into local paths or URIs and lists the files under them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pyiceberg.io.fsspec import FsspecFileIO

from k2_lakehouse.cold.catalog import catalog_at
from k2_lakehouse.cold.iceberg_internals import PyArrowFileIO
from k2_lakehouse.cold.storage import ObjectStore, StorageError, file_uri, list_files, local_path, path_key
from k2_lakehouse_tests.support.object_store import SECRET_ACCESS_KEY, S3Server


@pytest.mark.parametrize("location", ["file:///srv/wh/t/data/a.parquet", "file:/srv/wh/t/data/a.parquet",
                                      "/srv/wh/t/data/a.parquet"])
def test_a_local_location_in_any_spelling_is_its_local_path(location: str) -> None:
    assert local_path(location) == Path("/srv/wh/t/data/a.parquet")


@pytest.mark.parametrize("location", ["s3://bucket/wh/t/data/a.parquet", "gs://bucket/a.parquet"])
def test_an_object_store_location_has_no_local_path(location: str) -> None:
    assert local_path(location) is None


def test_a_local_file_uri_names_the_same_path() -> None:
    path = Path("/srv/wh/t/data/part-00000.parquet")

    assert file_uri(path) == "file:///srv/wh/t/data/part-00000.parquet"
    assert local_path(file_uri(path)) == path


def test_the_spellings_of_one_local_file_share_one_key() -> None:
    io = PyArrowFileIO()
    keys = {path_key(io, p) for p in ("file:///srv/wh/x.avro", "file:/srv/wh/x.avro", "/srv/wh/./x.avro")}

    assert keys == {("file", "/srv/wh/x.avro")}
    assert path_key(io, "s3://bucket/srv/wh/x.avro") != ("file", "/srv/wh/x.avro")


def test_listing_finds_every_file_below_a_location_named_as_the_location_is(tmp_path: Path) -> None:
    (tmp_path / "data" / "day=1").mkdir(parents=True)
    for name in ("data/day=1/a.parquet", "data/b.parquet", "metadata.json"):
        (tmp_path / name).write_bytes(b"x" * len(name))
    os.utime(tmp_path / "data" / "b.parquet", (1_700_000_000, 1_700_000_000))
    location = f"file://{tmp_path}"

    files = {f.path: f for f in list_files(PyArrowFileIO(), location)}

    assert set(files) == {f"{location}/data/day=1/a.parquet", f"{location}/data/b.parquet", f"{location}/metadata.json"}
    assert files[f"{location}/data/b.parquet"].size == len("data/b.parquet")
    assert files[f"{location}/data/b.parquet"].mtime.timestamp() == 1_700_000_000
    assert files[f"{location}/data/b.parquet"].mtime.tzinfo is not None


def test_listing_an_absent_folder_finds_nothing(tmp_path: Path) -> None:
    assert list_files(PyArrowFileIO(), f"file://{tmp_path / 'never-written'}") == []


def test_listing_remote_storage_without_pyarrows_file_io_is_refused_naming_the_location() -> None:
    with pytest.raises(StorageError, match=r"cannot list s3://bucket/wh with FsspecFileIO; configure the catalog"):
        list_files(FsspecFileIO(properties={}), "s3://bucket/wh")


def test_a_missing_bucket_is_one_error_naming_bucket_and_endpoint_and_no_secret(
        s3_server: S3Server, tmp_path: Path) -> None:
    with pytest.raises(StorageError) as error:
        catalog_at(f"sqlite:///{tmp_path / 'catalog.db'}", "s3://no-such-bucket/warehouse", s3_server.store())
    assert "'no-such-bucket'" in str(error.value) and s3_server.endpoint in str(error.value)
    assert SECRET_ACCESS_KEY not in str(error.value)


def test_an_object_store_shows_its_endpoint_and_region_but_no_credential() -> None:
    store = ObjectStore(endpoint="http://minio:9000", region="eu-west-1", access_key_id="AKIAK2",
                        secret_access_key=SECRET_ACCESS_KEY, session_token="token-k2")
    assert "http://minio:9000" in repr(store)
    assert not any(secret in repr(store) for secret in ("AKIAK2", SECRET_ACCESS_KEY, "token-k2"))
