"""The metadata our assets and checks attach, typed as Dagster accepts it.

Dagster takes a mapping of raw values (numbers, text, MetadataValue, TableSchema ...) and normalises them;
it does not export a name for that mapping, so the subset of values this project attaches is named here once.
"""

from typing import TypeAlias

import dagster as dg

MetadataEntry: TypeAlias = str | int | float | bool | dg.MetadataValue | dg.TableSchema | None
Metadata: TypeAlias = dict[str, MetadataEntry]
