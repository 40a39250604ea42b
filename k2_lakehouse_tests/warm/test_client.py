"""Parallel handles to one store: results come back in the order asked, each call on its own handle."""

from __future__ import annotations

from clickhouse_connect.driver.client import Client

from k2_lakehouse.warm.client import in_parallel, query_in_parallel


def test_query_in_parallel_returns_each_querys_first_row_in_order(warm: Client) -> None:
    queries = [f"SELECT {n}, toString({n} * 2)" for n in range(5)]
    assert query_in_parallel(warm, queries, workers=2) == [(n, str(n * 2)) for n in range(5)]


def test_in_parallel_spreads_calls_over_distinct_handles(warm: Client) -> None:
    handles = in_parallel(warm, [lambda handle: id(handle)] * 4, workers=2)
    assert len(set(handles)) == 2
    assert handles[0] == handles[2] and handles[1] == handles[3]
