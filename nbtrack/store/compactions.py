"""The store's side of compacting a run's history (server/compaction.py writes the parquet file):
which runs may be compacted, one compaction of a run at a time, and the commit.

A claim (compaction_claims) is taken by a conditional insert, or by a conditional update of a
claim older than the lease: several processes compacting at once (replicas, two operators) each
get other runs. The commit is one transaction that first locks the run's row (as every writer of
its history does, writes.py), then checks that nothing changed since the compaction began (state,
updated_at, which every write of the run moves, line count, history row count, archive) and that
the claim is still the committer's, and only then records the archive and deletes the rows. A
compaction that finds a change commits nothing: the rows stay the truth.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import func, select

from nbtrack import jsonutil
from nbtrack.store.archive import ArchiveRecord, archive_record
from nbtrack.store.engine import Database
from nbtrack.store.queries import RUN_JOIN
from nbtrack.store.schema import (
    compaction_claims,
    entities,
    history,
    history_archives,
    history_rollup,
    projects,
    runs,
)

__all__ = ["COMPACTABLE_STATES", "CompactionCandidate", "Compactions"]

# A run is compacted once it has ended; a resumed one comes back as running and is left alone.
COMPACTABLE_STATES = ("finished", "failed", "crashed")


@dataclass(frozen=True, slots=True)
class CompactionCandidate:
    """A run as it was when its compaction began (what the commit checks is unchanged)."""

    pk: int
    entity: str
    project: str
    run_id: str
    state: str
    updated_at: float
    line_count: int
    table_rows: int  # its lines in the history table
    archive: ArchiveRecord | None

    @property
    def path(self) -> str:
        return f"{self.entity}/{self.project}/{self.run_id}"


class Compactions(Database):
    """Store's compaction methods: each one transaction."""

    def compaction_candidates(self, ended_before: float) -> list[CompactionCandidate]:
        """Runs that ended (COMPACTABLE_STATES) and were last written before ended_before, with
        lines in the history table (never compacted, or resumed and written since), oldest first."""
        has_rows = select(history.c.line).where(history.c.run_pk == runs.c.pk).exists()
        stmt = (
            select(runs.c.pk)
            .where(runs.c.state.in_(COMPACTABLE_STATES), runs.c.updated_at < ended_before, has_rows)
            .order_by(runs.c.updated_at, runs.c.pk)
        )
        with self._read() as conn:
            pks = list(conn.scalars(stmt))
        found = []
        for pk in pks:
            candidate = self.compaction_candidate(pk)
            if candidate is not None:
                found.append(candidate)
        return found

    def compaction_candidate(self, pk: int) -> CompactionCandidate | None:
        """The run of pk as it is now (None if it is gone)."""
        stmt = (
            select(
                entities.c.name,
                projects.c.name,
                runs.c.run_id,
                runs.c.state,
                runs.c.updated_at,
                runs.c.history_line_count,
            )
            .select_from(RUN_JOIN)
            .where(runs.c.pk == pk)
        )
        with self._read() as conn:
            found = conn.execute(stmt).first()
            if found is None:
                return None
            rows = conn.scalar(select(func.count()).select_from(history).where(history.c.run_pk == pk)) or 0
            return CompactionCandidate(pk, *found, int(rows), archive_record(conn, pk))

    def rollup_count(self, pk: int) -> int:
        """The lines the run's rollup covers (the counts of its "_step" rows)."""
        rollup = history_rollup.c
        stmt = select(func.coalesce(func.sum(rollup.count), 0)).where(
            rollup.run_pk == pk, rollup.key == "_step"
        )
        with self._read() as conn:
            return int(conn.scalar(stmt) or 0)

    def claim_compaction(self, pk: int, owner: str, lease: float) -> bool:
        """Take the run's compaction claim: True if now owner's (it had none, or one older than lease)."""
        now = time.time()
        claims = compaction_claims.c
        with self._write() as conn:
            inserted = conn.execute(
                self._upserts.insert(compaction_claims)
                .values(run_pk=pk, owner=owner, claimed_at=now)
                .on_conflict_do_nothing(index_elements=[claims.run_pk])
                .returning(claims.run_pk)  # a row back if inserted (psycopg's rowcount is -1 here)
            ).first()
            if inserted is not None:
                return True
            taken = conn.execute(
                compaction_claims.update()
                .where(claims.run_pk == pk, claims.claimed_at < now - lease)
                .values(owner=owner, claimed_at=now)
                .returning(claims.run_pk)
            ).first()
            return taken is not None

    def release_compaction(self, pk: int, owner: str) -> None:
        """Give the claim up (if it is still owner's)."""
        claims = compaction_claims.c
        with self._write() as conn:
            conn.execute(compaction_claims.delete().where(claims.run_pk == pk, claims.owner == owner))

    def commit_compaction(self, seen: CompactionCandidate, owner: str, record: ArchiveRecord) -> str | None:
        """Record the archive and delete the run's history rows, in one transaction, if nothing
        changed since seen and owner still holds the claim; else why not (nothing is changed)."""
        claims = compaction_claims.c
        with self._write() as conn:
            now = conn.execute(
                select(runs.c.state, runs.c.updated_at, runs.c.history_line_count)
                .where(runs.c.pk == seen.pk)
                .with_for_update()
            ).first()
            if now is None:
                return "the run was deleted meanwhile"
            if (now.state, now.updated_at, now.history_line_count) != (
                seen.state,
                seen.updated_at,
                seen.line_count,
            ):
                return "the run was written meanwhile (resumed, or lines sent again)"
            holder = conn.scalar(select(claims.owner).where(claims.run_pk == seen.pk).with_for_update())
            if holder != owner:
                return "another compaction took the run over (this one outlived its lease)"
            if archive_record(conn, seen.pk) != seen.archive:
                return "the run was compacted by another compaction meanwhile"
            rows = conn.scalar(select(func.count()).select_from(history).where(history.c.run_pk == seen.pk))
            if rows != seen.table_rows:
                return "the run's history rows changed meanwhile"
            rollup = history_rollup.c
            covered = conn.scalar(
                select(func.coalesce(func.sum(rollup.count), 0)).where(
                    rollup.run_pk == seen.pk, rollup.key == "_step"
                )
            )
            if covered != record.rows:
                return f"its chart rollup covers {covered} of its {record.rows} lines (an older run)"
            conn.execute(history.delete().where(history.c.run_pk == seen.pk))
            conn.execute(history_archives.delete().where(history_archives.c.run_pk == seen.pk))
            conn.execute(
                history_archives.insert().values(
                    run_pk=seen.pk,
                    key=record.key,
                    line_end=record.line_end,
                    rows=record.rows,
                    gaps=jsonutil.dumps_str([list(gap) for gap in record.gaps]),
                    sha256=record.sha256,
                    size=record.size,
                    created_at=time.time(),
                )
            )
            conn.execute(compaction_claims.delete().where(claims.run_pk == seen.pk))
        return None
