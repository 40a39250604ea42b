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
from k2_lakehouse_tests.support.warm import DEPTH, agg_event, all_hours


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


# What k2 created before bronze kept silver's verdict (2026-12-03): bronze fed by the parsers, no reject_reason.
_OLD_KEEP_PRIORITY = ("UInt128 MATERIALIZED bitShiftLeft(toUInt128(bitNot(toUInt64(toUnixTimestamp64Micro(received_at)))), 64) "
                      "+ bitNot(cityHash64(source_format, source_name, source_partition, source_position, source_element))")
_OLD_BRONZE_MV = ("SELECT exchange, exchange_symbol, trade_id, trade_seq, price_text, quantity_text, side, exchange_ts, "
                  "underlying_trades, message_type, event_hour, source_format, source_name, source_partition, source_position, "
                  "source_element, received_at FROM k2.trades_parsed WHERE kind = 'trade'")
_TEXT_COLUMNS = ("price_text", "quantity_text", "message_type")


def _store_from_before_the_verdict_in_bronze(warm: Client) -> None:
    validate = declared_views()["bronze_validate_mv"][1]
    for column in _TEXT_COLUMNS:
        validate = validate.replace(f"    b.{column} AS {column},\n", "")
    warm.command(f"ALTER TABLE k2.bronze_trades_mv MODIFY QUERY {_OLD_BRONZE_MV}")
    warm.command(f"ALTER TABLE k2.bronze_validate_mv MODIFY QUERY {validate}")
    warm.command("ALTER TABLE k2.bronze_validated " + ", ".join(f"DROP COLUMN {c}" for c in _TEXT_COLUMNS))
    warm.command(f"ALTER TABLE k2.bronze_trades MODIFY COLUMN keep_priority {_OLD_KEEP_PRIORITY}")
    warm.command("ALTER TABLE k2.bronze_trades DROP COLUMN reject_reason")


def test_a_store_from_before_bronze_kept_the_verdict_is_migrated_in_place_and_then_prefers_valid_copies(
        warm: Client, tmp_path: Path) -> None:
    from k2_lakehouse.warm.seal import seal_bronze, seal_silver

    _store_from_before_the_verdict_in_bronze(warm)
    try:
        old, new = tmp_path / "old.jsonl", tmp_path / "new.jsonl"
        old.write_text(agg_event(6, p="NaN") + "\n")
        ingest_file(warm, old)  # an invalid copy, stored by the older k2
        apply_schema(warm)
        assert schema_drift(warm) == []
        new.write_text(agg_event(6) + "\n" + agg_event(7, p="NaN") + "\n" + agg_event(7) + "\n")
        ingest_file(warm, new)
        # The migrated store keeps each trade once, in bronze, silver and the DLQ alike, and prefers a valid copy
        # among the rows it stores from now on; the re-seal gives the older rows their verdict too.
        assert warm.query("SELECT trade_id, toString(reject_reason), count() FROM k2.bronze_trades "
                          "GROUP BY ALL ORDER BY ALL").result_rows == [("6", "", 2), ("7", "", 1), ("7", "non_finite", 1)]
        assert warm.query("SELECT trade_id, source_name FROM k2.bronze_trades FINAL WHERE trade_id = '7'").result_rows == [
            ("7", str(new.resolve()))]
        seal_bronze(warm, all_hours())
        seal_silver(warm, all_hours())
        assert warm.query("SELECT trade_id, source_name FROM k2.silver_trades FINAL ORDER BY trade_id").result_rows == [
            ("6", str(new.resolve())), ("7", str(new.resolve()))]
    finally:
        apply_schema(warm)
    assert schema_drift(warm) == []
