"""A logged artifact version read back: `nbtrack.Api(dir=ROOT).artifact(...)` from a local store,
`nbtrack.Api(base_url=URL).artifact(...)` from a tracking server; one class for both.

    art = nbtrack.Api(dir="runs").artifact("mnist/ds:v1")      # or "entity/mnist/ds:best"
    art.files(); art.metadata; art.version; art.aliases
    art.logged_by(); art.used_by(); art.versions()  # its run, the runs that used it, its siblings
    folder = art.download("data")                               # every file, verified

Where the bytes and the neighbours come from is an ArtifactSource: LocalArtifacts reads the store
and the content-addressed blobs of its files folder (ROOT/files, where `nbtrack server --dir ROOT`
keeps them: `~artifacts/<entity>/<hex MD5>`, server/artifact_files.py); online/artifact_reads.py
asks a server and GETs the file URLs it signs. download() streams each blob to a temporary file
beside its destination while hashing it, and renames it into place only if its MD5 and size are
the manifest's: a corrupted or missing blob raises ArtifactsError naming the file, and never leaves
a wrong file where the right one belongs.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from nbtrack.artifacts import references
from nbtrack.artifacts.manifest import CHUNK, Manifest, hex_of_b64_md5, parse_manifest
from nbtrack.sdk.values import check_file_name
from nbtrack.store.artifact_rows import ArtifactRow, ArtifactsError
from nbtrack.vocabulary import ARTIFACT_BLOBS

if TYPE_CHECKING:
    from nbtrack.api import Api, StoredRun
    from nbtrack.store import Store
    from nbtrack.store.schema import RunRow

__all__ = ["ArtifactSource", "BlobMissing", "LocalArtifacts", "StoredArtifact"]

T = TypeVar("T")


class BlobMissing(Exception):
    """A source has no bytes for a blob (raised by blob_chunks)."""


class ArtifactSource(Protocol):
    """Where a version's manifest, blobs and neighbours are read: a folder or a server."""

    def manifest_text(self, row: ArtifactRow) -> str: ...
    def versions(self, row: ArtifactRow) -> list[ArtifactRow]:
        """The committed versions of row's collection, newest first."""
        ...

    def used_by(self, row: ArtifactRow) -> list[RunRow]:
        """The runs that used the version, in the order they first did."""
        ...

    def logged_by(self, row: ArtifactRow) -> RunRow | None:
        """The run that logged the version (None: none, or deleted since)."""
        ...

    def run_artifacts(self, run: RunRow, logged: bool) -> list[ArtifactRow]:
        """The committed versions the run logged (logged), oldest first, or used, in the order it
        first did."""
        ...

    def blob_chunks(self, row: ArtifactRow, md5_hex: str) -> Iterator[bytes]:
        """The blob's bytes in bounded chunks; BlobMissing if there is none."""
        ...

    def blob_where(self, row: ArtifactRow, md5_hex: str) -> str:
        """Words for where the blob is kept, for messages ("its stored file /x")."""
        ...

    def fetching(self, call: Callable[[], T]) -> T:
        """call(), again while the source is unreachable (a server), within a bounded time."""
        ...


class LocalArtifacts:
    """The artifacts of a local store, their blobs in files_root (a server's --files folder)."""

    def __init__(self, store: Store, files_root: Path) -> None:
        self._store = store
        self._files_root = files_root

    def manifest_text(self, row: ArtifactRow) -> str:
        assert row.manifest is not None  # the store hands out committed versions with theirs
        return row.manifest

    def versions(self, row: ArtifactRow) -> list[ArtifactRow]:
        return self._store.list_artifact_versions(row.entity, row.project, row.collection)

    def used_by(self, row: ArtifactRow) -> list[RunRow]:
        return self._store.artifact_users(row.id)

    def logged_by(self, row: ArtifactRow) -> RunRow | None:
        return None if row.run_id is None else self._store.get_run(row.entity, row.project, row.run_id)

    def run_artifacts(self, run: RunRow, logged: bool) -> list[ArtifactRow]:
        read = self._store.run_logged_artifacts if logged else self._store.run_used_artifacts
        return read(run.entity, run.project, run.run_id)

    def blob_chunks(self, row: ArtifactRow, md5_hex: str) -> Iterator[bytes]:
        try:
            source = open(self._blob(row, md5_hex), "rb")  # noqa: SIM115 - a with statement right below
        except FileNotFoundError:
            raise BlobMissing from None
        with source:
            while block := source.read(CHUNK):
                yield block

    def blob_where(self, row: ArtifactRow, md5_hex: str) -> str:
        return f"its stored file {self._blob(row, md5_hex)}"

    def fetching(self, call: Callable[[], T]) -> T:
        return call()

    def _blob(self, row: ArtifactRow, md5_hex: str) -> Path:
        return self._files_root / ARTIFACT_BLOBS / row.entity / md5_hex


class StoredArtifact:
    """A committed artifact version, as it was when fetched, read through an Api (which also
    makes the runs that logged and used it)."""

    def __init__(self, row: ArtifactRow, api: Api) -> None:
        if row.state != "COMMITTED" or row.version_index is None:
            raise ArtifactsError(f"artifact {row.collection} ({row.id}) is not committed yet")
        self._row = row
        self._api = api
        self._source = api.artifact_source()
        self._manifest: Manifest | None = None

    @property
    def manifest(self) -> Manifest:
        """The version's manifest (read from a server the first time it is needed)."""
        if self._manifest is None:
            text = self._source.fetching(lambda: self._source.manifest_text(self._row))
            try:
                self._manifest = parse_manifest(text)
            except ValueError as exc:
                raise ArtifactsError(f"artifact {self.name}: {exc}") from None
        return self._manifest

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
    def file_count(self) -> int:
        """How many files (references included) it has."""
        return self._row.file_count

    @property
    def description(self) -> str | None:
        return self._row.description

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

    def versions(self) -> list[StoredArtifact]:
        """Every committed version of its collection, newest first (this one among them)."""
        return [
            StoredArtifact(row, self._api)
            for row in self._source.fetching(lambda: self._source.versions(self._row))
        ]

    def logged_by(self) -> StoredRun | None:
        """The run that logged this version (None: none, or deleted since), as W&B's
        `Artifact.logged_by()`: `art.logged_by().name`."""
        row = self._source.fetching(lambda: self._source.logged_by(self._row))
        return None if row is None else self._api.run_view(row)

    def used_by(self) -> list[StoredRun]:
        """The runs that used this version, in the order they first did (W&B's `used_by()`)."""
        rows = self._source.fetching(lambda: self._source.used_by(self._row))
        return [self._api.run_view(row) for row in rows]

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
            what = f"artifact {self.name}: {entry.path!r}"
            copy = functools.partial(self._copy_verified, md5_hex, target / entry.path, entry.size, what)
            self._source.fetching(copy)
        return target

    def _copy_verified(self, md5_hex: str, dest: Path, size: int, what: str) -> None:
        """Copy the blob to dest through a temporary file, renamed into place once its MD5 and
        size are checked; ArtifactsError (starting with what) otherwise, dest left as it was."""
        where = self._source.blob_where(self._row, md5_hex)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
        try:
            hasher = hashlib.md5()
            written = 0
            with os.fdopen(fd, "wb") as out:
                try:
                    for block in self._source.blob_chunks(self._row, md5_hex):
                        hasher.update(block)
                        written += len(block)
                        out.write(block)
                except BlobMissing:
                    raise ArtifactsError(f"{what}: {where} is missing") from None
            if hasher.hexdigest() != md5_hex or written != size:
                raise ArtifactsError(
                    f"{what}: {where} is corrupted ({written} bytes of MD5 "
                    f"{hasher.hexdigest()}, the manifest says {size} bytes of MD5 {md5_hex})"
                )
            os.replace(temp_name, dest)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp_name)
            raise

    def __repr__(self) -> str:
        return f"<nbtrack StoredArtifact {self.entity}/{self.project}/{self.name} ({self.type})>"
