"""A real S3-protocol server on loopback for the cold tier's tests: moto's ThreadedMotoServer.

Started once per session by a fixture (conftest), on a free port chosen by the operating system. The bucket
exists beforehand, as an operator creates it on MinIO or S3; each test writes under its own prefix. The
credentials are made up: moto accepts any, and tests check that none of them appears where it must not.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import boto3
import pytest
from moto.server import ThreadedMotoServer

from k2_lakehouse.cold.storage import ObjectStore

BUCKET = "k2-cold-tests"
REGION = "us-east-1"
ACCESS_KEY_ID = "k2testaccesskey"
SECRET_ACCESS_KEY = "k2-test-secret-5f1d0c9e"  # distinctive, so a leak of it is found by a plain search

LOCAL_WAREHOUSE_ONLY = pytest.mark.parametrize("warehouse", ["local"], indirect=True)
"""Mark for a test that runs on the local warehouse only (the `warehouse` fixture is local and s3); say why."""


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    bucket: str

    def store(self) -> ObjectStore:
        return ObjectStore(endpoint=self.endpoint, region=REGION, access_key_id=ACCESS_KEY_ID,
                           secret_access_key=SECRET_ACCESS_KEY)

    def environment(self) -> dict[str, str]:
        """The variables a deployment sets to reach this server."""
        return {"K2_S3_ENDPOINT": self.endpoint, "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
                "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY, "AWS_REGION": REGION}

    def new_warehouse(self) -> str:
        """A fresh prefix of the bucket: an empty warehouse."""
        return f"s3://{self.bucket}/{uuid.uuid4().hex[:12]}/warehouse"

    def keys(self, prefix: str = "") -> list[str]:
        client = boto3.client("s3", endpoint_url=self.endpoint, region_name=REGION,
                              aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key=SECRET_ACCESS_KEY)
        keys: list[str] = []
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            keys.extend(item["Key"] for item in page.get("Contents", []))
        return keys


def start_s3_server() -> tuple[ThreadedMotoServer, S3Server]:
    """Start moto on 127.0.0.1 (port 0: the system picks a free one) and create the test bucket."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    s3 = S3Server(endpoint=f"http://{host}:{port}", bucket=BUCKET)
    boto3.client("s3", endpoint_url=s3.endpoint, region_name=REGION, aws_access_key_id=ACCESS_KEY_ID,
                 aws_secret_access_key=SECRET_ACCESS_KEY).create_bucket(Bucket=BUCKET)
    return server, s3
