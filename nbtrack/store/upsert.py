"""Inserting in the dialect's own words (INSERT ... ON CONFLICT): a row found or created by its
unique key, and lines of a line table (history, its rollup, output, events) written in bulk,
replacing those that exist.

Line numbers are the keys of the line tables, so writing lines that exist replaces them: a retried
post or a second sync of the same log changes nothing.
"""

from __future__ import annotations

from itertools import chain
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Dialect, Table, bindparam, select

from nbtrack.errors import StoreError

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql, sqlite

__all__ = ["LINES_PER_STATEMENT", "ROWS_PER_ARRAY", "Upserts"]

# Bound parameters per multi-row INSERT: under SQLite's historical limit of 999 on any build.
LINES_PER_STATEMENT = 999
# PostgreSQL: rows per statement when each column travels as one array.
ROWS_PER_ARRAY = 10_000


class Upserts:
    """The inserts of one dialect (SQLite or PostgreSQL), the compiled line upserts cached."""

    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect
        # (table name, rows per statement; -1 for PostgreSQL's arrays) -> (SQL, positional)
        self._cache: dict[tuple[str, int], tuple[str, bool]] = {}

    def insert(self, table: Table) -> sqlite.Insert | postgresql.Insert:
        # Imported here: each dialect module costs tens of milliseconds, and a run needs one.
        if self._dialect.name == "sqlite":
            from sqlalchemy.dialects import sqlite as dialect
        else:
            from sqlalchemy.dialects import postgresql as dialect  # type: ignore[no-redef]
        return dialect.insert(table)

    def id_of(self, conn: Connection, table: Table, key: dict[str, Any], extra: dict[str, Any]) -> int:
        """The primary key of table's row with the unique values key, inserting key | extra if missing."""
        (pk_column,) = table.primary_key
        find = select(pk_column).where(*(table.c[name] == value for name, value in key.items()))
        found: int | None = conn.scalar(find)
        if found is None:
            # DO NOTHING rather than a bare insert: a concurrent PostgreSQL writer may have won the race.
            conn.execute(
                self.insert(table).values({**key, **extra}).on_conflict_do_nothing(index_elements=list(key))
            )
            found = conn.execute(find).scalar_one()
        return found

    def lines(self, conn: Connection, table: Table, rows: list[tuple[Any, ...]]) -> None:
        """Insert rows (tuples in the table's column order), replacing lines that exist.

        The hot path of a run's history, so none of SQLAlchemy's per-row parameter processing: the
        statements are compiled once and handed straight to the driver, values still bound.
        SQLite takes multi-row INSERT statements of up to LINES_PER_STATEMENT parameters (one
        statement step per chunk instead of one per row). PostgreSQL takes each column as one
        array parameter, sent in binary and unnested by the server: psycopg would re-parse a
        statement of thousands of placeholders on every call, which cost more than the insert.
        """
        if self._dialect.name == "postgresql":
            for sql, params in self.array_statements(table, rows):
                conn.exec_driver_sql(sql, params)
            return
        names = [c.name for c in table.columns]
        chunk = max(1, LINES_PER_STATEMENT // len(names))
        for start in range(0, len(rows), chunk):
            part = rows[start : start + chunk]
            sql, positional = self._upsert_sql(table, len(part))
            if positional:
                conn.exec_driver_sql(sql, tuple(chain.from_iterable(part)))
            else:
                bound = {
                    f"{name}_{i}": value
                    for i, row in enumerate(part)
                    for name, value in zip(names, row, strict=True)
                }
                conn.exec_driver_sql(sql, bound)

    def array_statements(
        self, table: Table, rows: list[tuple[Any, ...]]
    ) -> list[tuple[str, dict[str, list[Any]]]]:
        """PostgreSQL: the (SQL, parameters) upserting rows, each column one array (see lines);
        also what the file stream's pipelined write (pg_stream.py) sends on its own cursor."""
        sql = self._unnest_sql(table)
        statements = []
        for start in range(0, len(rows), ROWS_PER_ARRAY):
            columns = zip(*rows[start : start + ROWS_PER_ARRAY], strict=True)
            statements.append((sql, {f"c{i}": list(column) for i, column in enumerate(columns)}))
        return statements

    def _unnest_sql(self, table: Table) -> str:
        """PostgreSQL: upsert the rows of column arrays %(c0)b, %(c1)b, ... (binary parameters)."""
        key = (table.name, -1)
        cached = self._cache.get(key)
        if cached is None:
            dialect = self._dialect
            quote = dialect.identifier_preparer.quote
            names = [quote(c.name) for c in table.columns]
            arrays = [f"%(c{i})b::{c.type.compile(dialect=dialect)}[]" for i, c in enumerate(table.columns)]
            keys = [quote(c.name) for c in table.primary_key]
            values = [quote(c.name) for c in table.columns if not c.primary_key]
            updates = [f"{name} = excluded.{name}" for name in values]
            sql = (
                f"INSERT INTO {dialect.identifier_preparer.format_table(table)} ({', '.join(names)}) "
                f"SELECT * FROM unnest({', '.join(arrays)}) "
                f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {', '.join(updates)}"
            )
            cached = self._cache[key] = (sql, False)
        return cached[0]

    def _upsert_sql(self, table: Table, count: int) -> tuple[str, bool]:
        """SQL upserting `count` rows; positional drivers take the values row by row, column by column."""
        key = (table.name, count)
        cached = self._cache.get(key)
        if cached is None:
            names = [c.name for c in table.columns]
            binds = [f"{name}_{i}" for i in range(count) for name in names]
            insert = self.insert(table).values(
                [{n: bindparam(f"{n}_{i}") for n in names} for i in range(count)]
            )
            replace = {c.name: insert.excluded[c.name] for c in table.columns if not c.primary_key}
            compiled = insert.on_conflict_do_update(
                index_elements=list(table.primary_key), set_=replace
            ).compile(dialect=self._dialect)
            positional = bool(compiled.positional)
            if positional and list(compiled.positiontup or ()) != binds:
                raise StoreError(
                    f"unexpected bind order compiling the {table.name} upsert"
                )  # never silently mix
            cached = self._cache[key] = (str(compiled), positional)
        return cached
