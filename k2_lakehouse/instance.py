"""The Dagster instance k2 runs in: DAGSTER_HOME and the dagster.yaml written there.

Embedded ClickHouse admits one process per store, so the instance queues runs one at a time; the offload job
asks to be launched again when it fails, so the instance enables run retries. Everything k2 decides about the
instance (and, later, run monitoring and its storage) is written here, once, for `k2 demo` and `make ui` alike.
The file is k2's only while nobody edits it: an operator's own configuration is never overwritten.

Run as `python -m k2_lakehouse.instance` to prepare the instance without running anything (`make ui` does).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from k2_lakehouse.settings import Settings, dagster_home, load_settings

INSTANCE_HEADER = "# Written by k2"
INSTANCE_CONFIG = (
    f"{INSTANCE_HEADER}: embedded ClickHouse admits one process, so runs queue one at a time. Runs tagged\n"
    "# dagster/max_retries (the offload job's) are launched again by the daemon when they fail.\n"
    "concurrency:\n  runs:\n    max_concurrent_runs: 1\n"
    "run_retries:\n  enabled: true\n"
    "telemetry:\n  enabled: false\n"
)

# What earlier versions of k2 wrote. Such a file, unedited, is replaced by INSTANCE_CONFIG.
EARLIER_INSTANCE_CONFIGS = (
    f"{INSTANCE_HEADER}: embedded ClickHouse admits one process, so runs queue one at a time.\n"
    "concurrency:\n  runs:\n    max_concurrent_runs: 1\n"
    "telemetry:\n  enabled: false\n",
)


def ensure_dagster_instance(settings: Settings) -> Path:
    """DAGSTER_HOME with k2's instance configuration (INSTANCE_CONFIG).

    A dagster.yaml exactly as an earlier k2 wrote it is brought up to date. Any other (an operator's, or k2's
    with an operator's edits: their storage, say) is left alone; if it does not enable run retries, a warning
    says that failed offloads will not be launched again.
    """
    home = dagster_home(settings)
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    config = home / "dagster.yaml"
    if not config.exists() or config.read_text() in EARLIER_INSTANCE_CONFIGS:
        config.write_text(INSTANCE_CONFIG)
    elif "run_retries" not in config.read_text():
        print(f"k2: {config} does not enable run_retries: a failed offload_job run will not be launched again "
              f"(k2's own configuration would:\n{INSTANCE_CONFIG})", file=sys.stderr)
    return home


if __name__ == "__main__":
    ensure_dagster_instance(load_settings())
