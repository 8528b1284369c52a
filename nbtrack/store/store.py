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
import secrets
import time
from bisect import bisect_left
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any, Unpack

from sqlalchemy import (
    URL,
    BigInteger,
    ColumnElement,
    Connection,
    Select,
    Table,
    bindparam,
    case,
    create_engine,
    event,
    func,
    literal,
    select,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql, sqlite

from nbtrack import jsonutil
from nbtrack.errors import NbtrackError, UsageError
from nbtrack.store.chart_read import ChartRequest, read_attempts, read_chart, read_history_keys, read_lines
from nbtrack.store.downsample import Chart
from nbtrack.store.keys import hash_key, new_key, shown_prefix
from nbtrack.store.read_only import ReadOnlyDatabase, can_write
from nbtrack.store.rollup import BUCKET_LINES, RollupRow, summarize
from nbtrack.store.schema import (
    KeyRow,
    LineBatch,
    ProjectRow,
    RunFields,
    RunRow,
    api_keys,
    check_offset,
    check_state,
    decode_run,
    entities,
    events,
    history,
    history_facts,
    history_rollup,
    metadata,
    new_run_values,
    output,
    pick_keys,
    projects,
    runs,
    sample_positions,
    server_secrets,
)

__all__ = [
    "DB_FILENAME",
    "Chart",
    "ChartRequest",
    "KeyRow",
    "LineBatch",
    "ProjectRow",
    "RunRow",
    "Store",
    "StoreError",
]

DB_FILENAME = "nbtrack.db"
_SQLITE_BUSY_TIMEOUT_MS = 5000
# Bound parameters per multi-row INSERT: under SQLite's historical limit of 999 on any build.
LINES_PER_STATEMENT = 999
# PostgreSQL: rows per statement when each column travels as one array.
ROWS_PER_ARRAY = 10_000
# Execution option that makes the SQLite "begin" hook open the transaction as a writer.
_WRITER = "nbtrack_writer"
# Upserts need the dialect's own INSERT; these are the dialects the schema is tested on.
_DIALECTS = ("sqlite", "postgresql")
_RUN_JOIN = runs.join(projects).join(entities)


class StoreError(NbtrackError):
    """The database refused or failed an operation (locked too long, unreachable, corrupt)."""


class Store:
    """Runs, their history and output, in one SQLAlchemy database (SQLite file or PostgreSQL)."""

    def __init__(self, url: str | URL, *, read_only: bool = False) -> None:
        """Connect to url (any SQLAlchemy URL of a supported dialect) and create missing tables.

        read_only (a SQLite file only): open it without writing anything, not even a missing
        table or the switch to WAL (read_only.py); every write then fails.
        """
        parsed = make_url(url)
        # Checked before create_engine, which would first try to import the other dialect's driver.
        self._dialect = parsed.get_backend_name()
        if self._dialect not in _DIALECTS:
            raise UsageError(
                f"nbtrack keeps runs in SQLite or PostgreSQL; {self._dialect!r} is not supported"
            )
        self._upsert_cache: dict[tuple[str, int], tuple[str, bool]] = {}
        self._read_only: ReadOnlyDatabase | None = None
        database = parsed.database
        if read_only:
            if self._dialect != "sqlite" or not database or database == ":memory:":
                raise UsageError(f"only a SQLite file can be opened read-only, not {parsed!r}")
            self._read_only = ReadOnlyDatabase(Path(database))
            self._engine = create_engine(parsed, creator=self._read_only.connect)
            _configure_sqlite(self._engine, read_only=True)
            return
        engine = create_engine(parsed)
        if self._dialect == "sqlite":
            if database and database != ":memory:" and not database.startswith("file:"):
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            _configure_sqlite(engine)
        self._engine = engine
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

    @classmethod
    def for_reading(cls, root: str | os.PathLike[str]) -> Store:
        """The store of an nbtrack folder for a reader: opened read-only when this process cannot
        write it (a read-only disk or folder), so that reading never needs write access."""
        database = Path(root) / DB_FILENAME
        return cls(URL.create("sqlite", database=os.fspath(database)), read_only=not can_write(database))

    def close(self) -> None:
        self._engine.dispose()
        if self._read_only is not None:
            self._read_only.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- writes -------------------------------------------------------------------------

    def upsert_run(self, entity: str, project: str, run_id: str, **fields: Unpack[RunFields]) -> RunRow:
        """Create or update a run; a field left out or None stays unchanged (or at its default on insert)."""
        return self.upsert_run_inserted(entity, project, run_id, **fields)[0]

    def upsert_run_inserted(
        self, entity: str, project: str, run_id: str, **fields: Unpack[RunFields]
    ) -> tuple[RunRow, bool]:
        """upsert_run, also telling whether this call created the run."""
        state = fields.get("state")
        if state is not None:
            check_state(state)
        tags, config = fields.get("tags"), fields.get("config")
        summary, metrics = fields.get("summary"), fields.get("metrics")
        given: dict[str, Any] = {
            "display_name": fields.get("display_name"),
            "notes": fields.get("notes"),
            "tags": None if tags is None else jsonutil.dumps_str(list(tags)),
            "group_name": fields.get("group"),
            "job_type": fields.get("job_type"),
            "host": fields.get("host"),
            "program": fields.get("program"),
            "config": None if config is None else jsonutil.dumps_str(dict(config)),
            "summary": None if summary is None else jsonutil.dumps_str(dict(summary)),
            "metrics": None if metrics is None else jsonutil.dumps_str([dict(m) for m in metrics]),
            "state": state,
            "created_at": fields.get("created_at"),
        }
        changes = {key: value for key, value in given.items() if value is not None}
        now = time.time()
        with self._write() as conn:
            project_id = self._project_id(conn, entity, project, now)
            # Insert-or-nothing then update, rather than one upsert: RETURNING tells whether the row is new.
            insert = (
                self._insert(runs)
                .values({**new_run_values(project_id, run_id, now), **changes})
                .on_conflict_do_nothing(index_elements=[runs.c.project_id, runs.c.run_id])
                .returning(runs.c.pk)
            )
            inserted = conn.execute(insert).first() is not None
            if not inserted:
                conn.execute(
                    runs.update()
                    .where(runs.c.project_id == project_id, runs.c.run_id == run_id)
                    .values({**changes, "updated_at": now})
                )
            found = conn.execute(_select_runs(entity, project, run_id)).one()
            return decode_run(found), inserted

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
        """Store JSON rows as lines offset.. (replacing any there), and their rollup."""
        steps, parsed = history_facts(rows, offset, steps)
        if not rows:
            return
        now = time.time()
        with self._write() as conn:
            pk = self._run_pk(conn, entity, project, run_id, now)
            self._write_history(conn, pk, LineBatch(offset, rows, steps, parsed), now)

    def write_output(self, entity: str, project: str, run_id: str, offset: int, lines: Sequence[str]) -> None:
        """Store console lines as lines offset.. of the run's output, replacing any there."""
        self._write_lines(output, entity, project, run_id, LineBatch(offset, lines))

    def write_events(self, entity: str, project: str, run_id: str, offset: int, lines: Sequence[str]) -> None:
        """Store system-metrics lines (JSON text) as lines offset.. of the run's events, replacing any."""
        self._write_lines(events, entity, project, run_id, LineBatch(offset, lines))

    def write_stream(
        self,
        entity: str,
        project: str,
        run_id: str,
        *,
        history_lines: LineBatch | None = None,
        output_lines: LineBatch | None = None,
        event_lines: LineBatch | None = None,
        summary: Mapping[str, Any] | None = None,
        finish: tuple[str, int | None] | None = None,
    ) -> bool:
        """Apply one file-stream post to an existing run in one transaction; False (and no change) if absent.

        finish is (state, exit code). Unlike the other writes this never creates the run: the
        server answers a post about a run nobody created with "not found".
        """
        if history_lines is not None:
            steps, parsed = history_facts(
                history_lines.lines, history_lines.offset, history_lines.steps, history_lines.parsed
            )
            history_lines = LineBatch(history_lines.offset, history_lines.lines, steps, parsed)
        for batch in (output_lines, event_lines):
            if batch is not None:
                check_offset(batch.offset)
        if finish is not None:
            check_state(finish[0])
        now = time.time()
        with self._write() as conn:
            pk = conn.scalar(
                select(runs.c.pk).select_from(_RUN_JOIN).where(*_run_filter(entity, project, run_id))
            )
            if pk is None:
                return False
            if history_lines is not None and history_lines.lines:
                self._write_history(conn, pk, history_lines, now)
            for table, batch in ((output, output_lines), (events, event_lines)):
                if batch is not None and batch.lines:
                    self._upsert_lines(conn, table, _numbered(pk, batch))
            fields: dict[str, Any] = {"updated_at": now}
            if summary is not None:
                fields["summary"] = jsonutil.dumps_str(dict(summary))
            if finish is not None:
                fields["state"], fields["exit_code"] = finish
            conn.execute(runs.update().where(runs.c.pk == pk).values(fields))
        return True

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
        with self._read() as conn:
            return [ProjectRow(*row) for row in conn.execute(_select_projects(entity))]

    def get_project(self, entity: str, name: str) -> ProjectRow | None:
        stmt = _select_projects(entity).where(projects.c.name == name)
        with self._read() as conn:
            found = conn.execute(stmt).first()
        return None if found is None else ProjectRow(*found)

    def list_runs(
        self, project: str, entity: str | None = None, *, limit: int | None = None, oldest_first: bool = False
    ) -> list[RunRow]:
        """Runs of the project (in one entity, or in every entity that has it), newest first."""
        order = (
            (runs.c.created_at, runs.c.pk) if oldest_first else (runs.c.created_at.desc(), runs.c.pk.desc())
        )
        stmt = _select_runs(entity, project).order_by(*order).limit(limit)
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
        stmt = _select_history(entity, project, run_id, min_step, max_step)
        with self._read() as conn:
            rows = [jsonutil.loads(data) for data in conn.scalars(stmt)]
        return rows if keys is None else pick_keys(rows, keys)

    def history_json(
        self,
        entity: str,
        project: str,
        run_id: str,
        *,
        keys: Sequence[str] | None = None,
        samples: int | None = None,
        min_step: int | None = None,
        max_step: int | None = None,
    ) -> str:
        """History rows as the text of one JSON array, in line order (read_history's rows, as JSON).

        samples N keeps at most N rows, evenly spaced by line, the first and last among them.
        Without keys the rows are never parsed: the array is the stored texts joined, and the
        sampling happens in SQL, so a million-line run costs one scan. With keys the rows holding
        them are sampled, which needs every row parsed.
        """
        if samples is not None and samples < 1:
            raise ValueError(f"samples must be at least 1, got {samples}")
        stmt = _select_history(entity, project, run_id, min_step, max_step)
        with self._read() as conn:
            if keys is not None:
                rows = pick_keys([jsonutil.loads(data) for data in conn.scalars(stmt)], keys)
                if samples is not None:
                    rows = [rows[i] for i in sample_positions(len(rows), samples)]
                return jsonutil.dumps_str(rows)
            if samples is not None:
                stmt = self._sampled(conn, stmt, samples)
            return "[" + ",".join(conn.scalars(stmt)) + "]"

    def history_gaps(self, entity: str, project: str, run_id: str) -> list[tuple[int, int]]:
        """Ranges [start, stop) of line numbers below the run's line count that hold no line (a
        write the store refused, a damaged log's lost rows); [] for a run without gaps or none."""
        with self._read() as conn:
            found = _run_lines(conn, entity, project, run_id)
            if found is None:
                return []
            pk = found[0]
            following = func.lead(history.c.line).over(order_by=history.c.line)
            lines = select(history.c.line, following.label("next")).where(history.c.run_pk == pk).subquery()
            gaps = select(lines.c.line + 1, lines.c.next).where(lines.c.next > lines.c.line + 1)
            first = conn.scalar(select(func.min(history.c.line)).where(history.c.run_pk == pk))
            inner = [(int(start), int(stop)) for start, stop in conn.execute(gaps.order_by(lines.c.line))]
        return ([(0, int(first))] if first else []) + inner

    def history_keys(self, entity: str, project: str, run_id: str) -> list[str]:
        """The run's metric keys: those with a numeric value in some history row, but _step,
        _runtime and _timestamp; sorted. Read from the rollup (and the lines it lacks)."""
        with self._snapshot() as conn:
            found = _run_lines(conn, entity, project, run_id)
            return [] if found is None else read_history_keys(conn, *found)

    def attempts(self, entity: str, project: str, run_id: str) -> int:
        """How many attempts the run's rows make (a notebook's re-run cells start new ones); 1 mostly."""
        with self._read() as conn:
            found = _run_lines(conn, entity, project, run_id)
            return 1 if found is None else read_attempts(conn, found[0])

    def chart(self, entity: str, project: str, run_id: str, request: ChartRequest) -> Chart | None:
        """The run's chart (downsample.py says what it holds), or None if the run does not exist."""
        with self._snapshot() as conn:
            found = _run_lines(conn, entity, project, run_id)
            return None if found is None else read_chart(conn, *found, request)

    def read_output(
        self, entity: str, project: str, run_id: str, offset: int = 0, limit: int | None = None
    ) -> list[str]:
        """The run's console lines in line order (limit of them from line offset on)."""
        return self._read_lines(output, entity, project, run_id, offset, limit)

    def read_events(
        self, entity: str, project: str, run_id: str, offset: int = 0, limit: int | None = None
    ) -> list[str]:
        """The run's system-metrics lines (JSON text) in line order."""
        return self._read_lines(events, entity, project, run_id, offset, limit)

    # ---- the tracking server's keys and secrets -----------------------------------------

    def create_key(self, entity: str) -> str:
        """A new API key acting as entity; only its hash is stored, so this is the one time it is seen."""
        key = new_key()
        with self._write() as conn:
            entity_id = self._id_of(conn, entities, {"name": entity}, {})
            conn.execute(
                api_keys.insert().values(
                    entity_id=entity_id,
                    key_hash=hash_key(key),
                    prefix=shown_prefix(key),
                    created_at=time.time(),
                )
            )
        return key

    def entity_for_key(self, key: str) -> str | None:
        """The entity a key acts as, or None for an unknown key."""
        # The lookup is by hash of a high-entropy key: timing reveals nothing an attacker can use.
        stmt = (
            select(entities.c.name)
            .select_from(api_keys.join(entities))
            .where(api_keys.c.key_hash == hash_key(key))
        )
        with self._read() as conn:
            return conn.scalar(stmt)

    def key_count(self) -> int:
        with self._read() as conn:
            return int(conn.scalar(select(func.count()).select_from(api_keys)) or 0)

    def list_keys(self) -> list[KeyRow]:
        stmt = (
            select(entities.c.name, api_keys.c.prefix, api_keys.c.created_at)
            .select_from(api_keys.join(entities))
            .order_by(api_keys.c.created_at)
        )
        with self._read() as conn:
            return [KeyRow(*row) for row in conn.execute(stmt)]

    def server_secret(self, name: str) -> str:
        """The named secret every server on this database shares, created at first use."""
        with self._write() as conn:
            # DO NOTHING: when two servers start at once, the first insert wins and both read it.
            conn.execute(
                self._insert(server_secrets)
                .values(name=name, value=secrets.token_hex(32))
                .on_conflict_do_nothing(index_elements=[server_secrets.c.name])
            )
            value: str = conn.execute(
                select(server_secrets.c.value).where(server_secrets.c.name == name)
            ).scalar_one()
            return value

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

    @contextmanager
    def _snapshot(self) -> Iterator[Connection]:
        """A read whose statements all see one state of the database (a chart reads several times)."""
        with self._read() as conn:
            if self._dialect == "postgresql":
                # READ COMMITTED would let a write land between the rollup's read and the lines'.
                # (SQLite's read transaction is one snapshot already.)
                conn.execution_options(isolation_level="REPEATABLE READ")
            yield conn

    def _insert(self, table: Table) -> sqlite.Insert | postgresql.Insert:
        # Imported here: each dialect module costs tens of milliseconds, and a run needs one.
        if self._dialect == "sqlite":
            from sqlalchemy.dialects import sqlite as dialect
        else:
            from sqlalchemy.dialects import postgresql as dialect  # type: ignore[no-redef]
        return dialect.insert(table)

    def _upsert_lines(self, conn: Connection, table: Table, rows: list[tuple[Any, ...]]) -> None:
        """Insert rows (tuples in the table's column order), replacing lines that exist.

        The hot path of a run's history, so none of SQLAlchemy's per-row parameter processing: the
        statements are compiled once and handed straight to the driver, values still bound.
        SQLite takes multi-row INSERT statements of up to LINES_PER_STATEMENT parameters (one
        statement step per chunk instead of one per row). PostgreSQL takes each column as one
        array parameter, sent in binary and unnested by the server: psycopg would re-parse a
        statement of thousands of placeholders on every call, which cost more than the insert.
        """
        if self._dialect == "postgresql":
            sql = self._unnest_sql(table)
            for start in range(0, len(rows), ROWS_PER_ARRAY):
                columns = zip(*rows[start : start + ROWS_PER_ARRAY], strict=True)
                conn.exec_driver_sql(sql, {f"c{i}": list(column) for i, column in enumerate(columns)})
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

    def _unnest_sql(self, table: Table) -> str:
        """PostgreSQL: upsert the rows of column arrays %(c0)b, %(c1)b, ... (binary parameters)."""
        key = (table.name, -1)
        cached = self._upsert_cache.get(key)
        if cached is None:
            dialect = self._engine.dialect
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
            cached = self._upsert_cache[key] = (sql, False)
        return cached[0]

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

    def _write_history(self, conn: Connection, pk: int, batch: LineBatch, now: float) -> None:
        """Write the lines of batch (steps and parsed rows given) and recompute their buckets' rollup."""
        if batch.steps is None or batch.parsed is None:
            raise ValueError("_write_history needs the batch's steps and parsed rows")
        # FOR UPDATE: two PostgreSQL writers of one run's history take turns, so neither computes
        # a bucket's rollup without the other's lines. (SQLite's writer transaction already does.)
        stored = conn.execute(
            select(runs.c.history_line_count).where(runs.c.pk == pk).with_for_update()
        ).scalar_one()
        lines = range(batch.offset, batch.offset + len(batch.lines))
        self._upsert_lines(
            conn, history, [(pk, n, s, d) for n, s, d in zip(lines, batch.steps, batch.lines, strict=True)]
        )
        rollup_rows = self._write_rollup(conn, pk, lines, batch.steps, batch.parsed, stored)
        values: dict[str, Any] = {
            "history_line_count": _greatest(runs.c.history_line_count, lines.stop),
            "last_step": _greatest(runs.c.last_step, max(batch.steps)),
            "updated_at": now,
        }
        runtimes = [row[-1] for row in rollup_rows if row[0] == "_runtime" and row[-1] is not None]
        if runtimes:
            values["runtime"] = _greatest(runs.c.runtime, max(runtimes))
        conn.execute(runs.update().where(runs.c.pk == pk).values(values))

    def _write_rollup(
        self,
        conn: Connection,
        pk: int,
        lines: range,
        steps: Sequence[int],
        parsed: Sequence[dict[str, Any]],
        stored: int,
    ) -> list[RollupRow]:
        """Recompute the rollup of every bucket lines touch, from those lines and the bucket's others.

        Each touched bucket is summarized whole, never merged: lines already stored in it (before
        lines, or after them when a retried post replaces lines) are read back. So a replaced line
        cannot leave a stale extreme behind, and a bucket written before the rollup existed is
        healed by the first write that touches it.
        """
        first, last = lines.start // BUCKET_LINES, (lines.stop - 1) // BUCKET_LINES
        head = range(first * BUCKET_LINES, min(lines.start, stored))
        tail = range(lines.stop, min((last + 1) * BUCKET_LINES, stored))
        all_lines, all_steps, rows = list(lines), list(steps), list(parsed)
        if head or tail:
            kept = read_lines(conn, pk, [(part.start, part.stop) for part in (head, tail) if part])
            cut = bisect_left(kept.lines, lines.start)
            all_lines = [*kept.lines[:cut], *all_lines, *kept.lines[cut:]]
            all_steps = [*kept.steps[:cut], *all_steps, *kept.steps[cut:]]
            rows = [*kept.rows[:cut], *rows, *kept.rows[cut:]]
        summary = summarize(all_lines, all_steps, rows)
        if lines.start < stored:
            # Lines were replaced: a key they no longer hold must lose its rows in these buckets.
            conn.execute(
                history_rollup.delete().where(
                    history_rollup.c.run_pk == pk, history_rollup.c.bucket.between(first, last)
                )
            )
        self._upsert_lines(conn, history_rollup, [(pk, *row) for row in summary])
        return summary

    def _write_lines(self, table: Table, entity: str, project: str, run_id: str, batch: LineBatch) -> None:
        check_offset(batch.offset)
        if not batch.lines:
            return
        now = time.time()
        with self._write() as conn:
            pk = self._run_pk(conn, entity, project, run_id, now)
            self._upsert_lines(conn, table, _numbered(pk, batch))
            conn.execute(runs.update().where(runs.c.pk == pk).values(updated_at=now))

    def _sampled(self, conn: Connection, stmt: Select[Any], samples: int) -> Select[Any]:
        """stmt (history data in line order) cut to `samples` rows evenly spaced by position.

        The rows kept are those at sample_positions(count, samples): the first position of each
        of `samples` equal buckets, ceil(b * (count - 1) / (samples - 1)) for bucket b. Lines are
        usually contiguous, and then position p is line first + p: the wanted lines are counted
        out in SQL (a recursive CTE of the buckets) and fetched by key, `samples` index lookups.
        With gaps (lines skipped, or a step range that skips some) the rows are numbered instead.
        """
        lines = stmt.with_only_columns(history.c.line).order_by(None).subquery()
        count, first, last = conn.execute(
            select(func.count(), func.min(lines.c.line), func.max(lines.c.line))
        ).one()
        if count <= samples:
            return stmt
        if samples == 1:
            return stmt.limit(1)
        span, width = samples - 1, count - 1
        if last - first == width:
            buckets = select(literal(0, BigInteger).label("b")).cte("buckets", recursive=True)
            buckets = buckets.union_all(select(buckets.c.b + 1).where(buckets.c.b < span))
            # IN, not a join: both databases then look each wanted line up by key.
            return stmt.where(history.c.line.in_(select(first + (buckets.c.b * width + span - 1) // span)))
        numbered = (
            stmt.with_only_columns(
                history.c.run_pk,
                history.c.line,
                (func.row_number().over(order_by=history.c.line) - 1).label("pos"),
            )
            .order_by(None)
            .subquery()
        )
        pos = numbered.c.pos
        keep = (pos == 0) | ((pos * span) // width > ((pos - 1) * span) // width)
        return (
            select(history.c.data)
            .select_from(
                history.join(
                    numbered, (numbered.c.run_pk == history.c.run_pk) & (numbered.c.line == history.c.line)
                )
            )
            .where(keep)
            .order_by(history.c.line)
        )

    def _read_lines(
        self, table: Table, entity: str, project: str, run_id: str, offset: int, limit: int | None
    ) -> list[str]:
        stmt = (
            select(table.c.text)
            .select_from(table.join(_RUN_JOIN))
            .where(*_run_filter(entity, project, run_id), table.c.line >= offset)
            .order_by(table.c.line)
            .limit(limit)
        )
        with self._read() as conn:
            return list(conn.scalars(stmt))

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


def _select_projects(entity: str | None) -> Select[Any]:
    last_activity = func.coalesce(func.max(runs.c.updated_at), projects.c.created_at).label("last_activity")
    stmt = (
        select(entities.c.name, projects.c.name, projects.c.created_at, func.count(runs.c.pk), last_activity)
        .select_from(projects.join(entities).outerjoin(runs))
        .group_by(projects.c.id, entities.c.name, projects.c.name, projects.c.created_at)
        .order_by(last_activity.desc(), entities.c.name, projects.c.name)
    )
    return stmt if entity is None else stmt.where(entities.c.name == entity)


def _select_history(
    entity: str, project: str, run_id: str, min_step: int | None, max_step: int | None
) -> Select[Any]:
    """The run's history data in line order, within the step range given."""
    # The run's key as a subquery rather than a join: both databases then read the run's lines
    # straight off the primary key's index, already in line order.
    run_pk = select(runs.c.pk).select_from(_RUN_JOIN).where(*_run_filter(entity, project, run_id))
    stmt = select(history.c.data).where(history.c.run_pk == run_pk.scalar_subquery()).order_by(history.c.line)
    if min_step is not None:
        stmt = stmt.where(history.c.step >= min_step)
    if max_step is not None:
        stmt = stmt.where(history.c.step <= max_step)
    return stmt


def _run_lines(conn: Connection, entity: str, project: str, run_id: str) -> tuple[int, int] | None:
    """(pk, history line count) of the run, or None if it does not exist."""
    stmt = (
        select(runs.c.pk, runs.c.history_line_count)
        .select_from(_RUN_JOIN)
        .where(*_run_filter(entity, project, run_id))
    )
    found = conn.execute(stmt).first()
    return None if found is None else (found.pk, found.history_line_count)


def _numbered(pk: int, batch: LineBatch) -> list[tuple[int, int, str]]:
    """Rows of a text line table (output, events): (run_pk, line, text)."""
    return [(pk, batch.offset + i, text) for i, text in enumerate(batch.lines)]


def _greatest(column: Any, value: float) -> ColumnElement[Any]:
    """max(column, value) in SQL both dialects speak (SQLite's max() is PostgreSQL's GREATEST)."""
    return case((column.is_(None), value), (column < value, value), else_=column)
