"""The store's writes: runs, their config, summary and metrics, and their history, output and
events lines.

Writers are the internal process's sender (local mode), `nbtrack sync` and the tracking server.
Writes create the entity, project and run rows they need, so records may arrive in any order.
History and output lines are addressed by line number: writing lines that exist replaces them,
which makes a retry or a second sync idempotent. A history write also recomputes the rollup of
the buckets its lines touch (rollup.py).
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Unpack

from sqlalchemy import Connection, Table, func, select

from nbtrack import jsonutil
from nbtrack.store.chart_read import HistoryLines, read_lines
from nbtrack.store.engine import Database
from nbtrack.store.liveness import heard_from
from nbtrack.store.queries import find_run_pk, greatest, select_runs
from nbtrack.store.rollup import BUCKET_LINES, RollupRow, summarize
from nbtrack.store.schema import (
    LineBatch,
    RunFields,
    RunRow,
    alerts,
    check_offset,
    check_state,
    decode_run,
    entities,
    events,
    history,
    history_facts,
    history_rollup,
    new_run_values,
    output,
    projects,
    runs,
)
from nbtrack.vocabulary import ALERT_LEVELS, ALERT_TEXT_MAX, ALERTS_PER_RUN

__all__ = ["ALERTS_PER_RUN", "AlertOutcome", "Writes", "bucket_summary", "longest_runtime"]

# What add_alert did: stored it, found it stored already (the same alert_key: a replay), held it
# back (the same title within wait_seconds), or refused it (the run has ALERTS_PER_RUN).
AlertOutcome = Literal["stored", "repeat", "waiting", "full"]


class Writes(Database):
    """Store's writing methods: each one write transaction."""

    def upsert_run(self, entity: str, project: str, run_id: str, **fields: Unpack[RunFields]) -> RunRow:
        """Create or update a run; a field left out or None stays unchanged (or at its default on insert)."""
        return self.upsert_run_inserted(entity, project, run_id, **fields)[0]

    def upsert_run_inserted(
        self, entity: str, project: str, run_id: str, *, by_writer: bool = False, **fields: Unpack[RunFields]
    ) -> tuple[RunRow, bool]:
        """upsert_run, also telling whether this call created the run. by_writer: the run's own
        writer (not an edit by someone else) calls: the run is heard from (liveness.py)."""
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
                self._upserts.insert(runs)
                .values({**new_run_values(project_id, run_id, now), **changes})
                .on_conflict_do_nothing(index_elements=[runs.c.project_id, runs.c.run_id])
                .returning(runs.c.pk)
            )
            inserted = conn.execute(insert).first() is not None
            if not inserted:
                conn.execute(
                    runs.update()
                    .where(runs.c.project_id == project_id, runs.c.run_id == run_id)
                    .values({**(heard_from(now) if by_writer else {"updated_at": now}), **changes})
                )
            found = conn.execute(select_runs(entity, project, run_id)).one()
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
        if self._dialect == "postgresql":  # the server's hot path: two round trips (pg_stream.py)
            from nbtrack.store import pg_stream  # imports psycopg, the postgresql extra's driver

            written = pg_stream.write_post(
                self._engine,
                self._upserts,
                (entity, project, run_id),
                history_lines=history_lines,
                output_lines=output_lines,
                event_lines=event_lines,
                summary=summary,
                finish=finish,
                now=now,
            )
            if written is not None:
                return written
        with self._write() as conn:
            pk = find_run_pk(conn, entity, project, run_id)
            if pk is None:
                return False
            if history_lines is not None and history_lines.lines:
                self._write_history(conn, pk, history_lines, now)
            for table, batch in ((output, output_lines), (events, event_lines)):
                if batch is not None and batch.lines:
                    self._upserts.lines(conn, table, _numbered(pk, batch))
            fields: dict[str, Any] = heard_from(now)
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

    def add_alert(
        self,
        entity: str,
        project: str,
        run_id: str,
        *,
        title: str,
        text: str,
        level: str,
        created_at: float | None = None,
        wait_seconds: float = 0.0,
        alert_key: str | None = None,
    ) -> AlertOutcome:
        """Keep an alert of the run (title and text cut to ALERT_TEXT_MAX characters).

        An alert whose title the run already has within wait_seconds of created_at (before or
        after: a replay may come late) is not stored ("waiting"); nor is one whose alert_key the run
        has ("repeat"), so delivering the same alert again changes nothing.
        """
        if level not in ALERT_LEVELS:
            raise ValueError(f"alert level {level!r:.20} is not one of {', '.join(ALERT_LEVELS)}")
        if wait_seconds < 0:
            raise ValueError(f"wait_seconds must be >= 0, got {wait_seconds}")
        now = time.time()
        when = now if created_at is None else created_at
        title, text = title[:ALERT_TEXT_MAX], text[:ALERT_TEXT_MAX]
        with self._write() as conn:
            pk = self._run_pk(conn, entity, project, run_id, now)
            # FOR UPDATE on the run: two PostgreSQL writers of one run's alerts take turns, so
            # neither misses the other's alert of the same title (SQLite's writer already does).
            conn.execute(select(runs.c.pk).where(runs.c.pk == pk).with_for_update())
            mine = alerts.c.run_pk == pk
            if alert_key is not None and conn.scalar(
                select(alerts.c.id).where(mine, alerts.c.alert_key == alert_key)
            ):
                return "repeat"
            if wait_seconds > 0 and conn.scalar(
                select(alerts.c.id)
                .where(
                    mine,
                    alerts.c.title == title,
                    alerts.c.created_at > when - wait_seconds,
                    alerts.c.created_at < when + wait_seconds,
                )
                .limit(1)
            ):
                return "waiting"
            if (conn.scalar(select(func.count()).select_from(alerts).where(mine)) or 0) >= ALERTS_PER_RUN:
                return "full"
            conn.execute(
                alerts.insert().values(
                    run_pk=pk, alert_key=alert_key, title=title, text=text, level=level, created_at=when
                )
            )
            conn.execute(runs.update().where(runs.c.pk == pk).values(updated_at=now))
        return "stored"

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
        self._upserts.lines(
            conn, history, [(pk, n, s, d) for n, s, d in zip(lines, batch.steps, batch.lines, strict=True)]
        )
        rollup_rows = self._write_rollup(conn, pk, lines, batch.steps, batch.parsed, stored)
        values: dict[str, Any] = {
            "history_line_count": greatest(runs.c.history_line_count, lines.stop),
            "last_step": greatest(runs.c.last_step, max(batch.steps)),
            **heard_from(now),
        }
        runtime = longest_runtime(rollup_rows)
        if runtime is not None:
            values["runtime"] = greatest(runs.c.runtime, runtime)
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
        kept = HistoryLines()
        if head or tail:
            kept = read_lines(conn, pk, [(part.start, part.stop) for part in (head, tail) if part])
        summary = bucket_summary(lines, steps, parsed, kept)
        if lines.start < stored:
            # Lines were replaced: a key they no longer hold must lose its rows in these buckets.
            conn.execute(
                history_rollup.delete().where(
                    history_rollup.c.run_pk == pk, history_rollup.c.bucket.between(first, last)
                )
            )
        self._upserts.lines(conn, history_rollup, [(pk, *row) for row in summary])
        return summary

    def _write_lines(self, table: Table, entity: str, project: str, run_id: str, batch: LineBatch) -> None:
        check_offset(batch.offset)
        if not batch.lines:
            return
        now = time.time()
        with self._write() as conn:
            pk = self._run_pk(conn, entity, project, run_id, now)
            self._upserts.lines(conn, table, _numbered(pk, batch))
            conn.execute(runs.update().where(runs.c.pk == pk).values(heard_from(now)))

    def _project_id(self, conn: Connection, entity: str, project: str, now: float) -> int:
        """The project's id, creating the entity and project rows if they are missing."""
        entity_id = self._upserts.id_of(conn, entities, {"name": entity}, {})
        return self._upserts.id_of(
            conn, projects, {"entity_id": entity_id, "name": project}, {"created_at": now}
        )

    def _run_pk(self, conn: Connection, entity: str, project: str, run_id: str, now: float) -> int:
        """The run's primary key, creating the run (and its project) if it is missing."""
        # One joined lookup first: on the hot path (write_history every ~50 ms) the run exists.
        pk = find_run_pk(conn, entity, project, run_id)
        if pk is not None:
            return pk
        project_id = self._project_id(conn, entity, project, now)
        values = new_run_values(project_id, run_id, now)
        return self._upserts.id_of(conn, runs, {"project_id": project_id, "run_id": run_id}, values)


def bucket_summary(
    lines: range, steps: Sequence[int], parsed: Sequence[dict[str, Any]], kept: HistoryLines
) -> list[RollupRow]:
    """The rollup of the buckets lines touch: their rows with the buckets' other lines (kept, in
    line order, none of them in lines)."""
    all_lines, all_steps, rows = list(lines), list(steps), list(parsed)
    if kept.lines:
        cut = bisect_left(kept.lines, lines.start)
        all_lines = [*kept.lines[:cut], *all_lines, *kept.lines[cut:]]
        all_steps = [*kept.steps[:cut], *all_steps, *kept.steps[cut:]]
        rows = [*kept.rows[:cut], *rows, *kept.rows[cut:]]
    return summarize(all_lines, all_steps, rows)


def longest_runtime(summary: Sequence[RollupRow]) -> float | None:
    """The largest _runtime in a rollup's rows (y_max of key _runtime), None if none has one."""
    runtimes = [row[-1] for row in summary if row[0] == "_runtime" and row[-1] is not None]
    return max(runtimes) if runtimes else None


def _numbered(pk: int, batch: LineBatch) -> list[tuple[int, int, str]]:
    """Rows of a text line table (output, events): (run_pk, line, text)."""
    return [(pk, batch.offset + i, text) for i, text in enumerate(batch.lines)]
