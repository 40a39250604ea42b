"""Two writers made to race for real: their first commits held until both have planned theirs."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

import pytest
from pyiceberg.table import Transaction

T = TypeVar("T")


def commit_together(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hold each thread's first commit until both threads have planned theirs: a guaranteed race."""
    barrier = threading.Barrier(2, timeout=60)
    local = threading.local()
    commit = Transaction.commit_transaction

    def racing_commit(self: Transaction) -> object:
        if not getattr(local, "raced", False):
            local.raced = True
            barrier.wait()
        return commit(self)

    monkeypatch.setattr(Transaction, "commit_transaction", racing_commit)


def run_in_threads(*jobs: Callable[[], T]) -> list[T]:
    """Run each job in its own thread; every job's error is raised here, none is lost."""
    results: list[T] = []
    errors: list[BaseException] = []

    def run(job: Callable[[], T]) -> None:
        try:
            results.append(job())
        except BaseException as exc:  # reported by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    return results
