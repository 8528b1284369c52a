"""A run's artifacts on the user's side: `run.log_artifact` stages the files, `run.use_artifact`
resolves a version; each becomes one record the internal process delivers (sender, backend).

Staging copies each file of the artifact into the run's folder (`artifacts/<hex MD5>`, one copy per
content within the run), hashing it on the way in chunks: a file whose bytes are no longer those
`add_file` hashed is refused, naming it, and nothing is logged (the files this call staged are
removed again). So the record and the run's folder hold everything a delivery needs, now, after a
crash of the internal process, or by `nbtrack sync` of an offline run; and later changes to the
user's files do not change what is stored.

A use names the version by its number ("v3"), never by a moving alias, so lineage records what the
run read even when it is replayed after the alias moved.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from nbtrack import jsonutil
from nbtrack.artifacts.manifest import copy_checked
from nbtrack.errors import UsageError
from nbtrack.proto import nbtrack_pb2 as pb
from nbtrack.settings import Settings, check_name, check_project
from nbtrack.store.artifact_rows import ArtifactsError, check_alias
from nbtrack.vocabulary import LATEST_ALIAS

if TYPE_CHECKING:
    from nbtrack.artifacts.artifact import Artifact
    from nbtrack.artifacts.stored import StoredArtifact

__all__ = ["STAGED", "artifact_record", "check_aliases", "resolve_artifact", "use_record"]

STAGED = "artifacts"  # the folder of a run's folder holding its logged artifacts' files, by hex MD5


def check_aliases(aliases: Iterable[str] | None) -> list[str]:
    """The aliases asked for a new version, each checked (a lone str is one alias)."""
    if aliases is None:
        return []
    if isinstance(aliases, str):
        aliases = [aliases]
    try:
        given = list(aliases)
    except TypeError:
        raise TypeError(f"aliases must be a list of str, not {type(aliases).__name__}") from None
    return list(dict.fromkeys(check_alias(alias) for alias in given))


def artifact_record(artifact: Artifact, aliases: list[str], run_dir: Path) -> pb.ArtifactRecord:
    """Stage the artifact's files into run_dir/STAGED and return its record. ValueError naming the
    file (and nothing staged by this call left behind) if one changed or vanished since it was added;
    OSError naming it, the same way, if it cannot be copied (a full disk)."""
    staged = run_dir / STAGED
    manifest = artifact.manifest
    created: list[Path] = []
    try:
        for entry in manifest.stored():
            md5_hex = entry.md5_hex
            assert md5_hex is not None  # add_file hashed it
            target = staged / md5_hex
            if target.is_file():
                continue  # staged by this run already: the bytes the manifest says
            source = artifact.source_of(entry.path)
            try:
                got_md5, got_size = copy_checked(source, target, md5_hex, entry.size)
            except FileNotFoundError:
                raise ValueError(
                    f"log_artifact(): artifact {artifact.name!r}: {str(source)!r} (its file {entry.path!r}) "
                    "is gone since it was added; nothing was logged"
                ) from None
            except OSError as exc:  # a full disk, a folder no longer writable: say what and where
                raise OSError(
                    exc.errno,
                    f"log_artifact(): artifact {artifact.name!r}: copying {str(source)!r} (its file "
                    f"{entry.path!r}) into {str(staged)!r} failed: {exc.strerror or exc}; nothing was logged",
                ) from exc
            if (got_md5, got_size) != (md5_hex, entry.size):
                raise ValueError(
                    f"log_artifact(): artifact {artifact.name!r}: {str(source)!r} (its file {entry.path!r}) "
                    f"changed since it was added ({entry.size} bytes then, {got_size} now"
                    f"{', other bytes' if got_size == entry.size else ''}); add it again. Nothing was logged"
                )
            created.append(target)
    except BaseException:
        for path in created:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        raise
    record = pb.ArtifactRecord(
        name=artifact.name,
        type=artifact.type,
        metadata_json=jsonutil.dumps(artifact.metadata),
        aliases=aliases,
        manifest_json=manifest.to_json(),
        digest=manifest.digest(),
        staged=STAGED,
    )
    if artifact.description is not None:
        record.description = artifact.description
    return record


def parse_artifact_path(path: object, entity: str, project: str) -> tuple[str, str, str, str]:
    """(entity, project, name, ref) of "name[:ref]", "project/name[:ref]" or
    "entity/project/name[:ref]"; the run's entity and project where left out, "latest" for no ref."""
    if not isinstance(path, str):
        raise TypeError(
            f"use_artifact() takes an artifact name such as 'mnist:v1', not {type(path).__name__}"
        )
    head, _, ref = path.partition(":")
    parts = head.split("/")
    if not 1 <= len(parts) <= 3 or (":" in path and not ref):
        raise UsageError(
            f"use_artifact(): {path!r} is not an artifact name: give 'name:v1', 'name:alias', "
            "'project/name:v1' or 'entity/project/name:v1'"
        )
    name = check_name(parts[-1], "artifact name")
    if len(parts) >= 2:
        project = check_project(parts[-2])
    if len(parts) == 3:
        entity = check_name(parts[0], "entity")
    return entity, project, name, check_alias(ref) if ref else LATEST_ALIAS


def resolve_artifact(settings: Settings, entity: str, project: str, name: str, ref: str) -> StoredArtifact:
    """The committed version ref names: from the run's server (online), else from the store under
    the run's root (local and offline modes). UsageError if there is none to use."""
    from nbtrack.api import Api

    where = f"{entity + '/' if entity else ''}{project}/{name}:{ref}"
    if settings.mode == "online":
        assert settings.base_url is not None  # online mode has a server
        api = Api(base_url=settings.base_url, api_key=settings.api_key)
        place = f"on {settings.base_url}"
    else:
        from nbtrack.store import DB_FILENAME

        offline = (
            " (an offline run uses only artifacts already in the store under its root, as W&B's "
            "offline runs cannot use one by name)"
            if settings.mode == "offline"
            else ""
        )
        place = f"in the store under {settings.root}{offline}"
        if not (settings.root / DB_FILENAME).is_file():
            raise UsageError(
                f"use_artifact(): no artifact {where}: there is no store under {settings.root}{offline}"
            )
        api = Api(dir=settings.root)
    try:
        found = api.find_artifact(entity, project, name, ref)
    except ArtifactsError as exc:
        raise UsageError(f"use_artifact(): {exc}") from None
    if found is None:
        raise UsageError(f"use_artifact(): no artifact {where} {place}")
    return found


def use_record(artifact: StoredArtifact) -> pb.UseArtifactRecord:
    """The record of a use of this version, by its number."""
    return pb.UseArtifactRecord(
        entity=artifact.entity,
        project=artifact.project,
        collection=artifact.collection,
        version=artifact.version,
        type=artifact.type,
        files=artifact.file_count,
        bytes=artifact.size,
    )
