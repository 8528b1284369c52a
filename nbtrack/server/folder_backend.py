"""The files backend (file_backend.py) of a local folder: key "a/b/c" is <root>/a/b/c.

A write streams into a temporary file under <root>/~uploads (no entity can be named so: the same
file system, so the rename into place is atomic) and is renamed into place when complete, so a
reader never sees half a file and a failed write leaves nothing behind. Temporary files a crashed
writer left are removed after an hour.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import BinaryIO

import anyio

from nbtrack.server.body import too_large
from nbtrack.server.errors import ApiError
from nbtrack.server.file_backend import CHUNK, Opened, StoredObject

__all__ = ["TEMP_FOLDER", "FolderBackend"]

TEMP_FOLDER = "~uploads"
_STALE_PART = 3600.0  # a temporary file this old (seconds) is a crashed writer's
_NAME_MAX = 255  # bytes of a folder or file name on Linux's usual file systems (ext4, xfs)


class FolderBackend:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.location = str(root)

    async def save(self, key: str, chunks: AsyncIterator[bytes], limit: int, what: str) -> int:
        temp = self.temp_path()
        try:
            size = 0
            async with await anyio.open_file(temp, "wb") as out:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > limit:
                        raise too_large(what, limit)
                    await out.write(chunk)
            self.put_file(key, temp)
        finally:
            temp.unlink(missing_ok=True)
        return size

    def put_file(self, key: str, path: Path) -> None:
        target = self.root / key
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
        except (NotADirectoryError, IsADirectoryError, FileExistsError):
            raise ApiError(
                "BAD_REQUEST", f"{key[:200]!r} clashes with a folder or file of the same name"
            ) from None
        except OSError as exc:
            if exc.errno != errno.ENAMETOOLONG:
                raise
            raise ApiError(
                "BAD_REQUEST",
                f"file name {key.rpartition('/')[2][:100]!r} is too long for the server's file system "
                f"(at most {_NAME_MAX} bytes a folder or file name)",
            ) from None

    def temp_path(self) -> Path:
        folder = self.root / TEMP_FOLDER
        folder.mkdir(parents=True, exist_ok=True)
        _remove_stale_parts(folder)
        fd, name = tempfile.mkstemp(dir=folder, suffix=".part")
        os.close(fd)
        return Path(name)

    def create(self, key: str, data: bytes) -> bool:
        target = self.root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = self.temp_path()
        try:
            temp.write_bytes(data)
            os.link(temp, target)  # whole, and only if no one else's is there
            return True
        except FileExistsError:
            return False
        finally:
            temp.unlink(missing_ok=True)

    def read_small(self, key: str) -> bytes | None:
        try:
            return (self.root / key).read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        except OSError as exc:
            _raise_unless_too_long(exc)  # a name no file can have: there is none
            return None

    def stat(self, key: str) -> StoredObject | None:
        path = self.root / key
        try:
            stat = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            _raise_unless_too_long(exc)  # a name no file can have: there is none
            return None
        if not path.is_file():
            return None
        return StoredObject(key, stat.st_size, stat.st_mtime, f"{stat.st_size}:{stat.st_mtime_ns}")

    def open(self, key: str, first: int = 0, last: int | None = None) -> Opened | None:
        path = self.root / key
        try:
            file = open(path, "rb")  # noqa: SIM115 - closed by _chunks
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        except OSError as exc:
            _raise_unless_too_long(exc)  # a name no file can have: there is none
            return None
        size = os.fstat(file.fileno()).st_size
        file.seek(first)
        return Opened(size, _chunks(file, None if last is None else last - first + 1))

    def list(self, prefix: str) -> list[StoredObject]:
        folder = self.root / prefix
        found = []
        for path in folder.rglob("*"):
            if path.is_file():
                stat = path.stat()
                name = path.relative_to(folder).as_posix()
                found.append(StoredObject(name, stat.st_size, stat.st_mtime, str(stat.st_mtime_ns)))
        return found

    def delete(self, key: str) -> None:
        (self.root / key).unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> None:
        folder = self.root / prefix
        if folder.is_dir():
            shutil.rmtree(folder)


def _chunks(file: BinaryIO, limit: int | None) -> Iterator[bytes]:
    """The open file's bytes from where it stands (at most limit of them), closing it at the end
    (or when the download is cut off)."""
    left = limit
    with file:
        while left is None or left > 0:
            chunk = file.read(CHUNK if left is None else min(CHUNK, left))
            if not chunk:
                return
            if left is not None:
                left -= len(chunk)
            yield chunk


def _raise_unless_too_long(exc: OSError) -> None:
    if exc.errno != errno.ENAMETOOLONG:
        raise exc


def _remove_stale_parts(folder: Path) -> None:
    now = time.time()
    for part in folder.glob("*.part"):
        try:
            if now - part.stat().st_mtime > _STALE_PART:
                part.unlink(missing_ok=True)
        except FileNotFoundError:
            pass
