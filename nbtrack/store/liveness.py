"""Whether a `running` run is still alive: a run's writer says so at least every RUN_ALIVE_SECONDS
(its rows, or a heartbeat when it has none), and a run nobody heard from for longer is crashed.

A process killed with its internal process (the OOM killer or a job
scheduler ending the whole cgroup, `kill -9` of both, a lost machine; a wandb client
killed with its wandb-core) never sends an exit record, so the run would read `running` forever.
`mark_silent_runs_crashed` ends such runs the way W&B does: state `crashed` with no exit code,
which is what tells them from a run that ended crashed (its exit record gives one). It is a
single conditional UPDATE, so server replicas sharing a database may all run it: a run is marked
once, and a write that revives it in between wins (PostgreSQL re-checks the condition on the
newest row version; SQLite has one writer).

A run marked crashed that is heard from again (its writer was only cut off: a network
partition, a store locked for long) goes back to `running`: `heard_from` is part of every write
a run's own writer makes (its lines, a file-stream post, a heartbeat), never of an edit made by
someone else (a rename, tags from the API), which must not bring a dead run back.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import and_, case, select

from nbtrack.store.engine import Database
from nbtrack.store.queries import RUN_JOIN, find_run_pk
from nbtrack.store.schema import entities, projects, runs

__all__ = ["Liveness", "SilentRun", "heard_from"]

SilentRun = tuple[str, str, str]  # (entity, project, run_id)


def heard_from(now: float) -> dict[str, Any]:
    """The run fields a write by the run's own writer sets: when it was last heard from, and
    `running` again if it had been marked crashed for silence."""
    silenced = and_(runs.c.state == "crashed", runs.c.exit_code.is_(None))
    return {"updated_at": now, "state": case((silenced, "running"), else_=runs.c.state)}


class Liveness(Database):
    """The store's heartbeat and the marking of silent runs."""

    def touch_run(self, entity: str, project: str, run_id: str) -> bool:
        """The run's writer is alive (it had nothing else to write); False if the run is not stored."""
        now = time.time()
        with self._write() as conn:
            pk = find_run_pk(conn, entity, project, run_id)
            if pk is None:
                return False
            conn.execute(runs.update().where(runs.c.pk == pk).values(heard_from(now)))
        return True

    def mark_silent_runs_crashed(self, silent_seconds: float) -> list[SilentRun]:
        """Mark crashed every `running` run not heard from for silent_seconds; the runs marked."""
        cutoff = time.time() - silent_seconds
        silent = and_(runs.c.state == "running", runs.c.updated_at < cutoff)
        with self._write() as conn:
            marked = (
                conn.execute(
                    runs.update().where(silent).values(state="crashed", exit_code=None).returning(runs.c.pk)
                )
                .scalars()
                .all()
            )
            if not marked:
                return []
            named = conn.execute(
                select(entities.c.name, projects.c.name, runs.c.run_id)
                .select_from(RUN_JOIN)
                .where(runs.c.pk.in_(marked))
            ).all()
        return [(entity, project, run_id) for entity, project, run_id in named]
