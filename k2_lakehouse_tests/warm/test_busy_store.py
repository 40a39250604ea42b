"""A second process that needs the embedded store while it is held waits briefly, then says why."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from clickhouse_connect.driver.client import Client


def test_a_second_process_gets_a_clear_busy_error_not_a_hang(warm: Client, warm_url: str, k2_home: Path) -> None:
    env = {**os.environ, "K2_CLICKHOUSE_URL": warm_url, "K2_BUSY_TIMEOUT_S": "1"}
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "k2_lakehouse.cli", "sql", "SELECT 1"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 3
    assert "in use by another process" in done.stderr
    assert embedded_path_in(done.stderr, warm_url)
    assert time.monotonic() - started < 30


def embedded_path_in(message: str, url: str) -> bool:
    return url.removeprefix("chdb://") in message
