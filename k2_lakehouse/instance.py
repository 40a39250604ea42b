"""The home k2 runs in: K2_HOME's stores and the Dagster instance, DAGSTER_HOME and the dagster.yaml written there.

`prepare_home` is the one way a home is prepared: `k2 init` calls it and prints what it did, every other `k2`
command and `make ui` (`python -m k2_lakehouse.instance`) call it too, so `dagster dev` or `dagster-daemon run` on
a home `k2 init` prepared behave exactly as `make ui` does. Each part is idempotent: the warm schema (sql/), the
cold tables, and the instance configuration.

Embedded ClickHouse admits one process per store, so the instance queues runs one at a time; the offload job
asks to be launched again when it fails, so the instance enables run retries; a run whose process died is marked
failed by run monitoring, through K2RunLauncher (defs/run_worker.py), so the queue moves again. Everything k2
decides about the instance is written here, once. The file is k2's only while nobody edits it: an operator's own
configuration is never overwritten.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

from k2_lakehouse.settings import Settings, dagster_home, load_settings
from k2_lakehouse.warm.client import WarmStoreBusy, is_embedded

# How often the daemon checks every started run's process, and how long a run may take to start (its process
# loads the definitions and sets up its resources, on a busy machine too) or to cancel. A run whose process died
# is marked failed within one poll of a running daemon (README, "Runs heal themselves").
RUN_MONITORING_POLL_SECONDS = 10
RUN_START_TIMEOUT_SECONDS = 180

INSTANCE_HEADER = "# Written by k2"
PREPARED_STAMP = ".prepared"
# With a ClickHouse server, runs execute side by side; this many at once, each within the plan's Iceberg-side budget.
SERVER_CONCURRENT_RUNS = 4
_RUNS_AND_RETRIES = (
    "# Runs tagged dagster/max_retries (the offload job's) are launched again by the daemon when they fail.\n"
    "run_retries:\n  enabled: true\n"
    "# A run whose process died (killed, or the machine or `make ui` with it) is marked failed by the daemon's run\n"
    "# monitoring, which asks K2RunLauncher whether the process each run recorded when it started is alive.\n"
    "run_launcher:\n  module: k2_lakehouse.defs.run_worker\n  class: K2RunLauncher\n"
    "run_monitoring:\n  enabled: true\n"
    f"  poll_interval_seconds: {RUN_MONITORING_POLL_SECONDS}\n"
    f"  start_timeout_seconds: {RUN_START_TIMEOUT_SECONDS}\n"
    f"  cancel_timeout_seconds: {RUN_START_TIMEOUT_SECONDS}\n"
    "  max_resume_run_attempts: 0\n"
    "telemetry:\n  enabled: false\n"
)
# Every step that seals or offloads a warm table's hours is in that table's pool (defs/policies.py); one step per
# pool at a time keeps two runs off the same table's hours.
EMBEDDED_CONCURRENCY = (
    f"{INSTANCE_HEADER}: embedded ClickHouse admits one process, so runs queue one at a time.\n"
    "concurrency:\n  runs:\n    max_concurrent_runs: 1\n  pools:\n    default_limit: 1\n"
)
SERVER_CONCURRENCY = (
    f"{INSTANCE_HEADER}: a ClickHouse server admits many clients, so runs execute side by side, and a pool per\n"
    "# warm table keeps two of them from sealing or offloading the same table's hours at once.\n"
    f"concurrency:\n  runs:\n    max_concurrent_runs: {SERVER_CONCURRENT_RUNS}\n  pools:\n    default_limit: 1\n"
)
INSTANCE_CONFIG = EMBEDDED_CONCURRENCY + _RUNS_AND_RETRIES
"""What k2 writes for the embedded default (`instance_config` for any settings)."""

# With K2_DAGSTER_POSTGRES_URL set, the instance keeps its runs, event logs, schedules and sensors in PostgreSQL. The
# file names the variable, which each Dagster process reads from its environment: the URL (a password, maybe) is
# never written.
POSTGRES_URL_VARIABLE = "K2_DAGSTER_POSTGRES_URL"
POSTGRES_STORAGE = (
    f"# Runs, event logs, schedules and sensors in PostgreSQL, at {POSTGRES_URL_VARIABLE} (read from the environment).\n"
    f"storage:\n  postgres:\n    postgres_url:\n      env: {POSTGRES_URL_VARIABLE}\n"
)

# What earlier versions of k2 wrote. Such a file, unedited, is replaced by INSTANCE_CONFIG.
EARLIER_INSTANCE_CONFIGS = (
    f"{INSTANCE_HEADER}: embedded ClickHouse admits one process, so runs queue one at a time. Runs tagged\n"
    "# dagster/max_retries (the offload job's) are launched again by the daemon when they fail.\n"
    "concurrency:\n  runs:\n    max_concurrent_runs: 1\n"
    "run_retries:\n  enabled: true\n"
    "# A run whose process died (killed, or the machine or `make ui` with it) is marked failed by the daemon's run\n"
    "# monitoring, which asks K2RunLauncher whether the process each run recorded when it started is alive.\n"
    "run_launcher:\n  module: k2_lakehouse.defs.run_worker\n  class: K2RunLauncher\n"
    "run_monitoring:\n  enabled: true\n"
    f"  poll_interval_seconds: {RUN_MONITORING_POLL_SECONDS}\n"
    f"  start_timeout_seconds: {RUN_START_TIMEOUT_SECONDS}\n"
    f"  cancel_timeout_seconds: {RUN_START_TIMEOUT_SECONDS}\n"
    "  max_resume_run_attempts: 0\n"
    "telemetry:\n  enabled: false\n",
    f"{INSTANCE_HEADER}: embedded ClickHouse admits one process, so runs queue one at a time. Runs tagged\n"
    "# dagster/max_retries (the offload job's) are launched again by the daemon when they fail.\n"
    "concurrency:\n  runs:\n    max_concurrent_runs: 1\n"
    "run_retries:\n  enabled: true\n"
    "telemetry:\n  enabled: false\n",
    f"{INSTANCE_HEADER}: embedded ClickHouse admits one process, so runs queue one at a time.\n"
    "concurrency:\n  runs:\n    max_concurrent_runs: 1\n"
    "telemetry:\n  enabled: false\n",
)


def ensure_dagster_instance(settings: Settings) -> Path:
    """DAGSTER_HOME with k2's instance configuration (INSTANCE_CONFIG); see `write_instance_config`."""
    home, _ = write_instance_config(settings)
    return home


def instance_config(settings: Settings) -> str:
    """The dagster.yaml k2 writes for `settings`: runs one at a time with embedded ClickHouse, side by side (pools
    keeping them off each other's tables) with a server; PostgreSQL storage if K2_DAGSTER_POSTGRES_URL is set."""
    return _config(server=not is_embedded(settings.clickhouse_url), postgres=bool(settings.dagster_postgres_url))


def _config(server: bool, postgres: bool) -> str:
    return ((SERVER_CONCURRENCY if server else EMBEDDED_CONCURRENCY) + _RUNS_AND_RETRIES
            + (POSTGRES_STORAGE if postgres else ""))


def k2_written_configs() -> set[str]:
    """Every dagster.yaml k2 writes or wrote, for any settings: such a file, unedited, is k2's to update."""
    return {*EARLIER_INSTANCE_CONFIGS, *(_config(server, postgres) for server in (False, True)
                                         for postgres in (False, True))}


def write_instance_config(settings: Settings) -> tuple[Path, str]:
    """DAGSTER_HOME (also set in this process's environment) and what became of its dagster.yaml.

    A dagster.yaml exactly as k2 wrote it (an earlier k2, or this one for other settings: K2_DAGSTER_POSTGRES_URL
    set since, or unset) is brought up to date. Any other (an operator's, or k2's with an operator's edits: their
    storage, say) is left alone; if it does not enable run retries or run monitoring, a warning says what will
    not happen.
    """
    home = dagster_home(settings)
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    config = home / "dagster.yaml"
    current = config.read_text() if config.exists() else None
    wanted = instance_config(settings)
    storage = f"storage in PostgreSQL ({POSTGRES_URL_VARIABLE})" if settings.dagster_postgres_url else "storage in SQLite files"
    if current == wanted:
        return home, f"{config}: k2's current configuration, unchanged ({storage})"
    if current is None or current in k2_written_configs():
        config.write_text(wanted)
        done = "written" if current is None else "brought up to date (k2 wrote it, for other settings or earlier)"
        runs = ("runs queue one at a time" if is_embedded(settings.clickhouse_url)
                else f"up to {SERVER_CONCURRENT_RUNS} runs at once, one step per table pool")
        return home, f"{config}: {done}: {runs}, failed offloads are retried, dead runs are failed, {storage}"
    for section, consequence in (("run_retries", "a failed offload_job run will not be launched again"),
                                 ("run_monitoring", "a run whose process died will stay STARTED and block the queue")):
        if section not in current:
            print(f"k2: {config} does not enable {section}: {consequence} (k2's own configuration would:\n"
                  f"{wanted})", file=sys.stderr)
    return home, f"{config}: not k2's (edited, or an operator's own), left alone"


def prepare_warm_store(settings: Settings) -> str:
    """The warm store with sql/ applied; what was done, in one line (the URL without its password)."""
    from k2_lakehouse.warm.client import connect, redact
    from k2_lakehouse.warm.schema import apply_schema

    applied = apply_schema(connect(settings.clickhouse_url, settings.busy_timeout_s))
    return f"warm store {redact(settings.clickhouse_url)}: schema applied ({len(applied)} objects of sql/)"


def prepare_cold_tables(settings: Settings) -> str:
    """Every cold table created or evolved; what was done, in one line (the catalog's URI without its password)."""
    from k2_lakehouse.cold.catalog import load_catalog
    from k2_lakehouse.cold.tables import COLD_TABLES, ensure_cold_tables
    from k2_lakehouse.warm.client import redact

    catalog = load_catalog(settings)
    existing = {name for name, cold in COLD_TABLES.items() if catalog.table_exists(cold.identifier)}
    ensure_cold_tables(catalog)
    created = len(COLD_TABLES) - len(existing)
    return (f"cold catalog {redact(settings.iceberg_catalog_uri)}: {len(COLD_TABLES)} tables "
            f"({created} created, {len(existing)} already there), warehouse {redact(settings.iceberg_warehouse)}")


def stores_fingerprint(settings: Settings) -> str:
    """What the stores' preparation depends on: the stores the settings name and the code that creates their
    objects (sql/, the symbol registry, cold/tables.py). A hash: the URLs may hold passwords."""
    from k2_lakehouse.warm.schema import SQL_DIR, SYMBOLS_CSV, schema_files

    digest = hashlib.sha256()
    for part in (settings.clickhouse_url, settings.iceberg_catalog_uri, settings.iceberg_warehouse):
        digest.update(part.encode() + b"\0")
    for path in (*schema_files(SQL_DIR), SYMBOLS_CSV, Path(__file__).resolve().parent / "cold" / "tables.py"):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def prepare_home(settings: Settings, force: bool = False) -> list[str]:
    """K2_HOME ready to run: the instance configuration, the cold tables, the warm schema. Returns what was done,
    one line per part. An embedded warm store another process holds raises WarmStoreBusy (after the other parts).

    The instance configuration is checked every time (it is a file). The stores are prepared again only when
    something they depend on changed since the last preparation (`stores_fingerprint`, kept in K2_HOME as
    PREPARED_STAMP), or with `force` (`k2 init`): importing the Iceberg library and applying sql/ take seconds,
    which every `k2 sql` would pay otherwise, and the runs create a missing cold table themselves.
    """
    settings.home.mkdir(parents=True, exist_ok=True)
    _, instance = write_instance_config(settings)
    stamp, fingerprint = settings.home / PREPARED_STAMP, stores_fingerprint(settings)
    if not force and stamp.exists() and stamp.read_text() == fingerprint:
        return [f"K2_HOME {settings.home}", instance, f"stores: prepared already, for these settings and this k2 "
                                                      f"({stamp})"]
    # The warm store first: with a server profile, an unreachable ClickHouse is the error a user must see first
    # (every command needs it), while a busy embedded store still lets the cold tables be prepared.
    busy: WarmStoreBusy | None = None
    try:
        warm = prepare_warm_store(settings)
    except WarmStoreBusy as exc:
        busy = exc
    cold = prepare_cold_tables(settings)
    if busy is not None:
        raise busy
    stamp.write_text(fingerprint)
    return [f"K2_HOME {settings.home}", instance, warm, cold]


if __name__ == "__main__":
    try:
        prepare_home(load_settings())
    except WarmStoreBusy as exc:
        # Another k2 process holds the embedded store: it prepared it; the instance and cold tables are ready.
        print(f"k2: {exc}", file=sys.stderr)
