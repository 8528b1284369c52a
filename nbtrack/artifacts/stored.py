"""A logged artifact version read back from a local store: `nbtrack.Api(dir=ROOT).artifact(...)`.

    art = nbtrack.Api(dir="runs").artifact("mnist/ds:v1")      # or "entity/mnist/ds:best"
    art.files(); art.metadata; art.version; art.aliases
    folder = art.download("data")                               # every file, verified

The files are the content-addressed blobs of the folder's file store (ROOT/files, where
`nbtrack server --dir ROOT` keeps them: `~artifacts/<entity>/<hex MD5>`, server/artifact_files.py).
download() streams each blob to a temporary file beside its destination while hashing it, and
renames it into place only if its MD5 and size are the manifest's: a corrupted or missing blob
raises ArtifactsError naming the file, and never leaves a wrong file where the right one belongs.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

from nbtrack.artifacts import references
from nbtrack.artifacts.manifest import CHUNK, Manifest, hex_of_b64_md5, parse_manifest
from nbtrack.sdk.values import check_file_name
from nbtrack.store.artifact_rows import ArtifactRow, ArtifactsError

__all__ = ["StoredArtifact"]

BLOBS = "~artifacts"  # the server's prefix of artifact blobs in its files folder


class StoredArtifact:
    """A committed artifact version, as it was when fetched."""

    def __init__(self, row: ArtifactRow, files_root: Path) -> None:
        if row.manifest is None:
            raise ArtifactsError(f"artifact {row.collection} ({row.id}) is not committed yet")
        self._row = row
        self._files_root = files_root
        self.manifest: Manifest = parse_manifest(row.manifest)

    @property
    def name(self) -> str:
        """Collection:version, as W&B names it."""
        return f"{self._row.collection}:{self._row.version}"

    @property
    def collection(self) -> str:
        return self._row.collection

    @property
    def type(self) -> str:
        return self._row.type_name

    @property
    def entity(self) -> str:
        return self._row.entity

    @property
    def project(self) -> str:
        return self._row.project

    @property
    def digest(self) -> str:
        """The manifest's digest (hex)."""
        return self._row.digest

    @property
    def size(self) -> int:
        """Bytes of its files."""
        return self._row.size

    @property
    def description(self) -> str | None:
        return self._row.description

    @property
    def logged_by(self) -> str | None:
        """The id of the run that logged it (None: none, or deleted since)."""
        return self._row.run_id

    @property
    def version(self) -> str:
        assert self._row.version is not None  # committed: numbered
        return self._row.version

    @property
    def aliases(self) -> list[str]:
        return list(self._row.aliases)

    @property
    def metadata(self) -> dict[str, Any]:
        return dict(self._row.metadata)

    def files(self) -> list[str]:
        """The paths of the version's files, in order."""
        return sorted(self.manifest.entries)

    def download(self, root: str | os.PathLike[str] | None = None) -> Path:
        """Write every file under root (default ./artifacts/<name>:<version>) and return root.
        ArtifactsError naming the file for a blob missing or not matching the manifest; a
        reference (file://, s3://) is fetched from where it points and checked the same way
        (references.fetch)."""
        target = Path(root) if root is not None else Path("artifacts") / self.name
        entries = [self.manifest.entries[path] for path in self.files()]
        for entry in entries:
            try:
                check_file_name(entry.path)
            except ValueError:
                raise ArtifactsError(
                    f"artifact {self.name}: file path {entry.path!r} would leave the download folder"
                ) from None
        for entry in entries:
            if entry.ref:
                references.fetch(entry, target / entry.path, f"artifact {self.name}: {entry.path!r}")
                continue
            md5_hex = hex_of_b64_md5(entry.digest)
            if md5_hex is None:
                raise ArtifactsError(f"artifact {self.name}: {entry.path!r} has no MD5 digest")
            blob = self._files_root / BLOBS / self.entity / md5_hex
            _copy_verified(
                blob, target / entry.path, md5_hex, entry.size, f"artifact {self.name}: {entry.path!r}"
            )
        return target

    def __repr__(self) -> str:
        return f"<nbtrack StoredArtifact {self.entity}/{self.project}/{self.name} ({self.type})>"


def _copy_verified(blob: Path, dest: Path, md5_hex: str, size: int, what: str) -> None:
    """Copy blob to dest through a temporary file, renamed into place once its MD5 and size
    are checked; ArtifactsError (starting with what) otherwise, dest left as it was."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        hasher = hashlib.md5()
        written = 0
        with os.fdopen(fd, "wb") as out:
            try:
                source = open(blob, "rb")  # noqa: SIM115 - a with statement right below
            except FileNotFoundError:
                raise ArtifactsError(f"{what}: its stored file {blob} is missing") from None
            with source:
                while block := source.read(CHUNK):
                    hasher.update(block)
                    written += len(block)
                    out.write(block)
        if hasher.hexdigest() != md5_hex or written != size:
            raise ArtifactsError(
                f"{what}: its stored file {blob} is corrupted ({written} bytes of MD5 "
                f"{hasher.hexdigest()}, the manifest says {size} bytes of MD5 {md5_hex})"
            )
        os.replace(temp_name, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise
