"""The cold tables follow the code's columns: created, evolved, idempotent."""

from __future__ import annotations

from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.schema import Schema
from pyiceberg.types import NestedField, StringType

from k2_lakehouse.cold.tables import cold_table, ensure_cold_tables


def test_ensure_cold_tables_drops_a_column_the_code_no_longer_has(catalog: SqlCatalog) -> None:
    bronze = cold_table("bronze_trades")
    catalog.drop_table(bronze.identifier)
    retired = NestedField(len(bronze.schema.fields) + 1, "payload", StringType(), required=False)
    catalog.create_table(bronze.identifier, Schema(*bronze.schema.fields, retired), partition_spec=bronze.spec)
    table = ensure_cold_tables(catalog)["bronze_trades"]
    assert [f.name for f in table.schema().fields] == [c.name for c in bronze.columns]
    assert "payload" not in table.properties["schema.name-mapping.default"]
