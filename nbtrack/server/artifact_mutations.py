"""Resolvers of artifacts.graphql's mutations, in the order wandb's client sends them when it logs a
version (docs/wandb-compat.md, "Artifacts"): createArtifact (a PENDING version, or the committed
one of the same digest), createArtifactFiles (an upload URL for each file whose bytes the entity
has not stored: the dedup), createArtifactManifest (where the manifest goes), the uploads
(artifact_files.py), commitArtifact (numbered, aliases moved); and useArtifact (lineage). Then
what wandb's Api sends to edit one: addAliases and deleteAliases, updateArtifact (its description
and metadata; Artifact.save() sends all three) and deleteArtifact (Artifact.delete(); the storage
only that version referenced is freed by `nbtrack server gc`).
"""

from __future__ import annotations

from typing import Any

from nbtrack import jsonutil
from nbtrack.artifacts.manifest import parse_manifest
from nbtrack.server.artifact_files import (
    UPLOAD_PURPOSE,
    blob_token,
    hex_of_md5,
    manifest_key,
    manifest_token,
)
from nbtrack.server.artifact_nodes import decode_id, encode_id
from nbtrack.server.artifact_resolvers import artifact_by_id
from nbtrack.server.errors import ApiError
from nbtrack.server.mutations import _entity
from nbtrack.server.names import check_name, check_project
from nbtrack.server.resolvers import Info, Resolver
from nbtrack.store import StoreError
from nbtrack.store.artifact_rows import check_alias
from nbtrack.store.artifacts import LATEST, ArtifactRow, ArtifactsError

__all__ = ["ARTIFACT_MUTATIONS"]

_MAX_FILES = 10_000  # per createArtifactFiles call (wandb-core sends them in batches)
_MAX_MANIFEST = 256 << 20  # bytes of a manifest read into the store at commit


def _create_artifact(_root: None, info: Info, input: dict[str, Any]) -> dict[str, Any]:
    context = info.context
    entity = _entity(context, input["entityName"])
    project = check_project(input["projectName"])
    type_name = check_name(input["artifactTypeName"], "artifact type")
    names = input.get("artifactCollectionNames") or [input.get("artifactCollectionName")]
    if len(names) != 1 or names[0] is None:
        raise ApiError("BAD_REQUEST", "createArtifact needs one collection in input.artifactCollectionName")
    collection = check_name(names[0], "artifact name")
    aliases = []
    for given in input.get("aliases") or []:
        if given["artifactCollectionName"] != collection:
            raise ApiError(
                "BAD_REQUEST",
                f"alias {given['alias']!r} is for {given['artifactCollectionName']!r}, not {collection!r}",
            )
        if given["alias"] != LATEST:
            aliases.append(_alias(given["alias"]))
    metadata = input.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise ApiError("BAD_REQUEST", "input.metadata must hold a JSON object")
    run_id = input.get("runName")
    try:
        row = context.store.create_artifact_version(
            entity,
            project,
            type_name,
            collection,
            _digest(input["digest"]),
            run_id=None if run_id is None else check_name(run_id, "run"),
            description=input.get("description"),
            metadata=metadata,
            aliases=aliases,
            reuse_same_digest=input.get("enableDigestDeduplication") is not False,
        )
        if row.state == "COMMITTED":  # the same files again: the version found takes the aliases asked
            for alias in aliases:
                context.store.set_artifact_alias(row.id, alias)
            row = context.store.get_artifact_version(row.id) or row
    except ArtifactsError as exc:
        raise ApiError("CONFLICT", str(exc)) from None
    return {"artifact": row}


def _create_artifact_files(_root: None, info: Info, input: dict[str, Any]) -> dict[str, Any]:
    context = info.context
    specs = input["artifactFiles"]
    if len(specs) > _MAX_FILES:
        raise ApiError("BAD_REQUEST", f"createArtifactFiles takes at most {_MAX_FILES} files a call")
    artifacts: dict[str, ArtifactRow] = {}
    for spec in specs:
        if spec["artifactID"] not in artifacts:
            artifacts[spec["artifactID"]] = _pending(info, spec["artifactID"])
    hexes = [hex_of_md5(spec["md5"]) for spec in specs]
    known = context.store.claim_blobs(context.entity, hexes)  # kept by gc for this version
    edges = []
    for spec, md5_hex in zip(specs, hexes, strict=True):
        row = artifacts[spec["artifactID"]]
        upload = None
        if md5_hex not in known:
            known.add(md5_hex)  # one upload of the bytes for every file of this digest
            token = blob_token(context.signer, row.entity, md5_hex, UPLOAD_PURPOSE)
            upload = f"{context.base_url}/artifacts/{row.entity}/{md5_hex}?token={token}"
        node = {
            "id": encode_id("File", row.id),
            "name": spec["name"],
            "displayName": spec["name"].rsplit("/", 1)[-1],
            "storagePath": f"{row.entity}/{md5_hex}",
            "uploadUrl": upload,
            "uploadHeaders": [],
            "uploadMultipartUrls": None,
            "artifact": row,
        }
        edges.append({"node": node})
    return {"files": {"edges": edges}}


def _manifest_payload(info: Info, row: ArtifactRow) -> dict[str, Any]:
    token = manifest_token(info.context.signer, row.entity, row.id)
    url = f"{info.context.base_url}/artifact-manifests/{row.entity}/{row.id}?token={token}"
    return {
        "artifactManifest": {
            "id": encode_id("ArtifactManifest", row.id),
            "file": {
                "id": encode_id("File", row.id),
                "directUrl": url,
                "uploadUrl": url,
                "uploadHeaders": [],
            },
        }
    }


def _create_artifact_manifest(_root: None, info: Info, input: dict[str, Any]) -> dict[str, Any]:
    _entity(info.context, input["entityName"])
    return _manifest_payload(info, _pending(info, input["artifactID"]))


def _update_artifact_manifest(_root: None, info: Info, input: dict[str, Any]) -> dict[str, Any]:
    version_id = decode_id(input["artifactManifestID"], "ArtifactManifest")
    return _manifest_payload(info, _pending(info, encode_id("Artifact", version_id)))


def _commit_artifact(_root: None, info: Info, input: dict[str, Any]) -> dict[str, Any]:
    """Commit once the manifest and every file it lists are stored; CONFLICT naming what is missing."""
    context = info.context
    row = _mine(info, input["artifactID"])
    if row.state == "COMMITTED":
        return {"artifact": row}
    backend = context.files.backend
    key = manifest_key(row.entity, row.id)
    found = backend.stat(key)
    if found is None:
        raise ApiError(
            "CONFLICT", f"artifact {row.collection} has no manifest yet: upload it before committing"
        )
    if found.size > _MAX_MANIFEST:
        raise ApiError(
            "PAYLOAD_TOO_LARGE", f"the manifest of artifact {row.collection} is over {_MAX_MANIFEST} bytes"
        )
    text = (backend.read_small(key) or b"").decode("utf-8", "replace")
    try:
        manifest = parse_manifest(text)
    except ValueError as exc:
        raise ApiError("BAD_REQUEST", f"the manifest of artifact {row.collection}: {exc}") from None
    stored = [(entry.path, hex_of_md5(entry.digest)) for entry in manifest.stored()]
    known = context.store.known_blobs(row.entity, [md5_hex for _, md5_hex in stored])
    missing = [path for path, md5_hex in stored if md5_hex not in known]
    if missing:
        raise ApiError(
            "CONFLICT",
            f"artifact {row.collection}: {len(missing)} file(s) not uploaded yet ({', '.join(missing[:3])}): "
            "not committed",
        )
    try:
        committed = context.store.commit_artifact_version(
            row.id, text, manifest.size(), len(manifest.entries), [md5_hex for _, md5_hex in stored]
        )
    except StoreError as exc:
        raise ApiError("CONFLICT", str(exc)) from None
    backend.delete(key)  # the store keeps it from now on
    return {"artifact": committed}


def _use_artifact(_root: None, info: Info, input: dict[str, Any]) -> dict[str, Any]:
    context = info.context
    entity = _entity(context, input["entityName"])
    row = _mine(info, input["artifactID"])
    try:
        context.store.use_artifact_version(
            row.id, entity, check_project(input["projectName"]), check_name(input["runName"], "run")
        )
    except ArtifactsError as exc:
        raise ApiError("NOT_FOUND", str(exc)) from None
    return {"artifact": row}


def _alias_inputs(info: Info, row: ArtifactRow, given: list[dict[str, Any]]) -> list[str]:
    for alias in given:
        where = (alias["entityName"], alias["projectName"], alias["artifactCollectionName"])
        if where != (row.entity, row.project, row.collection):
            raise ApiError(
                "BAD_REQUEST",
                f"alias {alias['alias']!r} is for {'/'.join(where)}, not for the artifact's collection "
                f"{row.entity}/{row.project}/{row.collection}",
            )
    return [_alias(alias["alias"]) for alias in given]


def _add_aliases(_root: None, info: Info, input: dict[str, Any]) -> dict[str, Any]:
    row = _mine(info, input["artifactID"])
    if row.state != "COMMITTED":
        raise ApiError("CONFLICT", f"artifact {row.collection} is not committed: no alias can name it yet")
    for alias in _alias_inputs(info, row, input["aliases"]):
        info.context.store.set_artifact_alias(row.id, alias)
    return {"success": True}


def _delete_aliases(_root: None, info: Info, input: dict[str, Any]) -> dict[str, Any]:
    row = _mine(info, input["artifactID"])
    for alias in _alias_inputs(info, row, input["aliases"]):
        if alias in row.aliases:  # only this version's: an alias moved meanwhile stays where it is
            info.context.store.remove_artifact_alias(row.entity, row.project, row.collection, alias)
    return {"success": True}


def _update_artifact(_root: None, info: Info, input: dict[str, Any]) -> dict[str, Any]:
    """Description and metadata; aliases come by addAliases/deleteAliases. Tags and a TTL are
    not kept by nbtrack: refused when asked for rather than dropped."""
    row = _mine(info, input["artifactID"])
    if input.get("tagsToAdd") or input.get("tagsToDelete") or input.get("ttlDurationSeconds") is not None:
        raise ApiError("BAD_REQUEST", "nbtrack keeps no tags or TTL on artifact versions: not changed")
    if input.get("aliases"):
        raise ApiError("BAD_REQUEST", "updateArtifact's aliases are not served: use addAliases/deleteAliases")
    metadata = input.get("metadata")
    if isinstance(metadata, str):  # the JSONString scalar hands what it could not parse as is
        try:
            metadata = jsonutil.loads(metadata)
        except ValueError:
            metadata = None
    if input.get("metadata") is not None and not isinstance(metadata, dict):
        raise ApiError("BAD_REQUEST", "input.metadata must be the JSON of an object")
    try:
        updated = info.context.store.update_artifact_version(
            row.id, description=input.get("description"), metadata=metadata
        )
    except ArtifactsError as exc:
        raise ApiError("NOT_FOUND", str(exc)) from None
    return {"artifact": updated}


def _delete_artifact(_root: None, info: Info, input: dict[str, Any]) -> dict[str, Any]:
    row = _mine(info, input["artifactID"])
    try:
        deleted = info.context.store.delete_artifact_version(row.id, bool(input.get("deleteAliases")))
    except ArtifactsError as exc:
        raise ApiError("CONFLICT", str(exc)) from None
    return {"artifact": deleted}


def _mine(info: Info, given: str) -> ArtifactRow:
    row = artifact_by_id(info, given)
    if row is None:
        raise ApiError("NOT_FOUND", f"artifact {given[:60]!r} does not exist or is not yours")
    return row


def _pending(info: Info, given: str) -> ArtifactRow:
    row = _mine(info, given)
    if row.state != "PENDING":
        raise ApiError(
            "CONFLICT", f"artifact {row.collection}:{row.version} is committed: its files are final"
        )
    return row


def _digest(digest: str) -> str:
    if not (0 < len(digest) <= 64 and digest.isascii() and digest.isalnum()):
        raise ApiError(
            "BAD_REQUEST", f"input.digest {digest[:80]!r} is not a digest (1 to 64 letters or digits)"
        )
    return digest


def _alias(alias: str) -> str:
    try:
        return check_alias(alias)
    except (TypeError, ValueError) as exc:
        raise ApiError("BAD_REQUEST", str(exc)) from None


ARTIFACT_MUTATIONS: dict[str, Resolver] = {
    "createArtifact": _create_artifact,
    "createArtifactFiles": _create_artifact_files,
    "createArtifactManifest": _create_artifact_manifest,
    "updateArtifactManifest": _update_artifact_manifest,
    "commitArtifact": _commit_artifact,
    "useArtifact": _use_artifact,
    "addAliases": _add_aliases,
    "deleteAliases": _delete_aliases,
    "updateArtifact": _update_artifact,
    "deleteArtifact": _delete_artifact,
}
