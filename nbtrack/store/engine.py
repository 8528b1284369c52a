"""How the store reaches its database: one SQLAlchemy engine, SQLite's connection setup, and the
transactions every public method of Store runs in.

Every public method is one transaction on its own pooled connection, so a Store may be shared by
threads. A SQLite connection is set up when it opens (WAL, a busy timeout, foreign keys), and a
writer's transaction begins IMMEDIATE, holding the write lock from its first statement.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Connection, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from nbtrack.errors import StoreError, UsageError
from nbtrack.store.archive import ARCHIVE_OPTION, ArchiveFiles
from nbtrack.store.read_only import ReadOnlyDatabase
from nbtrack.store.schema import metadata
from nbtrack.store.upsert import Upserts

__all__ = ["DIALECTS", "Database"]

# Upserts need the dialect's own INSERT; these are the dialects the schema is tested on.
DIALECTS = ("sqlite", "postgresql")
_SQLITE_BUSY_TIMEOUT_MS = 5000
# Execution option that makes the SQLite "begin" hook open the transaction as a writer.
_WRITER = "nbtrack_writer"


class Database:
    """One database (SQLite file or PostgreSQL) and the transactions the store's methods run in."""

    def __init__(self, url: str | URL, *, read_only: bool = False) -> None:
        """Connect to url (any SQLAlchemy URL of a supported dialect) and create missing tables.

        read_only (a SQLite file only): open it without writing anything, not even a missing
        table or the switch to WAL (read_only.py); every write then fails.
        """
        parsed = make_url(url)
        # Checked before create_engine, which would first try to import the other dialect's driver.
        self._dialect = parsed.get_backend_name()
        if self._dialect not in DIALECTS:
            raise UsageError(
                f"nbtrack keeps runs in SQLite or PostgreSQL; {self._dialect!r} is not supported"
            )
        self._read_only: ReadOnlyDatabase | None = None
        database = parsed.database
        if read_only:
            if self._dialect != "sqlite" or not database or database == ":memory:":
                raise UsageError(f"only a SQLite file can be opened read-only, not {parsed!r}")
            self._read_only = ReadOnlyDatabase(Path(database))
            self._engine = create_engine(parsed, creator=self._read_only.connect)
            self._upserts = Upserts(self._engine.dialect)
            _configure_sqlite(self._engine, read_only=True)
            return
        try:
            engine = create_engine(parsed)
        except ImportError as exc:  # the dialect's driver is an extra of its own
            raise UsageError(
                f"{self._dialect} needs its driver ({exc.name or 'psycopg'}): "
                "pip install 'nbtrack[postgresql]'"
            ) from None
        if self._dialect == "sqlite":
            if database and database != ":memory:" and not database.startswith("file:"):
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            _configure_sqlite(engine)
        self._engine = engine
        self._upserts = Upserts(engine.dialect)
        try:
            with self._write() as conn:
                metadata.create_all(conn)
        except StoreError:
            engine.dispose()
            raise

    def attach_archive(self, files: ArchiveFiles) -> None:
        """Read compacted histories (archive.py) from files: every connection carries them."""
        self._engine = self._engine.execution_options(**{ARCHIVE_OPTION: files})

    @property
    def read_only(self) -> bool:
        """Opened without write access: every write fails."""
        return self._read_only is not None

    def close(self) -> None:
        self._engine.dispose()
        if self._read_only is not None:
            self._read_only.close()

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """One write transaction; commits when the block ends, rolls back if it raises."""
        try:
            with self._engine.connect() as conn:
                conn.execution_options(**{_WRITER: True})
                with conn.begin():
                    yield conn
        except SQLAlchemyError as exc:
            raise StoreError(f"the store at {self._engine.url!r} failed a write: {exc}") from exc

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        try:
            with self._engine.connect() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise StoreError(f"the store at {self._engine.url!r} failed a read: {exc}") from exc

    @contextmanager
    def _snapshot(self) -> Iterator[Connection]:
        """A read whose statements all see one state of the database (a chart reads several times)."""
        with self._read() as conn:
            if self._dialect == "postgresql":
                # READ COMMITTED would let a write land between the rollup's read and the lines'.
                # (SQLite's read transaction is one snapshot already.)
                conn.execution_options(isolation_level="REPEATABLE READ")
            yield conn


def _configure_sqlite(engine: Any, read_only: bool = False) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take BEGIN away from the sqlite3 module so on_begin below decides how each transaction starts.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if not read_only:  # switching to WAL writes the database's header
            # WAL lets readers (the UI, the read API) run while the sender writes; NORMAL loses at
            # most the last commits on power loss, which the run's transaction log can replay.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn: Connection) -> None:
        # A writer takes the write lock up front: a deferred transaction that reads and then writes
        # fails at once with SQLITE_BUSY, busy_timeout or not, if another connection wrote in between.
        writer = conn.get_execution_options().get(_WRITER, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")
