"""What every asset of the code location shares, declared once: its owners and its concurrency pool.

One pool for every asset that opens the stores: embedded ClickHouse admits one process per data path, so seals,
offloads, maintenance and the audit queue in it instead of colliding, and compaction and expiry never race an
offload of the same partition. Dagster takes a pool per asset, not per code location, so each domain's assets
name this one. The executor, the other policy that applies to every run, is set where the definitions are
assembled (definitions.py).
"""

OWNERS = ["team:data-platform"]
POOL = "k2_warm_store"
