"""An artifact version's manifest in W&B's v1 JSON format: the one format nbtrack's SDK writes and
the wandb client uploads, parsed here for the SDK, the server's commit and file nodes, and gc.

    {"version": 1, "storagePolicy": "wandb-storage-policy-v1",
     "storagePolicyConfig": {"storageLayout": "V2"},
     "contents": {path: {"digest": <base64 MD5>, "size": <bytes>, "ref"?: <uri>, ...}}}

A file's digest is the base64 of the MD5 of its bytes, computed here in bounded chunks so a file
of any size hashes in constant memory. The manifest's own digest (the one createArtifact carries,
hex) is the MD5 of the line "wandb-artifact-manifest-v1\\n" then "<path>:<digest>\\n" for each
entry in path order: it depends only on the paths and file digests, so the same files give the
same version (the dedup of the store's create_artifact_version).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from nbtrack import jsonutil

__all__ = [
    "CHUNK",
    "Manifest",
    "ManifestEntry",
    "copy_checked",
    "hex_of_b64_md5",
    "md5_of_file",
    "parse_manifest",
]

CHUNK = 1 << 20  # bytes read at a time while hashing
_DIGEST_HEADER = b"wandb-artifact-manifest-v1\n"


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    """One file of a version: its path in the artifact, base64 MD5 and size; ref when the entry
    points outside the artifact (W&B's references: nbtrack stores no bytes for those)."""

    path: str
    digest: str
    size: int
    ref: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # other keys, kept as the client sent them

    @property
    def md5_hex(self) -> str | None:
        """The hex MD5 of a stored file (None for a reference or a digest that is no MD5)."""
        return None if self.ref else hex_of_b64_md5(self.digest)


@dataclass(slots=True)
class Manifest:
    """The entries of a version, by path."""

    entries: dict[str, ManifestEntry] = field(default_factory=dict)
    storage_layout: str = "V2"

    def digest(self) -> str:
        """The manifest's digest (hex), as W&B computes it from the paths and file digests."""
        hasher = hashlib.md5(_DIGEST_HEADER)
        for path in sorted(self.entries):
            hasher.update(f"{path}:{self.entries[path].digest}\n".encode())
        return hasher.hexdigest()

    def size(self) -> int:
        return sum(entry.size for entry in self.entries.values())

    def stored(self) -> list[ManifestEntry]:
        """The entries whose bytes are a blob (not references), in path order."""
        return [self.entries[path] for path in sorted(self.entries) if not self.entries[path].ref]

    def to_json(self) -> str:
        contents: dict[str, Any] = {}
        for path in sorted(self.entries):
            entry = self.entries[path]
            item: dict[str, Any] = {**entry.extra, "digest": entry.digest, "size": entry.size}
            if entry.ref:
                item["ref"] = entry.ref
            contents[path] = item
        return jsonutil.dumps_str(
            {
                "version": 1,
                "storagePolicy": "wandb-storage-policy-v1",
                "storagePolicyConfig": {"storageLayout": self.storage_layout},
                "contents": contents,
            }
        )


def parse_manifest(text: str | bytes) -> Manifest:
    """The manifest of W&B's v1 JSON text. ValueError if it is not JSON or has no `contents`
    object; an entry that is not an object, or has no string digest, is skipped (nothing can be
    fetched or freed for it), so a reader never misreads one entry as another."""
    try:
        raw = jsonutil.loads(text)
    except ValueError as exc:
        raise ValueError(f"the manifest is not JSON ({exc})") from None
    contents = raw.get("contents") if isinstance(raw, dict) else None
    if not isinstance(contents, dict):
        raise ValueError("the manifest has no `contents` object: not a W&B manifest")
    config = raw.get("storagePolicyConfig")
    layout = config.get("storageLayout") if isinstance(config, dict) else None
    manifest = Manifest(storage_layout=layout if isinstance(layout, str) else "V2")
    for path, item in contents.items():
        if not isinstance(item, dict) or not isinstance(item.get("digest"), str):
            continue
        size = item.get("size")
        ref = item.get("ref")
        manifest.entries[path] = ManifestEntry(
            path=path,
            digest=item["digest"],
            size=size if isinstance(size, int) and size >= 0 else 0,
            ref=ref if isinstance(ref, str) and ref else None,
            extra={k: v for k, v in item.items() if k not in ("digest", "size", "ref")},
        )
    return manifest


def hex_of_b64_md5(md5: str) -> str | None:
    """The hex form of a base64 MD5, or None if md5 is not the base64 of 16 bytes."""
    try:
        raw = base64.b64decode(md5, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw.hex() if len(raw) == 16 else None


def md5_of_file(path: str | Path, chunk: int = CHUNK) -> tuple[str, int]:
    """(base64 MD5, size) of the file's bytes, read chunk bytes at a time."""
    with open(path, "rb") as file:
        hasher, size = copy_hashing(file, None, chunk)
    return base64.b64encode(hasher.digest()).decode("ascii"), size


class Readable(Protocol):
    """A file, or a streamed HTTP body (boto3's StreamingBody): what copy_hashing reads."""

    def read(self, size: int, /) -> bytes: ...


def copy_hashing(reader: Readable, out: IO[bytes] | None, chunk: int = CHUNK) -> tuple[Any, int]:
    """Read reader to its end chunk bytes at a time, writing each chunk to out (if any): the MD5
    hasher of what was read, and its size. Bounded memory whatever the file's size."""
    hasher = hashlib.md5()
    size = 0
    while block := reader.read(chunk):
        hasher.update(block)
        size += len(block)
        if out is not None:
            out.write(block)
    return hasher, size


def copy_checked(source: str | Path, dest: Path, md5_hex: str, size: int) -> tuple[str, int]:
    """Copy source to dest, hashing it on the way (CHUNK bytes at a time), through a temporary
    file beside dest that is renamed into place only if the bytes have this MD5 (hex) and size.
    Returns what was read (hex MD5, size): anything else than asked leaves dest as it was.
    FileNotFoundError if source is missing."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(source, "rb") as reader:
        fd, temp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".partial")
        try:
            with os.fdopen(fd, "wb") as out:
                hasher, written = copy_hashing(reader, out)
            if hasher.hexdigest() == md5_hex and written == size:
                os.replace(temp_name, dest)
            else:
                os.unlink(temp_name)
            return hasher.hexdigest(), written
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp_name)
            raise
