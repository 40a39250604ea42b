"""The one way to reach ClickHouse: clickhouse-connect over chdb (embedded) or HTTP (a server).

An embedded chdb store can be opened by one process at a time, and by one path per process. We keep
one client per process and turn the engine's lock error into `WarmStoreBusy`, which names the cause,
so callers can wait, skip or fail with a message instead of crashing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

DATABASE = "k2"

_BUSY_MARKERS = ("Cannot lock file", "Error initializing EmbeddedServer", "already initialized with path")

_lock = threading.Lock()
_clients: dict[str, Client] = {}


class WarmStoreBusy(RuntimeError):
    """The embedded store is held by another process (or another path in this process)."""


def is_embedded(url: str) -> bool:
    return url.startswith("chdb://")


def redact(url: str) -> str:
    """The URL without its password, fit for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return parts._replace(netloc=netloc).geturl()


def embedded_path(url: str) -> str:
    return url.removeprefix("chdb://")


def _open(url: str) -> Client:
    import clickhouse_connect  # deferred: importing it costs a quarter second at definitions load

    if is_embedded(url):
        return clickhouse_connect.get_client(dsn=url)
    return clickhouse_connect.get_client(dsn=url, compress=False)


def connect(url: str, busy_timeout_s: float = 10.0) -> Client:
    """A client for `url`, reused within the process.

    Waits up to `busy_timeout_s` for an embedded store that another process holds, then raises
    `WarmStoreBusy`. Never blocks forever.
    """
    with _lock:
        client = _clients.get(url)
        if client is not None:
            return client
        if is_embedded(url):
            # chdb serves one path per process: release any other embedded store first.
            for other in [u for u in _clients if is_embedded(u)]:
                _clients.pop(other).close()
        deadline = time.monotonic() + busy_timeout_s
        while True:
            try:
                client = _open(url)
                break
            except Exception as exc:
                if not any(marker in str(exc) for marker in _BUSY_MARKERS):
                    raise
                if time.monotonic() >= deadline:
                    raise WarmStoreBusy(
                        f"the embedded ClickHouse store at {embedded_path(url)} is in use by another "
                        f"process (waited {busy_timeout_s:.0f}s). In embedded mode one process at a time "
                        "may open it: wait for the running Dagster run or `k2` command to finish, or point "
                        "K2_CLICKHOUSE_URL at a ClickHouse server."
                    ) from exc
                time.sleep(0.2)
        _clients[url] = client
        return client


def close_all() -> None:
    """Release every store this process holds, so another process can open it."""
    with _lock:
        for url in list(_clients):
            _clients.pop(url).close()


@contextmanager
def session(url: str, busy_timeout_s: float = 10.0) -> Iterator[Client]:
    """A client for the duration of a block.

    In embedded mode the store is released on exit, so a sensor tick or a run step does not keep other
    processes out; a client that was already open in this process (a test, a long command) stays open.
    """
    with _lock:
        already_open = url in _clients
    client = connect(url, busy_timeout_s)
    try:
        yield client
    finally:
        if is_embedded(url) and not already_open:
            with _lock:
                if _clients.get(url) is client:
                    _clients.pop(url).close()
