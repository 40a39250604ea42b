"""The DDL in sql/ applies idempotently, and the optional Kafka source at least parses."""

from __future__ import annotations

import pytest
from clickhouse_connect.driver.client import Client

from k2_lakehouse.warm.schema import SQL_DIR, apply_schema, read_statement, schema_files


def test_applying_the_schema_twice_changes_nothing(warm: Client) -> None:
    tables = warm.query("SELECT name, create_table_query FROM system.tables WHERE database = 'k2' ORDER BY name")
    apply_schema(warm)
    again = warm.query("SELECT name, create_table_query FROM system.tables WHERE database = 'k2' ORDER BY name")
    assert tables.result_rows == again.result_rows


def test_every_schema_file_holds_exactly_one_statement(warm: Client) -> None:
    for path in schema_files():
        # formatQuery parses exactly one statement and refuses a file holding two.
        formatted = warm.command("SELECT formatQuery({q:String})", parameters={"q": read_statement(path)})
        assert formatted.startswith("CREATE"), f"{path.name} holds no CREATE statement"


@pytest.mark.parametrize("path", sorted((SQL_DIR / "optional").glob("*.sql")), ids=lambda p: p.name)
def test_the_optional_kafka_source_ddl_parses(warm: Client, path) -> None:
    # No broker runs here, so only the syntax is checked: formatQuery parses without executing.
    formatted = warm.command("SELECT formatQuery({q:String})", parameters={"q": read_statement(path)})
    assert "k2.trades_kafka" in formatted
