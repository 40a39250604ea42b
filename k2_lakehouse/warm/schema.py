"""Applies sql/ to ClickHouse, in file order, idempotently, and loads the symbol registry."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

from clickhouse_connect.driver.client import Client

SQL_DIR = Path(os.environ.get("K2_SQL_DIR", Path(__file__).resolve().parents[2] / "sql"))
SYMBOLS_CSV = Path(__file__).resolve().parents[1] / "reference" / "symbols.csv"


@dataclass(frozen=True)
class Symbol:
    exchange: str
    exchange_symbol: str
    symbol: str


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
        try:
            client.command(read_statement(path))
        except Exception as exc:
            raise RuntimeError(f"applying {path.name} failed: {exc}") from exc
        applied.append(path.name)
    load_symbol_registry(client)
    return applied


def load_symbol_registry(client: Client, symbols: list[Symbol] | None = None) -> int:
    rows = [[s.exchange, s.exchange_symbol, s.symbol] for s in (symbols or load_symbols())]
    client.command("TRUNCATE TABLE k2.symbol_registry")
    client.insert("k2.symbol_registry", rows, column_names=["exchange", "exchange_symbol", "symbol"])
    return len(rows)
