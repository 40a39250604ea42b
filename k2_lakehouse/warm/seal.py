"""Sealing: re-derive a range of hours of one layer from the layer below, exactly.

Each layer is replaced the same way: replay the layer below into this layer's intake table (sql/0*_intake.sql)
under a log_comment starting 'k2:seal', then delete the range's rows that were stored before the replay. The
materialized views derive exactly this layer, and the copy into the next layer's intake is switched off, so a
seal never double-feeds the layers above. The result equals a from-scratch derivation however often it
runs and whatever the live views inserted before. One query per table per range, not per hour.
Bronze and silver are both derived through validation (bronze keeps its verdict, to prefer a valid copy
of a trade), so their seals carry their own comments: 'k2:seal:bronze' writes bronze only,
'k2:seal:silver' silver and the validation DLQ only (sql/057, 061, 062).

Readers never see a layer's hour empty or half replaced. The new rows are inserted beside the old ones first,
and only then are the old ones deleted: rows carry the number of the insert that wrote them (the tables'
enable_block_number_column), so the delete names the rows numbered up to the last insert before the replay,
and the replay's rows are spared. Meanwhile bronze and silver, read with FINAL, show each trade once (old
and new copies share the sorting key and the keep priority); the reject and skip logs hold both copies
until the delete. A process killed anywhere leaves the old rows, or the old and the new, or (once the
delete is registered, which ClickHouse finishes after a restart) the new; a re-run is exact. Gold cannot keep
old and new beside each other (its rows are sums, and a merge folds one into the other), so it is deleted and
replayed as before, and a gold seal first marks the hours it rebuilds in gold_replays: the gold views recount
marked hours from silver FINAL, during the seal and after a killed one, and the seal clears the marks once gold
is rebuilt (sql/080).

A live insert can land between the last number taken and the replay (only with a ClickHouse server: embedded
ClickHouse admits one process). The delete spares it, and the replay derives it again from the layer below.
The deduplicated layers (bronze, silver) absorb that second copy; the candles and the reject logs would count
it twice. So each seal checks its layer after the replay (candle sums against silver, one reject per raw row)
and replaces the layer again if an insert raced it, up to SEAL_ATTEMPTS times.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from k2_lakehouse.hours import HourRange, in_hours
from k2_lakehouse.warm.client import PARALLELISM, as_int, run_in_parallel
from k2_lakehouse.warm.content import SEAL_SETTINGS, table_checksum
from k2_lakehouse.warm.tables import (
    BRONZE_TRADES,
    GOLD_TABLES,
    SILVER_TRADES,
    TIMEFRAMES,
    TRADES_RAW,
    WarmTable,
    gold_table,
)

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

log = logging.getLogger(__name__)

_BRONZE_SEAL = {**SEAL_SETTINGS, "log_comment": "k2:seal:bronze"}
_SILVER_SEAL = {**SEAL_SETTINGS, "log_comment": "k2:seal:silver"}


@dataclass
class LayerResult:
    """What a seal left in one table for the range."""

    table: str
    rows: int
    checksum: int
    seconds: float
    extra: dict[str, int | dict[str, int]] = field(default_factory=dict)


def _measure(client: Client, table: WarmTable, hours: HourRange, started: float, **extra: int | dict[str, int]) -> LayerResult:
    rows, checksum = table_checksum(client, table, hours)
    return LayerResult(table.name, rows, checksum, time.perf_counter() - started, dict(extra))


def _sharded(statement: str, shard_key: str) -> list[str]:
    """`statement` (ending in a WHERE clause) split into PARALLELISM disjoint shards by a table's `shard_key`.

    Shards run at once, each on its own handle, because one INSERT SELECT's view chain uses one core.
    The key is the same for every version of a row, so deduplication within a shard is exact.
    """
    return [f"{statement} AND ({shard_key}) % {PARALLELISM} = {shard}" for shard in range(PARALLELISM)]


# A delete is registered at once and applied in the background, to the parts that exist when it is registered
# (for the numbered tables its predicate also spares every row inserted since the numbers were taken). The
# seal waits for its deletes only before it reads the layer back.
_DELETE_SETTINGS: dict[str, object] = {"lightweight_deletes_sync": 0}
MUTATION_TIMEOUT_S = 300.0


SEAL_ATTEMPTS = 5

BeforeReplay = Callable[[int], None]
"""Called with the attempt number once a layer's old rows are fixed (the inserts numbered so far) and before
its replay. Tests (and chaos drills) insert there, as a concurrent live writer would; production callers leave
it None."""


class SealConflictError(RuntimeError):
    """Live inserts into the hours raced every attempt to seal them."""


def _last_insert_numbers(client: Client, tables: list[str]) -> dict[str, int]:
    """table -> the highest insert (block) number its stored parts hold: every row stored so far is numbered
    at most that, and every row inserted later above it."""
    numbers = dict.fromkeys(tables, 0)
    numbers.update({table: int(number) for table, number in client.query(
        "SELECT table, max(max_block_number) FROM system.parts WHERE database = 'k2' AND table IN {tables:Array(String)} "
        "AND active GROUP BY table", parameters={"tables": tables}).result_rows})
    return numbers


def _replace(client: Client, hours: HourRange, deletes: dict[str, str], replays: list[str],
             drift: Callable[[Client, HourRange], list[str]], before_replay: BeforeReplay | None,
             settings: dict[str, object] = SEAL_SETTINGS, *, numbered: bool = True) -> None:
    """Replay the layer below into a layer's range, then delete the range's older rows (table -> which rows),
    again while `drift` finds rows a racing live insert left counted twice.

    `numbered` tables (NUMBERED_ROWS in warm/schema.py) keep the old rows until the new ones are in. Gold's rows
    are sums: a merge folds a new row into an old one, whose number it keeps, so gold is deleted first (the
    delete applies to the parts stored when it is registered, and spares the replay's), and its readers are
    served from silver meanwhile (seal_gold).
    """
    def delete(stored: dict[str, int] | None) -> None:
        run_in_parallel(client, [f"DELETE FROM k2.{table} WHERE ({rows})"
                                 + (f" AND _block_number <= {stored[table]}" if stored is not None else "")
                                 for table, rows in deletes.items()], hours.parameters, _DELETE_SETTINGS)

    for attempt in range(1, SEAL_ATTEMPTS + 1):
        stored = _last_insert_numbers(client, sorted(deletes)) if numbered else None
        if not numbered:
            delete(None)
        if before_replay is not None:
            before_replay(attempt)
        run_in_parallel(client, replays, hours.parameters, settings)
        if numbered:
            delete(stored)
        wait_for_mutations(client, sorted(deletes))
        problems = drift(client, hours)
        if not problems:
            return
        log.warning("sealing %s .. %s: a live insert raced attempt %d (%s); replacing %s again",
                    hours.start, hours.end, attempt, "; ".join(problems), ", ".join(deletes))
    raise SealConflictError(
        f"sealing {', '.join(f'k2.{t}' for t in deletes)} for {hours.start:%Y-%m-%d %H:%M} .. {hours.end:%Y-%m-%d %H:%M} "
        f"UTC: live inserts into these hours raced all {SEAL_ATTEMPTS} attempts ({'; '.join(problems)}). "
        "Seal again once the ingest of these hours is idle"
    )


def _repeated_rows(client: Client, hours: HourRange, logs: dict[str, tuple[str, str]]) -> list[str]:
    """The logs that hold a key twice; `logs` maps a table to (which rows of the range, the key each holds once)."""
    counts = client.query(
        "SELECT " + ", ".join(f"(SELECT count() - uniqExact({key}) FROM k2.{table} WHERE {rows})"
                              for table, (rows, key) in logs.items()),
        parameters=hours.parameters).result_rows[0]
    return [f"k2.{table} holds {int(n)} row(s) twice" for table, n in zip(logs, counts, strict=True) if n]


def wait_for_mutations(client: Client, tables: list[str], timeout_s: float = MUTATION_TIMEOUT_S) -> None:
    """Return once no mutation (delete) of the warm `tables` is pending; raise if one failed or never ends."""
    deadline = time.monotonic() + timeout_s
    while True:
        pending = client.query(
            "SELECT table, latest_fail_reason FROM system.mutations WHERE database = 'k2' "
            "AND table IN {tables:Array(String)} AND NOT is_done", parameters={"tables": tables}).result_rows
        if not pending:
            return
        failed = [(table, reason) for table, reason in pending if reason]
        if failed:
            raise RuntimeError(f"a delete on k2.{failed[0][0]} failed: {failed[0][1]}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"deletes on {', '.join(f'k2.{t}' for t, _ in pending)} still pending after {timeout_s:.0f} s")
        time.sleep(0.02)


def seal_bronze(client: Client, hours: HourRange, *, before_replay: BeforeReplay | None = None) -> LayerResult:
    """Re-parse the raw hours into bronze, the parse-stage DLQ and the skipped-message log."""
    started = time.perf_counter()
    in_range = in_hours("event_hour")
    rejects = f"{in_range} AND stage = 'parse'"
    _replace(client, hours, {"bronze_trades": in_range, "trades_skipped": in_range, "silver_trades_dlq": rejects}, _sharded(
        "INSERT INTO k2.trades_raw_intake SELECT exchange, source_format, source_name, source_partition, "
        "source_position, source_element, source_symbol, payload, received_at, message_ts, event_hour "
        f"FROM k2.trades_raw WHERE {in_range}", TRADES_RAW.shard_key),
        # A skipped message or a parse reject is logged once per raw row.
        lambda c, h: _repeated_rows(c, h, {"trades_skipped": (in_range, _RAW_ROW), "silver_trades_dlq": (rejects, _RAW_ROW)}),
        before_replay, _BRONZE_SEAL)
    skipped = as_int(client.command(f"SELECT count() FROM k2.trades_skipped WHERE {in_range}", parameters=hours.parameters))
    return _measure(client, BRONZE_TRADES, hours, started, skipped=skipped)


def seal_silver(client: Client, hours: HourRange, *, before_replay: BeforeReplay | None = None) -> LayerResult:
    """Re-validate the deduplicated bronze hours into silver and the validation-stage DLQ."""
    started = time.perf_counter()
    p = hours.parameters
    rejects = f"{in_hours('event_hour')} AND stage = 'validate'"
    _replace(client, hours, {"silver_trades": in_hours("exchange_ts"), "silver_trades_dlq": rejects},
             _sharded(f"INSERT INTO k2.bronze_intake ({_BRONZE_COLUMNS}) SELECT {_BRONZE_COLUMNS} FROM k2.bronze_trades "
                      f"FINAL WHERE {in_hours('event_hour')}", BRONZE_TRADES.shard_key),
             # A validation reject is logged once per deduplicated bronze trade (bronze's sorting key).
             lambda c, h: _repeated_rows(c, h, {"silver_trades_dlq": (rejects, _BRONZE_KEY)}),
             before_replay, _SILVER_SEAL)
    _attach_raw_payloads(client, hours)
    dlq: dict[str, int] = {reason: count for reason, count in client.query(
        f"SELECT toString(reason), count() FROM k2.silver_trades_dlq WHERE {in_hours('event_hour')} "
        "GROUP BY reason ORDER BY reason", parameters=p).result_rows}
    return _measure(client, SILVER_TRADES, hours, started, dlq={k: int(v) for k, v in dlq.items()})


_BRONZE_COLUMNS = ("exchange, exchange_symbol, trade_id, trade_seq, price_text, quantity_text, side, exchange_ts, "
                   "underlying_trades, message_type, event_hour, source_format, source_name, source_partition, source_position, "
                   "source_element, received_at")
_BRONZE_KEY = "event_hour, exchange, exchange_symbol, trade_id"
# One raw row: its lineage and the ingest that received it (a file ingested twice has two raw copies).
_RAW_ROW = "exchange, source_name, source_partition, source_position, source_element, received_at"


def _attach_raw_payloads(client: Client, hours: HourRange) -> None:
    """Give the validation rejects a seal just wrote their verbatim payload, from trades_raw.

    Bronze does not store payloads, so a replay sends '' to the DLQ; the rejects are few, and this
    looks up only theirs. Rows are re-inserted with the payload, then the payload-less copies deleted.
    """
    p, in_range = hours.parameters, in_hours("event_hour")
    pending = f"FROM k2.silver_trades_dlq WHERE {in_range} AND stage = 'validate' AND payload = ''"
    if not as_int(client.command(f"SELECT count() {pending}", parameters=p)):
        return
    raw = f"SELECT {_RAW_ROW}, payload FROM k2.trades_raw WHERE {in_range} AND ({_RAW_ROW}) IN (SELECT {_RAW_ROW} {pending})"
    client.command(
        "INSERT INTO k2.silver_trades_dlq SELECT d.exchange, d.stage, d.reason, d.exchange_symbol, d.trade_id, "
        "d.source_format, d.source_name, d.source_partition, d.source_position, d.source_element, r.payload, "
        f"d.received_at, d.event_hour FROM (SELECT * {pending}) AS d INNER ANY JOIN ({raw}) AS r USING ({_RAW_ROW})",
        parameters=p, settings=SEAL_SETTINGS)
    # Only the rows that got a copy: a reject whose raw row has already expired keeps its place, without payload.
    client.command(f"DELETE {pending} AND ({_RAW_ROW}) IN (SELECT {_RAW_ROW} FROM k2.trades_raw WHERE {in_range})",
                   parameters=p)


def seal_gold(client: Client, hours: HourRange, *, before_replay: BeforeReplay | None = None) -> list[LayerResult]:
    """Replace the range's contribution to all six candle tables in one pass over silver.

    The six tables are sealed together because one replay of silver feeds all six views. While they are
    replaced, the range's hours are marked in gold_replays, so the gold views read them from silver FINAL
    (sql/080); the seal then clears the marks made before it, live replays' and its own, and keeps any made
    since (a live replay racing the seal).
    """
    started = time.perf_counter()
    p = hours.parameters
    client.command(
        "INSERT INTO k2.gold_replays (exchange, symbol, event_hour, marked_at) "
        "SELECT DISTINCT exchange, symbol, toStartOfHour(exchange_ts), now64(6, 'UTC') FROM k2.silver_trades "
        f"WHERE {in_hours('exchange_ts')} UNION DISTINCT "
        f"SELECT DISTINCT exchange, symbol, event_hour, now64(6, 'UTC') FROM k2.gold_ohlcv_1m WHERE {in_hours('event_hour')}",
        parameters=p, settings=SEAL_SETTINGS)
    marked_before = client.command("SELECT toString(now64(6, 'UTC'))")
    _replace(client, hours, {table.name: in_hours("event_hour") for table in GOLD_TABLES},
             _sharded(f"INSERT INTO k2.silver_intake SELECT * FROM k2.silver_trades FINAL WHERE {in_hours('exchange_ts')}",
                      SILVER_TRADES.shard_key), _gold_drift, before_replay, numbered=False)
    client.command(f"DELETE FROM k2.gold_replays WHERE {in_hours('event_hour')} "
                   "AND marked_at <= toDateTime64({marked_before:String}, 6, 'UTC')",
                   parameters={**p, "marked_before": marked_before})
    return [_measure(client, gold_table(tf), hours, started) for tf in TIMEFRAMES]


def _gold_drift(client: Client, hours: HourRange) -> list[str]:
    """Candle tables whose trade count or volume for the range differs from silver's.

    Every trade adds its count and quantity to one row per table, so a trade counted twice shows in the sums.
    """
    silver, *gold = client.query(
        f"SELECT (SELECT (sum(underlying_trades), sum(quantity)) FROM k2.silver_trades FINAL "
        f"WHERE {in_hours('exchange_ts')}), "
        + ", ".join(f"(SELECT (sum(trade_count), sum(volume)) FROM {t.qualified} WHERE {in_hours('event_hour')})"
                    for t in GOLD_TABLES),
        parameters=hours.parameters).result_rows[0]
    expected = (int(silver[0]), silver[1])
    return [f"{t.qualified} holds {int(trades)} trades and volume {volume}, silver {expected[0]} and {expected[1]}"
            for t, (trades, volume) in zip(GOLD_TABLES, gold, strict=True) if (int(trades), volume) != expected]


def raw_result(client: Client, hours: HourRange) -> LayerResult:
    return _measure(client, TRADES_RAW, hours, time.perf_counter())


@dataclass(frozen=True)
class Accounting:
    """Where every raw row of the range went. `balanced` is the accounting invariant."""

    raw: int
    silver: int
    dlq: int
    skipped: int
    duplicates: int
    bronze: int
    dlq_validate: int

    @property
    def balanced(self) -> bool:
        # duplicates is what is left once the other fates are counted: it must not be negative, and
        # every deduplicated bronze trade must be either in silver or in the validation DLQ.
        return self.duplicates >= 0 and self.bronze == self.silver + self.dlq_validate


def accounting(client: Client, hours: HourRange) -> Accounting:
    w = in_hours("event_hour")
    row = client.query(
        f"SELECT (SELECT count() FROM k2.trades_raw WHERE {w}), "
        f"(SELECT count() FROM k2.silver_trades FINAL WHERE {in_hours('exchange_ts')}), "
        f"(SELECT count() FROM k2.silver_trades_dlq WHERE {w}), "
        f"(SELECT count() FROM k2.silver_trades_dlq WHERE {w} AND stage = 'validate'), "
        f"(SELECT count() FROM k2.trades_skipped WHERE {w}), "
        f"(SELECT count() FROM k2.bronze_trades FINAL WHERE {w})",
        parameters=hours.parameters,
    ).result_rows[0]
    raw, silver, dlq, dlq_validate, skipped, bronze = (int(v) for v in row)
    duplicates = raw - skipped - (dlq - dlq_validate) - bronze
    return Accounting(raw, silver, dlq, skipped, duplicates, bronze, dlq_validate)
