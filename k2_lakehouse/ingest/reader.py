"""Exchange-native files -> raw rows, exactly as received, as Arrow batches.

The reader does as little as it can: it splits a file into messages and says where each came from.
Parsing happens in ClickHouse (sql/03*_parse_*), the same path a Kafka engine source would feed.
Only multi-trade messages are looked into, to store one raw row per trade they carry, and a Binance websocket
file is searched for trade and aggTrade events of one symbol, which it must not mix.

Line-based files are split with Arrow's vectorised kernels, not line by line in Python: at a few
hundred thousand trades a second, a Python loop over lines would be the ingest's bottleneck.
Payloads stay bytes, so a line that is not valid UTF-8 is kept verbatim (and DLQ'd) like any other.
"""

from __future__ import annotations

import json
import mmap
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from k2_lakehouse.ingest.formats import (
    BINANCE_WS_FORMATS,
    MAX_MESSAGE_BYTES,
    SYMBOL_FROM_FILE_NAME,
    FormatError,
    exchange_of,
    symbol_from_file_name,
)

# Bigger batches ingest a little faster but leave bigger merges running that slow the seal after them;
# smaller ones make so many parts that the ingest itself slows (README, "Measured figures": warm ingest).
DEFAULT_BATCH_BYTES = 32 * 1024 * 1024

RAW_BATCH_SCHEMA = pa.schema([
    ("source_position", pa.uint64()),
    ("source_element", pa.uint32()),
    ("source_symbol", pa.dictionary(pa.int32(), pa.string())),
    ("payload", pa.binary()),
])

_BLANK = rb"^[ \t\r\f\v]*$"


def constant_array(value: object, n: int, arrow_type: pa.DataType) -> pa.Array:
    """`value` n times, built from one value rather than n Python objects.

    A string stays dictionary-encoded: ClickHouse reads it into a String column all the same, and the n
    copies of a file name are never built, written to the insert or parsed (~0.1 CPU-s per million rows).
    """
    array = pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), pa.array([value], arrow_type))
    return array if pa.types.is_string(arrow_type) else array.cast(arrow_type)


def _batch(positions: np.ndarray, elements: np.ndarray, symbol: str, payloads: pa.Array) -> pa.Table:
    return pa.Table.from_arrays([
        pa.array(positions, pa.uint64()),
        pa.array(elements, pa.uint32()),
        constant_array(symbol, len(payloads), pa.string()),
        payloads,
    ], schema=RAW_BATCH_SCHEMA)


class _LineTooLong(Exception):
    """A line runs past MAX_MESSAGE_BYTES; _numbered_lines names it."""


def _line_chunks(path: Path, batch_bytes: int) -> Iterator[pa.Array]:
    """Whole lines in chunks of about `batch_bytes`, each a one-value Arrow binary array over the bytes read.

    A chunk ends at its last newline, and the next read starts right after it (the partial line is read
    again), so no chunk is ever copied: at 250 bytes a line, copying cost about as much as splitting.
    A line longer than MAX_MESSAGE_BYTES raises _LineTooLong when the chunk that follows would start with it.
    """
    batch_bytes = min(batch_bytes, MAX_MESSAGE_BYTES + 1)  # a chunk holds any line up to the limit and its newline
    with path.open("rb") as handle:
        while block := handle.read(batch_bytes):
            cut = block.rfind(b"\n") + 1
            if cut == 0 and len(block) == batch_bytes:
                if batch_bytes > MAX_MESSAGE_BYTES:
                    raise _LineTooLong
                batch_bytes = min(2 * batch_bytes, MAX_MESSAGE_BYTES + 1)  # one line longer than a chunk: read it whole
                handle.seek(-len(block), 1)
                continue
            if cut == 0:  # the last line has no newline
                block, cut = block + b"\n", len(block) + 1
            handle.seek(cut - len(block), 1)
            yield pa.Array.from_buffers(pa.binary(), 1, [None, pa.array([0, cut], pa.int32()).buffers()[1],
                                                         pa.py_buffer(block)])


def _lines(chunk: pa.Array) -> tuple[int, np.ndarray, pa.Array]:
    """How many lines `chunk` holds, and the line numbers (0-based) and contents of its non-blank ones."""
    lines = pc.split_pattern(chunk, b"\n").flatten()[:-1]  # the chunk ends with "\n"
    crlf = pc.ends_with(lines, b"\r")
    if pc.any(crlf).as_py():
        lines = pc.if_else(crlf, pc.binary_slice(lines, 0, -1), lines)
    blank = pc.match_substring_regex(lines, _BLANK)
    if not pc.any(blank).as_py():
        return len(lines), np.arange(len(lines)), lines
    kept = pc.invert(blank)
    return len(lines), np.flatnonzero(kept.to_numpy(zero_copy_only=False)), lines.filter(kept)


def _kraken_ws_trade_count(line: bytes) -> int:
    """How many trades a Kraken websocket v1 message carries; 1 for anything else (stored once).

    Only a trade message is a list of trades: a spread or OHLC message is one list of values, and split
    per value it would become several raw rows for one message. The channel name is the third element,
    or the one before the pair (sql/035 reads it the same way).
    """
    if not line.startswith(b"["):
        return 1
    try:
        message = json.loads(line)
    except (ValueError, RecursionError):  # not JSON, or nested deeper than Python's parser recurses: the DLQ judges it
        return 1
    if (isinstance(message, list) and len(message) >= 4 and "trade" in (message[2], message[-2])
            and isinstance(message[1], list) and message[1]):
        return len(message[1])
    return 1


def _elements(source_format: str, lines: pa.Array, seen: dict[bytes, int]) -> tuple[np.ndarray, np.ndarray]:
    """Which raw rows each line becomes: (index of the line, element) per row."""
    n = len(lines)
    if source_format == "kraken-ws":
        counts = np.fromiter((_kraken_ws_trade_count(line) for line in lines.to_pylist()), np.int64, n)
        take = np.repeat(np.arange(n), counts)
        # Element k of a message with c trades: k = row index - index of the message's first row.
        elements = np.arange(len(take)) - np.repeat(np.cumsum(counts) - counts, counts)
        return take, elements
    if source_format == "kraken-csv":
        # Identical lines are distinct trades; their ordinal keeps their derived ids apart.
        elements = np.empty(n, np.int64)
        for i, line in enumerate(lines.to_pylist()):
            elements[i] = seen.get(line, 0)
            seen[line] = elements[i] + 1
        return np.arange(n), elements
    return np.arange(n), np.zeros(n, np.int64)


def _numbered_lines(path: Path, batch_bytes: int) -> Iterator[tuple[np.ndarray, pa.Array]]:
    """The non-blank lines of `path`, chunk by chunk: their 1-based line numbers and their contents."""
    first_line = 1
    chunks = _line_chunks(path, batch_bytes)
    while True:
        try:
            chunk = next(chunks, None)
        except _LineTooLong:
            raise FormatError(
                f"{path}, line {first_line}: the line is longer than {MAX_MESSAGE_BYTES // 2**20} MiB, the most one raw "
                "row holds, so it cannot be stored verbatim; it is no exchange message. Remove or split the line and "
                "ingest the file again: the lines before it, if they were ingested, are deduplicated") from None
        if chunk is None:
            return
        count, numbers, lines = _lines(chunk)
        if len(lines):
            yield first_line + numbers, lines
        first_line += count


def _line_batches(path: Path, source_format: str, batch_bytes: int, symbol: str) -> Iterator[pa.Table]:
    seen: dict[bytes, int] = {}
    for numbers, lines in _numbered_lines(path, batch_bytes):
        take, elements = _elements(source_format, lines, seen)
        payloads = lines if len(take) == len(lines) else lines.take(pa.array(take))
        yield _batch(numbers[take], elements, symbol, payloads)


# Binance numbers its @trade and @aggTrade events in two id spaces, and an aggTrade is the same market activity
# as the trades it aggregates. Both become bronze's trade_id (sql/031), so in one store a trade and an aggTrade of
# equal ids would merge as one trade, and candles would count the activity twice. Which stream a message came from
# is not in the message (a bare event names no stream), so a Binance websocket file that carries both for one
# symbol is refused whole, before anything is inserted, as a file whose market is unclear is (formats.py).
_TRADE_EVENT, _AGG_TRADE_EVENT = b'"trade"', b'"aggTrade"'
_EVENT_KIND = r'"e"\s*:\s*"(?P<kind>trade|aggTrade)"'
_EVENT_SYMBOL = r'"s"\s*:\s*"(?P<symbol>[^"]*)"'


def refuse_mixed_trade_streams(path: Path, batch_bytes: int = DEFAULT_BATCH_BYTES) -> None:
    """Raise FormatError, naming the file, the symbol and lines, if `path` carries trade and aggTrade events of one symbol."""
    if path.stat().st_size == 0:
        return
    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        # Almost every file carries one kind: two searches of the mapped file settle it, without
        # splitting lines. A backslash may spell either name as an escape
        # (\u0074rade, which the parser reads as trade), so a file with one is read line by line too.
        if (data.find(_AGG_TRADE_EVENT) < 0 or data.find(_TRADE_EVENT) < 0) and data.find(b"\\") < 0:
            return
    first: dict[tuple[str, str], int] = {}  # (symbol, kind) -> the line of its first event
    for numbers, lines in _numbered_lines(path, batch_bytes):
        for symbol, kind, line in _trade_events(numbers, lines):
            first[symbol, kind] = min(first.get((symbol, kind), line), line)
    mixed = sorted({symbol for symbol, kind in first if kind == "trade"}
                   & {symbol for symbol, kind in first if kind == "aggTrade"})
    if not mixed:
        return
    symbol = mixed[0]
    others = f"; so do {len(mixed) - 1} more symbols ({', '.join(mixed[1:4])}{', ...' if len(mixed) > 4 else ''})" \
        if len(mixed) > 1 else ""
    raise FormatError(
        f"{path}: carries both Binance @trade and @aggTrade events for {symbol} (its first trade event on line "
        f"{first[symbol, 'trade']}, its first aggTrade event on line {first[symbol, 'aggTrade']}){others}. The two streams "
        "number trades apart and an aggTrade repeats the trades it aggregates: together they would merge unrelated trades "
        "and count volume twice. Nothing of the file was ingested; split it by stream and ingest one stream per symbol")


def _trade_events(numbers: np.ndarray, lines: pa.Array) -> Iterator[tuple[str, str, int]]:
    """(symbol, 'trade' or 'aggTrade', line) of the trade events among `lines`: at least the first of each symbol and kind.

    Lines without a backslash are read by two vectorised patterns; the few with one are decoded as JSON, since
    a pattern cannot read escapes. Like the parser (sql/031), the event is a combined-stream message's "data".
    """
    escaped = pc.match_substring(lines, b"\\")
    kinds = pc.struct_field(pc.extract_regex(lines, _EVENT_KIND), [0])
    symbols = pc.struct_field(pc.extract_regex(lines, _EVENT_SYMBOL), [0])
    events = pa.table({"symbol": symbols, "kind": kinds, "line": numbers}).filter(
        pc.and_(pc.invert(escaped), pc.and_(pc.is_valid(kinds), pc.is_valid(symbols))))
    for row in events.group_by(["symbol", "kind"]).aggregate([("line", "min")]).to_pylist():
        yield row["symbol"].decode("utf-8", "replace"), row["kind"].decode(), int(row["line_min"])
    mask = escaped.to_numpy(zero_copy_only=False)
    for line, payload in zip(numbers[mask], lines.filter(escaped).to_pylist(), strict=True):
        try:
            message = json.loads(payload)
        except (ValueError, RecursionError):  # the parser DLQs it; it is no trade event
            continue
        wrapped = isinstance(message, dict) and "stream" in message and "data" in message
        event = message["data"] if wrapped else message
        if isinstance(event, dict) and event.get("e") in ("trade", "aggTrade") and isinstance(event.get("s"), str):
            yield event["s"], event["e"], int(line)


def _serialise_flat(values: list[object]) -> str:
    """A flat JSON array back to text with every number exactly as the exchange wrote it."""
    parts = []
    for value in values:
        if isinstance(value, Decimal | int) and not isinstance(value, bool):
            parts.append(str(value))
        else:
            parts.append(json.dumps(value, separators=(",", ":")))
    return "[" + ",".join(parts) + "]"


def _kraken_rest_rows(path: Path) -> Iterator[tuple[int, str, str]]:
    """(position, pair, trade) for every trade of a REST page; the whole text once if it is not a page."""
    if (size := path.stat().st_size) > MAX_MESSAGE_BYTES:
        raise FormatError(f"{path}: {size:,} bytes, more than the {MAX_MESSAGE_BYTES // 2**20} MiB a Kraken REST response, "
                          "read whole as one message, may hold; a Kraken page of trades is at most a few hundred KB. "
                          "Nothing of the file was ingested; check that it is a REST response, or pass --format")
    text = path.read_text(encoding="utf-8", errors="surrogateescape")
    try:
        document = json.loads(text, parse_float=Decimal)
    except (ValueError, RecursionError):
        yield 1, "", text  # unparseable as a whole (or nested too deeply to parse): one raw row, the DLQ keeps it verbatim
        return
    result = document.get("result") if isinstance(document, dict) else None
    if isinstance(document, dict) and document.get("error"):
        raise FormatError(f"{path}: the Kraken response reports errors {document['error']}; nothing to ingest")
    if not isinstance(result, dict):
        yield 1, "", text
        return
    position = 0
    for pair, trades in result.items():
        if pair == "last" or not isinstance(trades, list):
            continue
        for trade in trades:
            position += 1
            yield position, pair, _serialise_flat(trade) if isinstance(trade, list) else json.dumps(trade)


def _kraken_rest_batches(path: Path) -> Iterator[pa.Table]:
    rows = list(_kraken_rest_rows(path))
    yield pa.Table.from_arrays([
        pa.array([r[0] for r in rows], pa.uint64()),
        pa.array(np.zeros(len(rows), np.uint32)),
        pa.array([r[1] for r in rows], pa.string()).dictionary_encode(),
        pa.array([r[2].encode("utf-8", "surrogateescape") for r in rows], pa.binary()),
    ], schema=RAW_BATCH_SCHEMA)


def read_batches(path: Path, source_format: str, batch_bytes: int = DEFAULT_BATCH_BYTES,
                 symbol: str | None = None) -> Iterator[pa.Table]:
    """Every raw row of `path` as tables of RAW_BATCH_SCHEMA, about `batch_bytes` of file each.

    Position is the 1-based line number (the trade's index for a REST page); blank lines are no
    messages and are passed over.
    """
    exchange_of(source_format)
    if source_format in BINANCE_WS_FORMATS:
        refuse_mixed_trade_streams(path, batch_bytes)
    if source_format == "kraken-rest":
        yield from _kraken_rest_batches(path)
        return
    file_symbol = symbol or (symbol_from_file_name(path) if source_format in SYMBOL_FROM_FILE_NAME else "")
    yield from _line_batches(path, source_format, batch_bytes, file_symbol)


def read_rows(path: Path, source_format: str, symbol: str | None = None) -> list[tuple[int, int, str, str]]:
    """(position, element, source_symbol, payload) of every raw row: the batches as Python values, for small files."""
    return [(position, element, source_symbol, payload.decode("utf-8", "surrogateescape"))
            for batch in read_batches(path, source_format, symbol=symbol)
            for position, element, source_symbol, payload in zip(*batch.to_pydict().values(), strict=True)]
