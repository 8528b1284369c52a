"""The artifacts a run logged or used, as its live panel lists them and finish() names them.

The handler notes each ArtifactRecord and UseArtifactRecord as it forwards it (a recovered run's
from its log too); the sender publishes the version each logged artifact became once the store or
server has it (`DeliveryProgress.artifact_versions`). A logged artifact shows no version until then,
so the panel never says "stored" of one that is only in the transaction log.

Every record is also kept in log order as finish() names it (`in_log`): the sender delivers them
in that order and counts those done (`DeliveryProgress.artifacts_done`), so the ones past that
count are what a run stopped early leaves for `nbtrack sync`.
"""

from __future__ import annotations

from collections.abc import Mapping

from nbtrack.artifacts.manifest import parse_manifest
from nbtrack.proto import nbtrack_pb2 as pb

__all__ = ["LIVE_ARTIFACTS", "RunArtifactList", "artifact_words", "logged_key"]

LIVE_ARTIFACTS = 5  # the newest artifacts a LiveResult lists (the panel's); older ones are only counted


def logged_key(record: pb.ArtifactRecord) -> str:
    """What names a logged artifact between the handler and the sender: its collection and digest."""
    return f"{record.name}@{record.digest}"


class RunArtifactList:
    """The newest LIVE_ARTIFACTS artifacts of the run, and how many there were in all."""

    def __init__(self) -> None:
        self._lines: list[tuple[str | None, pb.ArtifactLine]] = []  # (logged key or None, line)
        self.count = 0
        self.in_log: list[str] = []  # every record, in log order: "artifact ds", "the use of artifact ds:v0"

    def note(self, record: pb.Record) -> None:
        """Keep the artifact of an `artifact` or `use_artifact` record (other records: nothing)."""
        kind = record.WhichOneof("record_type")
        if kind in ("artifact", "use_artifact"):
            self.in_log.append(artifact_words(record))
        if kind == "artifact":
            logged = record.artifact
            manifest = parse_manifest(logged.manifest_json)
            line = pb.ArtifactLine(
                role="logged",
                type=logged.type,
                name=logged.name,
                files=len(manifest.entries),
                bytes=manifest.size(),
            )
            self._keep(logged_key(logged), line)
        elif kind == "use_artifact":
            used = record.use_artifact
            line = pb.ArtifactLine(
                role="used",
                type=used.type,
                name=used.collection,
                version=used.version,
                files=used.files,
                bytes=used.bytes,
            )
            self._keep(None, line)

    def _keep(self, key: str | None, line: pb.ArtifactLine) -> None:
        self._lines.append((key, line))
        del self._lines[:-LIVE_ARTIFACTS]
        self.count += 1

    def stored(self, versions: Mapping[str, str]) -> int:
        """How many of the logged artifacts kept have a version now."""
        return sum(1 for key, _ in self._lines if key is not None and key in versions)

    def add_to(self, live: pb.LiveResult, versions: Mapping[str, str]) -> None:
        """Add the lines to a LiveResult, each logged one with its version once delivered."""
        live.artifacts_total = self.count
        for key, line in self._lines:
            shown = live.artifacts.add()
            shown.CopyFrom(line)
            if key is not None:
                shown.version = versions.get(key, "")


def artifact_words(record: pb.Record) -> str:
    """How finish() names an artifact record the store may lack: "artifact ds", or "the use of
    artifact ds:v0"."""
    if record.WhichOneof("record_type") == "use_artifact":
        use = record.use_artifact
        return f"the use of artifact {use.collection}:{use.version}"
    return f"artifact {record.artifact.name}"
