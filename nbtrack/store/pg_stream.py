"""A file-stream post written to PostgreSQL in two round trips (the server's hot path).

Store.write_stream's general path (writes.py) runs each statement through SQLAlchemy and waits
for each answer: the run's key, its line count (locked), the bucket's stored lines, the history
lines, the rollup, the run's row, then the commit. Against a server over the network every wait
is a round trip, and in a replica whose threads share one GIL each answer also waits for its
thread's turn, with a pooled connection held all along. Here the same transaction goes out on
the driver's own connection in psycopg's pipeline mode, in two batches:

1. lock the run's row (FOR UPDATE, found by its names) and read the stored lines of the buckets
   the post touches;
2. with the rollup of those buckets computed: the lines, the rollup, the run's row (one UPDATE
   whatever the post holds) and the COMMIT.

Same statements, same locks, same order as the general path, so exactly-once and in-order hold
as they do there: a second writer of the run waits for the lock before it reads the buckets.
The lines of the buckets are read without the run's line count (the general path bounds them
by it), which changes nothing: no stored line lies past the count. A run whose history was
compacted (archive.py) may hold its buckets' other lines in its archive, which only the general
path reads: its posts are left to it (write_post answers None), a resumed compacted run being rare.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psycopg
from sqlalchemy import Engine

from nbtrack import jsonutil
from nbtrack.errors import StoreError
from nbtrack.store.chart_read import HistoryLines
from nbtrack.store.rollup import BUCKET_LINES
from nbtrack.store.schema import LineBatch, events, history, history_rollup, output
from nbtrack.store.upsert import Upserts
from nbtrack.store.writes import bucket_summary, longest_runtime

__all__ = ["write_post"]

_LOCK_RUN = (
    "SELECT runs.pk, runs.history_line_count, "
    "EXISTS (SELECT 1 FROM history_archives WHERE history_archives.run_pk = runs.pk) FROM runs "
    "JOIN projects ON projects.id = runs.project_id JOIN entities ON entities.id = projects.entity_id "
    "WHERE entities.name = %(entity)s AND projects.name = %(project)s AND runs.run_id = %(run)s "
    "FOR UPDATE OF runs"
)
# The stored lines of the touched buckets outside the post's lines: [head, start) and [stop, tail).
_BUCKET_LINES = (
    "SELECT line, step, data FROM history WHERE run_pk = ("
    "SELECT runs.pk FROM runs "
    "JOIN projects ON projects.id = runs.project_id JOIN entities ON entities.id = projects.entity_id "
    "WHERE entities.name = %(entity)s AND projects.name = %(project)s AND runs.run_id = %(run)s) "
    "AND ((line >= %(head)s AND line < %(start)s) OR (line >= %(stop)s AND line < %(tail)s)) "
    "ORDER BY line"
)
_DELETE_ROLLUP = "DELETE FROM history_rollup WHERE run_pk = %(pk)s AND bucket BETWEEN %(first)s AND %(last)s"
# One statement for every post: a NULL parameter leaves its column as it is (GREATEST ignores
# NULLs). The state as liveness.heard_from sets it, unless the post finishes the run.
_UPDATE_RUN = (
    "UPDATE runs SET updated_at = %(now)s, "
    "history_line_count = GREATEST(history_line_count, %(line_count)s::integer), "
    "last_step = GREATEST(last_step, %(last_step)s::bigint), "
    "runtime = GREATEST(runtime, %(runtime)s::double precision), "
    "summary = COALESCE(%(summary)s::text, summary), "
    "exit_code = CASE WHEN %(finish)s THEN %(exit_code)s::integer ELSE exit_code END, "
    "state = CASE WHEN %(finish)s THEN %(state)s::varchar "
    "WHEN state = 'crashed' AND exit_code IS NULL THEN 'running' ELSE state END "
    "WHERE pk = %(pk)s"
)


def write_post(
    engine: Engine,
    upserts: Upserts,
    names: tuple[str, str, str],
    *,
    history_lines: LineBatch | None,
    output_lines: LineBatch | None,
    event_lines: LineBatch | None,
    summary: Mapping[str, Any] | None,
    finish: tuple[str, int | None] | None,
    now: float,
) -> bool | None:
    """Store.write_stream on PostgreSQL, its arguments checked (history's steps and parsed rows
    given); False, and nothing written, if the run is not stored; None, and nothing written, if
    its history was compacted (the general path writes it)."""
    entity, project, run_id = names
    run = {"entity": entity, "project": project, "run": run_id}
    has_history = history_lines is not None and bool(history_lines.lines)
    raw = engine.raw_connection()
    try:
        conn: psycopg.Connection[Any] = raw.driver_connection  # type: ignore[assignment]
        with conn.pipeline(), conn.cursor() as cur, conn.cursor() as bucket_cur:
            cur.execute(_LOCK_RUN, run)
            lines = range(0)
            if history_lines is not None and has_history:
                lines = range(history_lines.offset, history_lines.offset + len(history_lines.lines))
                first, last = lines.start // BUCKET_LINES, (lines.stop - 1) // BUCKET_LINES
                bounds = {"head": first * BUCKET_LINES, "start": lines.start}
                bounds |= {"stop": lines.stop, "tail": (last + 1) * BUCKET_LINES}
                bucket_cur.execute(_BUCKET_LINES, run | bounds)
            found = cur.fetchone()  # the first round trip
            if found is None:
                conn.rollback()
                return False
            pk, stored, archived = found
            if archived:
                conn.rollback()
                return None
            fields: dict[str, Any] = {"line_count": None, "last_step": None, "runtime": None}
            if history_lines is not None and has_history:
                assert history_lines.steps is not None and history_lines.parsed is not None
                kept = HistoryLines()
                for line, step, data in bucket_cur.fetchall():
                    kept.lines.append(line)
                    kept.steps.append(step)
                    kept.rows.append(jsonutil.loads(data))
                summary_rows = bucket_summary(lines, history_lines.steps, history_lines.parsed, kept)
                numbered = zip(lines, history_lines.steps, history_lines.lines, strict=True)
                for sql, params in upserts.array_statements(history, [(pk, n, s, d) for n, s, d in numbered]):
                    cur.execute(sql, params)
                if lines.start < stored:  # lines replaced: a key they no longer hold loses its rows
                    cur.execute(_DELETE_ROLLUP, {"pk": pk, "first": first, "last": last})
                rollup = [(pk, *row) for row in summary_rows]
                for sql, params in upserts.array_statements(history_rollup, rollup):
                    cur.execute(sql, params)
                fields = {
                    "line_count": lines.stop,
                    "last_step": max(history_lines.steps),
                    "runtime": longest_runtime(summary_rows),
                }
            for table, batch in ((output, output_lines), (events, event_lines)):
                if batch is not None and batch.lines:
                    numbered_text = [(pk, batch.offset + i, text) for i, text in enumerate(batch.lines)]
                    for sql, params in upserts.array_statements(table, numbered_text):
                        cur.execute(sql, params)
            cur.execute(
                _UPDATE_RUN,
                {
                    **fields,
                    "pk": pk,
                    "now": now,
                    "summary": None if summary is None else jsonutil.dumps_str(dict(summary)),
                    "finish": finish is not None,
                    "state": None if finish is None else finish[0],
                    "exit_code": None if finish is None else finish[1],
                },
            )
            conn.commit()  # the second round trip, when the pipeline ends
        return True
    except psycopg.Error as exc:
        raise StoreError(f"the store at {engine.url!r} failed a write: {exc}") from exc
    finally:
        raw.close()  # back to the pool, which rolls back whatever a failure left open
