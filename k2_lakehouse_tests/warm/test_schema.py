"""The DDL in sql/ applies idempotently, and the optional Kafka source at least parses."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from k2_lakehouse.ingest.formats import FORMATS, exchange_of
from k2_lakehouse.ingest.load import ingest_file
from k2_lakehouse.warm.schema import (
    SQL_DIR,
    Symbol,
    apply_schema,
    declared_columns,
    declared_views,
    load_symbol_registry,
    load_symbols,
    read_statement,
    schema_drift,
    schema_files,
)
from k2_lakehouse_tests.support.warm import DEPTH, agg_event


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
def test_the_optional_kafka_source_ddl_parses(warm: Client, path: Path) -> None:
    # No broker runs here, so only the syntax is checked: formatQuery parses without executing.
    formatted = warm.command("SELECT formatQuery({q:String})", parameters={"q": read_statement(path)})
    assert "k2.trades_kafka" in formatted


def test_the_declared_columns_are_read_from_every_column_by_column_table() -> None:
    declared = declared_columns()
    assert declared["bronze_trades"][0] == "040_bronze_trades.sql"
    assert declared["trades_raw"][1][-3:] == ["message_ts", "event_hour", "inserted_at"]
    assert "INDEX" not in declared["trades_raw"][1]  # a skip index is declared among the columns
    assert "payload" not in declared["bronze_trades"][1]


def test_every_materialized_view_in_sql_is_compared_with_the_store(warm: Client) -> None:
    stored = {name for (name,) in warm.query(
        "SELECT name FROM system.tables WHERE database = 'k2' AND engine = 'MaterializedView'").result_rows}
    assert len(stored) > 10
    assert set(declared_views()) == stored


def test_a_fresh_store_has_no_schema_drift(warm: Client) -> None:
    assert schema_drift(warm) == []


def test_a_store_from_an_older_k2_is_reported_with_the_column_that_differs(warm: Client) -> None:
    warm.command("ALTER TABLE k2.bronze_trades ADD COLUMN payload String AFTER source_element")
    try:
        assert schema_drift(warm) == [
            "k2.bronze_trades differs from sql/040_bronze_trades.sql: it has payload, which the file does not declare"]
    finally:
        warm.command("ALTER TABLE k2.bronze_trades DROP COLUMN payload")


def test_a_materialized_view_from_an_older_k2_is_reported_and_then_given_its_files_query(
        warm: Client, tmp_path: Path) -> None:
    query = declared_views()["trades_skipped_mv"][1]
    warm.command(f"ALTER TABLE k2.trades_skipped_mv MODIFY QUERY {query} AND 0")  # an older k2's: logs no skips
    try:
        assert schema_drift(warm) == ["k2.trades_skipped_mv runs another query than sql/043_trades_skipped_mv.sql"]
        apply_schema(warm)
        assert schema_drift(warm) == []
        path = tmp_path / "binance-ws.jsonl"
        path.write_text(f"{agg_event(1)}\n{DEPTH}\n")
        ingest_file(warm, path)
        assert warm.query("SELECT message_type FROM k2.trades_skipped").result_rows == [("depthUpdate",)]
    finally:
        warm.command(f"ALTER TABLE k2.trades_skipped_mv MODIFY QUERY {query}")


def test_a_validation_view_from_an_older_k2_takes_its_files_query(warm: Client) -> None:
    # sql/056 opens with comments, as most view files do: an older k2's view must still be found and replaced.
    file_name, query = declared_views()["bronze_validate_mv"]
    assert read_statement(SQL_DIR / file_name).startswith("--")
    warm.command(f"ALTER TABLE k2.bronze_validate_mv MODIFY QUERY {query} LIMIT 0")  # an older k2's: passes nothing
    try:
        assert schema_drift(warm) == [f"k2.bronze_validate_mv runs another query than sql/{file_name}"]
        apply_schema(warm)
        assert schema_drift(warm) == []
    finally:
        warm.command(f"ALTER TABLE k2.bronze_validate_mv MODIFY QUERY {query}")


@pytest.mark.parametrize("source_format", sorted(FORMATS))
def test_the_kafka_source_gives_each_formats_topic_the_formats_exchange(warm: Client, source_format: str) -> None:
    view = (SQL_DIR / "optional" / "020_trades_kafka_mv.sql").read_text()
    exchange = re.search(r"^ +(.+) AS exchange,$", view, re.M)
    assert exchange, "the Kafka view names its exchange column"
    topic = f"{source_format}.trades"
    derived = warm.command(f"WITH {{topic:String}} AS _topic SELECT {exchange.group(1)}", parameters={"topic": topic})
    assert derived == exchange_of(source_format)


def _registry(warm: Client) -> set[tuple[str, str, str]]:
    return {tuple(r) for r in warm.query("SELECT exchange, exchange_symbol, symbol FROM k2.symbol_registry").result_rows}


def test_the_registry_follows_the_reference_file_as_it_changes(warm: Client) -> None:
    symbols = load_symbols()
    try:
        load_symbol_registry(warm, [*symbols[1:], Symbol("kraken", "NEWUSD", "NEW/USD")])
        assert _registry(warm) == {(s.exchange, s.exchange_symbol, s.symbol) for s in symbols[1:]} | {
            ("kraken", "NEWUSD", "NEW/USD")}
    finally:
        load_symbol_registry(warm)
    assert _registry(warm) == {(s.exchange, s.exchange_symbol, s.symbol) for s in symbols}


def test_trades_validated_while_the_registry_is_reloaded_all_find_their_symbol(warm: Client, datasets: Path) -> None:
    # Every k2 command reloads the registry; an ingest running meanwhile must never see it empty.
    from k2_lakehouse.ingest.load import ingest_file
    from k2_lakehouse.warm.client import parallel_clients

    stop, reloads = threading.Event(), []

    def reload(client: Client) -> None:
        while not stop.is_set():
            reloads.append(load_symbol_registry(client))

    with parallel_clients(warm, 2) as (main, other):
        thread = threading.Thread(target=reload, args=(other,))
        thread.start()
        try:
            summary = ingest_file(main, datasets / "binance" / "XRPETH-aggTrades-2019-10-11_13.csv", batch_bytes=16384,
                                  inserters=1)
        finally:
            stop.set()
            thread.join()
    assert len(reloads) > 1
    assert summary.dlq == {}
    assert summary.trades == summary.messages
