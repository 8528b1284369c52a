"""A logged artifact delivered into the embedded store: its files become the entity's blobs, then
one committed version.

The run staged each file in its folder under its hex MD5 (`ArtifactRecord.staged`), so delivery
needs nothing but the record and that folder. Each blob the store has not recorded becomes
`<files root>/~artifacts/<entity>/<hex MD5>` (the layout `nbtrack server --dir` serves and gc
frees), its MD5 checked first: a hard link of the staged file where the filesystem allows (one
copy on disk for both), else a copy hashed on the way; either way through a temporary name renamed
into place, so a reader never sees half a blob. It is then recorded under the entity's lock gc
takes too. The blobs already stored are claimed (gc's grace keeps them for this version) and not
copied again. Then the version is created and committed (store/artifacts.py).

Delivering the same record again (a recovered process reads its whole log back, `nbtrack sync`
runs twice) stores nothing new: the blobs are known, and a committed version of the same digest is
that version (it takes the aliases asked, as the server does for the wandb client). A crash between
create and commit leaves a PENDING version that gc removes; the next delivery commits a new one.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

from nbtrack import jsonutil
from nbtrack.artifacts.manifest import copy_checked, copy_hashing, parse_manifest
from nbtrack.proto import nbtrack_pb2 as pb
from nbtrack.store import Store
from nbtrack.store.artifact_rows import ArtifactRow, ArtifactsError
from nbtrack.vocabulary import ARTIFACT_BLOBS, LATEST_ALIAS

__all__ = ["blob_path", "store_artifact", "store_artifact_use"]


def blob_path(files_root: Path, entity: str, md5_hex: str) -> Path:
    """Where a store's files keep the entity's blob of this MD5."""
    return files_root / ARTIFACT_BLOBS / entity / md5_hex


def store_artifact(
    store: Store,
    files_root: Path,
    key: tuple[str, str, str],
    record: pb.ArtifactRecord,
    staged: Path,
) -> ArtifactRow:
    """Store the artifact the run (key: entity, project, run id) logged; its files are in staged.
    ArtifactsError naming the file if a staged one is missing or not what the manifest says."""
    entity, project, run_id = key
    manifest = parse_manifest(record.manifest_json)
    sizes: dict[str, int] = {}
    for entry in manifest.stored():
        md5_hex = entry.md5_hex
        if md5_hex is None:
            raise ArtifactsError(f"artifact {record.name}: {entry.path!r} has no MD5 digest")
        sizes.setdefault(md5_hex, entry.size)
    known = store.claim_blobs(entity, sizes)
    for md5_hex, size in sizes.items():
        target = blob_path(files_root, entity, md5_hex)
        if md5_hex in known and target.is_file():
            continue
        for _ in range(3):  # gc may remove a blob between its copy and its record: copy it again
            _copy_blob(staged / md5_hex, target, md5_hex, size, record.name)
            if store.record_blob(entity, md5_hex, size, still_stored=target.is_file):
                break
        else:
            raise ArtifactsError(f"artifact {record.name}: its file {md5_hex} was removed as it was stored")
    aliases = [alias for alias in dict.fromkeys(record.aliases) if alias != LATEST_ALIAS]
    row = store.create_artifact_version(
        entity,
        project,
        record.type,
        record.name,
        record.digest,
        run_id=run_id,
        description=record.description if record.HasField("description") else None,
        metadata=jsonutil.loads(record.metadata_json) if record.metadata_json else {},
        aliases=aliases,
    )
    if row.state == "COMMITTED":  # the same files again: that version, with the aliases asked
        for alias in aliases:
            store.set_artifact_alias(row.id, alias)
        return store.get_artifact_version(row.id) or row
    return store.commit_artifact_version(
        row.id, manifest.to_json(), manifest.size(), len(manifest.entries), blobs=list(sizes)
    )


def store_artifact_use(store: Store, key: tuple[str, str, str], record: pb.UseArtifactRecord) -> None:
    """Record that the run (key) used the version; ArtifactsError naming it if the store has none."""
    row = store.find_artifact_version(record.entity, record.project, record.collection, record.version)
    if row is None:
        raise ArtifactsError(
            f"the run used artifact {record.entity}/{record.project}/{record.collection}:{record.version}, "
            "which this store does not have"
        )
    store.use_artifact_version(row.id, *key)


def _copy_blob(source: Path, target: Path, md5_hex: str, size: int, name: str) -> None:
    try:
        linked = _link_checked(source, target, md5_hex, size)
        got_md5, got_size = linked if linked is not None else copy_checked(source, target, md5_hex, size)
    except FileNotFoundError:
        raise ArtifactsError(
            f"artifact {name}: its staged file {source} is missing; the version is not stored"
        ) from None
    if (got_md5, got_size) != (md5_hex, size):
        raise ArtifactsError(
            f"artifact {name}: its staged file {source} changed ({got_size} bytes of MD5 {got_md5}, "
            f"not {size} bytes of MD5 {md5_hex}); the version is not stored"
        )


def _link_checked(source: Path, target: Path, md5_hex: str, size: int) -> tuple[str, int] | None:
    """Make target a hard link of the staged file once its bytes are checked (read, not copied):
    a blob and a staged file are never written again, so one copy on disk serves both, and the
    store's files cost no second write. Returns what was read (hex MD5, size); the link is made
    only if that is what was asked. None where no link can be made (the run's folder on another
    filesystem than the store's files, or one without hard links): the caller copies then."""
    with open(source, "rb") as reader:
        hasher, read = copy_hashing(reader, None)
    if (hasher.hexdigest(), read) != (md5_hex, size):
        return hasher.hexdigest(), read
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.{os.getpid()}.link")  # renamed into place: atomic
    with contextlib.suppress(FileNotFoundError):
        temp.unlink()  # left by a process killed between its link and its rename
    try:
        os.link(source, temp)
    except OSError as exc:
        if exc.errno in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP):
            return None
        raise
    os.replace(temp, target)
    return md5_hex, size
