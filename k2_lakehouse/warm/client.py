"""The one way to reach ClickHouse: clickhouse-connect over chdb (embedded) or HTTP (a server).

An embedded chdb store can be opened by one process at a time, and by one path per process. We keep
one client per process and turn the engine's lock error into `WarmStoreBusy`, which names the cause,
so callers can wait, skip or fail with a message instead of crashing. The engine also prints its lock
error straight to the process's stderr (file descriptor 2, below Python) on every attempt: while we try to
open a store, that descriptor is captured, and only the engine's lock lines are dropped from it.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlsplit

from k2_lakehouse.settings import ServiceUnreachable, server_address

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client
    from clickhouse_connect.driver.summary import QuerySummary

DATABASE = "k2"
T = TypeVar("T")

# One insert's or one INSERT SELECT's view chain runs on one core: this many handles keep the cores busy.
PARALLELISM = max(1, min(os.cpu_count() or 1, 4))

_BUSY_MARKERS = ("Cannot lock file", "Error initializing EmbeddedServer", "already initialized with path")

_lock = threading.Lock()
_clients: dict[str, Client] = {}


class WarmStoreBusy(RuntimeError):
    """The embedded store is held by another process (or another path in this process)."""


class WarmStoreUnreachable(ServiceUnreachable):
    """The ClickHouse server of K2_CLICKHOUSE_URL did not answer; the message names host and port, no password."""


# clickhouse-connect waits 10 s for a connection by default; a server that does not answer in this long is
# reported at once rather than after every retry of every step.
CONNECT_TIMEOUT_S = 5


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
    from clickhouse_connect.driver.exceptions import OperationalError

    try:
        return clickhouse_connect.get_client(dsn=url, compress=False, connect_timeout=CONNECT_TIMEOUT_S)
    except OperationalError as exc:
        raise unreachable(url, exc) from None


def unreachable(url: str, error: BaseException) -> WarmStoreUnreachable:
    """Why the server of `url` could not be reached, naming its host and port (never its password)."""
    cause = type(error).__name__
    seen_error: BaseException | None = error
    while seen_error is not None:  # the socket's own error, at the root of the HTTP library's chain
        if isinstance(seen_error, OSError) and seen_error.strerror:
            cause = seen_error.strerror
        seen_error = seen_error.__cause__ or seen_error.__context__
    return WarmStoreUnreachable(
        f"cannot reach the ClickHouse server at {server_address(url)} (K2_CLICKHOUSE_URL): {cause}. "
        "Start the server, or point K2_CLICKHOUSE_URL at one that runs")


@contextmanager
def _engine_lock_lines_dropped() -> Iterator[None]:
    """Capture file descriptor 2 for the block, then write back all of it but the engine's lock error lines.

    The engine writes to the descriptor itself, so sys.stderr cannot catch it. Whatever else reached stderr
    meanwhile (another thread's output, an engine error that is not about the lock) is written back unchanged.
    """
    if sys.stderr is not None:
        sys.stderr.flush()
    saved = os.dup(2)
    try:
        with tempfile.TemporaryFile() as captured:
            os.dup2(captured.fileno(), 2)
            try:
                yield
            finally:
                if sys.stderr is not None:
                    sys.stderr.flush()
                os.dup2(saved, 2)
                captured.seek(0)
                kept = b"".join(line for line in captured.read().splitlines(keepends=True)
                                if b"Cannot lock file" not in line)
                while kept:
                    kept = kept[os.write(2, kept):]
    finally:
        os.close(saved)


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
                if is_embedded(url):
                    with _engine_lock_lines_dropped():
                        client = _open(url)
                else:
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


@contextmanager
def parallel_clients(client: Client, count: int) -> Iterator[list[Client]]:
    """`client` and `count - 1` more handles to the same store, for work that runs in parallel threads.

    A client runs one call at a time, so parallel inserts need handles of their own; chdb serves any
    number of them to the one engine a process hosts. The extra handles are closed on exit. A client
    not opened through `connect` has no known URL to open siblings from: it then works alone.
    """
    with _lock:
        url = next((u for u, c in _clients.items() if c is client), None)
    extra = [_open(url) for _ in range(count - 1)] if url is not None else []
    try:
        yield [client, *extra]
    finally:
        for handle in extra:
            handle.close()


def in_parallel(client: Client, calls: Sequence[Callable[[Client], T]], workers: int = PARALLELISM) -> list[T]:
    """Each call with a handle of its own, up to `workers` at once; the results in the order of `calls`."""
    if len(calls) == 1 or workers == 1:
        return [call(client) for call in calls]
    with parallel_clients(client, min(workers, len(calls))) as clients, ThreadPoolExecutor(len(clients)) as pool:
        # Handle i runs calls i, i + n, i + 2n ... in order: a handle serves one call at a time.
        shares = [list(range(i, len(calls), len(clients))) for i in range(len(clients))]
        futures = [pool.submit(lambda handle, share: [calls[i](handle) for i in share], handle, share)
                   for handle, share in zip(clients, shares, strict=True)]
        results: dict[int, T] = {}
        for share, future in zip(shares, futures, strict=True):
            for i, result in zip(share, future.result(), strict=True):
                results[i] = result
        return [results[i] for i in range(len(calls))]


def run_in_parallel(client: Client, commands: Sequence[str], parameters: dict[str, object] | None = None,
                    settings: dict[str, object] | None = None, workers: int = PARALLELISM) -> None:
    """Run `commands` on up to `workers` handles at once; each handle runs its share in order."""
    def call(command: str) -> Callable[[Client], object]:
        return lambda handle: handle.command(command, parameters=parameters, settings=settings)
    in_parallel(client, [call(command) for command in commands], workers)


def as_int(result: str | int | Sequence[str] | QuerySummary) -> int:
    """The one value of a single-value command (a count, a sum) as an int.

    clickhouse-connect types `command` for every shape of result: one value comes back as an int or as
    its text; several columns or an empty result (a sequence, a summary) mean the query is wrong.
    """
    if isinstance(result, int | str):
        return int(result)
    raise TypeError(f"a ClickHouse command meant to return one value returned {result!r}")

