"""Exchange-native files -> raw rows, exactly as received, in batches.

The reader does as little as it can: it splits a file into messages and says where each came from.
Parsing happens in ClickHouse (sql/03*_parse_*), the same path a Kafka engine source would feed.
Only multi-trade messages are looked into, to store one raw row per trade they carry.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from k2_lakehouse.ingest.formats import SYMBOL_FROM_FILE_NAME, FormatError, exchange_of, symbol_from_file_name

RAW_COLUMNS = ("exchange", "source_format", "source_name", "source_position", "source_element",
               "source_symbol", "payload")


@dataclass
class RawBatch:
    """Column lists for trades_raw; one entry per raw row."""

    source_position: list[int] = field(default_factory=list)
    source_element: list[int] = field(default_factory=list)
    source_symbol: list[str] = field(default_factory=list)
    payload: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.payload)

    def add(self, position: int, element: int, symbol: str, payload: str) -> None:
        self.source_position.append(position)
        self.source_element.append(element)
        self.source_symbol.append(symbol)
        self.payload.append(payload)


def _kraken_ws_trade_count(line: str) -> int:
    """How many trades a Kraken websocket v1 message carries; 1 for anything else (stored once)."""
    if not line.startswith("["):
        return 1
    try:
        message = json.loads(line)
    except ValueError:
        return 1
    if isinstance(message, list) and len(message) >= 4 and isinstance(message[1], list) and message[1]:
        return len(message[1])
    return 1


def _serialise_flat(values: list[object]) -> str:
    """A flat JSON array back to text with every number exactly as the exchange wrote it."""
    parts = []
    for value in values:
        if isinstance(value, Decimal | int) and not isinstance(value, bool):
            parts.append(str(value))
        else:
            parts.append(json.dumps(value, separators=(",", ":")))
    return "[" + ",".join(parts) + "]"


def _kraken_rest_rows(path: Path) -> Iterator[tuple[int, int, str, str]]:
    text = path.read_text(encoding="utf-8")
    try:
        document = json.loads(text, parse_float=Decimal)
    except ValueError:
        yield 1, 0, "", text  # unparseable as a whole: one raw row, the DLQ keeps it verbatim
        return
    result = document.get("result") if isinstance(document, dict) else None
    if document.get("error"):
        raise FormatError(f"{path}: the Kraken response reports errors {document['error']}; nothing to ingest")
    if not isinstance(result, dict):
        yield 1, 0, "", text
        return
    position = 0
    for pair, trades in result.items():
        if pair == "last" or not isinstance(trades, list):
            continue
        for trade in trades:
            position += 1
            yield position, 0, pair, _serialise_flat(trade) if isinstance(trade, list) else json.dumps(trade)


def iter_rows(path: Path, source_format: str, symbol: str | None = None) -> Iterator[tuple[int, int, str, str]]:
    """(position, element, source_symbol, payload) for every raw row of `path`.

    Position is the 1-based line number (the trade's index for a REST page); blank lines are no
    messages and are passed over.
    """
    exchange_of(source_format)
    if source_format == "kraken-rest":
        yield from _kraken_rest_rows(path)
        return
    file_symbol = symbol or (symbol_from_file_name(path) if source_format in SYMBOL_FROM_FILE_NAME else "")
    seen: dict[str, int] = {}
    with path.open("r", encoding="utf-8", errors="surrogateescape") as handle:
        for position, line in enumerate(handle, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            if source_format == "kraken-ws":
                for element in range(_kraken_ws_trade_count(line)):
                    yield position, element, file_symbol, line
            elif source_format == "kraken-csv":
                # Identical lines are distinct trades; their ordinal keeps their derived ids apart.
                occurrence = seen.get(line, 0)
                seen[line] = occurrence + 1
                yield position, occurrence, file_symbol, line
            else:
                yield position, 0, file_symbol, line


def iter_batches(path: Path, source_format: str, batch_rows: int, symbol: str | None = None) -> Iterator[RawBatch]:
    batch = RawBatch()
    for position, element, source_symbol, payload in iter_rows(path, source_format, symbol):
        batch.add(position, element, source_symbol, payload)
        if len(batch) >= batch_rows:
            yield batch
            batch = RawBatch()
    if len(batch):
        yield batch
