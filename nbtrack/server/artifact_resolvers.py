"""Resolvers of artifacts.graphql's read side: Query.artifact, Project.artifact*, Run.output/
inputArtifacts and the fields of Artifact, ArtifactSequence, ArtifactCollectionMembership,
ArtifactAlias and the manifest. An Artifact resolves to a store ArtifactRow; every lookup is
confined to the caller's entity (another entity's artifact reads as absent).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nbtrack import jsonutil
from nbtrack.server.artifact_nodes import (
    current_manifest,
    decode_id,
    encode_id,
    files_by_entries,
    files_page,
    page,
)
from nbtrack.server.errors import ApiError
from nbtrack.server.resolvers import Info, Resolver, cached_project, computed, numeric_id
from nbtrack.server.wandb_resolvers import wandb_time
from nbtrack.store import ProjectRow, RunRow
from nbtrack.store.artifacts import LATEST, ArtifactRow, CollectionRow

__all__ = ["ARTIFACT_RESOLVERS", "Collection", "artifact_by_id"]


@dataclass(frozen=True)
class Collection:
    """An ArtifactCollection node (always a sequence here)."""

    entity: str
    project: str
    name: str
    type_name: str
    __typename = "ArtifactSequence"  # graphql-core's default type resolver reads it

    @classmethod
    def of(cls, row: ArtifactRow | CollectionRow) -> Collection:
        if isinstance(row, CollectionRow):
            return cls(row.entity, row.project, row.name, row.type_name)
        return cls(row.entity, row.project, row.collection, row.type_name)


def _collection_row(collection: Collection, info: Info) -> CollectionRow:
    """The collection's times, read once per request."""
    key = ("artifact collections", collection.entity, collection.project)
    memo = info.context.memo
    if key not in memo:
        rows = info.context.store.list_artifact_collections(collection.entity, collection.project)
        memo[key] = {row.name: row for row in rows}
    found: CollectionRow | None = memo[key].get(collection.name)
    if found is None:
        raise ApiError(
            "NOT_FOUND", f"artifact {collection.name!r} of {collection.entity}/{collection.project} is gone"
        )
    return found


def artifact_by_id(info: Info, given: str) -> ArtifactRow | None:
    """The caller's artifact version of that id, or None."""
    found = info.context.store.get_artifact_version(decode_id(given, "Artifact"))
    return found if found is not None and found.entity == info.context.entity else None


def _query_artifact(_root: None, info: Info, id: str) -> ArtifactRow | None:
    return artifact_by_id(info, id)


def _split_name(name: str) -> tuple[str, str]:
    """(collection, version ref) of "name:ref" ("name" alone: latest)."""
    collection, sep, ref = name.rpartition(":")
    if not sep:
        return name, LATEST
    if not collection or not ref:
        raise ApiError(
            "BAD_REQUEST", f"artifact name {name[:100]!r} must be collection:version or collection:alias"
        )
    return collection, ref


def _project_artifact(project: ProjectRow, info: Info, name: str) -> ArtifactRow | None:
    collection, ref = _split_name(name)
    return info.context.store.find_artifact_version(project.entity, project.name, collection, ref)


def _project_artifact_type(project: ProjectRow, _info: Info, name: str) -> dict[str, Any]:
    # Any type name is answered (the client asks for a type's collection, null until one exists):
    # a type exists here as the type of its collections.
    return {
        "id": encode_id("ArtifactType", int(numeric_id(f"{project.entity}/{project.name}/{name}"))),
        "name": name,
        "_project": project,
    }


def _project_artifact_types(
    project: ProjectRow, info: Info, after: str | None = None, first: int | None = None
) -> dict[str, Any]:
    names = info.context.store.list_artifact_types(project.entity, project.name)
    paged = page([_project_artifact_type(project, info, name) for name in names], first, after)
    paged.pop("totalCount")
    return paged


def _type_created_at(artifact_type: dict[str, Any], info: Info) -> str | None:
    project: ProjectRow = artifact_type["_project"]
    rows = info.context.store.list_artifact_collections(project.entity, project.name, artifact_type["name"])
    return wandb_time(min(row.created_at for row in rows)) if rows else None


def _type_collections(
    artifact_type: dict[str, Any],
    info: Info,
    after: str | None = None,
    first: int | None = None,
    filters: Any = None,
    order: str | None = None,
) -> dict[str, Any]:
    if filters not in (None, {}):
        raise ApiError("BAD_REQUEST", f"artifactCollections(filters:) is not served, got {filters!r:.100}")
    if order not in (None, "-createdAt"):
        raise ApiError(
            "BAD_REQUEST", f'artifactCollections(order:) may only be "-createdAt", not {order!r:.40}'
        )
    project: ProjectRow = artifact_type["_project"]
    rows = info.context.store.list_artifact_collections(project.entity, project.name, artifact_type["name"])
    return page([Collection.of(row) for row in rows], first, after)


def _type_collection(artifact_type: dict[str, Any], info: Info, name: str) -> Collection | None:
    project: ProjectRow = artifact_type["_project"]
    stored = info.context.store.artifact_collection_type(project.entity, project.name, name)
    if stored is None or stored != artifact_type["name"]:
        return None
    return Collection(project.entity, project.name, name, stored)


def _project_collection(project: ProjectRow, info: Info, name: str) -> Collection | None:
    stored = info.context.store.artifact_collection_type(project.entity, project.name, name)
    return None if stored is None else Collection(project.entity, project.name, name, stored)


def _project_membership(project: ProjectRow, info: Info, name: str) -> ArtifactRow | None:
    return _project_artifact(project, info, name)


def _collection_membership(collection: Collection, info: Info, aliasName: str) -> ArtifactRow | None:
    return info.context.store.find_artifact_version(
        collection.entity, collection.project, collection.name, aliasName
    )


def _collection_artifacts(
    collection: Collection,
    info: Info,
    after: str | None = None,
    first: int | None = None,
    order: str | None = None,
    filters: Any = None,
) -> dict[str, Any]:
    if filters not in (None, {}, {"state": "COMMITTED"}):
        raise ApiError(
            "BAD_REQUEST", f'artifacts(filters:) may only be {{"state": "COMMITTED"}}, not {filters!r:.100}'
        )
    if order not in (None, "-createdAt", "createdAt"):
        raise ApiError(
            "BAD_REQUEST", f'artifacts(order:) may be "createdAt" or "-createdAt", not {order!r:.40}'
        )
    rows = info.context.store.list_artifact_versions(collection.entity, collection.project, collection.name)
    if order == "createdAt":
        rows.reverse()
    paged = page(rows, first, after)
    for edge in paged["edges"]:
        edge["version"] = edge["node"].version
    return paged


def _collection_aliases(
    collection: Collection, info: Info, after: str | None = None, first: int | None = None
) -> dict[str, Any]:
    rows = info.context.store.list_artifact_versions(collection.entity, collection.project, collection.name)
    return page([alias for row in rows for alias in _aliases(row)], first, after)


def _latest(collection: Collection, info: Info) -> ArtifactRow | None:
    return info.context.store.find_artifact_version(
        collection.entity, collection.project, collection.name, LATEST
    )


def _project_of(entity: str, project: str, info: Info) -> ProjectRow:
    found = cached_project(info, entity, project)
    if found is None:  # deleted meanwhile
        raise ApiError("NOT_FOUND", f"project {entity}/{project} does not exist")
    return found


def _aliases(row: ArtifactRow) -> list[dict[str, Any]]:
    if row.state != "COMMITTED":
        return []
    collection = Collection.of(row)
    return [
        {
            "id": encode_id("ArtifactAlias", int(numeric_id(f"{row.id}:{alias}"))),
            "alias": alias,
            "artifactCollection": collection,
            "artifactCollectionName": row.collection,
        }
        for alias in row.aliases
    ]


def _created_by(row: ArtifactRow, info: Info) -> RunRow | None:
    return None if row.run_id is None else info.context.store.get_run(row.entity, row.project, row.run_id)


def _used_by(
    row: ArtifactRow, info: Info, after: str | None = None, first: int | None = None
) -> dict[str, Any]:
    paged = page(info.context.store.artifact_users(row.id), first, after)
    paged.pop("totalCount")
    return paged


def _output_artifacts(
    run: RunRow, info: Info, after: str | None = None, first: int | None = None
) -> dict[str, Any]:
    return page(info.context.store.run_logged_artifacts(run.entity, run.project, run.run_id), first, after)


def _input_artifacts(
    run: RunRow, info: Info, after: str | None = None, first: int | None = None
) -> dict[str, Any]:
    return page(info.context.store.run_used_artifacts(run.entity, run.project, run.run_id), first, after)


def _type_of(row: ArtifactRow, info: Info) -> dict[str, Any]:
    project = _project_of(row.entity, row.project, info)
    return _project_artifact_type(project, info, row.type_name)


_COLLECTION: dict[str, Resolver] = {
    "id": computed(
        lambda c: encode_id("ArtifactSequence", int(numeric_id(f"{c.entity}/{c.project}/{c.name}")))
    ),
    "description": computed(lambda _c: None),
    "createdAt": lambda c, info: wandb_time(_collection_row(c, info).created_at),
    "updatedAt": lambda c, info: wandb_time(_collection_row(c, info).updated_at),
    "tags": computed(lambda _c: {"edges": []}),
    "project": lambda c, info: _project_of(c.entity, c.project, info),
    "defaultArtifactType": lambda c, info: _project_artifact_type(
        _project_of(c.entity, c.project, info), info, c.type_name
    ),
    "artifactMembership": _collection_membership,
    "artifacts": _collection_artifacts,
    "aliases": _collection_aliases,
    "latestArtifact": _latest,
    "digestAlgorithm": computed(lambda _c: "MANIFEST_MD5"),
}

ARTIFACT_RESOLVERS: dict[str, dict[str, Resolver]] = {
    "Query": {"artifact": _query_artifact},
    "Project": {
        "artifact": _project_artifact,
        "artifactType": _project_artifact_type,
        "artifactCollection": _project_collection,
        "artifactCollectionMembership": _project_membership,
        "artifactTypes": _project_artifact_types,
    },
    "Run": {"outputArtifacts": _output_artifacts, "inputArtifacts": _input_artifacts},
    "ArtifactType": {
        "artifactCollection": _type_collection,
        "artifactSequence": _type_collection,
        "artifactCollections": _type_collections,
        "description": computed(lambda _t: None),
        "createdAt": _type_created_at,
    },
    "ArtifactSequence": _COLLECTION,
    "Artifact": {
        "id": computed(lambda row: encode_id("Artifact", row.id)),
        "artifactSequence": computed(Collection.of),
        "artifactCollection": computed(Collection.of),
        "versionIndex": computed(lambda row: row.version_index),
        "artifactType": _type_of,
        "metadata": computed(lambda row: jsonutil.dumps_str(row.metadata)),
        "ttlDurationSeconds": computed(lambda _row: -1),
        "ttlIsInherited": computed(lambda _row: True),
        "tags": computed(lambda _row: []),
        "historyStep": computed(lambda _row: None),
        "digestAlgorithm": computed(lambda _row: "MANIFEST_MD5"),
        "commitHash": computed(lambda row: row.digest if row.state == "COMMITTED" else None),
        "fileCount": computed(lambda row: row.file_count),
        "createdAt": computed(lambda row: wandb_time(row.created_at)),
        "updatedAt": computed(lambda row: wandb_time(row.updated_at)),
        "aliases": computed(_aliases),
        "currentManifest": current_manifest,
        "createdBy": _created_by,
        "usedBy": _used_by,
        "filesByManifestEntries": files_by_entries,
        "files": files_page,
    },
    "ArtifactCollectionMembership": {
        "id": computed(lambda row: encode_id("ArtifactCollectionMembership", row.id)),
        "versionIndex": computed(lambda row: row.version_index),
        "createdAt": computed(lambda row: wandb_time(row.created_at)),
        "aliases": computed(_aliases),
        "artifactCollection": computed(Collection.of),
        "artifact": computed(lambda row: row),
        "files": files_page,
    },
}
