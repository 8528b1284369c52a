"""The nodes of an artifact version's files and manifest (File, ArtifactManifest), W&B's ids
(base64 of "<kind>:<n>") and the paging of W&B's connections, for artifact_resolvers.py and
artifact_mutations.py. A file's directUrl is a signed download URL of its blob (artifact_files.py):
the client fetches it without a key. A reference (an entry with a `ref`, W&B's add_reference) has
no blob: its url and directUrl are the reference's own URI (file://, s3://), which the wandb client
never fetches from the server (it reads the reference itself, checked against the entry's digest),
and storagePath is null. The client downloads only the entries this file list names, so the
references are listed too.
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
from typing import Any

from nbtrack.artifacts.manifest import ManifestEntry, parse_manifest
from nbtrack.server.artifact_files import DOWNLOAD_PURPOSE, blob_token, hex_of_md5, manifest_token
from nbtrack.server.errors import ApiError
from nbtrack.server.resolvers import Info, numeric_id
from nbtrack.server.wandb_resolvers import wandb_time
from nbtrack.store.artifacts import ArtifactRow

__all__ = [
    "current_manifest",
    "decode_id",
    "encode_id",
    "files_by_entries",
    "files_page",
    "manifest_files",
    "page",
]


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


def page(items: list[Any], first: int | None, after: str | None, **extra: Any) -> dict[str, Any]:
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


def manifest_files(row: ArtifactRow) -> list[ManifestEntry]:
    """Every entry of the committed manifest (stored files and references), in path order."""
    if row.manifest is None:
        return []
    entries = parse_manifest(row.manifest).entries
    return [entries[path] for path in sorted(entries)]


class _FileNode:
    """A File node of an artifact's file (the File type of the W&B dialect, wandb_files.py's shape)."""

    def __init__(self, row: ArtifactRow, entry: ManifestEntry, info: Info) -> None:
        context = info.context
        path = entry.path
        self.id = encode_id("File", int(numeric_id(f"{row.id}/{path}")))
        self.name = path
        self.displayName = path.rsplit("/", 1)[-1]
        self.digest = entry.digest
        self.sizeBytes = entry.size
        self.mimetype = mimetypes.guess_type(path)[0] or "application/octet-stream"
        self.updatedAt = wandb_time(row.updated_at)
        if entry.ref:
            # A reference: its digest (an ETag, a base64 MD5 or, checksum=False, a URI) as md5,
            # which is non-null in the File type.
            self.storagePath: str | None = None
            self._md5 = entry.digest
            self.directUrl = entry.ref
            return
        md5_hex = hex_of_md5(entry.digest)
        self.storagePath = f"{row.entity}/{md5_hex}"
        self._md5 = entry.digest
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


def files_page(
    row: ArtifactRow,
    info: Info,
    names: list[str] | None = None,
    after: str | None = None,
    first: int | None = None,
) -> dict[str, Any]:
    found = manifest_files(row)
    if names:
        wanted = set(names)
        found = [entry for entry in found if entry.path in wanted]
    return page([_FileNode(row, entry, info) for entry in found], first, after)


def files_by_entries(
    row: ArtifactRow,
    info: Info,
    storageLayout: str,
    manifestVersion: str,
    entries: list[dict[str, Any]] | None = None,
    storageRegion: str | None = None,
) -> dict[str, Any]:
    if entries is None:
        return files_page(row, info)
    listed = {entry.path: entry for entry in manifest_files(row)}
    nodes = []
    for entry in entries:
        known = listed.get(entry["name"])
        if known is None or known.digest != entry["digest"]:
            raise ApiError(
                "NOT_FOUND",
                f"artifact version {row.collection}:{row.version} has no file {entry['name'][:200]!r}",
            )
        nodes.append(_FileNode(row, known, info))
    return page(nodes, None, None)


def current_manifest(row: ArtifactRow, info: Info) -> dict[str, Any] | None:
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
