"""Resolvers of artifacts.graphql's read side: Query.artifact, Project.artifact*, Run.output/
inputArtifacts and the fields of Artifact, ArtifactSequence, ArtifactCollectionMembership,
ArtifactAlias and the manifest. An Artifact resolves to a store ArtifactRow; every lookup is
confined to the caller's entity (another entity's artifact reads as absent).
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
from dataclasses import dataclass
from typing import Any

from nbtrack import jsonutil
from nbtrack.server.artifact_files import DOWNLOAD_PURPOSE, blob_token, hex_of_md5, manifest_token
from nbtrack.server.errors import ApiError
from nbtrack.server.resolvers import Info, Resolver, cached_project, computed, numeric_id
from nbtrack.server.wandb_resolvers import wandb_time
from nbtrack.store import ProjectRow, RunRow
from nbtrack.store.artifacts import LATEST, ArtifactRow, CollectionRow

__all__ = ["ARTIFACT_RESOLVERS", "Collection", "artifact_by_id", "decode_id", "encode_id", "manifest_files"]


def encode_id(kind: str, number: int) -> str:
    """W&B's kind of id: base64 of "<kind>:<n>"."""
    return base64.b64encode(f"{kind}:{number}".encode()).decode("ascii")


def decode_id(given: str, kind: str) -> int:
    """The number of an id encode_id made; ApiError BAD_REQUEST naming it otherwise."""
    try:
        text = base64.b64decode(given, validate=True).decode("ascii")
    except (binascii.Error, ValueError):
        text = ""
    found_kind, _, number = text.partition(":")
    if found_kind != kind or not number.isdigit() or len(number) > 18:
        raise ApiError("BAD_REQUEST", f"{given[:60]!r} is not an id of an {kind} of this server")
    return int(number)


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
    page = _page([_project_artifact_type(project, info, name) for name in names], first, after)
    page.pop("totalCount")
    return page


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
    return _page([Collection.of(row) for row in rows], first, after)


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


def _page(items: list[Any], first: int | None, after: str | None, **extra: Any) -> dict[str, Any]:
    if first is not None and first < 0:
        raise ApiError("BAD_REQUEST", f"first must be >= 0, not {first}")
    try:
        start = 0 if after is None else int(after) + 1
    except ValueError:
        raise ApiError("BAD_REQUEST", f"after: {after!r:.40} is not a cursor of this server") from None
    stop = len(items) if first is None else start + first
    edges = [{"node": item, "cursor": str(start + i), **extra} for i, item in enumerate(items[start:stop])]
    return {
        "totalCount": len(items),
        "edges": edges,
        "pageInfo": {"endCursor": edges[-1]["cursor"] if edges else after, "hasNextPage": stop < len(items)},
    }


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
    page = _page(rows, first, after)
    for edge in page["edges"]:
        edge["version"] = edge["node"].version
    return page


def _collection_aliases(
    collection: Collection, info: Info, after: str | None = None, first: int | None = None
) -> dict[str, Any]:
    rows = info.context.store.list_artifact_versions(collection.entity, collection.project, collection.name)
    return _page([alias for row in rows for alias in _aliases(row)], first, after)


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


def manifest_files(row: ArtifactRow) -> list[tuple[str, str, int]]:
    """(path, base64 MD5, size) of each stored (not referenced) file of the committed manifest."""
    if row.manifest is None:
        return []
    contents = jsonutil.loads(row.manifest).get("contents") or {}
    return [
        (path, entry["digest"], int(entry.get("size") or 0))
        for path, entry in sorted(contents.items())
        if isinstance(entry, dict) and not entry.get("ref") and isinstance(entry.get("digest"), str)
    ]


class _FileNode:
    """A File node of an artifact's file (the File type of the W&B dialect, wandb_files.py's shape)."""

    def __init__(self, row: ArtifactRow, path: str, md5: str, size: int, info: Info) -> None:
        context = info.context
        md5_hex = hex_of_md5(md5)
        self.id = encode_id("File", int(numeric_id(f"{row.id}/{path}")))
        self.name = path
        self.displayName = path.rsplit("/", 1)[-1]
        self.storagePath = f"{row.entity}/{md5_hex}"
        self.digest = md5
        self.sizeBytes = size
        self.mimetype = mimetypes.guess_type(path)[0] or "application/octet-stream"
        self.updatedAt = wandb_time(row.updated_at)
        self._md5 = md5
        token = blob_token(context.signer, row.entity, md5_hex, DOWNLOAD_PURPOSE)
        self.directUrl = f"{context.base_url}/artifacts/{row.entity}/{md5_hex}?token={token}"

    def url(self, _info: Any, upload: bool | None = None) -> str:
        if upload:
            raise ApiError(
                "BAD_REQUEST", "an artifact's files cannot be uploaded again (its manifest is final)"
            )
        return self.directUrl

    def md5(self, _info: Any) -> str:
        return self._md5


def _files(
    row: ArtifactRow,
    info: Info,
    names: list[str] | None = None,
    after: str | None = None,
    first: int | None = None,
) -> dict[str, Any]:
    found = manifest_files(row)
    if names:
        wanted = set(names)
        found = [entry for entry in found if entry[0] in wanted]
    return _page([_FileNode(row, *entry, info) for entry in found], first, after)


def _files_by_entries(
    row: ArtifactRow,
    info: Info,
    storageLayout: str,
    manifestVersion: str,
    entries: list[dict[str, Any]] | None = None,
    storageRegion: str | None = None,
) -> dict[str, Any]:
    if entries is None:
        return _files(row, info)
    stored = {path: (md5, size) for path, md5, size in manifest_files(row)}
    nodes = []
    for entry in entries:
        known = stored.get(entry["name"])
        if known is None or known[0] != entry["digest"]:
            raise ApiError(
                "NOT_FOUND",
                f"artifact version {row.collection}:{row.version} has no file {entry['name'][:200]!r}",
            )
        nodes.append(_FileNode(row, entry["name"], known[0], known[1], info))
    return _page(nodes, None, None)


def _current_manifest(row: ArtifactRow, info: Info) -> dict[str, Any] | None:
    if row.manifest is None:
        return None
    token = manifest_token(info.context.signer, row.entity, row.id)
    return {
        "id": encode_id("ArtifactManifest", row.id),
        "file": {
            "id": encode_id("File", row.id),
            "directUrl": f"{info.context.base_url}/artifact-manifests/{row.entity}/{row.id}?token={token}",
            "uploadUrl": None,
            "uploadHeaders": [],
        },
    }


def _created_by(row: ArtifactRow, info: Info) -> RunRow | None:
    return None if row.run_id is None else info.context.store.get_run(row.entity, row.project, row.run_id)


def _used_by(
    row: ArtifactRow, info: Info, after: str | None = None, first: int | None = None
) -> dict[str, Any]:
    page = _page(info.context.store.artifact_users(row.id), first, after)
    page.pop("totalCount")
    return page


def _output_artifacts(
    run: RunRow, info: Info, after: str | None = None, first: int | None = None
) -> dict[str, Any]:
    return _page(info.context.store.run_logged_artifacts(run.entity, run.project, run.run_id), first, after)


def _input_artifacts(
    run: RunRow, info: Info, after: str | None = None, first: int | None = None
) -> dict[str, Any]:
    return _page(info.context.store.run_used_artifacts(run.entity, run.project, run.run_id), first, after)


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
        "currentManifest": _current_manifest,
        "createdBy": _created_by,
        "usedBy": _used_by,
        "filesByManifestEntries": _files_by_entries,
        "files": _files,
    },
    "ArtifactCollectionMembership": {
        "id": computed(lambda row: encode_id("ArtifactCollectionMembership", row.id)),
        "versionIndex": computed(lambda row: row.version_index),
        "createdAt": computed(lambda row: wandb_time(row.created_at)),
        "aliases": computed(_aliases),
        "artifactCollection": computed(Collection.of),
        "artifact": computed(lambda row: row),
        "files": _files,
    },
}
