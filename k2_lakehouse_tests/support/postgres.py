"""A fresh PostgreSQL database per test on the server at 127.0.0.1:5432 (trust auth, as on CI).

The server is part of the machine, not started by the tests; without it the tests that need it fail,
naming the address, rather than skipping: CI has it, and a silent skip would hide a lost profile.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg2

HOST, PORT, USER = "127.0.0.1", 5432, "postgres"
ADMIN_DSN = f"host={HOST} port={PORT} user={USER} dbname=postgres connect_timeout=5"


@contextmanager
def fresh_database(prefix: str = "k2_test") -> Iterator[str]:
    """Create an empty database, yield its SQLAlchemy URL, and drop it (with its connections) afterwards."""
    try:
        admin = psycopg2.connect(ADMIN_DSN)
    except psycopg2.OperationalError as exc:
        raise RuntimeError(f"these tests need PostgreSQL at {HOST}:{PORT} with trust auth for {USER}: {exc}") from exc
    admin.autocommit = True
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg2://{USER}@{HOST}:{PORT}/{name}"
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
