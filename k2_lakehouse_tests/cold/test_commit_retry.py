"""The one conflict-retry policy: read from the table's commit.retry.* properties, retrying only conflicts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pytest
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.types import LongType, NestedField

from k2_lakehouse.cold.commit_retry import CommitConflictError, ConcurrentChangeError, RetryPolicy, retry_on_conflict
from k2_lakehouse.cold.iceberg_internals import AssertRefSnapshotId, SetPropertiesUpdate

SCHEMA = Schema(NestedField(1, "n", LongType(), required=True))
NO_WAIT = {"commit.retry.min-wait-ms": "0"}

TableMaker = Callable[..., Table]


@pytest.fixture
def make_table(tmp_path: Path) -> TableMaker:
    catalog = SqlCatalog("retry", uri=f"sqlite:///{tmp_path / 'catalog.db'}", warehouse=f"file://{tmp_path / 'wh'}")
    catalog.create_namespace("cold")

    def make(properties: dict[str, str] | None = None) -> Table:
        return catalog.create_table("cold.probe", SCHEMA, properties=properties or {})

    return make


def rows(*values: int) -> pa.Table:
    return pa.table({"n": pa.array(values, pa.int64())}, schema=SCHEMA.as_arrow())


def test_the_policy_reads_the_tables_commit_retry_properties(make_table: TableMaker) -> None:
    table = make_table({"commit.retry.num-retries": "2", "commit.retry.min-wait-ms": "5",
                        "commit.retry.max-wait-ms": "20", "commit.retry.total-timeout-ms": "1000"})

    assert RetryPolicy.of(table) == RetryPolicy(num_retries=2, min_wait_ms=5, max_wait_ms=20, total_timeout_ms=1000)


def test_unset_properties_take_pyicebergs_defaults(make_table: TableMaker) -> None:
    # pyiceberg's documented table properties: 4 retries, 100 ms doubling up to 60 s, 30 minutes in all.
    assert RetryPolicy.of(make_table()) == RetryPolicy(num_retries=4, min_wait_ms=100, max_wait_ms=60_000,
                                                       total_timeout_ms=1_800_000)


def test_a_property_that_is_not_a_number_is_refused_naming_the_table_and_the_property(make_table: TableMaker) -> None:
    table = make_table({"commit.retry.num-retries": "many"})

    with pytest.raises(ValueError, match=r"commit.retry.num-retries='many' of cold.probe is not an integer"):
        RetryPolicy.of(table)


def test_the_wait_doubles_from_min_wait_up_to_max_wait_plus_at_most_a_tenth_of_jitter() -> None:
    policy = RetryPolicy(num_retries=5, min_wait_ms=100, max_wait_ms=500, total_timeout_ms=60_000)

    assert [policy.wait_seconds(retry, jitter=0.0) for retry in range(4)] == [0.1, 0.2, 0.4, 0.5]
    assert policy.wait_seconds(1, jitter=0.999) == pytest.approx(0.2 * 1.0999)


def test_a_commit_lost_to_a_concurrent_writer_is_retried_on_the_new_head(make_table: TableMaker) -> None:
    table = make_table({"commit.retry.num-retries": "2", **NO_WAIT})
    table.append(rows(1))
    stale = table.catalog.load_table(table.name())
    table.catalog.load_table(table.name()).append(rows(2))  # another writer lands first
    attempts = []

    def attempt(number: int) -> int:
        attempts.append(number)
        handle = stale if number == 1 else table.catalog.load_table(table.name())
        head = handle.current_snapshot()
        assert head is not None
        # A commit that requires the branch head it read, as compaction's swap does.
        handle.catalog.commit_table(handle, (AssertRefSnapshotId(snapshot_id=head.snapshot_id, ref="main"),),
                                    (SetPropertiesUpdate(updates={"k2.probe": str(number)}),))
        return number

    assert retry_on_conflict(table, attempt, operation="probe") == 2
    assert attempts == [1, 2]
    assert table.catalog.load_table(table.name()).properties["k2.probe"] == "2"


def test_pyicebergs_own_transaction_retries_a_stale_append_within_one_attempt(make_table: TableMaker) -> None:
    table = make_table({"commit.retry.num-retries": "2", **NO_WAIT})
    table.append(rows(1))
    stale = table.catalog.load_table(table.name())
    table.catalog.load_table(table.name()).append(rows(2))
    attempts = []

    def attempt(number: int) -> None:
        attempts.append(number)
        stale.append(rows(3))

    retry_on_conflict(table, attempt, operation="append")

    assert attempts == [1]  # no conflict reached the helper: pyiceberg re-applied the append on the new head
    assert sorted(table.catalog.load_table(table.name()).scan().to_arrow().column("n").to_pylist()) == [1, 2, 3]


def test_it_gives_up_after_num_retries_plus_one_attempts_naming_the_table_and_the_attempts(make_table: TableMaker) -> None:
    table = make_table({"commit.retry.num-retries": "2", **NO_WAIT})
    attempts = []

    def always_conflicting(number: int) -> None:
        attempts.append(number)
        raise CommitFailedException(f"lost race {number}")

    with pytest.raises(CommitConflictError, match=r"^cold.probe changed under every one of 3 probe attempts "
                                                  r"\(attempt 1: CommitFailedException: lost race 1; .*attempt 3") as raised:
        retry_on_conflict(table, always_conflicting, operation="probe")

    assert attempts == [1, 2, 3]
    assert (raised.value.subject, raised.value.attempts) == ("cold.probe", 3)
    assert isinstance(raised.value.__cause__, CommitFailedException)


def test_a_conflict_found_before_committing_is_retried_like_a_lost_commit(make_table: TableMaker) -> None:
    table = make_table(NO_WAIT)
    attempts = []

    def stale_once(number: int) -> str:
        attempts.append(number)
        if number == 1:
            raise ConcurrentChangeError("the files changed")
        return "committed"

    assert retry_on_conflict(table, stale_once, operation="probe") == "committed"
    assert attempts == [1, 2]


def test_an_error_that_is_not_a_conflict_is_raised_at_once(make_table: TableMaker) -> None:
    table = make_table(NO_WAIT)
    attempts = []

    def broken(number: int) -> None:
        attempts.append(number)
        raise ValueError("not a conflict")

    with pytest.raises(ValueError, match="not a conflict"):
        retry_on_conflict(table, broken, operation="probe")
    assert attempts == [1]


def test_no_attempt_starts_after_the_total_timeout(make_table: TableMaker) -> None:
    table = make_table({"commit.retry.total-timeout-ms": "0", **NO_WAIT})
    attempts = []

    def conflicting(number: int) -> None:
        attempts.append(number)
        raise CommitFailedException("lost")

    with pytest.raises(CommitConflictError, match="every one of 1 probe attempts"):
        retry_on_conflict(table, conflicting, operation="probe")
    assert attempts == [1]
