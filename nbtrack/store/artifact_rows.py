"""The rows of the artifact tables as the store hands them out (ArtifactRow, CollectionRow), the
select of a version with its names, and what refuses a bad artifact request (ArtifactsError).
Shared by store/artifacts.py (writes) and store/artifact_reads.py (reads).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, Select, and_, select

from nbtrack import jsonutil
from nbtrack.errors import ArtifactsError
from nbtrack.store.schema import (
    artifact_aliases,
    artifact_collections,
    artifact_types,
    artifact_versions,
    entities,
    projects,
    runs,
)
from nbtrack.vocabulary import LATEST_ALIAS

__all__ = [
    "LATEST",
    "ArtifactRow",
    "ArtifactsError",
    "CollectionRow",
    "check_alias",
    "collection_id_of",
    "decode_versions",
    "parse_version_ref",
    "select_versions",
    "version_row",
]

LATEST = LATEST_ALIAS
_VERSION = re.compile(r"v(\d{1,9})")


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


def check_alias(alias: object) -> str:
    """alias if it may name a version: 1 to 128 characters, no ':' or '/' (they separate a
    path's parts) and no NUL; ValueError (TypeError for a non-str) naming it otherwise."""
    if not isinstance(alias, str):
        raise TypeError(f"an artifact alias must be a str, not {type(alias).__name__}")
    if not alias or len(alias) > 128 or "\0" in alias or ":" in alias or "/" in alias:
        raise ValueError(f"alias {alias[:80]!r} must have 1 to 128 characters, without ':' or '/'")
    return alias


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


def select_versions() -> Select[Any]:
    return select(*_COLUMNS).select_from(_JOIN)


def collection_id_of(conn: Connection, entity: str, project: str, collection: str) -> int | None:
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


def version_row(conn: Connection, version_id: int) -> ArtifactRow:
    rows = conn.execute(select_versions().where(artifact_versions.c.id == version_id)).all()
    if not rows:
        raise ArtifactsError(f"artifact version {version_id} does not exist")
    return decode_versions(conn, rows)[0]


def decode_versions(conn: Connection, rows: Sequence[Row[Any]]) -> list[ArtifactRow]:
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
