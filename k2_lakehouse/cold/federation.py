"""One view per table over both tiers: k2.<table>_all returns every row exactly once.

Each view is `warm rows UNION ALL cold rows of the hours warm no longer holds`. Warm is the fresher
tier (late trades land there first), so an hour present in both is read from warm; an hour counts as
present in warm if warm holds any row of it. That is exact because hours leave warm atomically: the
trade tables expire whole parts (TTL with ttl_only_drop_parts), never single rows of an hour.

Gold views return final candles (the columns of the warm `_view`s) and choose per window: a window
present in the warm gold table comes from warm, otherwise from cold. For windows of up to an hour that
is the hour rule; a daily window is read from warm while warm holds any of its hours, so warm gold must
be dropped by whole days (its partitions are months) for a daily candle to stay complete.

The cold side is pinned to the data files of the snapshot the catalog points at (`verify.pinned_snapshot`),
so a view never reads a metadata file the catalog has not adopted, nor an orphan file, and does not move
when cold changes: call `refresh_federated_views` after every offload commit. The view's text holds paths
or URLs only; ClickHouse reads S3 with the credentials of a named collection, so `SHOW CREATE` shows no
secret.
"""

from __future__ import annotations

from clickhouse_connect.driver.client import Client
from pyiceberg.catalog import Catalog

from k2_lakehouse.cold.storage import prepare_clickhouse, query_size
from k2_lakehouse.cold.tables import COLD_TABLES, ColdTable
from k2_lakehouse.cold.verify import PinnedSnapshot, pinned_snapshot


def view_name(cold: ColdTable) -> str:
    return f"k2.{cold.name}_all"


def _columns(cold: ColdTable) -> str:
    # Both sides cast to the warm types, so the view has the warm columns whichever tier a row is from.
    return ", ".join(f"CAST({c.name} AS {c.warm_type}) AS {c.name}" for c in cold.columns)


def _hour_key(cold: ColdTable) -> str:
    if cold.timeframe is not None:
        return "toDateTime(window_start, 'UTC')"
    return f"toStartOfHour(toDateTime({cold.hour_column}, 'UTC'))"


def _warm_hours(cold: ColdTable) -> str:
    # The stored table, not the _view or FINAL: presence of any row is what counts, and it is cheaper.
    return f"SELECT DISTINCT {_hour_key(cold)} FROM {cold.warm.qualified}"


def view_sql(cold: ColdTable, pinned: PinnedSnapshot | None) -> str:
    warm = f"SELECT {_columns(cold)} FROM {cold.warm_source}"
    if pinned is None:
        return f"CREATE OR REPLACE VIEW {view_name(cold)} AS {warm}"
    # The snapshot's files are named, not found: the newest metadata file on disk may be a killed commit's,
    # and a file of the table's folder may be an orphan. The SQL names no secret (`storage.clickhouse_reader`).
    cold_rows = f"SELECT {_columns(cold)} FROM {pinned.source} WHERE {_hour_key(cold)} NOT IN ({_warm_hours(cold)})"
    return f"CREATE OR REPLACE VIEW {view_name(cold)} AS {warm} UNION ALL {cold_rows}"


def refresh_federated_views(client: Client, catalog: Catalog) -> dict[str, int | None]:
    """(Re)create every k2.<table>_all view on the current snapshots; returns view -> pinned snapshot id."""
    return {view_name(cold): refresh_federated_view(client, catalog, cold) for cold in COLD_TABLES.values()}


def refresh_federated_view(client: Client, catalog: Catalog, cold: ColdTable) -> int | None:
    """(Re)create the one view over `cold` on its current snapshot; returns the pinned snapshot id.

    What an offload of one table needs: each view reads only its own table, so a commit to `cold` moves
    no other view.
    """
    table = catalog.load_table(cold.identifier)
    prepare_clickhouse(client, table.io, table.location())
    current = pinned_snapshot(table)
    sql = view_sql(cold, current)
    client.command(sql, settings=query_size(sql))
    return current.snapshot_id if current else None
