"""One conflict-retry policy for every Iceberg writer of the cold tier: offload, compaction, snapshot expiry.

Every commit is optimistic: ``SqlCatalog.commit_table`` swaps the table's metadata pointer only if it still
names the metadata the writer started from, and the loser of a race gets ``CommitFailedException``.

What pyiceberg 0.12 already retries (read in its source: ``Transaction.commit_transaction`` in
``pyiceberg/table/__init__.py``, the snapshot producers in ``pyiceberg/table/update/snapshot.py``):
a transaction holding a snapshot producer (``append``, ``overwrite``, ``delete``, ``update_snapshot()``)
that loses the race waits, refreshes the table, re-validates its change against the commits that landed
meanwhile and rebuilds its snapshot on the new head, up to ``commit.retry.num-retries`` times. The wait
starts at ``commit.retry.min-wait-ms``, doubles up to ``commit.retry.max-wait-ms`` with up to 10% jitter,
and retries stop after ``commit.retry.total-timeout-ms``. The offload commits through such a transaction,
so a race that conflicts with nothing is already retried there, and this module does not repeat it.

What pyiceberg does not retry, and this helper does, with the same four table properties, defaults and
backoff, so one table setting governs every writer:

* a conflict pyiceberg reports instead of retrying: ``ValidationException`` (a concurrent commit changed
  the rows the offload replaces) or its retries running out. The writer must re-plan against the new head:
  the offload chooses again which files to remove;
* commits that hold no snapshot producer, which pyiceberg raises at the first ``CommitFailedException``:
  snapshot expiry (``ExpireSnapshots``) and compaction's own OVERWRITE snapshot, committed with
  ``Catalog.commit_table`` (:mod:`k2_lakehouse.cold.compaction.commit`);
* a conflict a writer finds before it commits (:class:`ConcurrentChangeError`): compaction re-reads the
  partition's files before committing and starts over when another writer changed them.

An attempt is a callable given its number (from 1); it raises one of ``retry_on`` to ask for another
attempt, anything else to stop. The last conflict ends in :class:`CommitConflictError`, naming what was
being committed, the number of attempts and each attempt's cause.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

from pyiceberg.exceptions import CommitFailedException
from pyiceberg.table import Table, TableProperties

logger = logging.getLogger(__name__)

T = TypeVar("T")

JITTER = 0.1
"""At most this fraction of the wait is added at random, as pyiceberg does, so racing writers spread out."""


class ConcurrentChangeError(Exception):
    """An attempt found, before committing, that another writer changed what it read; nothing was committed."""


class CommitConflictError(RuntimeError):
    """Every attempt lost to a concurrent writer; nothing of the last attempt was committed."""

    def __init__(self, subject: str, operation: str, attempts: int, causes: Sequence[str]) -> None:
        self.subject, self.operation, self.attempts, self.causes = subject, operation, attempts, tuple(causes)
        super().__init__(
            f"{subject} changed under every one of {attempts} {operation} attempts ({'; '.join(causes)}). "
            f"Run it again when other writers of the table are idle, or raise the table property "
            f"{TableProperties.COMMIT_NUM_RETRIES}")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a writer retries, from the table's ``commit.retry.*`` properties."""

    num_retries: int = TableProperties.COMMIT_NUM_RETRIES_DEFAULT
    min_wait_ms: int = TableProperties.COMMIT_MIN_RETRY_WAIT_MS_DEFAULT
    max_wait_ms: int = TableProperties.COMMIT_MAX_RETRY_WAIT_MS_DEFAULT
    total_timeout_ms: int = TableProperties.COMMIT_TOTAL_RETRY_TIME_MS_DEFAULT

    @classmethod
    def of(cls, table: Table) -> RetryPolicy:
        """The policy the table's properties set; unset properties take pyiceberg's defaults.

        Negative values count as 0, as pyiceberg clamps them.
        """
        properties = table.properties

        def read(name: str, default: int) -> int:
            return max(0, _int_property(properties, name, default, table))

        return cls(
            num_retries=read(TableProperties.COMMIT_NUM_RETRIES, cls.num_retries),
            min_wait_ms=read(TableProperties.COMMIT_MIN_RETRY_WAIT_MS, cls.min_wait_ms),
            max_wait_ms=read(TableProperties.COMMIT_MAX_RETRY_WAIT_MS, cls.max_wait_ms),
            total_timeout_ms=read(TableProperties.COMMIT_TOTAL_RETRY_TIME_MS, cls.total_timeout_ms),
        )

    @property
    def max_attempts(self) -> int:
        return self.num_retries + 1

    def with_max_attempts(self, max_attempts: int) -> RetryPolicy:
        """The same waits with another attempt limit (a caller's explicit ``max_attempts``)."""
        if max_attempts < 1:
            raise ValueError(f"max_attempts={max_attempts} must be at least 1")
        return replace(self, num_retries=max_attempts - 1)

    def wait_seconds(self, retry: int, jitter: float) -> float:
        """The wait before retry number ``retry`` (0 for the first), ``jitter`` in [0, 1): pyiceberg's backoff."""
        wait_ms: int = min(self.min_wait_ms * 2**retry, self.max_wait_ms)  # int ** a non-negative int is an int
        return (wait_ms + jitter * JITTER * wait_ms) / 1000


def _int_property(properties: Mapping[str, str], name: str, default: int, table: Table) -> int:
    value = properties.get(name)
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(
            f"table property {name}={value!r} of {'.'.join(table.name())} is not an integer; set it to a whole "
            f"number (pyiceberg's default is {default}) or remove it") from None


def retry_on_conflict(
    table: Table,
    attempt: Callable[[int], T],
    *,
    operation: str,
    subject: str | None = None,
    retry_on: tuple[type[BaseException], ...] = (CommitFailedException, ConcurrentChangeError),
    policy: RetryPolicy | None = None,
    error: type[CommitConflictError] = CommitConflictError,
) -> T:
    """Run ``attempt(1)``, ``attempt(2)``, ... until one returns; retry only on ``retry_on`` exceptions.

    ``policy`` defaults to the table's (:meth:`RetryPolicy.of`). Gives up with ``error`` (a
    :class:`CommitConflictError`, naming ``subject``, by default the table, and every attempt's cause)
    after ``policy.max_attempts`` attempts or once ``total_timeout_ms`` has passed.
    """
    policy = policy or RetryPolicy.of(table)
    subject = subject or ".".join(table.name())
    started = time.monotonic()
    causes: list[str] = []
    for number in range(1, policy.max_attempts + 1):
        try:
            return attempt(number)
        except retry_on as exc:
            causes.append(f"attempt {number}: {type(exc).__name__}: {exc}")
            elapsed_ms = (time.monotonic() - started) * 1000
            if number == policy.max_attempts or elapsed_ms >= policy.total_timeout_ms:
                raise error(subject, operation, number, causes) from exc
            wait = policy.wait_seconds(number - 1, random.random())
            logger.info("%s of %s lost to a concurrent writer (%s); retrying in %.2f s", operation, subject, exc, wait)
            time.sleep(wait)
    raise AssertionError("unreachable: the last attempt returns or raises")
