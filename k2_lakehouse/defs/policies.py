"""What every asset of the code location shares, declared once: its owners and its concurrency pools.

A pool per warm table, shared by the step that seals its hours and the step that offloads them: with a ClickHouse
server, runs execute concurrently, and the instance's pool limit of one (``concurrency.pools.default_limit`` in
the dagster.yaml k2 writes) keeps two runs from sealing or offloading the same table's hours at once, while
different tables proceed side by side. The six candle tables are sealed together, so they share one pool. The
maintenance steps (compaction, expiry, audit) act on every cold table and share a pool of their own; their
commits race offloads safely through Iceberg's optimistic concurrency (cold/commit_retry.py). With embedded
ClickHouse the instance runs one run at a time anyway (one process per store). Dagster takes a pool per
asset, not per code location, so each domain's assets name theirs from here. The executor, the other policy
that applies to every run, is set where the definitions are assembled (definitions.py).
"""

OWNERS = ["team:data-platform"]
MAINTENANCE_POOL = "k2_maintenance"


def table_pool(warm_table: str) -> str:
    """The pool of the steps that seal `warm_table`'s hours or offload them (k2_<table>; k2_gold_ohlcv for candles)."""
    return "k2_gold_ohlcv" if warm_table.startswith("gold_ohlcv") else f"k2_{warm_table}"
