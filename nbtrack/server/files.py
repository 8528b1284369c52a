"""Run files on disk: <files>/<entity>/<project>/<run>/<name>, each written whole or not at all.

Names may have folders ("media/images/x.png") but never leave the run's folder: no absolute
path, no "." or ".." step, no backslash, no NUL. An upload streams into a temporary file
under <files>/~uploads (no entity can be named so) and is renamed into place when complete,
so a reader never sees half a file and a failed upload leaves nothing behind.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import anyio

from nbtrack.server.body import too_large
from nbtrack.server.errors import ApiError

__all__ = ["FileStore", "RunFile", "check_file_name"]

# Paths of the run's folder that are not files: the file stream's endpoint.
RESERVED_NAMES = frozenset({"file_stream"})
_MAX_NAME = 1024


@dataclass(frozen=True, slots=True)
class RunFile:
    name: str  # relative to the run's folder, with "/" between folders
    size: int
    updated_at: float


def check_file_name(name: str) -> str:
    """name if it is a safe relative file name, else ApiError BAD_REQUEST saying why."""
    if not name or len(name) > _MAX_NAME:
        raise ApiError("BAD_REQUEST", f"a file name must have 1 to {_MAX_NAME} characters")
    if "\0" in name or "\\" in name:
        raise ApiError("BAD_REQUEST", f"file name {name[:100]!r} holds a NUL or a backslash")
    if name.startswith("/") or any(step in ("", ".", "..") for step in name.split("/")):
        raise ApiError(
            "BAD_REQUEST", f"file name {name[:100]!r} must be a relative path without . or .. steps"
        )
    if name in RESERVED_NAMES:
        raise ApiError("BAD_REQUEST", f"{name!r} is reserved and cannot be a file name")
    return name


class FileStore:
    """The run files under one folder; entity, project and run names must be checked names."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, entity: str, project: str, run_id: str, name: str) -> Path:
        return self._run_dir(entity, project, run_id) / check_file_name(name)

    async def save(
        self, entity: str, project: str, run_id: str, name: str, chunks: AsyncIterator[bytes], limit: int
    ) -> int:
        """Write the file from chunks (ApiError PAYLOAD_TOO_LARGE past limit bytes); its size."""
        target = self.path(entity, project, run_id, name)
        partial = self.root / "~uploads"
        partial.mkdir(parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(dir=partial, suffix=".part")
        try:
            size = 0
            async with await anyio.open_file(fd, "wb") as out:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > limit:
                        raise too_large(f"file {name!r}", limit)
                    await out.write(chunk)
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(temp_name, target)
            except (NotADirectoryError, IsADirectoryError, FileExistsError):
                raise ApiError(
                    "BAD_REQUEST", f"file {name!r} clashes with a folder or file of the same name in this run"
                ) from None
        finally:
            if os.path.exists(temp_name):
                os.unlink(temp_name)
        return size

    def list(self, entity: str, project: str, run_id: str) -> list[RunFile]:
        """The run's files, by name."""
        folder = self._run_dir(entity, project, run_id)
        found = []
        for path in folder.rglob("*"):
            if path.is_file():
                stat = path.stat()
                found.append(RunFile(path.relative_to(folder).as_posix(), stat.st_size, stat.st_mtime))
        return sorted(found, key=lambda file: file.name)

    def _run_dir(self, entity: str, project: str, run_id: str) -> Path:
        return self.root / entity / project / run_id
