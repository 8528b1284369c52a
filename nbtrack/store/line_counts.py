"""How many lines a run's output or events stream has, counted in SQL (W&B's logLineCount and
eventsLineCount): an index-only count of the run's lines, not a read of every line's text.

    from nbtrack.store.line_counts import line_count
    line_count(store, "output", entity, project, run_id)
"""

from __future__ import annotations

from typing import Literal

from sqlalchemy import func, select

from nbtrack.store.queries import RUN_JOIN, run_filter
from nbtrack.store.schema import events, output, runs
from nbtrack.store.store import Store

__all__ = ["last_line", "line_count"]

_STREAMS = {"output": output, "events": events}


def line_count(
    store: Store, stream: Literal["output", "events"], entity: str, project: str, run_id: str
) -> int:
    """The lines of the run's stream (0 for a run without any, or no such run)."""
    table = _STREAMS[stream]
    run_pk = select(runs.c.pk).select_from(RUN_JOIN).where(*run_filter(entity, project, run_id))
    stmt = select(func.count()).select_from(table).where(table.c.run_pk == run_pk.scalar_subquery())
    with store._read() as conn:
        return int(conn.scalar(stmt) or 0)


def last_line(
    store: Store, stream: Literal["output", "events"], entity: str, project: str, run_id: str
) -> str | None:
    """The text of the run's last line of the stream (None without any): one index lookup."""
    table = _STREAMS[stream]
    run_pk = select(runs.c.pk).select_from(RUN_JOIN).where(*run_filter(entity, project, run_id))
    stmt = (
        select(table.c.text).where(table.c.run_pk == run_pk.scalar_subquery()).order_by(table.c.line.desc())
    )
    with store._read() as conn:
        found: str | None = conn.scalar(stmt.limit(1))
    return found
