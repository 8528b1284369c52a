"""The store's tables, in generic SQLAlchemy types so one schema serves SQLite and PostgreSQL.

JSON values (config, summary, tags, metric definitions, history rows) are kept as JSON *text*
in nbtrack's dialect (see `nbtrack.jsonutil`), not as a JSON column type: a native JSON type
would reject the NaN and Infinity tokens that logged values may hold. Timestamps are unix
seconds as floats. Lines (`history.line`, `output.line`) are the wire protocol's offsets: a
resend of the same lines replaces them, so (run_pk, line) is the primary key.

Beside the tables sit what their columns hold: the frozen rows the store hands out, and the
facts the store reads off a history row ("_step", "_runtime"). No SQL here; that is the rest of
store/ (store.py lists its modules).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Row,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from nbtrack.jsonutil import loads
from nbtrack.vocabulary import RUN_STATES

__all__ = [
    "RUN_STATES",
    "AlertRow",
    "KeyRow",
    "LineBatch",
    "ProjectRow",
    "RunFields",
    "RunRow",
    "alerts",
    "api_keys",
    "artifact_aliases",
    "artifact_blobs",
    "artifact_collections",
    "artifact_types",
    "artifact_uses",
    "artifact_versions",
    "check_offset",
    "check_state",
    "compaction_claims",
    "decode_run",
    "deleted_runs",
    "entities",
    "events",
    "history",
    "history_archives",
    "history_facts",
    "history_rollup",
    "metadata",
    "new_run_values",
    "output",
    "pick_keys",
    "projects",
    "runs",
    "sample_positions",
    "server_secrets",
]


metadata = MetaData()

entities = Table(
    "entities",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
)

projects = Table(
    "projects",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("entity_id", Integer, ForeignKey("entities.id"), nullable=False),
    Column("name", String(255), nullable=False),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("entity_id", "name", name="uq_projects_entity_name"),
)

runs = Table(
    "runs",
    metadata,
    Column("pk", Integer, primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id"), nullable=False),
    Column("run_id", String(255), nullable=False),
    Column("display_name", Text),
    Column("notes", Text),
    Column("tags", Text, nullable=False),
    Column("group_name", String(255)),
    Column("job_type", String(255)),
    Column("host", String(255)),
    Column("program", Text),
    Column("config", Text, nullable=False),
    Column("summary", Text, nullable=False),
    Column("metrics", Text, nullable=False),
    Column("state", String(16), nullable=False),
    Column("exit_code", Integer),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("runtime", Float, nullable=False),
    Column("history_line_count", Integer, nullable=False),
    Column("last_step", BigInteger),
    UniqueConstraint("project_id", "run_id", name="uq_runs_project_run_id"),
    # list_runs orders a project's runs newest first.
    Index("ix_runs_project_created", "project_id", "created_at"),
)

history = Table(
    "history",
    metadata,
    Column("run_pk", Integer, ForeignKey("runs.pk"), primary_key=True, autoincrement=False),
    Column("line", Integer, primary_key=True, autoincrement=False),
    Column("step", BigInteger, nullable=False),
    Column("data", Text, nullable=False),
)

# The history's rollup, kept at ingest in the transaction that writes the lines (rollup.py): per
# run, key and bucket of BUCKET_LINES lines, how many rows hold a finite value of the key, their
# x ranges (step, runtime, timestamp; NULL when one of those rows lacks that x) and the values'
# extremes. A key with numeric values that are all NaN or infinite has count 0 and NULL ranges.
# Key "_step" is on every line, so its count is the bucket's line count: what tells a reader
# which buckets the rollup covers (runs stored before it existed have no rows).
history_rollup = Table(
    "history_rollup",
    metadata,
    Column("run_pk", Integer, ForeignKey("runs.pk"), primary_key=True, autoincrement=False),
    Column("key", Text, primary_key=True),
    Column("bucket", Integer, primary_key=True, autoincrement=False),
    Column("count", Integer, nullable=False),
    Column("step_min", BigInteger),
    Column("step_max", BigInteger),
    Column("runtime_min", Float),
    Column("runtime_max", Float),
    Column("ts_min", Float),
    Column("ts_max", Float),
    Column("y_min", Float),
    Column("y_max", Float),
)

# A run whose history was compacted (archive.py, server/compaction.py): the parquet file its rows
# were moved into (a key of the server's files), the lines it holds ([0, line_end) but the gaps,
# a JSON list of [start, stop) ranges), their count, the file's SHA-256 and size. Written in the
# transaction that deletes the rows it holds.
history_archives = Table(
    "history_archives",
    metadata,
    Column("run_pk", Integer, ForeignKey("runs.pk"), primary_key=True, autoincrement=False),
    Column("key", Text, nullable=False),
    Column("line_end", Integer, nullable=False),
    Column("rows", Integer, nullable=False),
    Column("gaps", Text, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("created_at", Float, nullable=False),
)

# Who is compacting a run now (one compaction of a run at a time across replicas): taken by a
# conditional insert or update, given up at commit; one older than the holder's lease is taken over.
compaction_claims = Table(
    "compaction_claims",
    metadata,
    Column("run_pk", Integer, ForeignKey("runs.pk"), primary_key=True, autoincrement=False),
    Column("owner", String(64), nullable=False),
    Column("claimed_at", Float, nullable=False),
)

output = Table(
    "output",
    metadata,
    Column("run_pk", Integer, ForeignKey("runs.pk"), primary_key=True, autoincrement=False),
    Column("line", Integer, primary_key=True, autoincrement=False),
    Column("text", Text, nullable=False),
)

# The system-metrics stream ("wandb-events.jsonl" on the wire): JSON lines, addressed like output.
events = Table(
    "events",
    metadata,
    Column("run_pk", Integer, ForeignKey("runs.pk"), primary_key=True, autoincrement=False),
    Column("line", Integer, primary_key=True, autoincrement=False),
    Column("text", Text, nullable=False),
)

# A run's alerts (run.alert(), W&B's notifyScriptableRunAlert). alert_key is the SDK's id of one
# alert (the run's id and the alert's number), so a replayed log stores it once; an alert a W&B
# client sends has none (NULLs never clash in a unique constraint). created_at is when it was raised.
alerts = Table(
    "alerts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("run_pk", Integer, ForeignKey("runs.pk"), nullable=False),
    Column("alert_key", String(128)),
    Column("title", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("level", String(8), nullable=False),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("run_pk", "alert_key", name="uq_alerts_run_key"),
    # A run's alerts are read in time order, and a title's recent ones found among them.
    Index("ix_alerts_run_created", "run_pk", "created_at"),
)

# Runs deleted while they were still running (a forced delete): only their names, so a client still
# writing such a run is refused instead of bringing half of it back (store/run_edits.py).
deleted_runs = Table(
    "deleted_runs",
    metadata,
    Column("project_id", Integer, ForeignKey("projects.id"), primary_key=True, autoincrement=False),
    Column("run_id", String(255), primary_key=True),
    Column("deleted_at", Float, nullable=False),
)

# The tracking server's API keys. Only a hash is kept: a leaked database does not leak keys.
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("entity_id", Integer, ForeignKey("entities.id"), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),  # enough of the key to tell keys apart in a listing
    Column("created_at", Float, nullable=False),
)

# Secrets every server process on one database must share (the key that signs upload URLs).
server_secrets = Table(
    "server_secrets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", String(128), nullable=False),
)


# Artifacts (store/artifacts.py): versioned sets of files. A type and a collection (W&B: a
# sequence) belong to a project; a version is numbered in its collection when it is committed
# (next_index, taken under the collection row's lock); an alias names one version of a
# collection (unique per collection: moving it is an update). The manifest (the JSON listing each
# file's path, digest and size) is kept whole and never changed once the version is committed.
artifact_types = Table(
    "artifact_types",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id"), nullable=False),
    Column("name", String(255), nullable=False),
    UniqueConstraint("project_id", "name", name="uq_artifact_types_project_name"),
)

artifact_collections = Table(
    "artifact_collections",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id"), nullable=False),
    Column("type_id", Integer, ForeignKey("artifact_types.id"), nullable=False),
    Column("name", String(255), nullable=False),
    Column("next_index", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("project_id", "name", name="uq_artifact_collections_project_name"),
)

artifact_versions = Table(
    "artifact_versions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("collection_id", Integer, ForeignKey("artifact_collections.id"), nullable=False),
    Column("version_index", Integer),  # None until committed
    Column("state", String(16), nullable=False),  # PENDING, COMMITTED
    Column("digest", String(64), nullable=False),
    Column("description", Text),
    Column("metadata", Text, nullable=False),
    Column("manifest", Text),  # None until committed
    Column("aliases", Text, nullable=False),  # JSON list: the aliases asked, given at commit
    Column("size", BigInteger, nullable=False),
    Column("file_count", Integer, nullable=False),
    Column("run_pk", Integer, ForeignKey("runs.pk", ondelete="SET NULL")),  # the run that logged it
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("collection_id", "version_index", name="uq_artifact_versions_index"),
    Index("ix_artifact_versions_run", "run_pk"),
)

artifact_aliases = Table(
    "artifact_aliases",
    metadata,
    Column("collection_id", Integer, ForeignKey("artifact_collections.id"), primary_key=True),
    Column("alias", String(255), primary_key=True),
    Column("version_id", Integer, ForeignKey("artifact_versions.id"), nullable=False),
)

# Runs that used a version (its lineage downstream); the logging run is artifact_versions.run_pk.
artifact_uses = Table(
    "artifact_uses",
    metadata,
    Column("version_id", Integer, ForeignKey("artifact_versions.id"), primary_key=True),
    Column("run_pk", Integer, ForeignKey("runs.pk", ondelete="CASCADE"), primary_key=True),
    Column("used_at", Float, nullable=False),
    Index("ix_artifact_uses_run", "run_pk"),
)

# The files of an entity's artifacts, stored once by content (server/artifact_files.py): a row
# is written only once the bytes were received and their MD5 checked against md5.
artifact_blobs = Table(
    "artifact_blobs",
    metadata,
    Column("entity_id", Integer, ForeignKey("entities.id"), primary_key=True),
    Column("md5", String(32), primary_key=True),  # hex
    Column("size", BigInteger, nullable=False),
    Column("created_at", Float, nullable=False),
)


@dataclass(frozen=True, slots=True)
class ProjectRow:
    entity: str
    name: str
    created_at: float
    run_count: int
    last_activity: float  # newest runs.updated_at, or created_at for a project without runs


@dataclass(frozen=True, slots=True)
class RunRow:
    entity: str
    project: str
    run_id: str
    display_name: str | None
    state: str
    config: dict[str, Any]
    summary: dict[str, Any]
    metrics: list[Any]
    tags: list[str]
    notes: str | None
    group: str | None
    job_type: str | None
    host: str | None
    program: str | None
    created_at: float
    updated_at: float
    runtime: float
    exit_code: int | None
    history_line_count: int
    last_step: int | None


class RunFields(TypedDict, total=False):
    """What describes a run (Store.upsert_run's keywords); a field left out or None stays as it is."""

    display_name: str | None
    notes: str | None
    tags: Sequence[str] | None
    group: str | None
    job_type: str | None
    host: str | None
    program: str | None
    config: Mapping[str, Any] | None
    summary: Mapping[str, Any] | None
    metrics: Sequence[Mapping[str, Any]] | None
    state: str | None
    created_at: float | None


@dataclass(frozen=True, slots=True)
class LineBatch:
    """Lines offset.. of one of a run's line streams (history, output, events); they replace lines there."""

    offset: int
    lines: Sequence[str]
    steps: Sequence[int] | None = None  # history only: the rows' _step values, if the caller parsed them
    parsed: Sequence[dict[str, Any]] | None = None  # history only: the rows as parsed, if the caller did


@dataclass(frozen=True, slots=True)
class AlertRow:
    """One alert of a run: its level is one of ALERT_LEVELS; created_at when it was raised."""

    title: str
    text: str
    level: str
    created_at: float


@dataclass(frozen=True, slots=True)
class KeyRow:
    entity: str
    prefix: str
    created_at: float


def decode_run(row: Row[Any]) -> RunRow:
    """A RunRow from a row of runs columns plus "entity" and "project" names."""
    return RunRow(
        entity=row.entity,
        project=row.project,
        run_id=row.run_id,
        display_name=row.display_name,
        state=row.state,
        config=loads(row.config),
        summary=loads(row.summary),
        metrics=loads(row.metrics),
        tags=loads(row.tags),
        notes=row.notes,
        group=row.group_name,
        job_type=row.job_type,
        host=row.host,
        program=row.program,
        created_at=row.created_at,
        updated_at=row.updated_at,
        runtime=row.runtime,
        exit_code=row.exit_code,
        history_line_count=row.history_line_count,
        last_step=row.last_step,
    )


def new_run_values(project_id: int, run_id: str, now: float) -> dict[str, Any]:
    """Column values of a run that nothing has described yet."""
    return {
        "project_id": project_id,
        "run_id": run_id,
        "tags": "[]",
        "config": "{}",
        "summary": "{}",
        "metrics": "[]",
        "state": "running",
        "created_at": now,
        "updated_at": now,
        "runtime": 0.0,
        "history_line_count": 0,
    }


def check_offset(offset: int) -> None:
    """Raise ValueError for a negative line offset."""
    if offset < 0:
        raise ValueError(f"line offset must be >= 0, got {offset}")


def check_state(state: str) -> None:
    """Raise ValueError unless state is one of RUN_STATES."""
    if state not in RUN_STATES:
        raise ValueError(f"unknown run state {state!r}; expected one of {', '.join(RUN_STATES)}")


def history_facts(
    rows: Sequence[str], offset: int, steps: Sequence[int] | None, parsed: Sequence[Any] | None = None
) -> tuple[list[int], list[dict[str, Any]]]:
    """The steps and the parsed objects of JSON history rows (each parsed, or read off them, unless given)."""
    check_offset(offset)
    if parsed is None:
        parsed = [loads(row) for row in rows]
    elif len(parsed) != len(rows):
        raise ValueError(f"got {len(parsed)} parsed rows for {len(rows)} history rows")
    if set(map(type, parsed)) - {dict}:  # one C-level pass; the loop only finds the culprit
        line, row = next((offset + i, row) for i, row in enumerate(parsed) if type(row) is not dict)
        raise ValueError(f"history line {line} is not a JSON object: {row!r:.200}")
    if steps is None:
        steps = [_step_of(row, offset + i) for i, row in enumerate(parsed)]
    elif len(steps) != len(rows):
        raise ValueError(f"got {len(steps)} steps for {len(rows)} history rows")
    return list(steps), list(parsed)


def pick_keys(rows: list[dict[str, Any]], keys: Sequence[str]) -> list[dict[str, Any]]:
    """The rows that hold any of keys, each cut down to _step and those keys."""
    picked = []
    for row in rows:
        values = {key: row[key] for key in keys if key in row}
        if values:
            picked.append({"_step": row.get("_step"), **values})
    return picked


def sample_positions(count: int, samples: int) -> list[int]:
    """Positions of at most `samples` of `count` items, evenly spaced, the first and last among them.

    The first position of each of `samples` equal buckets over 0..count-1; Store.history_json
    computes the same set in SQL (pos 0, and every pos where (pos * (samples-1)) // (count-1) steps up).
    """
    if count <= samples:
        return list(range(count))
    if samples == 1:
        return [0]
    span, width = samples - 1, count - 1
    return [-(-bucket * width // span) for bucket in range(samples)]


def _step_of(row: Any, line: int) -> int:
    step = row.get("_step") if isinstance(row, dict) else None
    if not isinstance(step, int) or isinstance(step, bool):
        raise ValueError(f"history line {line} has no integer _step: {row!r:.200}")
    return step
