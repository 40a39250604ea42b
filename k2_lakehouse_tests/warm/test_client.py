"""Parallel handles to one store: results come back in the order asked, each call on its own handle."""

from __future__ import annotations

from clickhouse_connect.driver.client import Client

from k2_lakehouse.warm.client import in_parallel


def test_in_parallel_returns_each_calls_result_in_the_order_asked(warm: Client) -> None:
    calls = [lambda handle, n=n: handle.query(f"SELECT {n}, toString({n} * 2)").result_rows[0] for n in range(5)]
    assert in_parallel(warm, calls, workers=2) == [(n, str(n * 2)) for n in range(5)]


def test_in_parallel_spreads_calls_over_distinct_handles(warm: Client) -> None:
    handles = in_parallel(warm, [lambda handle: id(handle)] * 4, workers=2)
    assert len(set(handles)) == 2
    assert handles[0] == handles[2] and handles[1] == handles[3]
