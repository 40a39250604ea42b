"""Dagster resources over the plain storage clients. Secrets arrive through dagster.EnvVar."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
from clickhouse_connect.driver.client import Client

from k2_lakehouse.settings import load_settings
from k2_lakehouse.warm.client import is_embedded, session


class WarmStore(dg.ConfigurableResource):
    """ClickHouse, embedded (chdb://path) or a server (http(s)://user:password@host:port)."""

    url: str = ""
    busy_timeout_s: float = 10.0

    @property
    def resolved_url(self) -> str:
        return self.url or load_settings().clickhouse_url

    @property
    def embedded(self) -> bool:
        return is_embedded(self.resolved_url)

    @contextmanager
    def client(self) -> Iterator[Client]:
        with session(self.resolved_url, self.busy_timeout_s) as client:
            yield client


def warm_store_from_env() -> WarmStore:
    # EnvVar keeps a server password out of code, config snapshots and logs.
    url = dg.EnvVar("K2_CLICKHOUSE_URL") if os.environ.get("K2_CLICKHOUSE_URL") else ""
    return WarmStore(url=url, busy_timeout_s=load_settings().busy_timeout_s)
