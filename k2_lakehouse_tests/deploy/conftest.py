"""Fixtures of the deploy tests: a real Spark standalone cluster on loopback (see support/spark_cluster.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from k2_lakehouse_tests.support.spark_cluster import SparkCluster, spark_cluster


@pytest.fixture(scope="module")
def standalone_spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkCluster]:
    """A master and one worker (2 cores, 2g), stopped when the module's tests are done."""
    with spark_cluster(tmp_path_factory.mktemp("spark-cluster"), cores=2, memory="2g") as cluster:
        yield cluster
