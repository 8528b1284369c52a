"""The statements the store's reads and writes share: which run a name means, the selects of
runs, projects and a run's history, evenly spaced samples of that history in SQL, and max() in
words both dialects speak.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Connection, Select, case, func, literal, select

from nbtrack.store.schema import entities, history, projects, runs

__all__ = [
    "RUN_JOIN",
    "find_run_pk",
    "greatest",
    "run_filter",
    "run_lines",
    "sampled",
    "select_history",
    "select_projects",
    "select_runs",
]

RUN_JOIN = runs.join(projects).join(entities)


def run_filter(entity: str | None, project: str, run_id: str | None = None) -> list[ColumnElement[bool]]:
    where = [projects.c.name == project]
    if entity is not None:
        where.append(entities.c.name == entity)
    if run_id is not None:
        where.append(runs.c.run_id == run_id)
    return where


def find_run_pk(conn: Connection, entity: str | None, project: str, run_id: str) -> int | None:
    """The primary key of the run the names mean, or None if it is not stored."""
    pk = conn.scalar(select(runs.c.pk).select_from(RUN_JOIN).where(*run_filter(entity, project, run_id)))
    return None if pk is None else int(pk)


def select_runs(entity: str | None, project: str, run_id: str | None = None) -> Select[Any]:
    return (
        select(entities.c.name.label("entity"), projects.c.name.label("project"), runs)
        .select_from(RUN_JOIN)
        .where(*run_filter(entity, project, run_id))
    )


def select_projects(entity: str | None) -> Select[Any]:
    last_activity = func.coalesce(func.max(runs.c.updated_at), projects.c.created_at).label("last_activity")
    stmt = (
        select(entities.c.name, projects.c.name, projects.c.created_at, func.count(runs.c.pk), last_activity)
        .select_from(projects.join(entities).outerjoin(runs))
        .group_by(projects.c.id, entities.c.name, projects.c.name, projects.c.created_at)
        .order_by(last_activity.desc(), entities.c.name, projects.c.name)
    )
    return stmt if entity is None else stmt.where(entities.c.name == entity)


def select_history(
    entity: str, project: str, run_id: str, min_step: int | None, max_step: int | None
) -> Select[Any]:
    """The run's history data in line order, within the step range given."""
    # The run's key as a subquery rather than a join: both databases then read the run's lines
    # straight off the primary key's index, already in line order.
    run_pk = select(runs.c.pk).select_from(RUN_JOIN).where(*run_filter(entity, project, run_id))
    stmt = select(history.c.data).where(history.c.run_pk == run_pk.scalar_subquery()).order_by(history.c.line)
    if min_step is not None:
        stmt = stmt.where(history.c.step >= min_step)
    if max_step is not None:
        stmt = stmt.where(history.c.step <= max_step)
    return stmt


def run_lines(conn: Connection, entity: str, project: str, run_id: str) -> tuple[int, int] | None:
    """(pk, history line count) of the run, or None if it does not exist."""
    stmt = (
        select(runs.c.pk, runs.c.history_line_count)
        .select_from(RUN_JOIN)
        .where(*run_filter(entity, project, run_id))
    )
    found = conn.execute(stmt).first()
    return None if found is None else (found.pk, found.history_line_count)


def greatest(column: Any, value: float) -> ColumnElement[Any]:
    """max(column, value) in SQL both dialects speak (SQLite's max() is PostgreSQL's GREATEST)."""
    return case((column.is_(None), value), (column < value, value), else_=column)


def sampled(conn: Connection, stmt: Select[Any], samples: int) -> Select[Any]:
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
