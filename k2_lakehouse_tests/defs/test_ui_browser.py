"""The Dagster UI in a real headless browser: the asset graph shows every asset, its lineage and check results."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from clickhouse_connect.driver.client import Client

from k2_lakehouse.ingest.load import ingest_file
from k2_lakehouse_tests.support.cold import KRAKEN_TRADES

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "test-output" / "ui"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage",
                 "--disable-component-update", "--no-first-run"]
ALL_ASSETS = ("trades_raw", "bronze_trades", "silver_trades", "raw_trades", "compaction", "snapshot_expiry", "audit",
              *(f"gold_ohlcv_{tf}" for tf in ("1m", "5m", "15m", "30m", "1h", "1d")))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def dagster_state(warm: Client, datasets: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A persistent instance holding a real offload run of the Kraken sample."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("K2_ICEBERG_CATALOG_URI", f"sqlite:///{tmp_path / 'iceberg' / 'catalog.db'}")
    monkeypatch.setenv("K2_ICEBERG_WAREHOUSE", f"file://{tmp_path / 'iceberg' / 'warehouse'}")
    home = tmp_path / "dagster"
    home.mkdir()
    ingest_file(warm, datasets / KRAKEN_TRADES)
    from k2_lakehouse.definitions import build_defs
    from k2_lakehouse.settings import load_settings

    with dg.DagsterInstance.local_temp(str(home)) as instance:
        result = build_defs(load_settings()).resolve_job_def("offload_job").execute_in_process(instance=instance, tags={
            "dagster/asset_partition_range_start": "2025-11-10-18:00",
            "dagster/asset_partition_range_end": "2025-11-10-19:00"})
        assert result.success
    return home


@pytest.fixture
def webserver(dagster_state: Path) -> Iterator[str]:
    port = _free_port()
    env = {**os.environ, "DAGSTER_HOME": str(dagster_state)}
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster-webserver"), "-w", str(REPO / "workspace.yaml"), "-h", "127.0.0.1",
         "-p", str(port)], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{url}/server_info", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("dagster-webserver did not answer within 120 s")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.slow
def test_the_asset_graph_shows_every_asset_its_lineage_and_check_results(webserver: str) -> None:
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no chromium at {CHROMIUM}: `make test` installs Debian's chromium package")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 2400, "height": 3200})
        # The first-visit "Join the Dagster community" dialog opens when its query returns, which on a loaded
        # machine is after the page settles; Playwright dismisses it whenever it covers an action.
        page.add_locator_handler(page.get_by_role("button", name="Skip"), lambda skip: skip.first.click())
        page.goto(f"{webserver}/asset-groups", wait_until="networkidle")
        for group in ("warm", "cold", "maintenance"):
            page.locator("foreignObject").filter(has_text=group).first.dblclick()
            page.wait_for_timeout(800)
        page.wait_for_timeout(1500)
        page.screenshot(path=str(SCREENSHOTS / "lineage.png"))
        node_text = " ".join(page.locator("foreignObject").evaluate_all("els => els.map(e => e.textContent || '')"))
        edges = page.locator("svg path").count()
        for group in ("warm", "cold", "maintenance"):  # the sidebar lists every asset of every group
            page.get_by_text(group, exact=True).first.click()
        sidebar = page.inner_text("body")
        browser.close()
    shown = node_text + sidebar  # both lists are virtualised: together they hold every asset
    missing = [name for name in ALL_ASSETS if name not in shown]
    assert not missing, f"assets not shown: {missing}"
    assert "warm" in node_text and "cold" in node_text and "maintenance" in node_text
    assert "Passed" in node_text, "check results are shown on the graph"
    assert "Failed" not in node_text
    assert edges >= 20, f"expected the lineage edges between 21 assets, found {edges} paths"
