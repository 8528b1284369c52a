"""The store's half of artifact garbage collection (`nbtrack server gc`, server/artifact_gc.py):
which blobs and PENDING versions are no longer needed, and removing them safely.

Mark, then sweep. The mark reads without locks: per entity, the recorded blobs that no committed
version's manifest lists and that were last claimed (recorded, or answered "stored" to a new
version by createArtifactFiles: store/artifacts.py `claim_blobs`) before the cutoff, and the
PENDING versions created before it. The sweep then takes the entity's row lock (PostgreSQL; on
SQLite the writer transaction holds the whole database) and, inside that one transaction,
re-checks every candidate against the state of now: a version committed since the mark that
lists a blob keeps it, a blob claimed since is kept, a pending version committed since is kept;
only then are the rows deleted and the objects removed (by the caller's `remove`, still under the
lock), and the transaction commits.

Why that is safe against a concurrent upload and commit:
- commitArtifact checks, under the same lock, that every blob its manifest lists is recorded:
  it runs wholly before the sweep's transaction (which then sees its manifest and keeps the
  blobs) or wholly after (and, finding a blob gone, refuses to commit rather than commit a
  version missing a file). A version whose blobs were all claimed within the grace age (the
  ones it relies on without uploading them) never meets the second case.
- recording an uploaded blob takes the lock and checks that its object is still there, so a
  blob's record never outlives its object (artifact_files.py).
- two gc processes: the second's sweep of an entity waits for the first's and re-checks, finding
  the rows gone: nothing is counted or removed twice.
If gc dies after removing objects and before its commit, the rows survive without their objects;
they are unreferenced and old, and the next gc finds their objects missing and drops them
(`missing` in the report) so that no new version is told a lost blob is stored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select

from nbtrack.artifacts.manifest import parse_manifest
from nbtrack.store.artifacts import lock_entity, stored_blobs
from nbtrack.store.engine import Database
from nbtrack.store.schema import (
    artifact_aliases,
    artifact_blobs,
    artifact_collections,
    artifact_uses,
    artifact_versions,
    entities,
    projects,
)

__all__ = ["ArtifactSweeps", "EntityMarks", "Swept", "manifest_blobs"]


@dataclass(frozen=True, slots=True)
class EntityMarks:
    """What the mark found of one entity's artifacts."""

    entity: str
    entity_id: int
    blobs: dict[str, int]  # hex MD5 -> size: unreferenced, last claimed before the cutoff
    pending: list[int]  # ids of PENDING versions created before the cutoff
    recorded: frozenset[str]  # every recorded blob (an object without one is an orphan)


@dataclass(slots=True)
class Swept:
    """What a sweep removed (or, dry, would remove) of one entity."""

    blobs: dict[str, int] = field(default_factory=dict)  # hex MD5 -> size
    pending: list[int] = field(default_factory=list)


Remove = Callable[[list[int], list[str]], None]  # (pending version ids, blob MD5s): their objects


def manifest_blobs(manifest: str) -> set[str]:
    """The hex MD5s of the stored files a W&B manifest lists (references excluded;
    artifacts/manifest.py parses it). gc must not free a blob for a manifest it misread, so a
    manifest that is not JSON, or has no contents, raises ValueError instead."""
    return {md5 for entry in parse_manifest(manifest).stored() if (md5 := entry.md5_hex)}


class ArtifactSweeps(Database):
    """Store's methods for `nbtrack server gc`."""

    def artifact_gc_marks(self, cutoff: float) -> list[EntityMarks]:
        """The candidates of every entity that has artifact blobs or versions."""
        with self._read() as conn:
            ids = set(conn.scalars(select(artifact_blobs.c.entity_id).distinct()))
            ids.update(
                conn.scalars(
                    select(projects.c.entity_id).distinct().select_from(artifact_collections.join(projects))
                )
            )
            marks = []
            for entity_id in sorted(ids):
                name = conn.scalar(select(entities.c.name).where(entities.c.id == entity_id))
                assert name is not None  # rows point at existing entities
                referenced = _referenced(conn, entity_id)
                recorded = {
                    md5: (size, claimed)
                    for md5, size, claimed in conn.execute(
                        select(
                            artifact_blobs.c.md5, artifact_blobs.c.size, artifact_blobs.c.created_at
                        ).where(artifact_blobs.c.entity_id == entity_id)
                    )
                }
                blobs = {
                    md5: size
                    for md5, (size, claimed) in recorded.items()
                    if md5 not in referenced and claimed < cutoff
                }
                marks.append(
                    EntityMarks(
                        name, entity_id, blobs, _stale_pending(conn, entity_id, cutoff), frozenset(recorded)
                    )
                )
        return marks

    def sweep_artifacts(self, marks: EntityMarks, cutoff: float, remove: Remove | None) -> Swept:
        """Delete, under the entity's lock, what of marks is still unneeded, and call remove (None:
        a dry run, which changes nothing and reports the same)."""
        with self._read() if remove is None else self._write() as conn:
            if remove is not None:
                lock_entity(conn, marks.entity_id)
            stale = set(_stale_pending(conn, marks.entity_id, cutoff))
            swept = Swept(pending=[version for version in marks.pending if version in stale])
            referenced = _referenced(conn, marks.entity_id)
            claimed: dict[str, float] = {}
            for chunk in _chunks(sorted(marks.blobs)):
                for md5, at in conn.execute(
                    select(artifact_blobs.c.md5, artifact_blobs.c.created_at).where(
                        artifact_blobs.c.entity_id == marks.entity_id, artifact_blobs.c.md5.in_(chunk)
                    )
                ):
                    claimed[md5] = at
            swept.blobs = {
                md5: size
                for md5, size in marks.blobs.items()
                if md5 in claimed and claimed[md5] < cutoff and md5 not in referenced
            }
            if remove is None:
                return swept
            for chunk in _chunks(swept.pending):
                conn.execute(artifact_aliases.delete().where(artifact_aliases.c.version_id.in_(chunk)))
                conn.execute(artifact_uses.delete().where(artifact_uses.c.version_id.in_(chunk)))
                conn.execute(artifact_versions.delete().where(artifact_versions.c.id.in_(chunk)))
            for chunk in _chunks(sorted(swept.blobs)):
                conn.execute(
                    artifact_blobs.delete().where(
                        artifact_blobs.c.entity_id == marks.entity_id, artifact_blobs.c.md5.in_(chunk)
                    )
                )
            remove(swept.pending, sorted(swept.blobs))
            return swept

    def remove_unrecorded(
        self, entity: str, md5_hexes: Iterable[str], remove: Callable[[list[str]], list[str]]
    ) -> list[str]:
        """Call remove, under the entity's lock, with those of md5_hexes that have no record (the
        orphans: an upload's object written and never recorded, an entity's files left behind);
        what remove says it removed (it re-checks each object's age: an upload may have just
        written it again)."""
        wanted = sorted(set(md5_hexes))
        with self._write() as conn:
            entity_id = conn.scalar(select(entities.c.id).where(entities.c.name == entity))
            recorded: set[str] = set()
            if entity_id is not None:
                lock_entity(conn, entity_id)
                recorded = stored_blobs(conn, entity_id, wanted)
            return remove([md5 for md5 in wanted if md5 not in recorded])

    def forget_missing_blobs(self, entity_id: int, md5_hexes: Iterable[str]) -> list[str]:
        """Drop the records of blobs whose objects are gone, unless a committed version lists
        them (those are damage to report, not to hide); the ones dropped."""
        wanted = sorted(set(md5_hexes))
        with self._write() as conn:
            lock_entity(conn, entity_id)
            referenced = _referenced(conn, entity_id)
            dropped = [md5 for md5 in wanted if md5 not in referenced]
            for chunk in _chunks(dropped):
                conn.execute(
                    artifact_blobs.delete().where(
                        artifact_blobs.c.entity_id == entity_id, artifact_blobs.c.md5.in_(chunk)
                    )
                )
        return dropped


def _referenced(conn: Connection, entity_id: int) -> set[str]:
    """Every blob a committed version of the entity lists."""
    found: set[str] = set()
    manifests = conn.scalars(
        select(artifact_versions.c.manifest)
        .select_from(artifact_versions.join(artifact_collections).join(projects))
        .where(projects.c.entity_id == entity_id, artifact_versions.c.state == "COMMITTED")
    )
    for manifest in manifests:
        if manifest is not None:
            found |= manifest_blobs(manifest)
    return found


def _stale_pending(conn: Connection, entity_id: int, cutoff: float) -> list[int]:
    return list(
        conn.scalars(
            select(artifact_versions.c.id)
            .select_from(artifact_versions.join(artifact_collections).join(projects))
            .where(
                projects.c.entity_id == entity_id,
                artifact_versions.c.state == "PENDING",
                artifact_versions.c.created_at < cutoff,
            )
            .order_by(artifact_versions.c.id)
        )
    )


def _chunks(items: list[Any]) -> Iterator[list[Any]]:
    for start in range(0, len(items), 500):  # bounded IN lists
        yield items[start : start + 500]
