"""Artifacts in the store: versioned sets of files of a project, with their aliases and lineage.

A version is created PENDING (its files still being uploaded) and numbered when it is committed:
v0, v1, ... in its collection, the number taken from the collection's next_index under the
collection row's lock (FOR UPDATE on PostgreSQL; SQLite's writer transaction holds the whole
database), so two server replicas committing at once get two numbers, never one twice. Committing
stores the manifest (then never changed) and moves `latest` and the aliases asked for to the
version: an alias names one version of its collection at a time.

Lineage: the run that logged a version (artifact_versions.run_pk, kept as None once that run is
deleted) and the runs that used it (artifact_uses). The files themselves are content-addressed
blobs: `record_blob` notes one whose bytes were received and checked, `known_blobs` says which of
an entity's digests are stored (what a new version need not upload again).

Used by the tracking server's W&B dialect (server/artifact_*.py); the functions speak of names
(entity, project, collection, run id), not of W&B's shapes, so nbtrack's own SDK can use them.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, Select, and_, func, select

from nbtrack import jsonutil
from nbtrack.errors import StoreError
from nbtrack.store.engine import Database
from nbtrack.store.queries import RUN_JOIN, find_run_pk
from nbtrack.store.schema import (
    RunRow,
    artifact_aliases,
    artifact_blobs,
    artifact_collections,
    artifact_types,
    artifact_uses,
    artifact_versions,
    decode_run,
    entities,
    projects,
    runs,
)

__all__ = [
    "LATEST",
    "ArtifactRow",
    "ArtifactVersions",
    "ArtifactsError",
    "CollectionRow",
    "parse_version_ref",
]

LATEST = "latest"
_VERSION = re.compile(r"v(\d{1,9})")


class ArtifactsError(StoreError):
    """A request the artifact tables refuse (a type clash, an unknown version): says which."""


@dataclass(frozen=True, slots=True)
class ArtifactRow:
    id: int
    entity: str
    project: str
    type_name: str
    collection: str
    version_index: int | None  # None while PENDING
    state: str  # PENDING or COMMITTED
    digest: str
    description: str | None
    metadata: dict[str, Any]
    manifest: str | None  # the manifest's JSON text, once committed
    size: int
    file_count: int
    run_id: str | None  # the run that logged it (None: none, or deleted since)
    created_at: float
    updated_at: float
    aliases: tuple[str, ...]  # of a committed version: its aliases now; of a pending one: asked for

    @property
    def version(self) -> str | None:
        return None if self.version_index is None else f"v{self.version_index}"


@dataclass(frozen=True, slots=True)
class CollectionRow:
    entity: str
    project: str
    name: str
    type_name: str
    created_at: float
    updated_at: float  # its newest version's, or created_at without one


def parse_version_ref(ref: str) -> tuple[int | None, str | None]:
    """(version_index, None) for "v3", (None, alias) for any other name ("latest", "best")."""
    matched = _VERSION.fullmatch(ref)
    return (int(matched.group(1)), None) if matched else (None, ref)


_COLUMNS = (
    artifact_versions,
    entities.c.name.label("entity_name"),
    projects.c.name.label("project_name"),
    artifact_types.c.name.label("type_name"),
    artifact_collections.c.name.label("collection_name"),
    runs.c.run_id.label("logged_by"),
)
_JOIN = (
    artifact_versions.join(artifact_collections)
    .join(artifact_types, artifact_collections.c.type_id == artifact_types.c.id)
    .join(projects, artifact_collections.c.project_id == projects.c.id)
    .join(entities, projects.c.entity_id == entities.c.id)
    .outerjoin(runs, artifact_versions.c.run_pk == runs.c.pk)
)


def _select() -> Select[Any]:
    return select(*_COLUMNS).select_from(_JOIN)


class ArtifactVersions(Database):
    """Store's methods for artifacts: versions created, committed, found, aliased and used."""

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
                    return self._row(conn, int(same))
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
            return self._row(conn, int(version_id))

    def commit_artifact_version(
        self, version_id: int, manifest: str, size: int, file_count: int
    ) -> ArtifactRow:
        """Number the PENDING version (the collection's next index), keep its manifest, and move
        `latest` and the aliases asked for at its creation to it. A version committed already is
        returned as it is (a retried commit changes nothing)."""
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
                return self._row(conn, version_id)
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
            return self._row(conn, version_id)

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
            collection_id = self._collection_id(conn, entity, project, collection)
            if collection_id is None:
                return False
            done = conn.execute(
                artifact_aliases.delete().where(
                    artifact_aliases.c.collection_id == collection_id, artifact_aliases.c.alias == alias
                )
            )
            return bool(done.rowcount)

    def get_artifact_version(self, version_id: int) -> ArtifactRow | None:
        with self._read() as conn:
            rows = conn.execute(_select().where(artifact_versions.c.id == version_id)).all()
            return self._decode(conn, rows)[0] if rows else None

    def find_artifact_version(
        self, entity: str, project: str, collection: str, ref: str
    ) -> ArtifactRow | None:
        """The committed version that ref ("v3", "latest", a user alias) names, or None."""
        index, alias = parse_version_ref(ref)
        with self._read() as conn:
            collection_id = self._collection_id(conn, entity, project, collection)
            if collection_id is None:
                return None
            if index is not None:
                found = conn.scalar(
                    select(artifact_versions.c.id).where(
                        artifact_versions.c.collection_id == collection_id,
                        artifact_versions.c.version_index == index,
                    )
                )
            else:
                found = conn.scalar(
                    select(artifact_aliases.c.version_id).where(
                        artifact_aliases.c.collection_id == collection_id, artifact_aliases.c.alias == alias
                    )
                )
            return None if found is None else self._row(conn, int(found))

    def artifact_collection_type(self, entity: str, project: str, collection: str) -> str | None:
        """The type of the project's collection so named, or None if it has none."""
        with self._read() as conn:
            return conn.scalar(
                select(artifact_types.c.name)
                .select_from(artifact_collections.join(artifact_types).join(projects).join(entities))
                .where(
                    entities.c.name == entity,
                    projects.c.name == project,
                    artifact_collections.c.name == collection,
                )
            )

    def list_artifact_collections(
        self, entity: str, project: str, type_name: str | None = None
    ) -> list[CollectionRow]:
        """The project's collections (of that type, if given), newest first."""
        newest = func.max(artifact_versions.c.updated_at)
        stmt = (
            select(artifact_collections, artifact_types.c.name.label("type_name"), newest.label("newest"))
            .select_from(
                artifact_collections.join(
                    artifact_types, artifact_collections.c.type_id == artifact_types.c.id
                )
                .join(projects, artifact_collections.c.project_id == projects.c.id)
                .join(entities, projects.c.entity_id == entities.c.id)
                .outerjoin(artifact_versions, artifact_versions.c.collection_id == artifact_collections.c.id)
            )
            .where(entities.c.name == entity, projects.c.name == project)
            .group_by(artifact_collections.c.id, artifact_types.c.name)
            .order_by(artifact_collections.c.created_at.desc(), artifact_collections.c.id.desc())
        )
        if type_name is not None:
            stmt = stmt.where(artifact_types.c.name == type_name)
        with self._read() as conn:
            return [
                CollectionRow(
                    entity, project, row.name, row.type_name, row.created_at, row.newest or row.created_at
                )
                for row in conn.execute(stmt)
            ]

    def list_artifact_types(self, entity: str, project: str) -> list[str]:
        """The names of the project's artifact types, in the order they were first used."""
        with self._read() as conn:
            return list(
                conn.scalars(
                    select(artifact_types.c.name)
                    .select_from(artifact_types.join(projects).join(entities))
                    .where(entities.c.name == entity, projects.c.name == project)
                    .order_by(artifact_types.c.id)
                )
            )

    def list_artifact_versions(self, entity: str, project: str, collection: str) -> list[ArtifactRow]:
        """The collection's committed versions, newest first."""
        with self._read() as conn:
            rows = conn.execute(
                _select()
                .where(
                    entities.c.name == entity,
                    projects.c.name == project,
                    artifact_collections.c.name == collection,
                    artifact_versions.c.state == "COMMITTED",
                )
                .order_by(artifact_versions.c.version_index.desc())
            ).all()
            return self._decode(conn, rows)

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

    def run_logged_artifacts(self, entity: str, project: str, run_id: str) -> list[ArtifactRow]:
        """The versions the run logged (committed ones), oldest first."""
        with self._read() as conn:
            run_pk = find_run_pk(conn, entity, project, run_id)
            rows = conn.execute(
                _select()
                .where(artifact_versions.c.run_pk == run_pk, artifact_versions.c.state == "COMMITTED")
                .order_by(artifact_versions.c.id)
            ).all()
            return self._decode(conn, rows)

    def run_used_artifacts(self, entity: str, project: str, run_id: str) -> list[ArtifactRow]:
        """The versions the run used, in the order it first used them."""
        with self._read() as conn:
            run_pk = find_run_pk(conn, entity, project, run_id)
            rows = conn.execute(
                _select()
                .join(artifact_uses, artifact_uses.c.version_id == artifact_versions.c.id)
                .where(artifact_uses.c.run_pk == run_pk)
                .order_by(artifact_uses.c.used_at, artifact_versions.c.id)
            ).all()
            return self._decode(conn, rows)

    def artifact_users(self, version_id: int) -> list[RunRow]:
        """The runs that used the version, in the order they first used it."""
        with self._read() as conn:
            rows = conn.execute(
                select(entities.c.name.label("entity"), projects.c.name.label("project"), runs)
                .select_from(RUN_JOIN.join(artifact_uses, artifact_uses.c.run_pk == runs.c.pk))
                .where(artifact_uses.c.version_id == version_id)
                .order_by(artifact_uses.c.used_at)
            ).all()
            return [decode_run(row) for row in rows]

    def record_blob(self, entity: str, md5_hex: str, size: int) -> None:
        """Note that the entity's blob of this MD5 is stored (its bytes checked against it)."""
        with self._write() as conn:
            entity_id = self._upserts.id_of(conn, entities, {"name": entity}, {})
            conn.execute(
                self._upserts.insert(artifact_blobs)
                .values(entity_id=entity_id, md5=md5_hex, size=size, created_at=time.time())
                .on_conflict_do_nothing(index_elements=["entity_id", "md5"])
            )

    def known_blobs(self, entity: str, md5_hexes: Iterable[str]) -> set[str]:
        """Those of the MD5s (hex) whose blobs the entity has stored."""
        wanted = sorted(set(md5_hexes))
        found: set[str] = set()
        with self._read() as conn:
            for start in range(0, len(wanted), 500):  # bounded IN lists
                chunk = wanted[start : start + 500]
                found.update(
                    conn.scalars(
                        select(artifact_blobs.c.md5)
                        .select_from(artifact_blobs.join(entities))
                        .where(entities.c.name == entity, artifact_blobs.c.md5.in_(chunk))
                    )
                )
        return found

    def _set_alias(self, conn: Connection, collection_id: int, alias: str, version_id: int) -> None:
        conn.execute(
            self._upserts.insert(artifact_aliases)
            .values(collection_id=collection_id, alias=alias, version_id=version_id)
            .on_conflict_do_update(index_elements=["collection_id", "alias"], set_={"version_id": version_id})
        )

    @staticmethod
    def _collection_id(conn: Connection, entity: str, project: str, collection: str) -> int | None:
        found = conn.scalar(
            select(artifact_collections.c.id)
            .select_from(artifact_collections.join(projects).join(entities))
            .where(
                and_(
                    entities.c.name == entity,
                    projects.c.name == project,
                    artifact_collections.c.name == collection,
                )
            )
        )
        return None if found is None else int(found)

    def _row(self, conn: Connection, version_id: int) -> ArtifactRow:
        rows = conn.execute(_select().where(artifact_versions.c.id == version_id)).all()
        if not rows:
            raise ArtifactsError(f"artifact version {version_id} does not exist")
        return self._decode(conn, rows)[0]

    @staticmethod
    def _decode(conn: Connection, rows: Sequence[Row[Any]]) -> list[ArtifactRow]:
        ids = [row.id for row in rows]
        aliases: dict[int, list[str]] = {}
        if ids:
            for version_id, alias in conn.execute(
                select(artifact_aliases.c.version_id, artifact_aliases.c.alias)
                .where(artifact_aliases.c.version_id.in_(ids))
                .order_by(artifact_aliases.c.alias)
            ):
                aliases.setdefault(version_id, []).append(alias)
        return [
            ArtifactRow(
                id=row.id,
                entity=row.entity_name,
                project=row.project_name,
                type_name=row.type_name,
                collection=row.collection_name,
                version_index=row.version_index,
                state=row.state,
                digest=row.digest,
                description=row.description,
                metadata=jsonutil.loads(row.metadata),
                manifest=row.manifest,
                size=row.size,
                file_count=row.file_count,
                run_id=row.logged_by,
                created_at=row.created_at,
                updated_at=row.updated_at,
                aliases=tuple(
                    aliases.get(row.id, []) if row.state == "COMMITTED" else jsonutil.loads(row.aliases)
                ),
            )
            for row in rows
        ]
