"""Logging an artifact version to a tracking server, and recording that a run used one, with the
operations wandb 0.31's client sends, in its order (docs/wandb-compat.md, "Artifacts"):

    ArtifactType (the collection's type, checked first) -> CreateArtifact -> CreateArtifactManifest
    -> CreateArtifactFiles -> PUT each file the server wants -> CreateArtifactManifest (with its
    upload URL) -> PUT the manifest -> CommitArtifact

The server answers an upload URL only for bytes the entity has not stored yet, so only those are
sent (the dedup). That also makes a second call after an interrupted one cheap and safe: the
version is made again (or, once committed, found by its digest), the blobs that reached the server
are not sent again, and the call ends with one committed version. A PENDING version an interrupted
call left behind is freed by `nbtrack server gc`.

Every request is retried while the server is unreachable or busy (ServerClient.retrying, bounded by
RETRY_SECONDS); a caller that gives up (a run whose finish() stopped waiting) sets `stop`, which ends
the call between requests, between retries and between the chunks of an upload. A file the server
refuses (413 over --max-upload, bytes that are not their MD5's) is an ArtifactFileRefused naming it.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from nbtrack import jsonutil
from nbtrack.artifacts.manifest import Manifest, ManifestEntry
from nbtrack.online.client import ServerClient
from nbtrack.online.retry import Rejected, Transient
from nbtrack.vocabulary import LATEST_ALIAS

__all__ = ["ArtifactFileRefused", "LoggedVersion", "log_artifact_version", "use_artifact_version"]

T = TypeVar("T")

RETRY_SECONDS = 120.0  # how long one request is retried while the server is away
FILES_PER_CALL = 1000  # files per CreateArtifactFiles (the server takes up to 10,000)

VIEWER = "query Viewer { viewer { entity } }"
ARTIFACT_TYPE = """query ArtifactType($entityName: String, $projectName: String!, $name: String!) {
  project(name: $projectName, entityName: $entityName) {
    artifact(name: $name) { artifactType { name } } } }"""
CREATE_ARTIFACT = """mutation CreateArtifact($input: CreateArtifactInput!) {
  createArtifact(input: $input) {
    artifact { id state versionIndex digest artifactSequence { latestArtifact { id } } } } }"""
CREATE_MANIFEST = """mutation CreateArtifactManifest($input: CreateArtifactManifestInput!) {
  createArtifactManifest(input: $input) { artifactManifest { id file { id uploadUrl uploadHeaders } } } }"""
CREATE_FILES = """mutation CreateArtifactFiles($input: CreateArtifactFilesInput!) {
  createArtifactFiles(input: $input) {
    files { edges { node { name storagePath uploadUrl uploadHeaders
      uploadMultipartUrls { uploadID uploadUrlParts { partNumber uploadUrl } } artifact { id } } } } } }"""
COMMIT_ARTIFACT = """mutation CommitArtifact($input: CommitArtifactInput!) {
  commitArtifact(input: $input) { artifact { id digest versionIndex } } }"""
MEMBERSHIP = """query ArtifactMembershipByName($entityName: String, $projectName: String!, $name: String!) {
  project(name: $projectName, entityName: $entityName) {
    artifactCollectionMembership(name: $name) { id versionIndex artifact { id state } } } }"""
USE_ARTIFACT = """mutation UseArtifact($input: UseArtifactInput!) {
  useArtifact(input: $input) { artifact { id digest description state createdAt metadata } } }"""


class ArtifactFileRefused(Rejected):
    """The server refused a file of the version (or it could not be read here): `file` names it."""

    def __init__(self, message: str, file: str, status: int | None = None) -> None:
        super().__init__(message, status)
        self.file = file


@dataclass(frozen=True, slots=True)
class _Calls:
    """One delivery's requests: each retried while the server is away (for up to RETRY_SECONDS),
    none once stop is set (the caller gave up: Transient, and the caller's log keeps the record)."""

    client: ServerClient
    stop: threading.Event

    def graphql(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        return self.retried(lambda: self.client.graphql(query, variables))

    def retried(self, call: Callable[[], T]) -> T:
        if self.stop.is_set():
            raise Transient(f"delivery to the tracking server at {self.client.base_url} was given up")
        return self.client.retrying(call, stop=self.stop, deadline=time.monotonic() + RETRY_SECONDS)


@dataclass(frozen=True, slots=True)
class LoggedVersion:
    """The committed version a call ended with, and what that call uploaded for it."""

    entity: str
    project: str
    collection: str
    version: str  # "vN"
    digest: str  # the manifest's (hex)
    files_uploaded: int
    bytes_uploaded: int


def log_artifact_version(
    client: ServerClient,
    *,
    entity: str | None,
    project: str,
    run_id: str,
    name: str,
    type: str,
    description: str | None,
    metadata: dict[str, Any],
    aliases: list[str],
    manifest: Manifest,
    blob_path: Callable[[str], Path],
    stop: threading.Event | None = None,
) -> LoggedVersion:
    """Log manifest's files as a new committed version of collection `name` of the run's project
    (or find the committed one of the same digest), with `aliases` and "latest". blob_path maps an
    entry's hex MD5 to the local file holding its bytes. Rejected if the server refuses (a
    collection of another type, a run it does not know), ArtifactFileRefused naming a file it
    refused; Transient once a request kept failing for RETRY_SECONDS, or once stop is set (between
    requests, or between the chunks of a file's upload: the caller gave up delivering)."""
    call = _Calls(client, stop or threading.Event())
    entity = entity or _viewer_entity(call)
    digest = manifest.digest()
    _check_type(call, entity, project, name, type)
    asked = [
        {"alias": alias, "artifactCollectionName": name} for alias in dict.fromkeys([LATEST_ALIAS, *aliases])
    ]
    created = call.graphql(
        CREATE_ARTIFACT,
        {
            "input": {
                "artifactTypeName": type,
                "artifactCollectionName": name,
                "artifactCollectionNames": None,
                "entityName": entity,
                "projectName": project,
                "runName": run_id,
                "digest": digest,
                "digestAlgorithm": "MANIFEST_MD5",
                "aliases": asked,
                "metadata": jsonutil.dumps_str(metadata),
                "description": description,
                "clientID": uuid.uuid4().hex,
                "sequenceClientID": uuid.uuid4().hex,
                "enableDigestDeduplication": True,
                "historyStep": None,
                "labels": None,
                "ttlDurationSeconds": None,
                "distributedID": None,
                "storageRegion": None,
            }
        },
    )["createArtifact"]["artifact"]

    def logged(version_index: int, files: int, size: int) -> LoggedVersion:
        return LoggedVersion(entity, project, name, f"v{version_index}", digest, files, size)

    if created["state"] == "COMMITTED":  # these files were logged already: nothing to send
        return logged(created["versionIndex"], 0, 0)
    artifact_id = created["id"]
    manifest_input = {
        "artifactID": artifact_id,
        "baseArtifactID": None,
        "name": "wandb_manifest.json",
        "digest": "",
        "entityName": entity,
        "projectName": project,
        "runName": run_id,
        "type": "FULL",
    }
    manifest_id = call.graphql(CREATE_MANIFEST, {"input": {**manifest_input, "includeUpload": False}})[
        "createArtifactManifest"
    ]["artifactManifest"]["id"]
    files, size = _upload_files(call, name, artifact_id, manifest_id, manifest.stored(), blob_path)
    text = manifest.to_json().encode()
    manifest_md5 = base64.b64encode(hashlib.md5(text).digest()).decode("ascii")
    target = call.graphql(
        CREATE_MANIFEST, {"input": {**manifest_input, "digest": manifest_md5, "includeUpload": True}}
    )["createArtifactManifest"]["artifactManifest"]["file"]
    call.retried(lambda: client.upload_bytes(target["uploadUrl"], text, _headers(target)))
    committed = call.graphql(COMMIT_ARTIFACT, {"input": {"artifactID": artifact_id}})["commitArtifact"][
        "artifact"
    ]
    return logged(committed["versionIndex"], files, size)


def use_artifact_version(
    client: ServerClient,
    *,
    entity: str | None,
    project: str,
    run_id: str,
    collection: str,
    version: str,
    stop: threading.Event | None = None,
    run_entity: str | None = None,
    run_project: str | None = None,
) -> None:
    """Record that the run used collection:version (a "vN" or an alias) of entity/project: lineage.
    The run is run_entity/run_project/run_id (default: the artifact's entity and project), as W&B's
    useArtifact names the using run's project, which may be another than the artifact's.
    Rejected if there is no such committed version or run; Transient as for log_artifact_version."""
    call = _Calls(client, stop or threading.Event())
    entity = entity or _viewer_entity(call)
    member = call.graphql(
        MEMBERSHIP, {"entityName": entity, "projectName": project, "name": f"{collection}:{version}"}
    )
    found = (member.get("project") or {}).get("artifactCollectionMembership")
    if not found or found["artifact"]["state"] != "COMMITTED":
        raise Rejected(
            f"no committed artifact {collection}:{version} in {entity}/{project} on {client.base_url}"
        )
    call.graphql(
        USE_ARTIFACT,
        {
            "input": {
                # A run named without its entity is the key's own (the viewer's), as every run is.
                "entityName": run_entity or (_viewer_entity(call) if run_project else entity),
                "projectName": run_project or project,
                "runName": run_id,
                "artifactID": found["artifact"]["id"],
            }
        },
    )


def _upload_files(
    call: _Calls,
    name: str,
    artifact_id: str,
    manifest_id: str,
    entries: list[ManifestEntry],
    blob_path: Callable[[str], Path],
) -> tuple[int, int]:
    """Ask for upload URLs in batches and PUT each file the server answers one for: (files, bytes)."""
    sent = size = 0
    for start in range(0, len(entries), FILES_PER_CALL):
        batch = entries[start : start + FILES_PER_CALL]
        specs = [
            {
                "artifactID": artifact_id,
                "artifactManifestID": manifest_id,
                "name": entry.path,
                "md5": entry.digest,
                "mimetype": None,
                "uploadPartsInput": None,
            }
            for entry in batch
        ]
        edges = call.graphql(
            CREATE_FILES,
            {"input": {"artifactFiles": specs, "storageLayout": "V2", "cloudRegionID": None}},
        )["createArtifactFiles"]["files"]["edges"]
        by_path = {entry.path: entry for entry in batch}
        for edge in edges:
            node = edge["node"]
            if node["uploadUrl"] is None:  # the server has these bytes already
                continue
            entry = by_path[node["name"]]
            _upload_one(call, name, entry, blob_path, node["uploadUrl"], _headers(node))
            sent += 1
            size += entry.size
    return sent, size


def _upload_one(
    call: _Calls,
    name: str,
    entry: ManifestEntry,
    blob_path: Callable[[str], Path],
    url: str,
    headers: dict[str, str],
) -> None:
    md5_hex = entry.md5_hex
    if md5_hex is None:
        raise ArtifactFileRefused(f"artifact {name}: file {entry.path!r} has no MD5 digest", entry.path)
    path = blob_path(md5_hex)
    if not path.is_file():
        raise ArtifactFileRefused(
            f"artifact {name}: file {entry.path!r} cannot be uploaded: its bytes ({path}) are gone",
            entry.path,
        )
    try:
        call.retried(lambda: call.client.upload(url, path, headers, stop=call.stop))
    except Rejected as exc:
        raise ArtifactFileRefused(
            f"artifact {name}: the server refused file {entry.path!r} ({entry.size} bytes): {exc}",
            entry.path,
            exc.status,
        ) from exc


def _headers(node: dict[str, Any]) -> dict[str, str]:
    """W&B's uploadHeaders: "Name:value" texts."""
    pairs = (header.partition(":") for header in node.get("uploadHeaders") or [])
    return {key.strip(): value.strip() for key, _, value in pairs if key.strip()}


def _viewer_entity(call: _Calls) -> str:
    viewer = call.graphql(VIEWER, {}).get("viewer") or {}
    entity = viewer.get("entity")
    if not isinstance(entity, str) or not entity:
        raise Rejected(f"the tracking server at {call.client.base_url} did not say whose key this is")
    return entity


def _check_type(call: _Calls, entity: str, project: str, name: str, type: str) -> None:
    """Refuse at once a collection of another type (the server would refuse the version anyway)."""
    found = call.graphql(
        ARTIFACT_TYPE, {"entityName": entity, "projectName": project, "name": f"{name}:latest"}
    )
    artifact = (found.get("project") or {}).get("artifact")
    stored = artifact["artifactType"]["name"] if artifact else None
    if stored is not None and stored != type:
        raise Rejected(f"artifact {name!r} of {entity}/{project} is of type {stored!r}, not {type!r}")
