"""The cold tables by name, and the warm table each mirrors: importable without pyiceberg, for the Dagster layer."""

from k2_lakehouse.warm.tables import TIMEFRAMES

NAMESPACE = "cold"

COLD_TO_WARM: dict[str, str] = {
    "raw_trades": "trades_raw",
    "bronze_trades": "bronze_trades",
    "silver_trades": "silver_trades",
    **{f"gold_ohlcv_{tf}": f"gold_ohlcv_{tf}" for tf in TIMEFRAMES},
}
