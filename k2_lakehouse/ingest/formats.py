"""Exchange-native formats: their names, their exchange, and how to tell them apart."""

from __future__ import annotations

import json
import re
from pathlib import Path

FORMATS: dict[str, str] = {
    "binance-trades-csv": "binance",
    "binance-aggtrades-csv": "binance",
    "binance-ws": "binance",
    "binance-futures-ws": "binance-futures",
    "kraken-rest": "kraken",
    "kraken-csv": "kraken",
    "kraken-ws": "kraken",
}

# Formats whose messages do not name the symbol: it comes from the file name (Binance and Kraken
# name their dumps SYMBOL-...) or, for REST pages, from the response's result key.
SYMBOL_FROM_FILE_NAME = frozenset({"binance-trades-csv", "binance-aggtrades-csv", "kraken-csv"})

_CSV_FIELDS = {8: "binance-aggtrades-csv", 7: "binance-trades-csv", 3: "kraken-csv"}
_HEADER = re.compile(r"^[A-Za-z_ ]+$")
_SAMPLE_LINES = 20

# The longest line (or Kraken REST response, read whole) stored as one raw row. No exchange message comes near it;
# it bounds what one garbage line costs (each view it passes copies it: the README has the figures), far below the
# 2 GiB an Arrow binary value can hold at all. A longer one refuses its file, naming the line.
MAX_MESSAGE_BYTES = 256 * 1024 * 1024

# Binance spot and USD-M futures combined streams share one message shape; their events tell the markets apart.
# Spot: trade and aggTrade carry "M", bookTicker has no "e", depthUpdate has no "pu".
# Futures: aggTrade has no "M", bookTicker says "e":"bookTicker", depthUpdate carries "pu" (the previous "u").
_BINANCE_WS_BY_MARKET = {"spot": "binance-ws", "futures": "binance-futures-ws"}
BINANCE_WS_FORMATS = frozenset(_BINANCE_WS_BY_MARKET.values())


class FormatError(ValueError):
    """A file whose format is unknown, ambiguous, or not what --format said."""


def exchange_of(source_format: str) -> str:
    try:
        return FORMATS[source_format]
    except KeyError:
        raise FormatError(f"unknown format {source_format!r}; known formats: {', '.join(FORMATS)}") from None


def symbol_from_file_name(path: Path) -> str:
    """`XRPETH-aggTrades-2019-10-11.csv` -> `XRPETH`, as the exchanges name their dumps."""
    return path.name.split("-", 1)[0].split(".", 1)[0].upper()


# What _json_line_format says of a line nested deeper than Python's JSON parser recurses (json raises RecursionError):
# such a line tells nothing of the format, and the parse path in ClickHouse DLQs it if the file is ingested.
_TOO_DEEP = "too deep"


def _json_line_format(line: str) -> str | None:
    try:
        message = json.loads(line)
    except ValueError:
        return None
    except RecursionError:
        return _TOO_DEEP
    if isinstance(message, list):
        return "kraken-ws"
    if isinstance(message, dict):
        if "stream" in message or "e" in message:
            return "binance-ws"
        if "event" in message:
            return "kraken-ws"
    return None


def _binance_market(line: str) -> str | None:
    """'spot' or 'futures' if the Binance websocket message on `line` shows its market, else None."""
    try:
        message = json.loads(line)
    except (ValueError, RecursionError):
        return None
    if not isinstance(message, dict):
        return None
    event = message.get("data", message)
    if not isinstance(event, dict):
        return None
    kind = event.get("e")
    if kind in ("trade", "aggTrade") and "M" in event:
        return "spot"
    if kind in ("aggTrade", "bookTicker"):
        return "futures"
    if kind == "depthUpdate":
        return "futures" if "pu" in event else "spot"
    if kind is None and {"u", "s", "b", "B", "a", "A"} <= event.keys():
        return "spot"  # spot bookTicker
    return None


def _binance_ws_format(path: Path, lines: list[str]) -> str:
    """binance-ws or binance-futures-ws, judged from the markets the lines' events show."""
    markets = {market for market in (_binance_market(line) for line in lines) if market}
    if len(markets) == 1:
        return _BINANCE_WS_BY_MARKET[markets.pop()]
    shown = "both spot and USD-M futures events" if markets else "no event that tells spot from USD-M futures"
    raise FormatError(f"{path}: ambiguous Binance market: its first {len(lines)} lines show {shown}; "
                      "pass --format binance-ws or binance-futures-ws")


def detect_format(path: Path) -> str:
    """The format of `path`, judged from its first lines; refuses unknown and ambiguous files."""
    with path.open("r", encoding="utf-8", errors="replace") as handle:
        head = handle.read(65536)
    stripped = head.lstrip()
    if not stripped:
        raise FormatError(f"{path}: the file is empty; nothing to ingest")
    if stripped.startswith("{") and '"result"' in head and path.stat().st_size <= MAX_MESSAGE_BYTES:
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, RecursionError):
            document = None
        if isinstance(document, dict) and "result" in document:
            return "kraken-rest"
    numbered = [(number, line) for number, line in enumerate(head.splitlines(), 1) if line.strip()]
    head_lines = [line for _, line in numbered]
    lines = head_lines[:_SAMPLE_LINES]
    if stripped[0] in "[{":
        judged = [(number, _json_line_format(line)) for number, line in numbered[:_SAMPLE_LINES]]
        found = {fmt for _, fmt in judged if fmt and fmt != _TOO_DEEP}
        if found == {"binance-ws"}:
            return _binance_ws_format(path, head_lines)
        if len(found) == 1:
            return found.pop()
        if len(found) > 1:
            raise FormatError(f"{path}: ambiguous: its first lines look like {' and '.join(sorted(found))}; "
                              "pass --format")
        too_deep = [str(number) for number, fmt in judged if fmt == _TOO_DEEP]
        deep = f" (nested too deeply to read: line{'s' if len(too_deep) > 1 else ''} {', '.join(too_deep)})" \
            if too_deep else ""
        raise FormatError(f"{path}: unknown format: JSON that is neither a Binance nor a Kraken message{deep}; "
                          f"pass --format (one of {', '.join(FORMATS)})")
    data_lines = [line for line in lines if not _HEADER.match(line.split(",", 1)[0].strip())]
    found = {_CSV_FIELDS.get(len(line.split(",")), "") for line in data_lines}
    if len(found) == 1 and "" not in found:
        return found.pop()
    counts = sorted({len(line.split(",")) for line in data_lines})
    raise FormatError(f"{path}: unknown format: lines of {counts} comma-separated fields; expected 8 "
                      "(binance-aggtrades-csv), 7 (binance-trades-csv) or 3 (kraken-csv); pass --format")
