"""Artifact versions read from a tracking server: the ArtifactSource of `nbtrack.Api(base_url=...)`
(artifacts/stored.py), asked through the server's GraphQL API (artifacts.graphql) with the
reader's retries.

A version's row comes from `project.artifact(name)`; its manifest from the signed URL of
`currentManifest` (asked when first needed); its blobs from the signed `directUrl`s of
`artifact.files` (one URL per MD5, read in pages), each streamed in bounded chunks; its
neighbours from `artifactSequence.artifacts`, `createdBy` and `usedBy` (whole runs, as the reader
reads them); a run's versions from `run.outputArtifacts` / `run.inputArtifacts`, as W&B's
RunOutputArtifacts / RunInputArtifacts ask them.
"""

from __future__ import annotations

import base64
import binascii
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar

import requests

from nbtrack import jsonutil
from nbtrack.artifacts.manifest import CHUNK
from nbtrack.artifacts.stored import BlobMissing
from nbtrack.online.reader import READ_RETRY_SECONDS, ServerReader, run_row
from nbtrack.online.retry import Rejected, Transient
from nbtrack.store.artifact_rows import ArtifactRow, ArtifactsError
from nbtrack.store.schema import RunRow

__all__ = ["ServerArtifacts"]

T = TypeVar("T")
PAGE = 1000  # files or versions a request
URLS_KEPT_SECONDS = 3600.0  # the server signs its URLs for a day: older ones are asked again

_FIELDS = """id versionIndex state digest description metadata size fileCount createdAt updatedAt
  aliases { alias } artifactType { name } artifactSequence { name project { name entityName } }
  createdBy { __typename ... on Run { name } }"""
FIND = f"""query ArtifactByName($project: String!, $entity: String, $name: String!) {{
  project(name: $project, entityName: $entity) {{ artifact(name: $name) {{ {_FIELDS} }} }} }}"""
VERSIONS = f"""query ArtifactVersions($id: ID!, $after: String, $first: Int) {{
  artifact(id: $id) {{ artifactSequence {{ artifacts(after: $after, first: $first) {{
    pageInfo {{ hasNextPage endCursor }} edges {{ node {{ {_FIELDS} }} }} }} }} }} }}"""
USED_BY = f"""query ArtifactUsedBy($id: ID!, $after: String, $first: Int) {{
  artifact(id: $id) {{ usedBy(after: $after, first: $first) {{
    pageInfo {{ hasNextPage endCursor }} edges {{ node {{ {ServerReader.run_fields} }} }} }} }} }}"""
CREATED_BY = f"""query ArtifactCreatedBy($id: ID!) {{
  artifact(id: $id) {{ createdBy {{ __typename ... on Run {{ {ServerReader.run_fields} }} }} }} }}"""
RUN_ARTIFACTS = """query Run%(kind)sArtifacts($project: String!, $entity: String, $run: String!,
    $after: String, $first: Int) {
  project(name: $project, entityName: $entity) { run(name: $run) {
    %(field)s(after: $after, first: $first) {
      pageInfo { hasNextPage endCursor } edges { node { %(fields)s } } } } } }"""
OUTPUT_ARTIFACTS = RUN_ARTIFACTS % {"kind": "Output", "field": "outputArtifacts", "fields": _FIELDS}
INPUT_ARTIFACTS = RUN_ARTIFACTS % {"kind": "Input", "field": "inputArtifacts", "fields": _FIELDS}
MANIFEST = """query ArtifactManifestUrl($id: ID!) {
  artifact(id: $id) { currentManifest { file { directUrl } } } }"""
FILES = """query ArtifactFileUrls($id: ID!, $after: String, $first: Int) {
  artifact(id: $id) { files(after: $after, first: $first) {
    pageInfo { hasNextPage endCursor } edges { node { storagePath directUrl } } } } }"""


class ServerArtifacts:
    """The artifacts of one server, as the caller's key sees them."""

    def __init__(self, reader: ServerReader) -> None:
        self._reader = reader
        self._client = reader.client
        # version id -> (when asked, hex MD5 -> signed download URL)
        self._blob_urls: dict[int, tuple[float, dict[str, str]]] = {}

    def find(self, entity: str, project: str, collection: str, ref: str) -> ArtifactRow | None:
        """The committed version ref ("v3", "latest", an alias) names, or None."""
        found = self._reader.graphql(FIND, project=project, entity=entity, name=f"{collection}:{ref}")
        node = (found.get("project") or {}).get("artifact")
        return self._row(node) if node and node["state"] == "COMMITTED" else None

    def manifest_text(self, row: ArtifactRow) -> str:
        artifact = self._reader.graphql(MANIFEST, id=_artifact_id(row.id))["artifact"]
        manifest = (artifact or {}).get("currentManifest")
        if not manifest:
            raise ArtifactsError(f"artifact {row.collection}:{row.version}: the server gave no manifest")
        return self._client.get(manifest["file"]["directUrl"]).content.decode("utf-8")

    def versions(self, row: ArtifactRow) -> list[ArtifactRow]:
        nodes = self._pages(VERSIONS, row, lambda a: a["artifactSequence"]["artifacts"])
        return [self._row(node) for node in nodes]

    def used_by(self, row: ArtifactRow) -> list[RunRow]:
        return [run_row(node) for node in self._pages(USED_BY, row, lambda a: a["usedBy"])]

    def logged_by(self, row: ArtifactRow) -> RunRow | None:
        artifact = self._reader.graphql(CREATED_BY, id=_artifact_id(row.id))["artifact"]
        if artifact is None:
            raise ArtifactsError(f"artifact {row.collection}:{row.version} is gone from the server")
        creator = artifact.get("createdBy")
        return run_row(creator) if creator and creator.get("__typename") == "Run" else None

    def run_artifacts(self, run: RunRow, logged: bool) -> list[ArtifactRow]:
        query, field = (
            (OUTPUT_ARTIFACTS, "outputArtifacts") if logged else (INPUT_ARTIFACTS, "inputArtifacts")
        )
        nodes: list[dict[str, Any]] = []
        after = None
        while True:
            project = self._reader.graphql(
                query, project=run.project, entity=run.entity, run=run.run_id, after=after, first=PAGE
            )["project"]
            found = ((project or {}).get("run") or {}).get(field)
            if found is None:
                raise ArtifactsError(f"run {run.entity}/{run.project}/{run.run_id} is gone from the server")
            nodes.extend(edge["node"] for edge in found["edges"])
            if not found["pageInfo"]["hasNextPage"]:
                break
            after = found["pageInfo"]["endCursor"]
        return [self._row(node) for node in nodes if node["state"] == "COMMITTED"]

    def blob_chunks(self, row: ArtifactRow, md5_hex: str) -> Iterator[bytes]:
        url = self._blob_url(row, md5_hex)
        try:
            response = self._client.get_stream(url)
        except Rejected as exc:
            if exc.status == 404:
                raise BlobMissing from None
            raise
        with response:
            try:
                yield from response.iter_content(CHUNK)
            except requests.RequestException as exc:  # cut mid-file: the whole file is fetched again
                raise Transient(f"the download from {self._client.base_url} was cut: {exc}") from exc

    def blob_where(self, row: ArtifactRow, md5_hex: str) -> str:
        return f"the server's copy ({row.entity}/{md5_hex} on {self._client.base_url})"

    def fetching(self, call: Callable[[], T]) -> T:
        deadline = time.monotonic() + READ_RETRY_SECONDS
        return self._client.retrying(call, stop=threading.Event(), deadline=deadline)

    def _blob_url(self, row: ArtifactRow, md5_hex: str) -> str:
        asked, urls = self._blob_urls.get(row.id, (0.0, {}))
        if time.monotonic() - asked > URLS_KEPT_SECONDS or not asked:
            urls = {}
            for node in self._pages(FILES, row, lambda a: a["files"]):
                urls[node["storagePath"].rpartition("/")[2]] = node["directUrl"]
            self._blob_urls[row.id] = (time.monotonic(), urls)
        if md5_hex not in urls:
            raise BlobMissing
        return urls[md5_hex]

    def _pages(
        self, query: str, row: ArtifactRow, connection: Callable[[dict[str, Any]], dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Every node of a connection of the version, a page at a time."""
        nodes: list[dict[str, Any]] = []
        after = None
        while True:
            artifact = self._reader.graphql(query, id=_artifact_id(row.id), after=after, first=PAGE)[
                "artifact"
            ]
            if artifact is None:
                raise ArtifactsError(f"artifact {row.collection}:{row.version} is gone from the server")
            found = connection(artifact)
            nodes.extend(edge["node"] for edge in found["edges"])
            if not found["pageInfo"]["hasNextPage"]:
                return nodes
            after = found["pageInfo"]["endCursor"]

    def _row(self, node: dict[str, Any]) -> ArtifactRow:
        sequence = node["artifactSequence"]
        creator = node.get("createdBy") or {}
        return ArtifactRow(
            id=_version_id(node["id"]),
            entity=sequence["project"]["entityName"],
            project=sequence["project"]["name"],
            type_name=node["artifactType"]["name"],
            collection=sequence["name"],
            version_index=node["versionIndex"],
            state=node["state"],
            digest=node["digest"],
            description=node.get("description"),
            metadata=jsonutil.loads(node["metadata"]) if node.get("metadata") else {},
            manifest=None,  # fetched when first needed (manifest_text)
            size=node["size"],
            file_count=node["fileCount"],
            run_id=creator.get("name"),
            created_at=_seconds(node["createdAt"]),
            updated_at=_seconds(node.get("updatedAt") or node["createdAt"]),
            aliases=tuple(alias["alias"] for alias in node["aliases"]),
        )


def _version_id(given: str) -> int:
    """n of W&B's id base64("Artifact:<n>")."""
    try:
        kind, _, number = base64.b64decode(given, validate=True).decode("ascii").partition(":")
        if kind == "Artifact" and number.isdigit():
            return int(number)
    except (binascii.Error, UnicodeDecodeError):
        pass
    raise ArtifactsError(f"the server sent an artifact id nbtrack cannot read: {given[:40]!r}")


def _artifact_id(version_id: int) -> str:
    return base64.b64encode(f"Artifact:{version_id}".encode()).decode("ascii")


def _seconds(text: str) -> float:
    """Seconds since the epoch of the server's ISO 8601 time (UTC when it names no offset)."""
    when = datetime.fromisoformat(text)
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()
