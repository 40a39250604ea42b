"""The warm assets run as Dagster would run them: a partition range in one run."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
from clickhouse_connect.driver.client import Client

from k2_lakehouse.ingest.load import ingest_file

RANGE_TAGS = {
    "dagster/asset_partition_range_start": "2025-11-10-17:00",
    "dagster/asset_partition_range_end": "2025-11-11-00:00",
}


@pytest.fixture
def instance() -> dg.DagsterInstance:
    return dg.DagsterInstance.ephemeral()


def _run_warm_range(instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    from k2_lakehouse.definitions import build_defs
    from k2_lakehouse.settings import load_settings

    return build_defs(load_settings()).resolve_job_def("warm_seal_job").execute_in_process(instance=instance, tags=RANGE_TAGS)


def test_a_partition_range_seals_in_one_run_with_every_check_passing(
        warm: Client, datasets: Path, instance: dg.DagsterInstance) -> None:
    ingest_file(warm, datasets / "kraken" / "XBTUSDT-trades-2025-11-10.rest.json")
    result = _run_warm_range(instance)
    assert result.success
    evaluations = result.get_asset_check_evaluations()
    assert {e.check_name for e in evaluations} == {
        "one_trade_stream_per_symbol", "accounting_invariant", "no_duplicate_trades", "ohlcv_sanity",
        "equals_polars_recomputation"}
    assert all(e.passed for e in evaluations), [e for e in evaluations if not e.passed]


def test_sealing_records_row_counts_and_checksums_per_layer(
        warm: Client, datasets: Path, instance: dg.DagsterInstance) -> None:
    ingest_file(warm, datasets / "kraken" / "XBTUSDT-trades-2025-11-10.rest.json")
    result = _run_warm_range(instance)
    silver = [m for m in result.get_asset_materialization_events()
              if m.asset_key == dg.AssetKey(["warm", "silver_trades"])]
    assert len(silver) == 8  # one materialization per hour of the range
    metadata = silver[0].materialization.metadata
    assert metadata["dagster/row_count"].value == 1000
    assert metadata["dagster/table_name"].value == "k2.silver_trades"
    assert len(metadata["content_checksum"].value) == 16
