"""Artifacts read: a version by id or by name ("v3", an alias), a collection's versions, a project's
collections and types, lineage (what a run logged or used, who used a version) and which blobs an
entity has stored. The writes are store/artifacts.py's.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select

from nbtrack.store.artifact_rows import (
    LATEST,
    ArtifactRow,
    CollectionRow,
    collection_id_of,
    decode_versions,
    parse_version_ref,
    select_versions,
    version_row,
)
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

__all__ = ["LATEST", "ArtifactReads"]


class ArtifactReads(Database):
    """Store's reads of artifacts."""

    def get_artifact_version(self, version_id: int) -> ArtifactRow | None:
        with self._read() as conn:
            rows = conn.execute(select_versions().where(artifact_versions.c.id == version_id)).all()
            return decode_versions(conn, rows)[0] if rows else None

    def find_artifact_version(
        self, entity: str, project: str, collection: str, ref: str
    ) -> ArtifactRow | None:
        """The committed version that ref ("v3", "latest", a user alias) names, or None."""
        index, alias = parse_version_ref(ref)
        with self._read() as conn:
            collection_id = collection_id_of(conn, entity, project, collection)
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
            return None if found is None else version_row(conn, int(found))

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
                select_versions()
                .where(
                    entities.c.name == entity,
                    projects.c.name == project,
                    artifact_collections.c.name == collection,
                    artifact_versions.c.state == "COMMITTED",
                )
                .order_by(artifact_versions.c.version_index.desc())
            ).all()
            return decode_versions(conn, rows)

    def run_logged_artifacts(self, entity: str, project: str, run_id: str) -> list[ArtifactRow]:
        """The versions the run logged (committed ones), oldest first."""
        with self._read() as conn:
            run_pk = find_run_pk(conn, entity, project, run_id)
            rows = conn.execute(
                select_versions()
                .where(artifact_versions.c.run_pk == run_pk, artifact_versions.c.state == "COMMITTED")
                .order_by(artifact_versions.c.id)
            ).all()
            return decode_versions(conn, rows)

    def run_used_artifacts(self, entity: str, project: str, run_id: str) -> list[ArtifactRow]:
        """The versions the run used, in the order it first used them."""
        with self._read() as conn:
            run_pk = find_run_pk(conn, entity, project, run_id)
            rows = conn.execute(
                select_versions()
                .join(artifact_uses, artifact_uses.c.version_id == artifact_versions.c.id)
                .where(artifact_uses.c.run_pk == run_pk)
                .order_by(artifact_uses.c.used_at, artifact_versions.c.id)
            ).all()
            return decode_versions(conn, rows)

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
