"""Warm assets: materialising an hour of a layer seals it (k2_lakehouse.warm.seal)."""


from collections.abc import Iterator
from typing import TYPE_CHECKING, TypedDict

import dagster as dg

from k2_lakehouse.defs.metadata import Metadata, MetadataEntry
from k2_lakehouse.defs.partitions import hourly_partitions, hours_of
from k2_lakehouse.defs.policies import OWNERS, table_pool
from k2_lakehouse.defs.resources import WarmStore
from k2_lakehouse.warm import seal
from k2_lakehouse.warm.tables import (
    BRONZE_TRADES,
    SILVER_TRADES,
    TIMEFRAMES,
    TRADES_RAW,
    WarmTable,
    gold_table,
)

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

GROUP = "warm"
KINDS = {"clickhouse", "sql"}


class _CommonOptions(TypedDict):
    group_name: str
    partitions_def: dg.HourlyPartitionsDefinition
    backfill_policy: dg.BackfillPolicy
    owners: list[str]
    kinds: set[str]


_common = _CommonOptions(
    group_name=GROUP,
    partitions_def=hourly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    owners=OWNERS,
    kinds=KINDS,
)


def warm_key(table: str) -> dg.AssetKey:
    return dg.AssetKey(["warm", table])


def column_schema(client: "Client", table: str) -> dg.TableSchema:
    rows = client.query(
        "SELECT name, type, comment FROM system.columns WHERE database = 'k2' AND table = {t:String} ORDER BY position",
        parameters={"t": table}).result_rows
    return dg.TableSchema(columns=[dg.TableColumn(name, type_, description=comment or None) for name, type_, comment in rows])


def layer_metadata(client: "Client", table: WarmTable, result: seal.LayerResult, schema_table: str | None = None,
                   **extra: MetadataEntry) -> Metadata:
    return {
        "dagster/row_count": result.rows,
        "dagster/table_name": f"k2.{table.name}",
        "dagster/column_schema": column_schema(client, schema_table or table.name),
        # UInt64: shown as hex, Dagster integers are signed 64-bit.
        "content_checksum": f"{result.checksum:016x}",
        "seconds": round(result.seconds, 3),
        **{k: dg.MetadataValue.json(v) if isinstance(v, dict) else v for k, v in {**result.extra, **extra}.items()},
    }


@dg.asset(
    key=warm_key("trades_raw"),
    description=TRADES_RAW.description,
    pool=table_pool("trades_raw"),
    **_common,
)
def trades_raw(context: dg.AssetExecutionContext, warm: WarmStore) -> dg.MaterializeResult[None]:
    """Raw messages arrive continuously (k2 ingest, or the Kafka engine); with K2_LANDING_DIR set, the hours are
    (re)loaded from the landing files first. Records what the hours hold."""
    from k2_lakehouse.ingest.landing import reload_hours
    from k2_lakehouse.settings import load_settings

    hours = hours_of(context)
    landing_dir = load_settings().landing_dir
    with warm.client() as client:
        extra: dict[str, int] = {}
        if landing_dir is not None:
            landed = reload_hours(client, landing_dir, hours)
            extra = {"landing_files": landed.files, "landing_rows": landed.rows}
            for path, why in landed.refused.items():
                context.log.warning(f"landing file not loaded: {path}: {why}")
        result = seal.raw_result(client, hours)
        return dg.MaterializeResult(metadata={**layer_metadata(client, TRADES_RAW, result), **extra},
                                    data_version=dg.DataVersion(f"{result.checksum:016x}"))


@dg.asset(
    key=warm_key("bronze_trades"),
    deps=[warm_key("trades_raw")],
    description=BRONZE_TRADES.description,
    check_specs=[
        dg.AssetCheckSpec("one_trade_stream_per_symbol", asset=warm_key("bronze_trades"), blocking=True,
                          description="No symbol's hour holds trades of two message types (Binance's @trade and "
                                      "@aggTrade number trades apart, and an aggTrade repeats its trades)."),
    ],
    pool=table_pool("bronze_trades"),
    **_common,
)
def bronze_trades(context: dg.AssetExecutionContext, warm: WarmStore) -> Iterator[object]:
    from k2_lakehouse.warm import checks

    hours = hours_of(context)
    with warm.client() as client:
        result = seal.seal_bronze(client, hours)
        streams = checks.mixed_trade_streams(client, hours)
        yield dg.MaterializeResult(metadata=layer_metadata(client, BRONZE_TRADES, result),
                                   data_version=dg.DataVersion(f"{result.checksum:016x}"))
        yield dg.AssetCheckResult(check_name="one_trade_stream_per_symbol", passed=streams.passed,
                                  metadata={**streams.measured, "problems": "\n".join(streams.problems) or "none"})


@dg.asset(
    key=warm_key("silver_trades"),
    deps=[warm_key("bronze_trades")],
    description=SILVER_TRADES.description + " The DLQ (k2.silver_trades_dlq) is written by the same step.",
    check_specs=[
        dg.AssetCheckSpec("accounting_invariant", asset=warm_key("silver_trades"), blocking=True,
                          description="Every raw message of the hours is in exactly one of silver, DLQ, "
                                      "skipped or duplicate-of-a-silver-row."),
        dg.AssetCheckSpec("no_duplicate_trades", asset=warm_key("silver_trades"), blocking=True,
                          description="At most one silver row per (exchange, exchange_symbol, trade_id)."),
    ],
    pool=table_pool("silver_trades"),
    **_common,
)
def silver_trades(context: dg.AssetExecutionContext, warm: WarmStore) -> Iterator[object]:
    from k2_lakehouse.warm import checks

    hours = hours_of(context)
    with warm.client() as client:
        result = seal.seal_silver(client, hours)
        books = seal.accounting(client, hours)
        duplicates = checks.silver_duplicates(client, hours)
        yield dg.MaterializeResult(
            metadata=layer_metadata(client, SILVER_TRADES, result, raw=books.raw, skipped=books.skipped,
                                    duplicates=books.duplicates, dlq_total=books.dlq),
            data_version=dg.DataVersion(f"{result.checksum:016x}"),
        )
        yield dg.AssetCheckResult(check_name="accounting_invariant", passed=books.balanced,
                                  metadata={k: v for k, v in vars(books).items()})
        yield dg.AssetCheckResult(check_name="no_duplicate_trades", passed=duplicates == 0,
                                  metadata={"duplicate_rows": duplicates})


GOLD_KEYS = {tf: warm_key(f"gold_ohlcv_{tf}") for tf in TIMEFRAMES}


@dg.multi_asset(
    specs=[
        dg.AssetSpec(GOLD_KEYS[tf], deps=[warm_key("silver_trades")], description=gold_table(tf).description,
                     group_name=GROUP, owners=OWNERS, kinds=KINDS, partitions_def=hourly_partitions)
        for tf in TIMEFRAMES
    ],
    check_specs=[
        dg.AssetCheckSpec("ohlcv_sanity", asset=GOLD_KEYS["1m"], blocking=True,
                          description="low <= open, close <= high; volume > 0; 1m..1h agree with silver per hour; "
                                      "1d agrees with the day's 1h candles."),
        dg.AssetCheckSpec("equals_polars_recomputation", asset=GOLD_KEYS["1m"], blocking=True,
                          description="All six timeframes equal an independent polars computation from silver."),
    ],
    partitions_def=hourly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=table_pool("gold_ohlcv"),
    can_subset=False,
    name="gold_ohlcv",
)
def gold_ohlcv(context: dg.AssetExecutionContext, warm: WarmStore) -> Iterator[object]:
    """One replay of silver feeds all six candle tables, so the six are sealed together."""
    from k2_lakehouse.warm import checks  # polars: loaded when a run needs it, not when defs load

    hours = hours_of(context)
    with warm.client() as client:
        for tf, result in zip(TIMEFRAMES, seal.seal_gold(client, hours), strict=True):
            yield dg.MaterializeResult(
                asset_key=GOLD_KEYS[tf],
                metadata=layer_metadata(client, gold_table(tf), result, schema_table=f"gold_ohlcv_{tf}_view"),
                data_version=dg.DataVersion(f"{result.checksum:016x}"),
            )
        sanity = checks.ohlcv_sanity(client, hours)
        yield dg.AssetCheckResult(asset_key=GOLD_KEYS["1m"], check_name="ohlcv_sanity", passed=sanity.passed,
                                  metadata={**sanity.measured, "problems": "\n".join(sanity.problems) or "none"})
        dual = checks.gold_equals_recomputation(client, hours)
        yield dg.AssetCheckResult(asset_key=GOLD_KEYS["1m"], check_name="equals_polars_recomputation",
                                  passed=dual.passed,
                                  metadata={**dual.measured, "problems": "\n".join(dual.problems) or "none"})


warm_assets = [trades_raw, bronze_trades, silver_trades, gold_ohlcv]
