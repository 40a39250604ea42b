"""Applies sql/ to ClickHouse, in file order, idempotently, and loads the symbol registry.

CREATE ... IF NOT EXISTS keeps what an older k2 created. A materialized view holds no data, so one whose
query differs from its file gets the file's query (ALTER ... MODIFY QUERY, atomic: no insert meanwhile
goes unprocessed). A Null table holds no data either: it is given the columns its file adds (ClickHouse checks
a view's query against its target even under IF NOT EXISTS, so the views after it could not be applied
otherwise). A table holds data: one whose columns differ is reported, for a rebuild, unless the change is
one of MIGRATIONS, which are metadata only and were checked to leave every stored row meaning what it did.
Every `k2` command opens the store through `open_store`, so each finds the schema its code expects.
"""

from __future__ import annotations

import csv
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from clickhouse_connect.driver.client import Client

from k2_lakehouse.settings import Settings
from k2_lakehouse.warm.client import connect

SQL_DIR = Path(os.environ.get("K2_SQL_DIR", Path(__file__).resolve().parents[2] / "sql"))
SYMBOLS_CSV = Path(__file__).resolve().parents[1] / "reference" / "symbols.csv"

log = logging.getLogger(__name__)

# A table declared column by column (sql/ style: one column per line, indented four spaces; skip indexes,
# projections and constraints are declared among them but are not columns).
_TABLE_DDL = re.compile(r"CREATE TABLE IF NOT EXISTS k2\.(\w+)\s*\n\(\n(.*?)\n\)", re.S)
_COLUMN = re.compile(r"^    (?!INDEX |PROJECTION |CONSTRAINT )(\w+) ", re.M)

# Columns a data table of an older store may lack, added in place: (table, column) -> the columns whose
# definitions change with it. bronze_trades.reject_reason (2026-12-03): bronze keeps silver's verdict and prefers
# a valid copy (sql/040). Stored rows read '' (valid) and keep their keep_priority, which is the new expression's
# value for a valid copy; a re-seal of their hours gives invalid copies their verdict.
MIGRATIONS: dict[tuple[str, str], tuple[str, ...]] = {
    ("bronze_trades", "reject_reason"): ("keep_priority",),
}
# The tables a seal replaces beside the old rows (warm/seal.py) number their rows by insert, so that it can delete
# the rows stored before its replay and readers never see an hour empty (2026-12-06; not gold: see
# seal._replace). A store created before gets the setting in place: only parts written from then on store the
# number, and rows of older parts read their part's number, which is what their insert gave them.
NUMBERED_ROWS: tuple[str, ...] = ("bronze_trades", "trades_skipped", "silver_trades_dlq", "silver_trades")
# Most files open with comments, so the CREATE is found on whichever line it starts.
_VIEW_DDL = re.compile(r"^CREATE MATERIALIZED VIEW IF NOT EXISTS k2\.(\w+)", re.M)
# Where a view's query starts, in sql/ and in system.tables (which lists the target's columns before it).
_QUERY_START = re.compile(r"\sAS\s+(?=SELECT\b|WITH\b)")


@dataclass(frozen=True)
class Symbol:
    exchange: str
    exchange_symbol: str
    symbol: str


def open_store(settings: Settings) -> Client:
    """The warm store K2_CLICKHOUSE_URL names, with sql/ applied (waits for a busy embedded store, see connect)."""
    client = connect(settings.clickhouse_url, settings.busy_timeout_s)
    apply_schema(client)
    return client


def schema_files(sql_dir: Path = SQL_DIR) -> list[Path]:
    """The DDL files applied at start-up: sql/NNN_*.sql, in order. sql/optional/ is not applied."""
    files = sorted(sql_dir.glob("[0-9][0-9][0-9]_*.sql"))
    if not files:
        raise FileNotFoundError(f"no schema files in {sql_dir}; set K2_SQL_DIR to the project's sql/ folder")
    return files


def read_statement(path: Path) -> str:
    return path.read_text().strip().rstrip(";")


def load_symbols(path: Path = SYMBOLS_CSV) -> list[Symbol]:
    with path.open(newline="") as handle:
        return [Symbol(row["exchange"], row["exchange_symbol"], row["symbol"]) for row in csv.DictReader(handle)]


def apply_schema(client: Client, sql_dir: Path = SQL_DIR) -> list[str]:
    """Create every warm object that does not exist yet; returns the files applied."""
    applied = []
    for path in schema_files(sql_dir):
        statement = read_statement(path)
        try:
            client.command(statement)
            _add_missing_columns(client, statement)
        except Exception as exc:
            raise RuntimeError(f"applying {path.name} failed: {exc}") from exc
        applied.append(path.name)
    load_symbol_registry(client)
    _number_rows(client)
    for view, (file_name, query) in outdated_views(client, sql_dir).items():
        try:
            client.command(f"ALTER TABLE k2.{view} MODIFY QUERY {query}")
        except Exception as exc:  # reported below as drift: the tables it reads or writes are older still
            log.warning("k2.%s: could not take the query of sql/%s: %s", view, file_name, exc)
        else:
            log.info("k2.%s: now runs the query of sql/%s (an older k2 created it)", view, file_name)
    for drift in schema_drift(client, sql_dir):
        log.warning("%s: the store was created by an older k2 and CREATE IF NOT EXISTS kept it; rebuild the warm "
                    "store (or migrate it) to pick up the change", drift)
    return applied


def _number_rows(client: Client) -> None:
    """Turn on enable_block_number_column for the NUMBERED_ROWS tables of an older store that lack it."""
    lacking = [name for name, query in client.query(
        "SELECT name, create_table_query FROM system.tables WHERE database = 'k2' AND name IN {names:Array(String)}",
        parameters={"names": list(NUMBERED_ROWS)}).result_rows if "enable_block_number_column = 1" not in query]
    for table in lacking:
        client.command(f"ALTER TABLE k2.{table} MODIFY SETTING enable_block_number_column = 1")
        log.info("k2.%s: now numbers its rows by insert, which an older k2 did not", table)


def _column_definitions(body: str) -> dict[str, str]:
    """column -> its definition, from a column-by-column table body (a definition may continue on lines
    indented deeper; comments, indexes, projections and constraints are skipped)."""
    definitions: dict[str, str] = {}
    current = ""
    for line in body.splitlines():
        if line.startswith("        ") and current:
            definitions[current] += " " + line.strip()
            continue
        current = ""
        column = _COLUMN.match(line)
        if column and not line.lstrip().startswith("--"):
            current = column.group(1)
            definitions[current] = line[column.end():].strip()
    return {name: definition.rstrip(",") for name, definition in definitions.items()}


def _add_missing_columns(client: Client, statement: str) -> None:
    """Give a Null table the columns its file declares and it lacks, and a data table those MIGRATIONS cover."""
    match = _TABLE_DDL.search(statement)
    if not match:
        return
    table = match.group(1)
    definitions = _column_definitions(match.group(2))
    have = {name for (name,) in client.query(
        "SELECT name FROM system.columns WHERE database = 'k2' AND table = {table:String}",
        parameters={"table": table}).result_rows}
    missing = [name for name in definitions if name not in have]
    if not missing:
        return
    engine = client.command("SELECT engine FROM system.tables WHERE database = 'k2' AND name = {table:String}",
                            parameters={"table": table})
    if engine != "Null":
        missing = [name for name in missing if (table, name) in MIGRATIONS]
    if not missing:
        return
    order = list(definitions)
    changes = [f"ADD COLUMN {name} {definitions[name]} "
               + (f"AFTER {order[order.index(name) - 1]}" if order.index(name) else "FIRST") for name in missing]
    changes += [f"MODIFY COLUMN {name} {definitions[name]}"
                for column in missing for name in MIGRATIONS.get((table, column), ())]
    client.command(f"ALTER TABLE k2.{table} {', '.join(changes)}")
    log.info("k2.%s: added %s, which an older k2 did not create", table, ", ".join(missing))


def declared_columns(sql_dir: Path = SQL_DIR) -> dict[str, tuple[str, list[str]]]:
    """table -> (its schema file, its column names in order), for the tables sql/ declares column by column."""
    declared = {}
    for path in schema_files(sql_dir):
        match = _TABLE_DDL.search(read_statement(path))
        if match:
            declared[match.group(1)] = (path.name, _COLUMN.findall(match.group(2)))
    return declared


def declared_views(sql_dir: Path = SQL_DIR) -> dict[str, tuple[str, str]]:
    """materialized view -> (its schema file, its query)."""
    declared = {}
    for path in schema_files(sql_dir):
        statement = read_statement(path)
        match = _VIEW_DDL.search(statement)
        if match:  # the query is read from the CREATE on: a comment above it may say " AS SELECT" too
            declared[match.group(1)] = (path.name, _QUERY_START.split(statement[match.start():], maxsplit=1)[1])
    return declared


def outdated_views(client: Client, sql_dir: Path = SQL_DIR) -> dict[str, tuple[str, str]]:
    """The materialized views whose stored query differs from their file's: view -> (file, the file's query).

    Both queries are compared as ClickHouse formats them, so layout and spacing do not count.
    """
    stored: dict[str, str] = {name: query for name, query in client.query(
        "SELECT name, create_table_query FROM system.tables WHERE database = 'k2' AND engine = 'MaterializedView'"
    ).result_rows}
    views = {view: declared for view, declared in declared_views(sql_dir).items() if view in stored}
    if not views:
        return {}
    queries = [q for view, (_, query) in views.items() for q in (query, _QUERY_START.split(stored[view], maxsplit=1)[1])]
    formatted = client.query("SELECT " + ", ".join(f"formatQuery({{q{i}:String}})" for i in range(len(queries))),
                             parameters={f"q{i}": q for i, q in enumerate(queries)}).result_rows[0]
    return {view: declared for (view, declared), ours, theirs in zip(views.items(), formatted[::2], formatted[1::2], strict=True)
            if ours != theirs}


def schema_drift(client: Client, sql_dir: Path = SQL_DIR) -> list[str]:
    """What differs between this store's tables and views and sql/, one line each; empty when they agree."""
    stored: dict[str, list[str]] = {table: columns for table, columns in client.query(
        "SELECT table, arrayMap(c -> c.2, arraySort(groupArray((position, name)))) FROM system.columns "
        "WHERE database = 'k2' GROUP BY table").result_rows}
    drift = []
    for table, (file_name, columns) in declared_columns(sql_dir).items():
        have = list(stored.get(table, columns))
        if have != columns:
            extra, missing = [c for c in have if c not in columns], [c for c in columns if c not in have]
            how = [*([f"has {', '.join(extra)}, which the file does not declare"] if extra else []),
                   *([f"lacks {', '.join(missing)}"] if missing else [])] or ["has its columns in another order"]
            drift.append(f"k2.{table} differs from sql/{file_name}: it {' and '.join(how)}")
    outdated = outdated_views(client, sql_dir)
    drift += [f"k2.{view} runs another query than sql/{file_name}" for view, (file_name, _) in outdated.items()]
    return drift


def load_symbol_registry(client: Client, symbols: list[Symbol] | None = None) -> int:
    """Make k2.symbol_registry hold exactly `symbols` (default: reference/symbols.csv); returns their number.

    Only the difference is written, new rows before stale ones are deleted, so concurrent validation (another
    k2 command, the Kafka source) never sees the registry empty: every k2 command calls this, and emptying it
    first sent the trades validated meanwhile to the DLQ as unknown_symbol. A mapping the file changes is held
    twice for that instant, and a trade validated then gets either.
    """
    wanted = {(s.exchange, s.exchange_symbol, s.symbol) for s in (symbols or load_symbols())}
    stored = {tuple(row) for row in client.query(
        "SELECT exchange, exchange_symbol, symbol FROM k2.symbol_registry").result_rows}
    if wanted - stored:
        client.insert("k2.symbol_registry", sorted(wanted - stored), column_names=["exchange", "exchange_symbol", "symbol"])
    if stored - wanted:
        client.command(
            "DELETE FROM k2.symbol_registry "
            "WHERE (exchange, exchange_symbol, symbol) IN {rows:Array(Tuple(String, String, String))}",
            parameters={"rows": sorted(stored - wanted)})
    return len(wanted)
