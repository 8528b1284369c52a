"""Artifact files in the server's file backend: stored once per entity by content, as W&B's client
addresses them (by the MD5 its manifests carry), and the manifests of pending versions.

Keys: `~artifacts/<entity>/<hex MD5>` for a file's bytes, `~artifacts/<entity>/manifests/<id>`
for the manifest a PENDING version's client uploads (read into the store at commit, which keeps
it from then on). Keys starting with "~" are the server's own (files.py).

Uploads (PUT, signed URL from createArtifactFiles) are verified: the body is streamed to a local
temporary file while its MD5 is computed, and only a body whose MD5 is the one in the URL reaches
the blob's key, and only then is the blob recorded in the store (`record_blob`). So a stored blob
always holds the bytes its digest says, a failed or corrupt upload leaves nothing behind, and a
second upload of the same digest (two versions racing) writes the same bytes. The digest is the
client's MD5: an MD5 collision (two files with one digest) would make the second file read as the
first; the blobs are per entity, so only the entity's own files can collide.

Downloads: `GET /artifacts/<entity>/<hex>` (wandb's storage layout V1) and
`/artifactsV2/<region>/<entity>/.../<hex>/<name>` (V2), with the caller's key (Basic or Bearer), or
with a signed token (the directUrl of filesByManifestEntries and files, which the client fetches
without a key).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import anyio
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from nbtrack.artifacts.manifest import hex_of_b64_md5
from nbtrack.server.body import body_chunks, check_length, log_if_too_large, too_large
from nbtrack.server.errors import ApiError
from nbtrack.server.file_backend import FileBackend
from nbtrack.server.signing import UrlSigner
from nbtrack.store import Store
from nbtrack.store.artifact_rows import ArtifactRow
from nbtrack.vocabulary import ARTIFACT_BLOBS

__all__ = [
    "UPLOAD_PURPOSE",
    "ArtifactFiles",
    "blob_key",
    "hex_of_md5",
    "manifest_key",
]

_HEX_MD5 = re.compile(r"[0-9a-f]{32}")
_PREFIX = ARTIFACT_BLOBS
UPLOAD_PURPOSE = "artifact-upload"
DOWNLOAD_PURPOSE = "artifact-download"
MANIFEST_PURPOSE = "artifact-manifest"


def hex_of_md5(md5: str) -> str:
    """The hex form of a base64 MD5 (as W&B's manifests carry it); ApiError BAD_REQUEST if not one."""
    md5_hex = hex_of_b64_md5(md5)
    if md5_hex is None:
        raise ApiError("BAD_REQUEST", f"{md5[:60]!r} is not the base64 of an MD5 digest")
    return md5_hex


def blob_key(entity: str, md5_hex: str) -> str:
    if not _HEX_MD5.fullmatch(md5_hex):
        raise ApiError("BAD_REQUEST", f"{md5_hex[:60]!r} is not a hex MD5 digest")
    return f"{_PREFIX}/{entity}/{md5_hex}"


def manifest_key(entity: str, version_id: int) -> str:
    return f"{_PREFIX}/{entity}/manifests/{version_id}"


def blob_token(signer: UrlSigner, entity: str, md5_hex: str, purpose: str) -> str:
    return signer.token(entity, _PREFIX, "blob", md5_hex, purpose=purpose)


def manifest_token(signer: UrlSigner, entity: str, version_id: int) -> str:
    return signer.token(entity, _PREFIX, "manifest", str(version_id), purpose=MANIFEST_PURPOSE)


class ArtifactFiles:
    """The HTTP endpoints of artifact files (routes in app.py)."""

    def __init__(self, store: Store, backend: FileBackend, signer: UrlSigner, max_upload: int) -> None:
        self.store = store
        self.backend = backend
        self.signer = signer
        self.max_upload = max_upload

    async def upload_blob(self, request: Request) -> Response:
        """PUT of a file's bytes to its signed URL: kept only if their MD5 is the URL's."""
        entity, md5_hex = request.path_params["entity"], request.path_params["md5"]
        key = blob_key(entity, md5_hex)
        self.signer.check(
            request.query_params.get("token"), entity, _PREFIX, "blob", md5_hex, purpose=UPLOAD_PURPOSE
        )
        try:
            await self._receive_blob(request, entity, md5_hex, key)
        except ApiError as exc:
            log_if_too_large(f"artifact file {md5_hex} of {entity}", exc)
            raise
        return Response(status_code=200)

    async def _receive_blob(self, request: Request, entity: str, md5_hex: str, key: str) -> None:
        check_length(request, self.max_upload)
        temp = await run_in_threadpool(self.backend.temp_path)
        try:
            digest = hashlib.md5(usedforsecurity=False)
            size = 0
            async with await anyio.open_file(temp, "wb") as out:
                async for chunk in body_chunks(request):
                    size += len(chunk)
                    if size > self.max_upload:
                        raise too_large(f"artifact file {md5_hex}", self.max_upload)
                    digest.update(chunk)
                    await out.write(chunk)
            if digest.hexdigest() != md5_hex:
                raise ApiError(
                    "BAD_REQUEST",
                    f"the uploaded bytes' MD5 is {digest.hexdigest()}, not {md5_hex} as the URL says: "
                    "not stored (upload the file again)",
                )
            await run_in_threadpool(self._store_blob, entity, md5_hex, key, temp, size)
        finally:
            Path(temp).unlink(missing_ok=True)

    def _store_blob(self, entity: str, md5_hex: str, key: str, temp: Path, size: int) -> None:
        """Write the blob and record it. `nbtrack server gc` may remove an unrecorded object of the
        same digest (an old orphan it listed before this write) between the two: the record
        checks, under the entity's lock that gc holds while it removes, that the object is still
        there; if not, the upload fails (the client sends it again) rather than leave a record
        without its bytes."""
        self.backend.put_file(key, temp)
        if not self.store.record_blob(entity, md5_hex, size, lambda: self.backend.stat(key) is not None):
            raise ApiError(
                "CONFLICT", f"artifact file {md5_hex} was removed by gc as it was written: upload it again"
            )

    async def upload_manifest(self, request: Request) -> Response:
        """PUT of a pending version's manifest (signed URL from createArtifactManifest)."""
        entity, version, found = await self._manifest_request(request)
        if found is None:
            raise ApiError("NOT_FOUND", f"artifact version {version} does not exist")
        if found.state != "PENDING":  # its manifest is the store's now, and final
            raise ApiError(
                "CONFLICT", f"artifact {found.collection}:{found.version} is committed: its manifest is final"
            )
        check_length(request, self.max_upload)
        await self.backend.save(
            manifest_key(entity, int(version)), body_chunks(request), self.max_upload, "the artifact manifest"
        )
        return Response(status_code=200)

    async def download_manifest(self, request: Request) -> Response:
        """GET of a version's manifest (its directUrl): the store's copy once committed."""
        _, version, found = await self._manifest_request(request)
        if found is None or found.manifest is None:
            raise ApiError("NOT_FOUND", f"artifact version {version} has no committed manifest")
        return Response(found.manifest, media_type="application/json")

    async def _manifest_request(self, request: Request) -> tuple[str, str, ArtifactRow | None]:
        """A manifest URL's entity, version id and version (None: none of that entity's), its
        signature checked."""
        entity, version = request.path_params["entity"], request.path_params["version"]
        if not version.isdigit() or len(version) > 18:
            raise ApiError("NOT_FOUND", f"no artifact manifest {version[:40]!r}")
        self.signer.check(
            request.query_params.get("token"), entity, _PREFIX, "manifest", version, purpose=MANIFEST_PURPOSE
        )
        found = await run_in_threadpool(self.store.get_artifact_version, int(version))
        return entity, version, found if found is not None and found.entity == entity else None

    def blob_to_serve(self, entity: str, md5_hex: str, token: str | None, caller: str | None) -> str:
        """The key of the blob asked; ApiError unless the caller is its entity or the token is valid."""
        key = blob_key(entity, md5_hex)
        if token is not None:
            self.signer.check(token, entity, _PREFIX, "blob", md5_hex, purpose=DOWNLOAD_PURPOSE)
        elif caller != entity:
            raise ApiError("NOT_FOUND", f"no artifact file {md5_hex} of entity {entity!r}")
        return key


def v2_blob(path: str) -> tuple[str, str]:
    """(entity, hex MD5) of a V2 download path: <region>/<entity>/<project>/<collection>/
    [<artifact id>/]<birth artifact id>/<hex>/<name>."""
    steps = path.split("/")
    if len(steps) < 6:
        raise ApiError("NOT_FOUND", f"/artifactsV2/{path[:200]} is not an artifact file's path")
    return steps[1], steps[-2]
