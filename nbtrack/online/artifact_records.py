"""A run's artifact records delivered to a tracking server: the sender's HttpBackend, and
`nbtrack sync` for a log whose rows the server holds already, call these with the record and the
run's staging folder; online/artifact_upload.py speaks the protocol."""

from __future__ import annotations

import threading
from pathlib import Path

from nbtrack import jsonutil
from nbtrack.artifacts.manifest import parse_manifest
from nbtrack.online.artifact_upload import LoggedVersion, log_artifact_version, use_artifact_version
from nbtrack.online.client import ServerClient
from nbtrack.proto import nbtrack_pb2 as pb

__all__ = ["send_artifact", "send_artifact_use"]


def send_artifact(
    client: ServerClient,
    run: tuple[str, str, str],
    artifact: pb.ArtifactRecord,
    staged: Path,
    stop: threading.Event | None = None,
) -> LoggedVersion:
    """Log the version the run (entity or "" for the key's, project, run id) logged; its files are
    in staged by hex MD5. Idempotent: only files the server lacks are sent, and the committed
    version of the same digest is that version. stop: set, the call ends soon (Transient)."""
    entity, project, run_id = run
    return log_artifact_version(
        client,
        entity=entity or None,
        project=project,
        run_id=run_id,
        name=artifact.name,
        type=artifact.type,
        description=artifact.description if artifact.HasField("description") else None,
        metadata=jsonutil.loads(artifact.metadata_json) if artifact.metadata_json else {},
        aliases=list(artifact.aliases),
        manifest=parse_manifest(artifact.manifest_json),
        blob_path=lambda md5_hex: staged / md5_hex,
        stop=stop,
    )


def send_artifact_use(
    client: ServerClient,
    run: tuple[str, str, str],
    use: pb.UseArtifactRecord,
    stop: threading.Event | None = None,
) -> None:
    """Record that the run (entity or "" for the key's, project, run id) used the version, which
    may be of another project than the run's."""
    entity, project, run_id = run
    use_artifact_version(
        client,
        entity=use.entity or entity or None,
        project=use.project,
        run_id=run_id,
        collection=use.collection,
        version=use.version,
        stop=stop,
        run_entity=entity or None,
        run_project=project,
    )
