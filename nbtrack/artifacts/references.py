"""An artifact's references (W&B's `add_reference`): entries that point at bytes kept outside
nbtrack, `file://` (a file or a folder) and `s3://bucket/key-or-prefix`, checksummed when added and
checked again when downloaded, never copied into the artifact's storage.

The entries are the ones the wandb client (0.31) writes, so a version's digest is the same whichever
client made it (docs/wandb-compat.md "Artifacts", captured):

- file://, checksum=True: one entry per file (a folder walked, symlinks to files followed), digest
  the base64 MD5 of its bytes (streamed), size, ref the URI (a folder's: URI + "/" + relative path),
  named the file's name or, in a folder, its relative path (under `name/` if given).
- file://, checksum=False: the same, but the digest is the base64 MD5 of the file's absolute
  `file://` URI, so nothing about its bytes is known.
- s3://, checksum=True: one entry per object (a key that is no object, or names a folder marker,
  is a prefix: every non-empty object under `key/`), digest the object's ETag, size, an `extra`
  object {"etag", "versionID" when the bucket keeps versions}; ref `s3://bucket/key` (without the
  `?versionId=` query: the version is in `versionID`).
- s3://, checksum=False: one entry, named `name` or the key, whose digest is the URI itself.

Download (fetch()) copies the referenced bytes through a temporary file beside the destination,
renamed into place only once checked: a file:// reference's MD5 and size, an s3:// object fetched
only if its ETag is still the entry's (If-Match), its size and (a single-part ETag being the MD5)
its MD5. Anything else is an ArtifactsError naming the entry and the reference; an entry added
with checksum=False is refused (nothing could tell the bytes are the ones logged).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit
from urllib.request import url2pathname

from nbtrack.artifacts.manifest import ManifestEntry, copy_hashing, md5_of_file
from nbtrack.errors import ArtifactsError
from nbtrack.sdk.values import check_file_name

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = ["DEFAULT_MAX_OBJECTS", "SCHEMES", "fetch", "reference_entries"]

SCHEMES = ("file", "s3")
DEFAULT_MAX_OBJECTS = 10_000_000  # W&B's default bound on the objects of a folder or prefix
_PLAIN_ETAG = re.compile(r"[0-9a-f]{32}")  # a single-part upload's ETag: the MD5 of its bytes


def reference_entries(
    uri: str, name: str | None = None, checksum: bool = True, max_objects: int | None = None
) -> list[ManifestEntry]:
    """The manifest entries of a reference; ValueError naming the URI for an unknown scheme, a
    path or object that is not there, or more than max_objects files or objects."""
    if not isinstance(uri, str):
        raise TypeError(f"a reference must be a URI string, not {uri.__class__.__name__}")
    if max_objects is not None and (
        isinstance(max_objects, bool) or not isinstance(max_objects, int) or max_objects < 1
    ):
        raise ValueError(f"max_objects must be a positive int, not {max_objects!r}")
    limit = max_objects or DEFAULT_MAX_OBJECTS
    prefix = None if name is None else check_file_name(name)
    scheme = urlsplit(uri).scheme
    if scheme == "file":
        entries = _file_entries(uri, prefix, checksum, limit)
    elif scheme == "s3":
        entries = _s3_entries(uri, prefix, checksum, limit)
    else:
        shown = f"scheme {scheme!r}" if scheme else "no scheme"
        raise ValueError(
            f"reference {uri!r}: {shown}; nbtrack references file:// (a local file or folder) and "
            "s3://bucket/key-or-prefix"
        )
    for entry in entries:
        check_file_name(entry.path)
    return entries


def _local_path(uri: str) -> str:
    parts = urlsplit(uri)
    if parts.netloc not in ("", "localhost"):
        raise ValueError(
            f"reference {uri!r}: a file:// URI names a path on this machine, not host {parts.netloc!r}"
        )
    return url2pathname(parts.path)


def _path_digest(path: str) -> str:
    """checksum=False: the base64 MD5 of the file's absolute URI, as W&B writes it."""
    uri = Path(path).resolve().as_uri()
    return base64.b64encode(hashlib.md5(uri.encode()).digest()).decode("ascii")


def _file_entries(uri: str, name: str | None, checksum: bool, limit: int) -> list[ManifestEntry]:
    local = _local_path(uri)

    def entry(path: str, entry_name: str, ref: str) -> ManifestEntry:
        if checksum:
            digest, size = md5_of_file(path)
        else:
            digest, size = _path_digest(path), os.path.getsize(path)
        return ManifestEntry(path=entry_name, digest=digest, size=size, ref=ref)

    if os.path.isfile(local):
        return [entry(local, name or os.path.basename(local), uri)]
    if not os.path.isdir(local):
        raise ValueError(f"reference {uri!r}: {local!r} is neither a file nor a folder")
    entries: list[ManifestEntry] = []
    for root, _folders, files in os.walk(local):
        for file in files:
            physical = os.path.join(root, file)
            if len(entries) >= limit:
                raise ValueError(
                    f"reference {uri!r} has more than {limit} files: "
                    "pass a larger max_objects to add_reference"
                )
            relative = Path(os.path.relpath(physical, local)).as_posix()
            entries.append(
                entry(physical, f"{name}/{relative}" if name else relative, f"{uri.rstrip('/')}/{relative}")
            )
    return entries


def _s3_parts(uri: str) -> tuple[str, str, str | None]:
    """(bucket, key, versionId or None) of s3://bucket/key[?versionId=...]."""
    parts = urlsplit(uri)
    if not parts.netloc:
        raise ValueError(f"reference {uri!r}: an s3:// URI names a bucket (s3://bucket/key-or-prefix)")
    return parts.netloc, parts.path[1:], dict(parse_qsl(parts.query)).get("versionId")


def s3_client(uri: str) -> S3Client:
    """A client of the S3 the AWS variables name (AWS_S3_ENDPOINT_URL, W&B's, first)."""
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise ValueError(f"reference {uri!r}: s3:// references need boto3 (pip install boto3)") from None
    endpoint = os.environ.get("AWS_S3_ENDPOINT_URL") or None
    config = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=10, read_timeout=60)
    return boto3.session.Session().client("s3", endpoint_url=endpoint, config=config)


def _s3_error(uri: str, exc: Exception) -> str:
    response: dict[str, Any] = getattr(exc, "response", None) or {}
    error = response.get("Error", {})
    return f"{error.get('Code', exc.__class__.__name__)}: {error.get('Message') or exc}"


def _s3_entries(uri: str, name: str | None, checksum: bool, limit: int) -> list[ManifestEntry]:
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, key, version = _s3_parts(uri)
    plain = f"s3://{bucket}/{key}"
    if not checksum:
        return [ManifestEntry(path=name or key or bucket, digest=plain, size=0, ref=plain)]
    client = s3_client(uri)
    try:
        if key:
            asked: dict[str, Any] = {"Bucket": bucket, "Key": key}
            if version:
                asked["VersionId"] = version
            try:
                head = client.head_object(**asked)
            except ClientError as exc:
                if version or exc.response.get("Error", {}).get("Code") not in (
                    "404",
                    "NoSuchKey",
                    "NotFound",
                ):
                    raise
                head = None
            if head is not None and "x-directory" not in (head.get("ContentType") or ""):
                extra = _extra(head["ETag"], head.get("VersionId"))
                entry_name = name or PurePosixPath(key).name
                return [
                    ManifestEntry(
                        path=entry_name,
                        digest=extra["etag"],
                        size=head["ContentLength"],
                        ref=plain,
                        extra={"extra": extra},
                    )
                ]
        entries = [
            _prefix_entry(bucket, key, name, *found) for found in _listed(client, bucket, key, limit, uri)
        ]
    except (BotoCoreError, ClientError) as exc:
        raise ValueError(f"reference {uri!r}: S3 answered {_s3_error(uri, exc)}") from None
    if not entries:
        raise ValueError(f"reference {uri!r}: no object at that key nor under that prefix")
    return entries


def _extra(etag: str, version: str | None) -> dict[str, Any]:
    """An S3 entry's `extra` object: {"etag", "versionID"?} (kept under the entry's "extra" key,
    as the client writes it: ManifestEntry.extra holds an entry's other keys)."""
    extra: dict[str, Any] = {"etag": etag.strip('"')}
    if version and version != "null":
        extra["versionID"] = version
    return extra


def _s3_extra(entry: ManifestEntry) -> dict[str, Any]:
    extra = entry.extra.get("extra")
    return extra if isinstance(extra, dict) else {}


def _prefix_entry(
    bucket: str, key: str, name: str | None, obj_key: str, etag: str, size: int, version: str | None
) -> ManifestEntry:
    folder = key.rstrip("/")
    relative = obj_key[len(folder) + 1 :] if folder else obj_key
    extra = _extra(etag, version)
    return ManifestEntry(
        path=f"{name}/{relative}" if name else relative,
        digest=extra["etag"],
        size=size,
        ref=f"s3://{bucket}/{folder}/{relative}" if folder else f"s3://{bucket}/{relative}",
        extra={"extra": extra},
    )


def _listed(
    client: S3Client, bucket: str, key: str, limit: int, uri: str
) -> Iterator[tuple[str, str, int, str | None]]:
    """(key, ETag, size, versionId) of each non-empty object under the prefix `key/` (its current
    version, when the bucket keeps versions); ValueError past limit objects."""
    prefix = key.rstrip("/") + "/" if key.rstrip("/") else ""
    versioned = client.get_bucket_versioning(Bucket=bucket).get("Status") in ("Enabled", "Suspended")
    count = 0
    if versioned:
        pages: Iterable[Any] = client.get_paginator("list_object_versions").paginate(
            Bucket=bucket, Prefix=prefix
        )
        found = (
            (o["Key"], o["ETag"], o["Size"], o.get("VersionId"))
            for page in pages
            for o in page.get("Versions", [])
            if o.get("IsLatest")
        )
    else:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        found = ((o["Key"], o["ETag"], o["Size"], None) for page in pages for o in page.get("Contents", []))
    for obj_key, etag, size, version in found:
        if size <= 0:  # folder markers, and (as W&B does) empty objects under a prefix
            continue
        count += 1
        if count > limit:
            raise ValueError(
                f"reference {uri!r} has more than {limit} objects: pass a larger max_objects to add_reference"
            )
        yield obj_key, etag, size, version


def fetch(entry: ManifestEntry, dest: Path, what: str) -> None:
    """Write the referenced bytes of entry at dest, checked against the entry (ArtifactsError
    starting with what otherwise, dest left as it was)."""
    assert entry.ref is not None
    scheme = urlsplit(entry.ref).scheme
    if scheme == "file":
        _fetch_file(entry, dest, what)
    elif scheme == "s3":
        _fetch_s3(entry, dest, what)
    else:
        raise ArtifactsError(
            f"{what}: a reference to {entry.ref!r}, a scheme nbtrack cannot fetch (it fetches file:// and s3://)"
        )


def _unchecked(entry: ManifestEntry, what: str) -> ArtifactsError:
    return ArtifactsError(
        f"{what}: the reference {entry.ref!r} was added with checksum=False, so nothing says its "
        "bytes are the ones logged; nbtrack does not download it (read it from there yourself)"
    )


@contextlib.contextmanager
def _temporary(dest: Path) -> Iterator[IO[bytes]]:
    """A file beside dest that becomes dest if the block ends without an exception."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
        os.replace(temp_name, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise


def _fetch_file(entry: ManifestEntry, dest: Path, what: str) -> None:
    assert entry.ref is not None
    try:
        local = _local_path(entry.ref)
    except ValueError as exc:
        raise ArtifactsError(f"{what}: {exc}") from None
    if not os.path.isfile(local):
        raise ArtifactsError(f"{what}: the referenced file {local!r} ({entry.ref}) is missing")
    if entry.digest == _path_digest(local):
        raise _unchecked(entry, what)
    with _temporary(dest) as out:
        with open(local, "rb") as source:
            hasher, written = copy_hashing(source, out)
        digest = base64.b64encode(hasher.digest()).decode("ascii")
        if digest != entry.digest or written != entry.size:
            raise ArtifactsError(
                f"{what}: the referenced file {local!r} changed since it was logged ({written} bytes "
                f"of MD5 {digest}, the manifest says {entry.size} bytes of MD5 {entry.digest})"
            )


def _fetch_s3(entry: ManifestEntry, dest: Path, what: str) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    assert entry.ref is not None
    if entry.digest == entry.ref:
        raise _unchecked(entry, what)
    bucket, key, _ = _s3_parts(entry.ref)
    extra = _s3_extra(entry)
    etag = str(extra.get("etag") or entry.digest)
    asked: dict[str, Any] = {"Bucket": bucket, "Key": key, "IfMatch": f'"{etag}"'}
    if extra.get("versionID"):
        asked["VersionId"] = str(extra["versionID"])
    try:
        client = s3_client(entry.ref)
        answer = client.get_object(**asked)
    except ValueError as exc:
        raise ArtifactsError(f"{what}: {exc}") from None
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if code in ("404", "NoSuchKey", "NoSuchVersion", "NotFound"):
            raise ArtifactsError(f"{what}: the referenced object {entry.ref} is missing") from None
        if code in ("412", "PreconditionFailed"):
            raise ArtifactsError(
                f"{what}: the referenced object {entry.ref} changed since it was logged (its ETag is "
                f"no longer {etag})"
            ) from None
        raise ArtifactsError(f"{what}: S3 answered {_s3_error(entry.ref, exc)} for {entry.ref}") from None
    except BotoCoreError as exc:
        raise ArtifactsError(f"{what}: S3 did not answer for {entry.ref} ({exc})") from None
    body = answer["Body"]
    with _temporary(dest) as out:
        try:
            hasher, written = copy_hashing(body, out)
        except BotoCoreError as exc:
            raise ArtifactsError(f"{what}: reading {entry.ref} failed ({exc})") from None
        finally:
            body.close()
        plain_md5 = _PLAIN_ETAG.fullmatch(etag) is not None
        if written != entry.size or (plain_md5 and hasher.hexdigest() != etag):
            raise ArtifactsError(
                f"{what}: the referenced object {entry.ref} is not the one logged ({written} bytes of "
                f"MD5 {hasher.hexdigest()}, the manifest says {entry.size} bytes of ETag {etag})"
            )
