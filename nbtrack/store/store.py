"""The embedded store: every SQL statement nbtrack runs, over SQLAlchemy Core on SQLite or PostgreSQL.

Writers are the internal process's sender (local mode), `nbtrack sync` and the tracking server;
readers are the read API, the CLI and the server. Every public method is one transaction on its
own pooled connection, so a Store may be shared by threads. Writes create the entity, project
and run rows they need, so records may arrive in any order. History and output lines are
addressed by line number: writing lines that exist replaces them, which makes a retry or a
second sync idempotent.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    URL,
    ColumnElement,
    Connection,
    Select,
    Table,
    bindparam,
    case,
    create_engine,
    event,
    func,
    select,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql, sqlite

from nbtrack import jsonutil
from nbtrack.errors import NbtrackError, UsageError
from nbtrack.store.schema import (
    ProjectRow,
    RunRow,
    check_offset,
    check_state,
    decode_run,
    entities,
    history,
    history_facts,
    metadata,
    new_run_values,
    output,
    pick_keys,
    projects,
    runs,
)

__all__ = ["DB_FILENAME", "ProjectRow", "RunRow", "Store", "StoreError"]

DB_FILENAME = "nbtrack.db"
_SQLITE_BUSY_TIMEOUT_MS = 5000
# Bound parameters per multi-row INSERT: under SQLite's historical limit of 999 on any build.
LINES_PER_STATEMENT = 999
# Execution option that makes the SQLite "begin" hook open the transaction as a writer.
_WRITER = "nbtrack_writer"
# Upserts need the dialect's own INSERT; these are the dialects the schema is tested on.
_DIALECTS = ("sqlite", "postgresql")
_RUN_JOIN = runs.join(projects).join(entities)


class StoreError(NbtrackError):
    """The database refused or failed an operation (locked too long, unreachable, corrupt)."""


class Store:
    """Runs, their history and output, in one SQLAlchemy database (SQLite file or PostgreSQL)."""

    def __init__(self, url: str | URL) -> None:
        """Connect to url (any SQLAlchemy URL of a supported dialect) and create missing tables."""
        parsed = make_url(url)
        # Checked before create_engine, which would first try to import the other dialect's driver.
        self._dialect = parsed.get_backend_name()
        if self._dialect not in _DIALECTS:
            raise UsageError(
                f"nbtrack keeps runs in SQLite or PostgreSQL; {self._dialect!r} is not supported"
            )
        engine = create_engine(parsed)
        if self._dialect == "sqlite":
            database = parsed.database
            if database and database != ":memory:" and not database.startswith("file:"):
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            _configure_sqlite(engine)
        self._engine = engine
        self._upsert_cache: dict[tuple[str, int], tuple[str, bool]] = {}
        try:
            with self._write() as conn:
                metadata.create_all(conn)
        except StoreError:
            engine.dispose()
            raise

    @classmethod
    def at_root(cls, root: str | os.PathLike[str]) -> Store:
        """The SQLite store of an nbtrack folder: root/nbtrack.db."""
        return cls(URL.create("sqlite", database=os.fspath(Path(root) / DB_FILENAME)))

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- writes -------------------------------------------------------------------------

    def upsert_run(
        self,
        entity: str,
        project: str,
        run_id: str,
        *,
        display_name: str | None = None,
        notes: str | None = None,
        tags: Sequence[str] | None = None,
        group: str | None = None,
        job_type: str | None = None,
        host: str | None = None,
        program: str | None = None,
        config: Mapping[str, Any] | None = None,
        state: str | None = None,
        created_at: float | None = None,
    ) -> RunRow:
        """Create or update a run; None leaves a field unchanged (or at its default on insert)."""
        if state is not None:
            check_state(state)
        given: dict[str, Any] = {
            "display_name": display_name,
            "notes": notes,
            "tags": None if tags is None else jsonutil.dumps_str(list(tags)),
            "group_name": group,
            "job_type": job_type,
            "host": host,
            "program": program,
            "config": None if config is None else jsonutil.dumps_str(dict(config)),
            "state": state,
            "created_at": created_at,
        }
        changes = {key: value for key, value in given.items() if value is not None}
        now = time.time()
        with self._write() as conn:
            project_id = self._project_id(conn, entity, project, now)
            stmt = self._insert(runs).values({**new_run_values(project_id, run_id, now), **changes})
            stmt = stmt.on_conflict_do_update(
                index_elements=[runs.c.project_id, runs.c.run_id], set_={**changes, "updated_at": now}
            )
            conn.execute(stmt)
            found = conn.execute(_select_runs(entity, project, run_id)).one()
            return decode_run(found)

    def update_config(
        self, entity: str, project: str, run_id: str, update: Mapping[str, Any], remove: Sequence[str] = ()
    ) -> None:
        """Merge update into the run's config and drop the top-level keys in remove."""
        now = time.time()
        with self._write() as conn:
            pk = self._run_pk(conn, entity, project, run_id, now)
            # FOR UPDATE keeps two PostgreSQL writers from losing each other's keys; SQLite's writer
            # transaction already excludes other writers and the clause compiles to nothing there.
            text = conn.execute(select(runs.c.config).where(runs.c.pk == pk).with_for_update()).scalar_one()
            config: dict[str, Any] = jsonutil.loads(text)
            config.update(update)
            for key in remove:
                config.pop(key, None)
            conn.execute(
                runs.update().where(runs.c.pk == pk).values(config=jsonutil.dumps_str(config), updated_at=now)
            )

    def write_history(
        self,
        entity: str,
        project: str,
        run_id: str,
        offset: int,
        rows: Sequence[str],
        steps: Sequence[int] | None = None,
    ) -> None:
        """Store JSON rows as lines offset.. (replacing any there); steps, if given, saves parsing "_step"."""
        steps, runtime = history_facts(rows, offset, steps)
        if not rows:
            return
        now = time.time()
        with self._write() as conn:
            pk = self._run_pk(conn, entity, project, run_id, now)
            lines = range(offset, offset + len(rows))
            self._upsert_lines(
                conn,
                history,
                [(pk, n, s, d) for n, s, d in zip(lines, steps, rows, strict=True)],
            )
            values: dict[str, Any] = {
                "history_line_count": _greatest(runs.c.history_line_count, offset + len(rows)),
                "last_step": _greatest(runs.c.last_step, max(steps)),
                "updated_at": now,
            }
            if runtime is not None:
                values["runtime"] = _greatest(runs.c.runtime, runtime)
            conn.execute(runs.update().where(runs.c.pk == pk).values(values))

    def write_output(self, entity: str, project: str, run_id: str, offset: int, lines: Sequence[str]) -> None:
        """Store console lines as lines offset.. of the run's output, replacing any there."""
        check_offset(offset)
        if not lines:
            return
        now = time.time()
        with self._write() as conn:
            pk = self._run_pk(conn, entity, project, run_id, now)
            self._upsert_lines(
                conn,
                output,
                [(pk, offset + i, text) for i, text in enumerate(lines)],
            )
            conn.execute(runs.update().where(runs.c.pk == pk).values(updated_at=now))

    def write_summary(self, entity: str, project: str, run_id: str, summary: Mapping[str, Any]) -> None:
        """Replace the run's summary."""
        self._set_fields(entity, project, run_id, summary=jsonutil.dumps_str(dict(summary)))

    def set_metrics(
        self, entity: str, project: str, run_id: str, metrics: Sequence[Mapping[str, Any]]
    ) -> None:
        """Replace the run's metric definitions."""
        self._set_fields(entity, project, run_id, metrics=jsonutil.dumps_str([dict(m) for m in metrics]))

    def finish_run(
        self,
        entity: str,
        project: str,
        run_id: str,
        *,
        state: str,
        exit_code: int | None,
        runtime: float | None = None,
    ) -> None:
        """Record how the run ended; runtime None keeps the runtime that history reported."""
        check_state(state)
        fields: dict[str, Any] = {"state": state, "exit_code": exit_code}
        if runtime is not None:
            fields["runtime"] = runtime
        self._set_fields(entity, project, run_id, **fields)

    # ---- reads --------------------------------------------------------------------------

    def list_projects(self, entity: str | None = None) -> list[ProjectRow]:
        """Projects (of one entity, or all) with their run count, most recently active first."""
        last_activity = func.coalesce(func.max(runs.c.updated_at), projects.c.created_at).label(
            "last_activity"
        )
        stmt = (
            select(
                entities.c.name, projects.c.name, projects.c.created_at, func.count(runs.c.pk), last_activity
            )
            .select_from(projects.join(entities).outerjoin(runs))
            .group_by(projects.c.id, entities.c.name, projects.c.name, projects.c.created_at)
            .order_by(last_activity.desc(), entities.c.name, projects.c.name)
        )
        if entity is not None:
            stmt = stmt.where(entities.c.name == entity)
        with self._read() as conn:
            return [ProjectRow(*row) for row in conn.execute(stmt)]

    def list_runs(self, project: str, entity: str | None = None) -> list[RunRow]:
        """Runs of the project (in one entity, or in every entity that has it), newest first."""
        stmt = _select_runs(entity, project).order_by(runs.c.created_at.desc(), runs.c.pk.desc())
        with self._read() as conn:
            return [decode_run(row) for row in conn.execute(stmt)]

    def get_run(self, entity: str | None, project: str, run_id: str) -> RunRow | None:
        """The run, or None; with entity None, the one match in any entity (UsageError if several)."""
        with self._read() as conn:
            found = conn.execute(_select_runs(entity, project, run_id).limit(10)).all()
        if len(found) > 1:
            names = ", ".join(sorted(row.entity for row in found))
            raise UsageError(
                f"run {run_id!r} of project {project!r} exists in several entities ({names}); "
                f"name one, as in '{found[0].entity}/{project}/{run_id}'"
            )
        return decode_run(found[0]) if found else None

    def read_history(
        self,
        entity: str,
        project: str,
        run_id: str,
        keys: Sequence[str] | None = None,
        min_step: int | None = None,
        max_step: int | None = None,
    ) -> list[dict[str, Any]]:
        """History rows in line order; with keys, only rows holding one of them, cut to _step and keys."""
        stmt = (
            select(history.c.data)
            .select_from(history.join(_RUN_JOIN))
            .where(*_run_filter(entity, project, run_id))
            .order_by(history.c.line)
        )
        if min_step is not None:
            stmt = stmt.where(history.c.step >= min_step)
        if max_step is not None:
            stmt = stmt.where(history.c.step <= max_step)
        with self._read() as conn:
            rows = [jsonutil.loads(data) for data in conn.scalars(stmt)]
        return rows if keys is None else pick_keys(rows, keys)

    def read_output(self, entity: str, project: str, run_id: str) -> list[str]:
        """The run's console lines in line order."""
        stmt = (
            select(output.c.text)
            .select_from(output.join(_RUN_JOIN))
            .where(*_run_filter(entity, project, run_id))
            .order_by(output.c.line)
        )
        with self._read() as conn:
            return list(conn.scalars(stmt))

    # ---- internals ----------------------------------------------------------------------

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

    def _insert(self, table: Table) -> sqlite.Insert | postgresql.Insert:
        # Imported here: each dialect module costs tens of milliseconds, and a run needs one.
        if self._dialect == "sqlite":
            from sqlalchemy.dialects import sqlite as dialect
        else:
            from sqlalchemy.dialects import postgresql as dialect  # type: ignore[no-redef]
        return dialect.insert(table)

    def _upsert_lines(self, conn: Connection, table: Table, rows: list[tuple[Any, ...]]) -> None:
        """Insert rows (tuples in the table's column order), replacing lines that exist.

        The hot path of a run's history. Rows go in multi-row INSERT statements of up to
        LINES_PER_STATEMENT parameters, compiled once per (table, row count) and handed straight to
        the driver: one statement step per chunk instead of one per row, and none of SQLAlchemy's
        per-row parameter processing. The values are still bound parameters.
        """
        names = [c.name for c in table.columns]
        chunk = max(1, LINES_PER_STATEMENT // len(names))
        for start in range(0, len(rows), chunk):
            part = rows[start : start + chunk]
            sql, positional = self._upsert_sql(table, len(part))
            if positional:
                conn.exec_driver_sql(sql, tuple(value for row in part for value in row))
            else:
                bound = {
                    f"{name}_{i}": value
                    for i, row in enumerate(part)
                    for name, value in zip(names, row, strict=True)
                }
                conn.exec_driver_sql(sql, bound)

    def _upsert_sql(self, table: Table, count: int) -> tuple[str, bool]:
        """SQL upserting `count` rows; positional drivers take the values row by row, column by column."""
        key = (table.name, count)
        cached = self._upsert_cache.get(key)
        if cached is None:
            names = [c.name for c in table.columns]
            binds = [f"{name}_{i}" for i in range(count) for name in names]
            insert = self._insert(table).values(
                [{n: bindparam(f"{n}_{i}") for n in names} for i in range(count)]
            )
            replace = {c.name: insert.excluded[c.name] for c in table.columns if not c.primary_key}
            compiled = insert.on_conflict_do_update(
                index_elements=list(table.primary_key), set_=replace
            ).compile(dialect=self._engine.dialect)
            positional = bool(compiled.positional)
            if positional and list(compiled.positiontup or ()) != binds:
                raise StoreError(
                    f"unexpected bind order compiling the {table.name} upsert"
                )  # never silently mix
            cached = self._upsert_cache[key] = (str(compiled), positional)
        return cached

    def _set_fields(self, entity: str, project: str, run_id: str, **fields: Any) -> None:
        now = time.time()
        with self._write() as conn:
            pk = self._run_pk(conn, entity, project, run_id, now)
            conn.execute(runs.update().where(runs.c.pk == pk).values(**fields, updated_at=now))

    def _id_of(self, conn: Connection, table: Table, key: dict[str, Any], extra: dict[str, Any]) -> int:
        """The primary key of table's row with the unique values key, inserting key | extra if missing."""
        (pk_column,) = table.primary_key
        find = select(pk_column).where(*(table.c[name] == value for name, value in key.items()))
        found: int | None = conn.scalar(find)
        if found is None:
            # DO NOTHING rather than a bare insert: a concurrent PostgreSQL writer may have won the race.
            conn.execute(
                self._insert(table).values({**key, **extra}).on_conflict_do_nothing(index_elements=list(key))
            )
            found = conn.execute(find).scalar_one()
        return found

    def _project_id(self, conn: Connection, entity: str, project: str, now: float) -> int:
        """The project's id, creating the entity and project rows if they are missing."""
        entity_id = self._id_of(conn, entities, {"name": entity}, {})
        return self._id_of(conn, projects, {"entity_id": entity_id, "name": project}, {"created_at": now})

    def _run_pk(self, conn: Connection, entity: str, project: str, run_id: str, now: float) -> int:
        """The run's primary key, creating the run (and its project) if it is missing."""
        # One joined lookup first: on the hot path (write_history every ~50 ms) the run exists.
        pk = conn.scalar(
            select(runs.c.pk).select_from(_RUN_JOIN).where(*_run_filter(entity, project, run_id))
        )
        if pk is not None:
            return int(pk)
        project_id = self._project_id(conn, entity, project, now)
        values = new_run_values(project_id, run_id, now)
        return self._id_of(conn, runs, {"project_id": project_id, "run_id": run_id}, values)


def _configure_sqlite(engine: Any) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take BEGIN away from the sqlite3 module so on_begin below decides how each transaction starts.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # WAL lets readers (the UI, the read API) run while the sender writes; NORMAL loses at most the
        # last commits on power loss, which the run's transaction log can replay.
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


def _run_filter(entity: str | None, project: str, run_id: str | None = None) -> list[ColumnElement[bool]]:
    where = [projects.c.name == project]
    if entity is not None:
        where.append(entities.c.name == entity)
    if run_id is not None:
        where.append(runs.c.run_id == run_id)
    return where


def _select_runs(entity: str | None, project: str, run_id: str | None = None) -> Select[Any]:
    return (
        select(entities.c.name.label("entity"), projects.c.name.label("project"), runs)
        .select_from(_RUN_JOIN)
        .where(*_run_filter(entity, project, run_id))
    )


def _greatest(column: Any, value: float) -> ColumnElement[Any]:
    """max(column, value) in SQL both dialects speak (SQLite's max() is PostgreSQL's GREATEST)."""
    return case((column.is_(None), value), (column < value, value), else_=column)
