"""`k2 doctor`: the resolved profile, each part checked for what the platform needs of it, and what to fix.

One check per part a profile configures: the warm store (embedded or a ClickHouse server), the Iceberg catalog,
the warehouse, the Dagster instance's storage and the Spark master. Each is tried the way the platform uses it
(a query, a catalog round trip, a file written and deleted, the instance opened, the master's port reached), so a
green report means the next run can start. Everything shown is redacted: a check's error text passes through
`scrub`, which removes every secret the environment holds, whatever library wrote the message.
"""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from k2_lakehouse.settings import ServiceUnreachable, Settings, dagster_home, server_address

SECRET_VARIABLES = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
URL_VARIABLES = ("K2_CLICKHOUSE_URL", "K2_ICEBERG_CATALOG_URI", "K2_DAGSTER_POSTGRES_URL")
PROBE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Check:
    """One part of the profile: what is configured (redacted), and the problem with it and its fix, if any."""

    part: str
    configured: str
    problem: str = ""
    fix: str = ""

    @property
    def ok(self) -> bool:
        return not self.problem


def secrets_in_environment() -> list[str]:
    """Every secret the environment holds: the passwords of the URLs k2 reads and the AWS secrets."""
    found = [os.environ.get(name, "") for name in SECRET_VARIABLES]
    for name in URL_VARIABLES:
        try:
            found.append(urlsplit(os.environ.get(name, "")).password or "")
        except ValueError:  # not a URL at all: nothing to find in it
            continue
    return [secret for secret in found if len(secret) >= 3]


def scrub(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret replaced by ***, and only its first line: a check reports, it does not trace."""
    line = text.strip().splitlines()[0] if text.strip() else "failed"
    for secret in secrets:
        line = line.replace(secret, "***")
    return line


def _redacted_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")).geturl()


def _tried(part: str, configured: str, fix: str, probe: Callable[[], str | None]) -> Check:
    """Run `probe`; an exception is the problem. A probe may return a problem of its own, or None."""
    try:
        problem = probe()
    except Exception as exc:
        problem = scrub(f"{type(exc).__name__}: {exc}" if not str(exc) else str(exc), secrets_in_environment())
    return Check(part, configured, problem or "", fix if problem else "")


def check_warm(settings: Settings) -> Check:
    from k2_lakehouse.warm.client import embedded_path, is_embedded, session

    url = settings.clickhouse_url
    if is_embedded(url):
        configured = f"embedded ClickHouse (chdb) at {embedded_path(url)}"
        fix = "wait for the process holding the store to finish, or point K2_CLICKHOUSE_URL at a server"
    else:
        configured = f"ClickHouse server at {_redacted_url(url)}"
        fix = f"start the server at {server_address(url)} or correct K2_CLICKHOUSE_URL (user, password, port)"

    def probe() -> None:
        with session(url, settings.busy_timeout_s) as client:
            client.command("SELECT 1")

    return _tried("warm store", configured, fix, probe)


def check_catalog(settings: Settings) -> Check:
    from k2_lakehouse.cold.catalog import load_catalog, redacted_uri

    def probe() -> None:
        catalog = load_catalog(settings)
        catalog.list_namespaces()

    return _tried("Iceberg catalog", f"SQL catalog at {redacted_uri(settings.iceberg_catalog_uri)}",
                  "start the database or correct K2_ICEBERG_CATALOG_URI", probe)


def check_warehouse(settings: Settings) -> Check:
    from pyiceberg.io import load_file_io

    from k2_lakehouse.cold.catalog import load_catalog

    warehouse = settings.iceberg_warehouse

    def probe() -> None:
        # The catalog's own FileIO properties (object-store endpoint and credentials), as every writer uses them;
        # without a catalog (its own check reports why) the warehouse is still tried with the defaults.
        try:
            properties = dict(load_catalog(settings).properties)
        except ServiceUnreachable:
            properties = {}
        io = load_file_io(properties, warehouse)
        path = f"{warehouse.rstrip('/')}/.k2-doctor-{uuid.uuid4().hex}"
        with io.new_output(path).create(overwrite=True) as handle:
            handle.write(b"k2 doctor")
        io.delete(path)

    return _tried("warehouse", warehouse, "make K2_ICEBERG_WAREHOUSE a location this host can write "
                  "(for s3://, the bucket must exist and AWS_* must grant writes)", probe)


def check_dagster(settings: Settings) -> Check:
    home = dagster_home(settings)
    config = home / "dagster.yaml"
    text = config.read_text() if config.is_file() else ""
    storage = "PostgreSQL" if "postgres" in text else "SQLite"
    configured = f"{storage} storage, DAGSTER_HOME={home}"

    def probe() -> str | None:
        if not config.is_file():
            return f"{config} does not exist: the instance has no run queue, retries or run monitoring"
        import dagster as dg

        with dg.DagsterInstance.from_config(str(home)) as instance:
            instance.get_runs_count()
        return None

    return _tried("Dagster instance", configured,
                  "run `k2 init` (make ui does the same) to write k2's dagster.yaml, or fix the "
                  "storage it names", probe)


def check_spark(settings: Settings) -> Check:
    master = settings.spark_master

    def probe() -> str | None:
        if master.startswith("local"):
            return None if shutil.which("java") else "no java on PATH: Spark needs Java 17"
        parts = urlsplit(master)
        if parts.scheme != "spark" or parts.hostname is None:
            return f"K2_SPARK_MASTER={master!r} is neither local[...] nor spark://host:port"
        address = (parts.hostname, parts.port or 7077)
        try:
            with socket.create_connection(address, timeout=PROBE_TIMEOUT_S):
                return None
        except OSError as exc:
            return f"cannot reach the master at {address[0]}:{address[1]}: {exc.strerror or type(exc).__name__}"

    return _tried("Spark master", master, "start the master or correct K2_SPARK_MASTER", probe)


def check_profile(settings: Settings) -> list[Check]:
    """Every part of the profile, checked in the order a run uses them."""
    return [check(settings) for check in (check_warm, check_catalog, check_warehouse, check_dagster, check_spark)]
