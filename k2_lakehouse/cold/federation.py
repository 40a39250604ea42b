"""One view per table over both tiers: k2.<table>_all returns every row exactly once.

Each view is `warm rows UNION ALL cold rows of the hours warm no longer holds`. Warm is the fresher
tier (late trades land there first), so an hour present in both is read from warm; an hour counts as
present in warm if warm holds any row of it. That is exact because hours leave warm atomically: the
trade tables expire whole parts (TTL with ttl_only_drop_parts), never single rows of an hour.

Gold views return final candles (the columns of the warm `_view`s) and choose per window: a window
present in the warm gold table comes from warm, otherwise from cold. For windows of up to an hour that
is the hour rule; a daily window is read from warm while warm holds any of its hours, so warm gold must
be dropped by whole days (its partitions are months) for a daily candle to stay complete.

The cold side is pinned to the metadata file the catalog points at and to its current snapshot
(iceberg_snapshot_id), so a view never reads a metadata file the catalog has not adopted and does not
move when cold changes: call `refresh_federated_views` after every offload commit.
"""

from __future__ import annotations

import re

from clickhouse_connect.driver.client import Client
from pyiceberg.catalog import Catalog

from k2_lakehouse.cold.tables import COLD_TABLES, ColdTable
from k2_lakehouse.cold.verify import PinnedSnapshot, pinned_snapshot

# A view definition is stored text: ClickHouse cannot bind a parameter into DDL (a {name:Type} in a
# CREATE VIEW makes a parameterized view that every reader would have to supply). So the values we
# embed, the table folder and its metadata file, are checked against a strict pattern (no quote,
# backslash, space, glob character or '..' can pass) before they are quoted; the snapshot id is an int;
# identifiers come from COLD_TABLES.
_SAFE_ABSOLUTE = re.compile(r"/[A-Za-z0-9._+/-]+")
_SAFE_RELATIVE = re.compile(r"[A-Za-z0-9._+-][A-Za-z0-9._+/-]*")


def quote_path(path: str, relative: bool = False) -> str:
    """`path` as a ClickHouse string literal, refusing anything but a plain path."""
    pattern = _SAFE_RELATIVE if relative else _SAFE_ABSOLUTE
    if not pattern.fullmatch(path) or ".." in path.split("/"):
        raise ValueError(
            f"refusing to embed {path!r} in a view: the warehouse path may hold only letters, digits and ._+-/")
    return f"'{path}'"


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
    # The metadata file is named, not found: the newest file on disk may be a killed commit's.
    # The snapshot setting sits in a subquery: on a whole UNION ALL, ClickHouse does not apply it to the
    # table function.
    source = (f"(SELECT * FROM icebergLocal({quote_path(pinned.root)}, SETTINGS iceberg_metadata_file_path = "
              f"{quote_path(pinned.metadata, relative=True)}) SETTINGS iceberg_snapshot_id = {int(pinned.snapshot_id)})")
    cold_rows = f"SELECT {_columns(cold)} FROM {source} WHERE {_hour_key(cold)} NOT IN ({_warm_hours(cold)})"
    return f"CREATE OR REPLACE VIEW {view_name(cold)} AS {warm} UNION ALL {cold_rows}"


def refresh_federated_views(client: Client, catalog: Catalog) -> dict[str, int | None]:
    """(Re)create every k2.<table>_all view on the current snapshots; returns view -> pinned snapshot id."""
    pinned: dict[str, int | None] = {}
    for cold in COLD_TABLES.values():
        current = pinned_snapshot(catalog.load_table(cold.identifier))
        client.command(view_sql(cold, current))
        pinned[view_name(cold)] = current.snapshot_id if current else None
    return pinned


def refresh_federated_view(client: Client, catalog: Catalog, cold: ColdTable) -> int | None:
    """(Re)create the one view over `cold` on its current snapshot; returns the pinned snapshot id.

    What an offload of one table needs: each view reads only its own table, so a commit to `cold` moves
    no other view.
    """
    current = pinned_snapshot(catalog.load_table(cold.identifier))
    client.command(view_sql(cold, current))
    return current.snapshot_id if current else None
