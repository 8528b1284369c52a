"""Run files as wandb's public API reads them: `Run.files(names, pattern, first, after)`, a paged
connection of `File`s, and `Run.fileCount`.

    files(names: $fileNames, after: $fileCursor, first: $fileLimit, pattern: $pattern) {
        edges { node { id name url(upload: $upload) directUrl sizeBytes mimetype updatedAt md5 } cursor }
        pageInfo { endCursor hasNextPage } }

names keeps the files so named (an empty list: all); pattern is MySQL's LIKE ("%" any run of
characters, "_" one, "\\" escapes the next), matched against the whole name. File.url is a
signed download URL (no key needed: wandb-core fetches it as it would from cloud storage), or
with upload: true a signed upload URL; directUrl is the download URL. md5 is base64 of the
file's MD5 digest, as W&B gives it, worked out once per file version (size and mtime).
"""

from __future__ import annotations

import mimetypes
import re
from datetime import UTC, datetime
from typing import Any

from nbtrack.server.context import RequestContext
from nbtrack.server.errors import ApiError
from nbtrack.server.files import RunFile
from nbtrack.store import RunRow

__all__ = ["WandbFile", "like_pattern", "select_files"]

_MAX_PATTERN = 1000


def like_pattern(pattern: str) -> re.Pattern[str]:
    """MySQL's LIKE pattern as a regular expression matching a whole name."""
    if len(pattern) > _MAX_PATTERN:
        raise ApiError("BAD_REQUEST", f"files(pattern:) may have at most {_MAX_PATTERN} characters")
    parts = []
    escaped = False
    for char in pattern:
        if escaped:
            parts.append(re.escape(char))
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "%":
            parts.append(".*")
        elif char == "_":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    if escaped:
        parts.append(re.escape("\\"))
    return re.compile("".join(parts), re.DOTALL)


class WandbFile:
    """A File node; graphql-core calls the methods (md5, url) only when they are selected."""

    def __init__(self, run: RunRow, file: RunFile, context: RequestContext) -> None:
        self._run = run
        self._context = context
        self.name = file.name
        self.id = f"{run.entity}/{run.project}/{run.run_id}/{file.name}"
        self.sizeBytes = file.size
        self.mimetype = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        self.updatedAt = datetime.fromtimestamp(file.updated_at, UTC).isoformat(timespec="seconds")

    def _where(self) -> tuple[str, str, str, str]:
        return self._run.entity, self._run.project, self._run.run_id, self.name

    @property
    def directUrl(self) -> str:
        return self._context.download_url(*self._where())

    def url(self, _info: Any, upload: bool | None = None) -> str:
        if upload:
            return self._context.upload_url(*self._where())
        return self._context.download_url(*self._where())

    def md5(self, _info: Any) -> str:
        digest = self._context.files.md5(*self._where())
        if digest is None:  # deleted since it was listed
            entity, project, run_id, _ = self._where()
            raise ApiError("NOT_FOUND", f"file {self.name!r} of run {entity}/{project}/{run_id} is gone")
        return digest


def select_files(files: list[RunFile], names: list[str | None] | None, pattern: str | None) -> list[RunFile]:
    """The files named (names empty or None: all), or whose name is LIKE pattern."""
    if names:
        wanted = {name for name in names if name is not None}
        files = [file for file in files if file.name in wanted]
    if pattern is not None:
        regex = like_pattern(pattern)
        files = [file for file in files if regex.fullmatch(file.name)]
    return files
