"""Deleting a run: every row that refers to it, in one transaction.

The rows of a run are found through the schema, not listed by hand: every table with a column
that refers to runs.pk (history, its rollup, output, events, alerts, and any table added later)
loses the run's rows, then the run's own row goes. Edits of a run's name, notes and tags need
nothing of their own: they are `Store.upsert_run` on a run that exists.

A run deleted while it is still running (a forced delete) leaves its name in deleted_runs, so
that its client, still sending, is refused by name (`was_deleted`) rather than bringing back a
run with half of its rows.
"""

from __future__ import annotations

import time

from sqlalchemy import Column, Table, select

from nbtrack.store.engine import Database
from nbtrack.store.queries import run_filter, select_runs
from nbtrack.store.schema import RunRow, decode_run, deleted_runs, entities, metadata, projects, runs

__all__ = ["RunEdits", "run_dependents"]


def run_dependents() -> list[tuple[Table, Column[int]]]:
    """Each table with a column referring to runs.pk, and that column (children before parents).
    A column whose key is ON DELETE SET NULL (the run that logged an artifact version) is not one:
    what outlives the run is kept, without it (_outliving)."""
    found = []
    for table in reversed(metadata.sorted_tables):
        for column in table.columns:
            if any(key.column is runs.c.pk and key.ondelete != "SET NULL" for key in column.foreign_keys):
                found.append((table, column))
    return found


def _outliving() -> list[Column[int]]:
    """The columns referring to runs.pk whose rows outlive the run (ON DELETE SET NULL)."""
    return [
        column
        for table in metadata.sorted_tables
        for column in table.columns
        if any(key.column is runs.c.pk and key.ondelete == "SET NULL" for key in column.foreign_keys)
    ]


class RunEdits(Database):
    """Store's run deletion and its marks."""

    def delete_run(self, entity: str, project: str, run_id: str, *, mark: bool = False) -> RunRow | None:
        """Delete the run and every row of it; the run as it was, or None if there was none.

        mark: keep the run's name in deleted_runs (a run deleted while running), so that
        `was_deleted` tells its writers it is gone.
        """
        with self._write() as conn:
            # FOR UPDATE: a PostgreSQL writer of this run waits for the delete, and then finds no run.
            found = conn.execute(select_runs(entity, project, run_id).with_for_update(of=runs)).first()
            if found is None:
                return None
            pk = found.pk
            for column in _outliving():
                conn.execute(column.table.update().where(column == pk).values({column.name: None}))
            for table, column in run_dependents():
                conn.execute(table.delete().where(column == pk))
            conn.execute(runs.delete().where(runs.c.pk == pk))
            if mark:
                conn.execute(
                    self._upserts.insert(deleted_runs)
                    .values(project_id=found.project_id, run_id=run_id, deleted_at=time.time())
                    .on_conflict_do_nothing(index_elements=[deleted_runs.c.project_id, deleted_runs.c.run_id])
                )
            return decode_run(found)

    def was_deleted(self, entity: str, project: str, run_id: str) -> bool:
        """True if the run was deleted while it was running."""
        stmt = (
            select(deleted_runs.c.run_id)
            .select_from(deleted_runs.join(projects).join(entities))
            .where(*run_filter(entity, project), deleted_runs.c.run_id == run_id)
        )
        with self._read() as conn:
            return conn.scalar(stmt) is not None
