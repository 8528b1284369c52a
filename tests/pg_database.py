"""A PostgreSQL database of a test's own, on the server NBTRACK_TEST_POSTGRES_URL names.

For tests that look at every run of a database (marking silent runs) or run several servers on
one database (replicas): the shared test database holds other tests' runs meanwhile."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

__all__ = ["fresh_database", "own_pg_url"]


@contextmanager
def fresh_database(base_url: str, prefix: str = "nbtrack_own") -> Iterator[str]:
    """A new database on base_url's server, its URL yielded; dropped when the block ends."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield make_url(base_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


@pytest.fixture
def own_pg_url() -> Iterator[str]:
    """The URL of a fresh database, dropped after the test; skipped without PostgreSQL."""
    base = os.environ.get("NBTRACK_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("set NBTRACK_TEST_POSTGRES_URL to run the PostgreSQL tests")
    with fresh_database(base) as url:
        yield url
