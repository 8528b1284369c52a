"""The files backend (file_backend.py) of an S3-compatible bucket: key "a/b" is s3://BUCKET/PREFIX/a/b.

boto3 reads the endpoint, region and credentials the standard way (AWS_ENDPOINT_URL,
AWS_REGION, AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_PROFILE, ~/.aws/config and
credentials, instance roles), so AWS, MinIO, SeaweedFS, Ceph and R2 all work. With an endpoint
of its own (AWS_ENDPOINT_URL[_S3]) a store is addressed path-style (http://host/bucket/key),
which all of those answer; AWS itself keeps boto3's default.

An upload streams through: parts of PART bytes go up as they arrive (a multipart upload, one
part in memory at a time), and one smaller than a part is a single PUT. S3 makes the object
visible only when the PUT or the multipart upload completes, so a reader never sees half of it;
one that fails or goes past its limit is aborted and leaves nothing. create() is a PUT with
If-None-Match: * (a conditional write: AWS S3, SeaweedFS, MinIO, R2 and Ceph answer 412 when
the key exists).
"""

from __future__ import annotations

import builtins
import contextlib
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from nbtrack.errors import UsageError
from nbtrack.server.body import too_large
from nbtrack.server.errors import ApiError
from nbtrack.server.file_backend import CHUNK, Opened, StoredObject, parse_s3_url

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef, ObjectIdentifierTypeDef

__all__ = ["PART", "S3Backend"]

PART = 8 << 20  # bytes of a multipart upload's part (S3's least is 5 MiB): an upload's memory
_MISSING = frozenset({"404", "NoSuchKey", "NotFound"})
_DELETE_BATCH = 1000  # keys one DeleteObjects may name
MAX_KEY = 1024  # bytes of an object's key (UTF-8), S3's limit


class S3Backend:
    def __init__(self, client: S3Client, bucket: str, prefix: str) -> None:
        self._s3 = client
        self.bucket = bucket
        self._prefix = f"{prefix}/" if prefix else ""
        self.location = f"s3://{bucket}/{prefix}".rstrip("/")

    @classmethod
    def from_url(cls, url: str) -> S3Backend:
        """The backend of s3://BUCKET[/PREFIX], once the bucket answers; UsageError saying why not."""
        bucket, prefix = parse_s3_url(url)
        own_endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        config = Config(
            retries={"mode": "standard", "max_attempts": 5},
            s3={"addressing_style": "path"} if own_endpoint else {},
            connect_timeout=10,
            read_timeout=60,
            max_pool_connections=32,
        )
        client = boto3.session.Session().client("s3", config=config)
        try:
            client.head_bucket(Bucket=bucket)
        except (BotoCoreError, ClientError) as exc:
            where = own_endpoint or "AWS S3 (no AWS_ENDPOINT_URL set)"
            raise UsageError(f"--files {url}: bucket {bucket!r} at {where} does not answer: {exc}") from None
        return cls(client, bucket, prefix)

    async def save(self, key: str, chunks: AsyncIterator[bytes], limit: int, what: str) -> int:
        full = self._key(key)
        buffer = bytearray()
        upload_id: str | None = None
        parts: builtins.list[CompletedPartTypeDef] = []
        size = 0
        try:
            async for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise too_large(what, limit)
                buffer += chunk
                while len(buffer) >= PART:
                    if upload_id is None:
                        upload_id = await anyio.to_thread.run_sync(self._start_upload, full)
                    with memoryview(buffer) as view:  # one copy of the part, none of the rest
                        part = bytes(view[:PART])
                    del buffer[:PART]
                    parts.append(
                        await anyio.to_thread.run_sync(self._upload_part, full, upload_id, parts, part)
                    )
            if upload_id is None:
                await anyio.to_thread.run_sync(self._put, full, bytes(buffer))
            else:
                if buffer:
                    parts.append(
                        await anyio.to_thread.run_sync(
                            self._upload_part, full, upload_id, parts, bytes(buffer)
                        )
                    )
                await anyio.to_thread.run_sync(self._complete, full, upload_id, parts)
                upload_id = None
        except BaseException as exc:
            if upload_id is not None:
                # Shielded: an upload cut off by its client (a cancellation) is aborted too.
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(self._abort, full, upload_id)
            if isinstance(exc, BotoCoreError | ClientError):
                raise self._failed("write", key, exc) from exc
            raise
        return size

    def put_file(self, key: str, path: Path) -> None:
        try:
            self._s3.upload_file(str(path), self.bucket, self._key(key))  # multipart past 8 MB, streamed
        except (BotoCoreError, ClientError) as exc:
            raise self._failed("write", key, exc) from exc
        path.unlink(missing_ok=True)

    def temp_path(self) -> Path:
        fd, name = tempfile.mkstemp(prefix="nbtrack-", suffix=".part")
        os.close(fd)
        return Path(name)

    def create(self, key: str, data: bytes) -> bool:
        try:
            self._s3.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, IfNoneMatch="*")
            return True
        except ClientError as exc:
            # 412: it exists; 409: another conditional write of it is under way (AWS), and wins.
            if _code(exc) in ("PreconditionFailed", "412", "ConditionalRequestConflict", "409"):
                return False
            raise self._failed("write", key, exc) from exc
        except BotoCoreError as exc:
            raise self._failed("write", key, exc) from exc

    def read_small(self, key: str) -> bytes | None:
        opened = self.open(key)
        return None if opened is None else b"".join(opened.chunks)

    def stat(self, key: str) -> StoredObject | None:
        try:
            head = self._s3.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if _code(exc) in _MISSING:
                return None
            raise self._failed("read", key, exc) from exc
        except BotoCoreError as exc:
            raise self._failed("read", key, exc) from exc
        return StoredObject(key, head["ContentLength"], head["LastModified"].timestamp(), head["ETag"])

    def open(self, key: str, first: int = 0, last: int | None = None) -> Opened | None:
        asked: dict[str, str] = {}
        if first or last is not None:
            asked["Range"] = f"bytes={first}-{'' if last is None else last}"
        try:
            answer = self._s3.get_object(Bucket=self.bucket, Key=self._key(key), **asked)  # type: ignore[arg-type]
        except ClientError as exc:
            if _code(exc) in _MISSING:
                return None
            raise self._failed("read", key, exc) from exc
        except BotoCoreError as exc:
            raise self._failed("read", key, exc) from exc
        content_range = answer.get("ContentRange")
        size = int(content_range.rpartition("/")[2]) if content_range else answer["ContentLength"]
        return Opened(size, _body_chunks(answer["Body"]))

    def list(self, prefix: str) -> list[StoredObject]:
        start = self._key(prefix) + "/"
        found = []
        try:
            for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=start):
                for item in page.get("Contents", []):
                    found.append(
                        StoredObject(
                            item["Key"][len(start) :],
                            item["Size"],
                            item["LastModified"].timestamp(),
                            item.get("ETag", ""),
                        )
                    )
        except (BotoCoreError, ClientError) as exc:
            raise self._failed("list", prefix, exc) from exc
        return found

    def delete(self, key: str) -> None:
        try:
            self._s3.delete_object(Bucket=self.bucket, Key=self._key(key))
        except (BotoCoreError, ClientError) as exc:
            raise self._failed("delete", key, exc) from exc

    def delete_prefix(self, prefix: str) -> None:
        keys = [self._key(f"{prefix}/{found.key}") for found in self.list(prefix)]
        try:
            for start in range(0, len(keys), _DELETE_BATCH):
                batch: builtins.list[ObjectIdentifierTypeDef] = [
                    {"Key": key} for key in keys[start : start + _DELETE_BATCH]
                ]
                answer = self._s3.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
                if answer.get("Errors"):
                    error = answer["Errors"][0]
                    raise ApiError(
                        "INTERNAL",
                        f"the file store {self.location} did not delete {error.get('Key')}: "
                        f"{error.get('Code')} {error.get('Message')}",
                    )
        except (BotoCoreError, ClientError) as exc:
            raise self._failed("delete", prefix, exc) from exc

    def _key(self, key: str) -> str:
        full = self._prefix + key
        size = len(full.encode("utf-8", "surrogatepass"))
        if size > MAX_KEY:
            raise ApiError(
                "BAD_REQUEST",
                f"file name {key.rpartition('/')[2][:100]!r} is too long for the bucket: its key "
                f"{full[:100]!r}... has {size} bytes, S3 allows {MAX_KEY}",
            )
        return full

    def _start_upload(self, full: str) -> str:
        return self._s3.create_multipart_upload(Bucket=self.bucket, Key=full)["UploadId"]

    def _upload_part(
        self, full: str, upload_id: str, done: builtins.list[CompletedPartTypeDef], data: bytes
    ) -> CompletedPartTypeDef:
        number = len(done) + 1
        answer = self._s3.upload_part(
            Bucket=self.bucket, Key=full, UploadId=upload_id, PartNumber=number, Body=data
        )
        return {"PartNumber": number, "ETag": answer["ETag"]}

    def _complete(self, full: str, upload_id: str, parts: builtins.list[CompletedPartTypeDef]) -> None:
        self._s3.complete_multipart_upload(
            Bucket=self.bucket,
            Key=full,
            UploadId=upload_id,
            MultipartUpload={"Parts": parts},
        )

    def _put(self, full: str, data: bytes) -> None:
        self._s3.put_object(Bucket=self.bucket, Key=full, Body=data)

    def _abort(self, full: str, upload_id: str) -> None:
        # If this fails too, the bucket's lifecycle rule for incomplete uploads is the backstop.
        with contextlib.suppress(BotoCoreError, ClientError):
            self._s3.abort_multipart_upload(Bucket=self.bucket, Key=full, UploadId=upload_id)

    def _failed(self, doing: str, key: str, exc: Exception) -> ApiError:
        return ApiError("INTERNAL", f"the file store {self.location} could not {doing} {key!r}: {exc}")


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _body_chunks(body: Any) -> Iterator[bytes]:
    """A GetObject body in chunks, its connection given back at the end (or when cut off)."""
    try:
        yield from body.iter_chunks(CHUNK)
    finally:
        body.close()
