"""A seal's deletes run in the background: they remove exactly the rows stored before them, and a seal
waits for them before it reads a layer back, never forever."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from clickhouse_connect.driver.client import Client

from k2_lakehouse.warm.seal import wait_for_mutations

INSERT = ("INSERT INTO k2.trades_skipped (exchange, source_format, source_name, source_position, message_type, "
          "received_at, event_hour) SELECT 'binance', 'binance-ws', {name:String}, number, 'depthUpdate', now64(6), "
          "toDateTime('2026-01-01 10:00:00', 'UTC') FROM numbers(3)")


@pytest.fixture
def mutations_held(warm: Client) -> Iterator[Client]:
    """trades_skipped with its background merges and mutations stopped until the test lets them go."""
    warm.command("SYSTEM STOP MERGES k2.trades_skipped")
    try:
        yield warm
    finally:
        warm.command("SYSTEM START MERGES k2.trades_skipped")


def test_a_background_delete_spares_rows_inserted_after_it(mutations_held: Client) -> None:
    warm = mutations_held
    warm.command(INSERT, parameters={"name": "before"})
    warm.command("DELETE FROM k2.trades_skipped WHERE 1", settings={"lightweight_deletes_sync": 0})
    warm.command(INSERT, parameters={"name": "after"})
    warm.command("SYSTEM START MERGES k2.trades_skipped")
    wait_for_mutations(warm, ["trades_skipped"])
    assert warm.query("SELECT source_name, count() FROM k2.trades_skipped GROUP BY ALL").result_rows == [("after", 3)]


def test_waiting_for_a_delete_that_cannot_run_times_out_with_the_tables_name(mutations_held: Client) -> None:
    warm = mutations_held
    warm.command(INSERT, parameters={"name": "before"})
    warm.command("DELETE FROM k2.trades_skipped WHERE 1", settings={"lightweight_deletes_sync": 0})
    with pytest.raises(TimeoutError, match=r"k2\.trades_skipped"):
        wait_for_mutations(warm, ["trades_skipped"], timeout_s=0.3)
