"""Where the server keeps its files (run files, history exports): the one interface both backends
give, a local folder (folder_backend.py, the default) or an S3-compatible bucket (s3_backend.py).

Keys are "/"-separated relative paths the callers have checked (files.py, history_export.py): no
empty, "." or ".." step, no backslash, no NUL. Every write is whole or nothing: a reader never
sees half an object, and a failed write leaves the old one (or none).

`--files` picks the backend: `s3://BUCKET[/PREFIX]` is a bucket (its endpoint, region and
credentials come from the standard AWS variables and files, as boto3 reads them), anything else
a folder.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from nbtrack.errors import UsageError

__all__ = [
    "FileBackend",
    "Opened",
    "StoredObject",
    "is_s3_url",
    "md5_base64",
    "open_file_backend",
    "parse_s3_url",
]

CHUNK = 1 << 20  # bytes a download is read and sent in
_MD5_CACHE_SIZE = 4096
_md5_cache: OrderedDict[tuple[str, str, str], str] = OrderedDict()
_md5_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class StoredObject:
    key: str  # relative to the prefix listed
    size: int
    updated_at: float  # seconds since the epoch
    version: str  # changes whenever the object is written again (an mtime, an ETag)


@dataclass(frozen=True, slots=True)
class Opened:
    """An object being read: its whole size and the bytes asked (all, or one range), which the
    caller must either iterate to the end or close (chunks.close())."""

    size: int
    chunks: Iterator[bytes]


class FileBackend(Protocol):
    location: str  # for people: a folder's path, or s3://bucket/prefix

    async def save(self, key: str, chunks: AsyncIterator[bytes], limit: int, what: str) -> int:
        """Write key from chunks, streamed (never held whole in memory); its size. ApiError
        PAYLOAD_TOO_LARGE (naming what) past limit bytes, and then nothing is written."""
        ...

    def put_file(self, key: str, path: Path) -> None:
        """Write key from the local file path (made by temp_path()), which is then gone."""
        ...

    def temp_path(self) -> Path:
        """A new empty local file to write and hand to put_file (the caller removes it on failure)."""
        ...

    def create(self, key: str, data: bytes) -> bool:
        """Write key only if it does not exist (False then): one writer of several wins."""
        ...

    def read_small(self, key: str) -> bytes | None:
        """A small object's bytes (None if there is none)."""
        ...

    def stat(self, key: str) -> StoredObject | None: ...

    def open(self, key: str, first: int = 0, last: int | None = None) -> Opened | None:
        """key's bytes first..last (inclusive; None: to the end); None if there is no such object."""
        ...

    def list(self, prefix: str) -> list[StoredObject]:
        """The objects under prefix/ (keys relative to it), in no particular order."""
        ...

    def delete(self, key: str) -> None: ...

    def delete_prefix(self, prefix: str) -> None:
        """Remove every object under prefix/."""
        ...


def is_s3_url(spec: str) -> bool:
    return spec.startswith("s3://")


def parse_s3_url(url: str) -> tuple[str, str]:
    """(bucket, prefix without slashes at its ends) of s3://BUCKET[/PREFIX]; UsageError if not one."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
        raise UsageError(f"--files {url!r} is not an s3://BUCKET[/PREFIX] URL")
    prefix = parts.path.strip("/")
    if any(step in ("", ".", "..") for step in prefix.split("/")) and prefix:
        raise UsageError(f"--files {url!r}: the prefix may not have empty, . or .. steps")
    return parts.netloc, prefix


def open_file_backend(spec: str | Path) -> FileBackend:
    """The backend --files names: s3://BUCKET[/PREFIX], or a folder."""
    if isinstance(spec, str) and is_s3_url(spec):
        from nbtrack.server.s3_backend import S3Backend  # boto3 is imported only when used

        return S3Backend.from_url(spec)
    from nbtrack.server.folder_backend import FolderBackend

    return FolderBackend(Path(spec))


def md5_base64(backend: FileBackend, key: str) -> str | None:
    """base64 of the object's MD5 digest (as W&B gives File.md5); remembered per object version,
    so a file is read once however often it is listed. None if there is no such object."""
    found = backend.stat(key)
    if found is None:
        return None
    cache_key = (backend.location, key, found.version)
    with _md5_lock:
        known = _md5_cache.get(cache_key)
        if known is not None:
            _md5_cache.move_to_end(cache_key)
            return known
    opened = backend.open(key)
    if opened is None:
        return None
    digest = hashlib.md5(usedforsecurity=False)
    for chunk in opened.chunks:
        digest.update(chunk)
    value = base64.b64encode(digest.digest()).decode("ascii")
    with _md5_lock:
        _md5_cache[cache_key] = value
        while len(_md5_cache) > _MD5_CACHE_SIZE:
            _md5_cache.popitem(last=False)
    return value
