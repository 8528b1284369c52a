"""`nbtrack.Artifact`: a set of files (and their metadata) to log as a version of a collection.

    art = nbtrack.Artifact("mnist", type="dataset", metadata={"rows": 60000})
    art.add_file("train.csv")              # named "train.csv" in the artifact
    art.add_dir("images", name="img")      # every file under images/, as img/<relative path>
    art.add_reference("s3://bucket/raw")   # W&B's references: checksummed, never copied

Each file is hashed when it is added (manifest.md5_of_file, bounded memory), so the manifest and
its digest are known before logging. Names follow the run names' rule (letters, digits,
'_', '-', '.'); file names the run files' rule (relative, '/'-separated); metadata the config's
(JSON values, nested dicts allowed).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbtrack.artifacts.manifest import Manifest, ManifestEntry, md5_of_file
from nbtrack.artifacts.references import reference_entries
from nbtrack.sdk.values import check_config, check_file_name
from nbtrack.settings import check_name

if TYPE_CHECKING:
    from nbtrack.sdk.artifact_wait import LoggedVersion

__all__ = ["Artifact"]


class Artifact:
    """Files to log as a new version of the collection `name`, of kind `type` ("dataset",
    "model", ...). Bad names raise UsageError, bad metadata TypeError/ValueError, naming the
    culprit."""

    def __init__(
        self,
        name: str,
        type: str,  # W&B's keyword, which users already write
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.name = check_name(name, "artifact name")
        self.type = check_name(type, "artifact type")
        if description is not None and not isinstance(description, str):
            raise TypeError(f"artifact description must be a str, not {description.__class__.__name__}")
        self.description = description
        self.metadata: dict[str, Any] = check_config(metadata or {}, "artifact metadata")
        self._manifest = Manifest()
        self._sources: dict[str, Path] = {}  # name in the artifact -> the local file
        self._logged: LoggedVersion | None = None  # set by run.log_artifact()

    def add_file(self, local_path: str | os.PathLike[str], name: str | None = None) -> ManifestEntry:
        """Add the file under `name` (default: its file name). Adding the same bytes under the
        same name again is a no-op; other bytes under a name already taken is a ValueError."""
        path = Path(local_path)
        if not path.is_file():
            raise ValueError(f"artifact {self.name!r}: {str(path)!r} is not a file")
        entry_name = check_file_name(path.name if name is None else name)
        digest, size = md5_of_file(path)
        known = self._manifest.entries.get(entry_name)
        if known is not None and known.digest != digest:
            raise ValueError(
                f"artifact {self.name!r} has a file named {entry_name!r} already "
                f"(from {str(self._sources[entry_name])!r}); give {str(path)!r} another name"
            )
        entry = ManifestEntry(path=entry_name, digest=digest, size=size)
        self._manifest.entries[entry_name] = entry
        self._sources[entry_name] = path
        return entry

    def add_dir(self, local_path: str | os.PathLike[str], name: str | None = None) -> list[ManifestEntry]:
        """Add every file under the folder (symlinks to files followed, in path order), named by
        its path relative to the folder, under `name/` if given."""
        root = Path(local_path)
        if not root.is_dir():
            raise ValueError(f"artifact {self.name!r}: {str(root)!r} is not a folder")
        prefix = "" if name is None else check_file_name(name) + "/"
        added = []
        for path in sorted(root.rglob("*")):
            if path.is_file():
                added.append(self.add_file(path, prefix + path.relative_to(root).as_posix()))
        return added

    def add_reference(
        self,
        uri: str,
        name: str | None = None,
        checksum: bool = True,
        max_objects: int | None = None,
    ) -> list[ManifestEntry]:
        """Add what uri names, without copying it: `file://` a file or a folder, `s3://bucket/key`
        an object or every object under a prefix (references.py says how each entry is made, the
        wandb client's way). checksum=False records the URI only (W&B's: nothing can be
        verified, so such an entry is not downloaded); max_objects bounds a folder or prefix
        (ValueError past it). Bad URIs are a ValueError naming them. An entry of another digest
        under a name taken already is a ValueError, as add_file's."""
        entries = reference_entries(uri, name=name, checksum=checksum, max_objects=max_objects)
        for entry in entries:
            known = self._manifest.entries.get(entry.path)
            if known is not None and (known.digest != entry.digest or known.ref != entry.ref):
                raise ValueError(
                    f"artifact {self.name!r} has a file named {entry.path!r} already; give the "
                    f"reference {uri!r} another name"
                )
        for entry in entries:
            self._manifest.entries[entry.path] = entry
        return entries

    @property
    def manifest(self) -> Manifest:
        return self._manifest

    @property
    def digest(self) -> str:
        """The manifest's digest (hex): the same files give the same digest."""
        return self._manifest.digest()

    def files(self) -> list[str]:
        """The names of the artifact's files, in order."""
        return sorted(self._manifest.entries)

    @property
    def version(self) -> str | None:
        """The version ("v3") it became, once `wait()` learned it; None before."""
        return None if self._logged is None else self._logged.version

    def wait(self, timeout: float | None = None) -> Artifact:
        """Block until the logged artifact is stored, set `version`, and return the artifact (W&B's
        `art.wait()`). timeout: seconds (default artifact_wait.WAIT_SECONDS); past it, or if the
        run's process is gone or gave the delivery up, ArtifactsError says the artifact is not
        stored yet and that the run's transaction log keeps it. A finished run answers at once
        from its store or server; an offline run at once that `nbtrack sync` stores its artifacts."""
        if self._logged is None:
            from nbtrack.errors import UsageError

            raise UsageError(
                f"artifact {self.name!r}: wait() waits for a logged artifact: call run.log_artifact() first"
            )
        self._logged.wait(timeout)
        return self

    def logged_as(self, logged: LoggedVersion) -> None:
        """Called by run.log_artifact(): what wait() asks about."""
        self._logged = logged

    def source_of(self, name: str) -> Path:
        """The local file added under name (KeyError if none, or a reference)."""
        return self._sources[name]

    def __repr__(self) -> str:
        return f"<nbtrack.Artifact {self.name} ({self.type}), {len(self._manifest.entries)} file(s)>"
