"""The code location's asset graph, as the UI shows it: every table an hourly asset, wired by lineage.

The expected graph is written out here from the product's description, not derived from the code under
test, so a renamed key, a lost dependency or a dropped check fails one of these.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import dagster as dg
import pytest

from k2_lakehouse.definitions import defs

if TYPE_CHECKING:  # the type resolve_asset_graph returns; dagster does not export it
    from dagster._core.definitions.assets.graph.asset_graph import AssetGraph

TIMEFRAMES = ["1m", "5m", "15m", "30m", "1h", "1d"]
WARM_PARENTS = {
    "trades_raw": [],
    "bronze_trades": ["trades_raw"],
    "silver_trades": ["bronze_trades"],
    **{f"gold_ohlcv_{tf}": ["silver_trades"] for tf in TIMEFRAMES},
}
COLD_TO_WARM = {
    "raw_trades": "trades_raw",
    "bronze_trades": "bronze_trades",
    "silver_trades": "silver_trades",
    **{f"gold_ohlcv_{tf}": f"gold_ohlcv_{tf}" for tf in TIMEFRAMES},
}
MAINTENANCE = ["compaction", "snapshot_expiry", "audit"]
WARM_KEYS = [dg.AssetKey(["warm", name]) for name in WARM_PARENTS]
COLD_KEYS = [dg.AssetKey(["cold", name]) for name in COLD_TO_WARM]
TABLE_KEYS = WARM_KEYS + COLD_KEYS


@pytest.fixture(scope="module")
def graph() -> AssetGraph:
    return defs.resolve_asset_graph()


def test_the_definitions_load_with_every_resource_bound() -> None:
    dg.Definitions.validate_loadable(defs)


def test_the_graph_holds_every_warm_cold_and_maintenance_asset_and_nothing_else(graph: AssetGraph) -> None:
    expected = {*TABLE_KEYS, *(dg.AssetKey(["maintenance", name]) for name in MAINTENANCE)}
    assert set(graph.get_all_asset_keys()) == expected


@pytest.mark.parametrize("key", TABLE_KEYS, ids=lambda k: k.to_user_string())
def test_every_table_is_hourly_utc_and_backfills_a_range_in_one_run(graph: AssetGraph, key: dg.AssetKey) -> None:
    node = graph.get(key)
    assert isinstance(node.partitions_def, dg.HourlyPartitionsDefinition)
    assert node.partitions_def.timezone == "UTC"
    assert node.backfill_policy == dg.BackfillPolicy.single_run()


@pytest.mark.parametrize("name", WARM_PARENTS)
def test_each_warm_layer_reads_the_layer_before_it(graph: AssetGraph, name: str) -> None:
    assert graph.get(dg.AssetKey(["warm", name])).parent_keys == {dg.AssetKey(["warm", p]) for p in WARM_PARENTS[name]}


@pytest.mark.parametrize("name", COLD_TO_WARM)
def test_each_cold_table_is_offloaded_from_its_warm_table_and_checked_against_it(graph: AssetGraph, name: str) -> None:
    node = graph.get(dg.AssetKey(["cold", name]))
    assert node.parent_keys == {dg.AssetKey(["warm", COLD_TO_WARM[name]])}
    assert {check.name for check in node.check_keys} == {"matches_warm"}
    assert node.freshness_policy is not None


@pytest.mark.parametrize("name", MAINTENANCE)
def test_maintenance_sits_downstream_of_every_cold_table(graph: AssetGraph, name: str) -> None:
    assert graph.get(dg.AssetKey(["maintenance", name])).parent_keys == set(COLD_KEYS)


def test_the_warm_checks_guard_bronze_silver_and_gold(graph: AssetGraph) -> None:
    checks = {key: {c.name for c in graph.get(key).check_keys} for key in WARM_KEYS}
    assert checks[dg.AssetKey(["warm", "bronze_trades"])] == {"one_trade_stream_per_symbol"}
    assert checks[dg.AssetKey(["warm", "silver_trades"])] == {"accounting_invariant", "no_duplicate_trades"}
    assert checks[dg.AssetKey(["warm", "gold_ohlcv_1m"])] == {"ohlcv_sanity", "equals_polars_recomputation"}


def test_the_audit_reports_mismatches_missing_hours_and_unverified_expiry(graph: AssetGraph) -> None:
    checks = {c.name for c in graph.get(dg.AssetKey(["maintenance", "audit"])).check_keys}
    assert checks == {"no_mismatch", "no_missing_cold_hours", "verified_before_expiry"}


def test_the_seal_and_the_offload_of_one_table_share_its_pool_and_other_tables_have_their_own(
        graph: AssetGraph) -> None:
    # With a ClickHouse server runs execute concurrently; a pool limit of one per table keeps two runs from
    # sealing or offloading the same table's hours at once. The six candle tables are sealed by one step.
    pools = {"/".join(key.path): graph.get(key).pools for key in graph.get_all_asset_keys()}
    expected = {
        "warm/trades_raw": "k2_trades_raw", "cold/raw_trades": "k2_trades_raw",
        "warm/bronze_trades": "k2_bronze_trades", "cold/bronze_trades": "k2_bronze_trades",
        "warm/silver_trades": "k2_silver_trades", "cold/silver_trades": "k2_silver_trades",
        **{f"{tier}/gold_ohlcv_{tf}": "k2_gold_ohlcv" for tier in ("warm", "cold")
           for tf in ("1m", "5m", "15m", "30m", "1h", "1d")},
        "maintenance/compaction": "k2_maintenance", "maintenance/snapshot_expiry": "k2_maintenance",
        "maintenance/audit": "k2_maintenance",
    }
    assert pools == {key: {pool} for key, pool in expected.items()}
