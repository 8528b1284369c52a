"""Artifacts in the store: versioned sets of files of a project, with their aliases and lineage.

A version is created PENDING (its files still being uploaded) and numbered when it is committed:
v0, v1, ... in its collection, the number taken from the collection's next_index under the
collection row's lock (FOR UPDATE on PostgreSQL; SQLite's writer transaction holds the whole
database), so two server replicas committing at once get two numbers, never one twice. Committing
stores the manifest (then never changed) and moves `latest` and the aliases asked for to the
version: an alias names one version of its collection at a time.

Lineage: the run that logged a version (artifact_versions.run_pk, kept as None once that run is
deleted) and the runs that used it (artifact_uses). The files themselves are content-addressed
blobs: `record_blob` notes one whose bytes were received and checked, `claim_blobs` says which of
an entity's digests are stored (what a new version need not upload again) and marks them claimed
now, so that `nbtrack server gc` leaves them to the version about to reference them (its grace
age, store/artifact_gc.py). Committing checks, under the entity's lock that gc takes too, that
every blob the manifest lists is still recorded.

Deleting a version removes its row, aliases and uses: its number is never given again (next_index
only grows), and the blobs only it referenced are freed by the next gc.

This module writes; store/artifact_reads.py reads, and store/artifact_rows.py holds the rows both
hand out. Used by the tracking server's W&B dialect (server/artifact_*.py); the functions speak of names
(entity, project, collection, run id), not of W&B's shapes, so nbtrack's own SDK can use them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, select

from nbtrack import jsonutil
from nbtrack.store.artifact_reads import ArtifactReads
from nbtrack.store.artifact_rows import (
    LATEST,
    ArtifactRow,
    ArtifactsError,
    CollectionRow,
    collection_id_of,
    parse_version_ref,
    version_row,
)
from nbtrack.store.queries import find_run_pk
from nbtrack.store.schema import (
    artifact_aliases,
    artifact_blobs,
    artifact_collections,
    artifact_types,
    artifact_uses,
    artifact_versions,
    entities,
    projects,
)

__all__ = [
    "LATEST",
    "ArtifactRow",
    "ArtifactVersions",
    "ArtifactsError",
    "CollectionRow",
    "parse_version_ref",
]


class ArtifactVersions(ArtifactReads):
    """Store's methods for artifacts: versions created, committed, aliased and used (reads:
    ArtifactReads)."""

    def create_artifact_version(
        self,
        entity: str,
        project: str,
        type_name: str,
        collection: str,
        digest: str,
        *,
        run_id: str | None = None,
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
        aliases: Sequence[str] = (),
        reuse_same_digest: bool = True,
    ) -> ArtifactRow:
        """A new PENDING version of the collection (created, with its type, if missing); with
        reuse_same_digest, the collection's committed version of the same digest if it has one
        (the same files again make no new version). ArtifactsError if the collection exists with
        another type, or run_id names no run of the project."""
        now = time.time()
        with self._write() as conn:
            entity_id = self._upserts.id_of(conn, entities, {"name": entity}, {})
            project_id = self._upserts.id_of(
                conn, projects, {"entity_id": entity_id, "name": project}, {"created_at": now}
            )
            type_id = self._upserts.id_of(
                conn, artifact_types, {"project_id": project_id, "name": type_name}, {}
            )
            collection_id = self._upserts.id_of(
                conn,
                artifact_collections,
                {"project_id": project_id, "name": collection},
                {"type_id": type_id, "next_index": 0, "created_at": now},
            )
            stored_type = conn.scalar(
                select(artifact_types.c.name)
                .select_from(artifact_collections.join(artifact_types))
                .where(artifact_collections.c.id == collection_id)
            )
            if stored_type != type_name:
                raise ArtifactsError(
                    f"artifact {collection!r} of {entity}/{project} is of type {stored_type!r}, "
                    f"not {type_name!r}"
                )
            if reuse_same_digest:
                same = conn.scalar(
                    select(artifact_versions.c.id).where(
                        artifact_versions.c.collection_id == collection_id,
                        artifact_versions.c.digest == digest,
                        artifact_versions.c.state == "COMMITTED",
                    )
                )
                if same is not None:
                    return version_row(conn, int(same))
            run_pk = None
            if run_id is not None:
                run_pk = find_run_pk(conn, entity, project, run_id)
                if run_pk is None:
                    raise ArtifactsError(f"run {entity}/{project}/{run_id} does not exist")
            inserted = conn.execute(
                artifact_versions.insert().values(
                    collection_id=collection_id,
                    state="PENDING",
                    digest=digest,
                    description=description,
                    metadata=jsonutil.dumps_str(metadata or {}),
                    aliases=jsonutil.dumps_str(list(dict.fromkeys(aliases))),
                    size=0,
                    file_count=0,
                    run_pk=run_pk,
                    created_at=now,
                    updated_at=now,
                )
            )
            key = inserted.inserted_primary_key
            assert key is not None  # an insert's key
            version_id = key[0]
            return version_row(conn, int(version_id))

    def commit_artifact_version(
        self, version_id: int, manifest: str, size: int, file_count: int, blobs: Collection[str] = ()
    ) -> ArtifactRow:
        """Number the PENDING version (the collection's next index), keep its manifest, and move
        `latest` and the aliases asked for at its creation to it. A version committed already is
        returned as it is (a retried commit changes nothing). blobs: the MD5s (hex) the manifest
        lists, checked recorded under the entity's lock (gc may have freed one): ArtifactsError
        naming how many are missing."""
        now = time.time()
        with self._write() as conn:
            found = conn.execute(
                select(
                    artifact_versions.c.collection_id, artifact_versions.c.state, artifact_versions.c.aliases
                )
                .where(artifact_versions.c.id == version_id)
                .with_for_update()
            ).first()
            if found is None:
                raise ArtifactsError(f"artifact version {version_id} does not exist")
            if found.state == "COMMITTED":
                return version_row(conn, version_id)
            if blobs:
                entity_id = lock_entity_of_collection(conn, found.collection_id)
                missing = set(blobs) - stored_blobs(conn, entity_id, blobs)
                if missing:
                    raise ArtifactsError(
                        f"{len(missing)} file(s) of the artifact are not stored (e.g. {sorted(missing)[0]}): "
                        "upload them again before committing"
                    )
            # The collection's row lock orders concurrent commits (replicas): one number each.
            index = conn.execute(
                select(artifact_collections.c.next_index)
                .where(artifact_collections.c.id == found.collection_id)
                .with_for_update()
            ).scalar_one()
            conn.execute(
                artifact_collections.update()
                .where(artifact_collections.c.id == found.collection_id)
                .values(next_index=index + 1)
            )
            conn.execute(
                artifact_versions.update()
                .where(artifact_versions.c.id == version_id)
                .values(
                    state="COMMITTED",
                    version_index=index,
                    manifest=manifest,
                    size=size,
                    file_count=file_count,
                    updated_at=now,
                )
            )
            for alias in [LATEST, *jsonutil.loads(found.aliases)]:
                self._set_alias(conn, found.collection_id, alias, version_id)
            return version_row(conn, version_id)

    def set_artifact_alias(self, version_id: int, alias: str) -> None:
        """Point alias (of the version's collection) at the committed version, moving it if it
        named another one."""
        with self._write() as conn:
            found = conn.execute(
                select(artifact_versions.c.collection_id, artifact_versions.c.state).where(
                    artifact_versions.c.id == version_id
                )
            ).first()
            if found is None or found.state != "COMMITTED":
                raise ArtifactsError(f"artifact version {version_id} does not exist or is not committed")
            self._set_alias(conn, found.collection_id, alias, version_id)

    def remove_artifact_alias(self, entity: str, project: str, collection: str, alias: str) -> bool:
        """Remove the alias; False if the collection had none so named."""
        with self._write() as conn:
            collection_id = collection_id_of(conn, entity, project, collection)
            if collection_id is None:
                return False
            done = conn.execute(
                artifact_aliases.delete().where(
                    artifact_aliases.c.collection_id == collection_id, artifact_aliases.c.alias == alias
                )
            )
            return bool(done.rowcount)

    def use_artifact_version(self, version_id: int, entity: str, project: str, run_id: str) -> None:
        """Record that the run used the version (once, however often it is said)."""
        with self._write() as conn:
            run_pk = find_run_pk(conn, entity, project, run_id)
            if run_pk is None:
                raise ArtifactsError(f"run {entity}/{project}/{run_id} does not exist")
            if (
                conn.scalar(select(artifact_versions.c.id).where(artifact_versions.c.id == version_id))
                is None
            ):
                raise ArtifactsError(f"artifact version {version_id} does not exist")
            conn.execute(
                self._upserts.insert(artifact_uses)
                .values(version_id=version_id, run_pk=run_pk, used_at=time.time())
                .on_conflict_do_nothing(index_elements=["version_id", "run_pk"])
            )

    def record_blob(
        self, entity: str, md5_hex: str, size: int, still_stored: Callable[[], bool] = lambda: True
    ) -> bool:
        """Note that the entity's blob of this MD5 is stored (its bytes checked against it), if
        still_stored() says so under the entity's lock: gc removes objects under that lock, so a
        blob written just before gc removed it is not recorded (False: write it again)."""
        with self._write() as conn:
            entity_id = self._upserts.id_of(conn, entities, {"name": entity}, {})
            lock_entity(conn, entity_id)
            if not still_stored():
                return False
            now = time.time()
            conn.execute(
                self._upserts.insert(artifact_blobs)
                .values(entity_id=entity_id, md5=md5_hex, size=size, created_at=now)
                .on_conflict_do_update(index_elements=["entity_id", "md5"], set_={"created_at": now})
            )
            return True

    def claim_blobs(self, entity: str, md5_hexes: Iterable[str]) -> set[str]:
        """Those of the MD5s (hex) whose blobs the entity has stored, each marked claimed now (its
        created_at: gc keeps blobs claimed within its grace age for the pending version that
        relies on them without uploading them)."""
        wanted = sorted(set(md5_hexes))
        found: set[str] = set()
        with self._write() as conn:
            entity_id = conn.scalar(select(entities.c.id).where(entities.c.name == entity))
            if entity_id is None:
                return found
            lock_entity(conn, entity_id)
            found = stored_blobs(conn, entity_id, wanted)
            for start in range(0, len(wanted), 500):  # bounded IN lists
                conn.execute(
                    artifact_blobs.update()
                    .where(
                        artifact_blobs.c.entity_id == entity_id,
                        artifact_blobs.c.md5.in_(wanted[start : start + 500]),
                    )
                    .values(created_at=time.time())
                )
        return found

    def update_artifact_version(
        self, version_id: int, *, description: str | None, metadata: dict[str, Any] | None
    ) -> ArtifactRow:
        """Set the version's description and metadata (None: left as they are)."""
        values: dict[str, Any] = {"updated_at": time.time()}
        if description is not None:
            values["description"] = description
        if metadata is not None:
            values["metadata"] = jsonutil.dumps_str(metadata)
        with self._write() as conn:
            conn.execute(
                artifact_versions.update().where(artifact_versions.c.id == version_id).values(**values)
            )
            return version_row(conn, version_id)

    def delete_artifact_version(self, version_id: int, delete_aliases: bool = False) -> ArtifactRow:
        """Delete the version (committed or pending): its row, its aliases and its uses. Refused
        (ArtifactsError) while aliases name it, unless delete_aliases; `latest` removed so moves
        to the collection's newest version left. The row as it was is returned."""
        with self._write() as conn:
            row = version_row(conn, version_id)  # ArtifactsError if there is none
            found = conn.execute(
                select(artifact_versions.c.collection_id)
                .where(artifact_versions.c.id == version_id)
                .with_for_update()
            ).first()
            if found is None:
                raise ArtifactsError(f"artifact version {version_id} does not exist")
            names = sorted(
                conn.scalars(
                    select(artifact_aliases.c.alias).where(artifact_aliases.c.version_id == version_id)
                )
            )
            if names and not delete_aliases:
                raise ArtifactsError(
                    f"artifact {row.collection}:{row.version} has aliases ({', '.join(names)}): "
                    "delete it with delete_aliases=True, or move them first"
                )
            conn.execute(artifact_aliases.delete().where(artifact_aliases.c.version_id == version_id))
            conn.execute(artifact_uses.delete().where(artifact_uses.c.version_id == version_id))
            conn.execute(artifact_versions.delete().where(artifact_versions.c.id == version_id))
            if LATEST in names:
                newest = conn.scalar(
                    select(artifact_versions.c.id)
                    .where(
                        artifact_versions.c.collection_id == found.collection_id,
                        artifact_versions.c.state == "COMMITTED",
                    )
                    .order_by(artifact_versions.c.version_index.desc())
                    .limit(1)
                )
                if newest is not None:
                    self._set_alias(conn, found.collection_id, LATEST, int(newest))
            return row

    def _set_alias(self, conn: Connection, collection_id: int, alias: str, version_id: int) -> None:
        conn.execute(
            self._upserts.insert(artifact_aliases)
            .values(collection_id=collection_id, alias=alias, version_id=version_id)
            .on_conflict_do_update(index_elements=["collection_id", "alias"], set_={"version_id": version_id})
        )


def lock_entity(conn: Connection, entity_id: int) -> None:
    """Take the entity's row lock (PostgreSQL; SQLite's writer transaction holds the whole
    database): what orders blob records, commits and gc's removals of one entity."""
    conn.execute(select(entities.c.id).where(entities.c.id == entity_id).with_for_update())


def lock_entity_of_collection(conn: Connection, collection_id: int) -> int:
    entity_id = conn.scalar(
        select(projects.c.entity_id)
        .select_from(artifact_collections.join(projects))
        .where(artifact_collections.c.id == collection_id)
    )
    assert entity_id is not None  # a collection's project and entity exist
    lock_entity(conn, int(entity_id))
    return int(entity_id)


def stored_blobs(conn: Connection, entity_id: int, md5_hexes: Iterable[str]) -> set[str]:
    """Those of the MD5s (hex) recorded for the entity."""
    wanted = sorted(set(md5_hexes))
    found: set[str] = set()
    for start in range(0, len(wanted), 500):  # bounded IN lists
        found.update(
            conn.scalars(
                select(artifact_blobs.c.md5).where(
                    artifact_blobs.c.entity_id == entity_id,
                    artifact_blobs.c.md5.in_(wanted[start : start + 500]),
                )
            )
        )
    return found
