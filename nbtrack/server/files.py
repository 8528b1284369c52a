"""Run files: key <entity>/<project>/<run>/<name> of the files backend (file_backend.py: a folder
or a bucket), each written whole or not at all, streamed (an upload is never held whole in memory).

Names may have folders ("media/images/x.png") but never leave the run's folder: no absolute
path, no "." or ".." step, no backslash, no NUL. Keys starting with "~" (no entity can be named
so) are the server's own: ~history (history_export.py), ~uploads (folder_backend.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from nbtrack.server.errors import ApiError
from nbtrack.server.file_backend import FileBackend, Opened, StoredObject, md5_base64

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
    """The run files in a backend (file_backend.py); entity, project and run names must be checked names."""

    def __init__(self, backend: FileBackend) -> None:
        self.backend = backend

    def key(self, entity: str, project: str, run_id: str, name: str) -> str:
        """The file's key in the backend (ApiError BAD_REQUEST if name is not a safe file name)."""
        return f"{self._run_prefix(entity, project, run_id)}/{check_file_name(name)}"

    async def save(
        self, entity: str, project: str, run_id: str, name: str, chunks: AsyncIterator[bytes], limit: int
    ) -> int:
        """Write the file from chunks (ApiError PAYLOAD_TOO_LARGE past limit bytes); its size."""
        key = self.key(entity, project, run_id, name)
        return await self.backend.save(key, chunks, limit, f"file {name!r}")

    def list(self, entity: str, project: str, run_id: str) -> list[RunFile]:
        """The run's files, by name."""
        found = self.backend.list(self._run_prefix(entity, project, run_id))
        return sorted((RunFile(item.key, item.size, item.updated_at) for item in found), key=lambda f: f.name)

    def stat(self, entity: str, project: str, run_id: str, name: str) -> StoredObject | None:
        return self.backend.stat(self.key(entity, project, run_id, name))

    def open(
        self, entity: str, project: str, run_id: str, name: str, first: int = 0, last: int | None = None
    ) -> Opened | None:
        return self.backend.open(self.key(entity, project, run_id, name), first, last)

    def md5(self, entity: str, project: str, run_id: str, name: str) -> str | None:
        return md5_base64(self.backend, self.key(entity, project, run_id, name))

    def remove_run(self, entity: str, project: str, run_id: str) -> None:
        """Remove the run's files (its history exports are history_export.py's to remove)."""
        self.backend.delete_prefix(self._run_prefix(entity, project, run_id))

    @staticmethod
    def _run_prefix(entity: str, project: str, run_id: str) -> str:
        return f"{entity}/{project}/{run_id}"
