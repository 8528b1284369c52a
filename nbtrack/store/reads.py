"""The store's reads: projects, runs, and a run's history, output and events lines.

Readers are the read API, the CLI and the tracking server. A read needs no write access: the
same methods serve a store opened read-only (read_only.py). Charts and metric keys are read
from the rollup where it can answer (chart_read.py). A compacted run's history is read from its
archive and its table together (archive.py): the same answers, computed from the rows in Python
where SQL computes them for a run kept as rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table, func, inspect, select

from nbtrack import jsonutil
from nbtrack.errors import UsageError
from nbtrack.store.archive import archive_record, merged_lines, present_ranges
from nbtrack.store.chart_read import ChartRequest, read_attempts, read_chart, read_history_keys
from nbtrack.store.downsample import Chart
from nbtrack.store.engine import Database
from nbtrack.store.queries import (
    RUN_JOIN,
    run_filter,
    run_lines,
    sampled,
    select_history,
    select_projects,
    select_runs,
)
from nbtrack.store.schema import (
    AlertRow,
    ProjectRow,
    RunRow,
    alerts,
    decode_run,
    events,
    history,
    output,
    pick_keys,
    projects,
    runs,
    sample_positions,
)
from nbtrack.store.system_read import SystemChart, SystemChartRequest, read_system_chart

__all__ = ["Reads"]

_EVERY_LINE = [(0, 2**31 - 1)]  # lines are 32-bit integers (schema.history)


class Reads(Database):
    """Store's reading methods: each one read transaction."""

    def list_projects(self, entity: str | None = None) -> list[ProjectRow]:
        """Projects (of one entity, or all) with their run count, most recently active first."""
        with self._read() as conn:
            return [ProjectRow(*row) for row in conn.execute(select_projects(entity))]

    def get_project(self, entity: str, name: str) -> ProjectRow | None:
        stmt = select_projects(entity).where(projects.c.name == name)
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
        stmt = select_runs(entity, project).order_by(*order).limit(limit)
        with self._read() as conn:
            return [decode_run(row) for row in conn.execute(stmt)]

    def get_run(self, entity: str | None, project: str, run_id: str) -> RunRow | None:
        """The run, or None; with entity None, the one match in any entity (UsageError if several)."""
        with self._read() as conn:
            found = conn.execute(select_runs(entity, project, run_id).limit(10)).all()
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
        stmt = select_history(entity, project, run_id, min_step, max_step)
        with self._read() as conn:
            archived = _archived_rows(conn, entity, project, run_id, min_step, max_step)
            rows = archived if archived is not None else [jsonutil.loads(data) for data in conn.scalars(stmt)]
        return rows if keys is None else pick_keys(rows, keys)

    def history_page(
        self, entity: str, project: str, run_id: str, after: int, below: int, max_rows: int, max_bytes: int
    ) -> list[tuple[int, str]]:
        """(line, JSON text) of the run's history lines after `after` and below `below`, in line
        order: at most max_rows of them, and no more once their texts reach max_bytes (at least
        one). Read as a stream, so a page's memory is its own rows' whatever the run holds."""
        stmt = (
            select(history.c.line, history.c.data)
            .where(
                history.c.run_pk
                == select(runs.c.pk)
                .select_from(RUN_JOIN)
                .where(*run_filter(entity, project, run_id))
                .scalar_subquery(),
                history.c.line > after,
            )
            .where(history.c.line < below)
            .order_by(history.c.line)
            .limit(max_rows)
            .execution_options(yield_per=256)
        )
        page: list[tuple[int, str]] = []
        size = 0
        with self._read() as conn:
            found = run_lines(conn, entity, project, run_id)
            if found is not None and archive_record(conn, found[0]) is not None:
                lines, _steps, rows = merged_lines(conn, found[0], [(after + 1, below)], max_rows)
                for line, row in zip(lines, rows, strict=True):
                    page.append((line, jsonutil.dumps_str(row)))
                    size += len(page[-1][1])
                    if size >= max_bytes:
                        break
                return page
            result = conn.execute(stmt)
            for line, data in result:
                page.append((int(line), data))
                size += len(data)
                if size >= max_bytes:
                    break
            result.close()
        return page

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
        stmt = select_history(entity, project, run_id, min_step, max_step)
        with self._read() as conn:
            archived = _archived_rows(conn, entity, project, run_id, min_step, max_step)
            if archived is not None:
                rows = archived if keys is None else pick_keys(archived, keys)
                if samples is not None:
                    rows = [rows[i] for i in sample_positions(len(rows), samples)]
                return jsonutil.dumps_str(rows)
            if keys is not None:
                rows = pick_keys([jsonutil.loads(data) for data in conn.scalars(stmt)], keys)
                if samples is not None:
                    rows = [rows[i] for i in sample_positions(len(rows), samples)]
                return jsonutil.dumps_str(rows)
            if samples is not None:
                stmt = sampled(conn, stmt, samples)
            return "[" + ",".join(conn.scalars(stmt)) + "]"

    def history_gaps(self, entity: str, project: str, run_id: str) -> list[tuple[int, int]]:
        """Ranges [start, stop) of line numbers below the run's line count that hold no line (a
        write the store refused, a damaged log's lost rows); [] for a run without gaps or none."""
        with self._read() as conn:
            found = run_lines(conn, entity, project, run_id)
            if found is None:
                return []
            pk = found[0]
            record = archive_record(conn, pk)
            if record is not None:
                table = conn.scalars(select(history.c.line).where(history.c.run_pk == pk))
                return _gaps(present_ranges(record.line_end, record.gaps), [int(line) for line in table])
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
            found = run_lines(conn, entity, project, run_id)
            return [] if found is None else read_history_keys(conn, *found)

    def attempts(self, entity: str, project: str, run_id: str) -> int:
        """How many attempts the run's rows make (a notebook's re-run cells start new ones); 1 mostly."""
        with self._read() as conn:
            found = run_lines(conn, entity, project, run_id)
            return 1 if found is None else read_attempts(conn, found[0])

    def chart(self, entity: str, project: str, run_id: str, request: ChartRequest) -> Chart | None:
        """The run's chart (downsample.py says what it holds), or None if the run does not exist."""
        with self._snapshot() as conn:
            found = run_lines(conn, entity, project, run_id)
            return None if found is None else read_chart(conn, *found, request)

    def system_chart(
        self, entity: str, project: str, run_id: str, request: SystemChartRequest
    ) -> SystemChart | None:
        """The chart of the run's system metrics (system_read.py), or None if the run does not exist."""
        with self._snapshot() as conn:
            found = run_lines(conn, entity, project, run_id)
            return None if found is None else read_system_chart(conn, found[0], request)

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

    def read_alerts(self, entity: str, project: str, run_id: str) -> list[AlertRow]:
        """The run's alerts, oldest first ([] for none, or for a run that does not exist)."""
        stmt = (
            select(alerts.c.title, alerts.c.text, alerts.c.level, alerts.c.created_at)
            .select_from(alerts.join(RUN_JOIN))
            .where(*run_filter(entity, project, run_id))
            .order_by(alerts.c.created_at, alerts.c.id)
        )
        with self._read() as conn:
            if self._read_only is not None and not inspect(conn).has_table(alerts.name):
                return []  # a store written before alerts were kept, opened read-only: none
            return [AlertRow(*row) for row in conn.execute(stmt)]

    def _read_lines(
        self, table: Table, entity: str, project: str, run_id: str, offset: int, limit: int | None
    ) -> list[str]:
        stmt = (
            select(table.c.text)
            .select_from(table.join(RUN_JOIN))
            .where(*run_filter(entity, project, run_id), table.c.line >= offset)
            .order_by(table.c.line)
            .limit(limit)
        )
        with self._read() as conn:
            return list(conn.scalars(stmt))


def _archived_rows(
    conn: Connection, entity: str, project: str, run_id: str, min_step: int | None, max_step: int | None
) -> list[dict[str, Any]] | None:
    """A compacted run's rows in line order, within the step range; None for a run kept as rows."""
    found = run_lines(conn, entity, project, run_id)
    if found is None or archive_record(conn, found[0]) is None:
        return None
    _lines, steps, rows = merged_lines(conn, found[0], _EVERY_LINE)
    if min_step is None and max_step is None:
        return rows
    low = -(1 << 63) if min_step is None else min_step
    high = 1 << 63 if max_step is None else max_step
    return [row for step, row in zip(steps, rows, strict=True) if low <= step <= high]


def _gaps(archived: list[tuple[int, int]], lines: list[int]) -> list[tuple[int, int]]:
    """The gaps between the lines held (archived ranges, and the table's lines), from line 0 on."""
    held = sorted(archived + [(line, line + 1) for line in lines])
    gaps, at = [], 0
    for start, stop in held:
        if start > at:
            gaps.append((at, start))
        at = max(at, stop)
    return gaps
