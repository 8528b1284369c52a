"""Resolvers of what only W&B's clients ask: the fields its public API and resume selects
(Project.runCount, Run.systemMetrics, historyTail, parquetHistory, ...) and, in the W&B dialect of
the schema (graphql_schema.py), the fields whose W&B shape differs from nbtrack's own (runs as a
paged connection, history as row texts, files with upload URLs). docs/wandb-compat.md says what
the client sends; resolvers.py holds nbtrack's own fields.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from nbtrack import jsonutil
from nbtrack.server.errors import ApiError
from nbtrack.server.resolvers import Info, Resolver, computed, numeric_id, projects, run_history
from nbtrack.server.wandb_files import WandbFile, select_files
from nbtrack.server.wandb_query import select_runs, times_as_seconds
from nbtrack.store import ProjectRow, RunRow
from nbtrack.store.line_counts import last_line, line_count
from nbtrack.store.run_queries import RunSelection, query_runs

__all__ = ["WANDB_FIELDS", "WANDB_RESOLVERS"]


def _log_line_count(run: RunRow, info: Info) -> int:
    return line_count(info.context.store, "output", run.entity, run.project, run.run_id)


def _events_line_count(run: RunRow, info: Info) -> int:
    return line_count(info.context.store, "events", run.entity, run.project, run.run_id)


def _tail(lines: list[str]) -> str:
    """W&B's form of the last lines: a JSON array of each line's JSON text."""
    return jsonutil.dumps_str(lines)


def _history_tail(run: RunRow, info: Info) -> str:
    if run.last_step is None:
        return "[]"
    rows = info.context.store.read_history(run.entity, run.project, run.run_id, min_step=run.last_step)
    return _tail([jsonutil.dumps_str(row) for row in rows[-1:]])


def _events_tail(run: RunRow, info: Info) -> str:
    return _tail(_last_event(run, info))


def _last_event(run: RunRow, info: Info) -> list[str]:
    """The run's last system-metrics line (or none): read by its position, not with every line."""
    last = last_line(info.context.store, "events", run.entity, run.project, run.run_id)
    return [] if last is None else [last]


def _wandb_config(run: RunRow, _info: Info, keys: list[str] | None = None) -> str:
    own = run.config.get("_wandb")
    own = own if isinstance(own, dict) else {}
    return jsonutil.dumps_str(own if keys is None else {key: own[key] for key in keys if key in own})


def _page(
    items: list[Any], first: int | None, after: str | None, cursor: Callable[[int], str]
) -> dict[str, Any]:
    """A W&B connection of items[after:after+first]; a cursor is the item's position, as text."""
    if first is not None and first < 0:
        raise ApiError("BAD_REQUEST", f"first must be >= 0, not {first}")
    start = _cursor_start(after)
    stop = len(items) if first is None else start + first
    edges = [{"node": item, "cursor": cursor(start + i)} for i, item in enumerate(items[start:stop])]
    return {
        "edges": edges,
        "pageInfo": {"endCursor": edges[-1]["cursor"] if edges else after, "hasNextPage": stop < len(items)},
    }


def _cursor_start(after: str | None) -> int:
    """The position after a cursor (a cursor is an item's position, as text)."""
    try:
        start = 0 if after is None else int(after) + 1
    except ValueError:
        raise ApiError("BAD_REQUEST", f"after: {after!r:.40} is not a cursor of this server") from None
    return max(start, 0)


def _models(
    _root: None, info: Info, entityName: str | None = None, first: int | None = None, after: str | None = None
) -> dict[str, Any]:
    return _page(projects(_root, info, entityName), first, after, str)


def _project_runs_page(
    project: ProjectRow,
    info: Info,
    first: int | None = None,
    after: str | None = None,
    order: str | None = None,
    filters: Any = None,
) -> dict[str, Any]:
    filters = times_as_seconds(filters)
    start = _cursor_start(after)
    if first is not None and first < 0:
        raise ApiError("BAD_REQUEST", f"first must be >= 0, not {first}")
    found = _select(project, info, filters, order, start, None if first is None else first + 1)
    if not found.exact:
        return _page(select_runs(found.rows, filters, order), first, after, str)
    # The page, and one run more: whether there is a next page, without counting every match.
    rows = found.rows if first is None else found.rows[:first]
    edges = [{"node": row, "cursor": str(start + i)} for i, row in enumerate(rows)]
    more = first is not None and len(found.rows) > first
    return {
        "edges": edges,
        "pageInfo": {"endCursor": edges[-1]["cursor"] if edges else after, "hasNextPage": more},
    }


def _select(
    project: ProjectRow,
    info: Info,
    filters: Any,
    order: str | None,
    offset: int = 0,
    limit: int | None = None,
    count_only: bool = False,
) -> RunSelection:
    """The project's runs the filter selects, in SQL where it can (store/run_queries.py)."""
    if filters is not None and not isinstance(filters, dict):
        raise ApiError("BAD_REQUEST", "runs(filters:) must hold a JSON object")
    return query_runs(
        info.context.store, project.entity, project.name, filters, order, offset, limit, count_only=count_only
    )


def _run_count(project: ProjectRow, info: Info, filters: Any = None) -> int:
    if filters is None:
        return project.run_count
    filters = times_as_seconds(filters)
    found = _select(project, info, filters, None, count_only=True)
    return found.total if found.exact else len(select_runs(found.rows, filters, None))


def _owner(entity: str) -> dict[str, Any]:
    return {
        "id": entity,
        "name": entity,
        "username": entity,
        "entity": entity,
        "admin": False,
        "email": None,
        "deletedAt": None,
        "flags": "{}",
        "apiKeys": {"edges": []},
        "teams": {"edges": []},
    }


def _system_metrics(run: RunRow, info: Info) -> str:
    last = _last_event(run, info)
    return last[0] if last else "{}"


def _sampled_history(run: RunRow, info: Info, specs: list[Any]) -> list[list[dict[str, Any]]]:
    answers = []
    for spec in specs:
        if not isinstance(spec, dict) or not isinstance(spec.get("keys"), list):
            raise ApiError(
                "BAD_REQUEST", 'sampledHistory(specs:) holds {"keys": [...], "samples": n} objects'
            )
        keys = [key for key in spec["keys"] if isinstance(key, str) and key != "_step"]
        samples = spec.get("samples")
        if samples is not None and (type(samples) is not int or samples < 1):
            raise ApiError("BAD_REQUEST", "sampledHistory: samples must be a positive integer")
        text = info.context.store.history_json(
            run.entity, run.project, run.run_id, keys=keys or None, samples=samples
        )
        answers.append(_strict_json(jsonutil.loads(text)))
    return answers


# W&B's server answers a non-finite history value in sampledHistory as this text: wandb-core reads
# the response as strict JSON, where one bare NaN fails the whole `run.history(keys=...)`.
_NONFINITE_TEXT = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def _strict_json(value: Any) -> Any:
    """value with each NaN/±inf float (nested too) as W&B's text for it."""
    if isinstance(value, float):
        return value if math.isfinite(value) else _NONFINITE_TEXT[repr(value)]
    if isinstance(value, dict):
        return {key: _strict_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_strict_json(item) for item in value]
    return value


def _parquet_history(
    run: RunRow,
    info: Info,
    liveKeys: list[str] | None = None,
    minStep: int | None = None,
    maxStep: int | None = None,
) -> dict[str, Any]:
    """Signed URLs of the run's history as parquet segments (history_export.py), no liveData:
    wandb-core reads liveData as strict JSON, where NaN and infinities cannot be written."""
    context = info.context
    chain = context.exports.segments(run.entity, run.project, run.run_id, run.history_line_count)
    path = "/".join(quote(part, safe="") for part in (run.entity, run.project, run.run_id))
    urls = []
    for start, end in chain:
        segment = f"{start}-{end}"
        token = context.signer.token(run.entity, run.project, run.run_id, segment, purpose="history")
        urls.append(f"{context.base_url}/history/{path}/{segment}.parquet?token={token}")
    return {"parquetUrls": urls, "liveData": []}


def _wandb_files(
    run: RunRow,
    info: Info,
    names: list[str | None] | None = None,
    after: str | None = None,
    first: int | None = None,
    pattern: str | None = None,
) -> dict[str, Any]:
    context = info.context
    chosen = select_files(context.files.list(run.entity, run.project, run.run_id), names, pattern)
    return _page([WandbFile(run, file, context) for file in chosen], first, after, str)


def _file_count(run: RunRow, info: Info) -> int:
    return len(info.context.files.list(run.entity, run.project, run.run_id))


def _wandb_history(
    run: RunRow,
    info: Info,
    samples: int | None = None,
    minStep: int | None = None,
    maxStep: int | None = None,
) -> list[str]:
    """W&B's Run.history: each row as JSON text."""
    text = run_history(run, info, samples=samples, minStep=minStep, maxStep=maxStep)
    return [jsonutil.dumps_str(row) for row in jsonutil.loads(text)]


def _wandb_history_keys(run: RunRow, info: Info) -> dict[str, Any]:
    keys = info.context.store.history_keys(run.entity, run.project, run.run_id)
    return {
        "keys": {key: {"typeCounts": [{"type": "number"}]} for key in keys},
        "lastStep": -1 if run.last_step is None else run.last_step,
    }


def _wandb_events(run: RunRow, info: Info, samples: int | None = None) -> list[str]:
    lines = info.context.store.read_events(run.entity, run.project, run.run_id)
    if samples is not None and samples < len(lines):
        step = len(lines) / max(samples, 1)
        lines = [lines[int(i * step)] for i in range(samples)]
    return lines


def wandb_time(seconds: float) -> str:
    """W&B's form of a run's (or project's) time: ISO 8601 in UTC to the second, no offset
    ("2026-12-07T16:06:25"), the text wandb.Api's `run.created_at` holds and scripts parse."""
    return datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None).isoformat(timespec="seconds")


# Fields W&B's clients ask for, on nbtrack's schema as on the W&B dialect.
WANDB_FIELDS: dict[str, dict[str, Resolver]] = {
    "Query": {"models": _models},
    "Project": {
        "runCount": _run_count,
        "internalId": computed(lambda p: numeric_id(f"{p.entity}/{p.name}")),
        "readOnly": computed(lambda _p: False),
        "isBenchmark": computed(lambda _p: False),
        "user": computed(lambda p: _owner(p.entity)),
    },
    "Run": {
        "fileCount": _file_count,
        "sweepName": computed(lambda _run: None),
        "projectId": computed(lambda run: numeric_id(f"{run.entity}/{run.project}")),
        "commit": computed(lambda _run: None),
        "readOnly": computed(lambda _run: False),
        "systemMetrics": _system_metrics,
        "user": computed(lambda run: _owner(run.entity)),
        "sampledHistory": _sampled_history,
        "parquetHistory": _parquet_history,
        "logLineCount": _log_line_count,
        "eventsLineCount": _events_line_count,
        "historyTail": _history_tail,
        "eventsTail": _events_tail,
        "wandbConfig": _wandb_config,
    },
}

# The W&B dialect (graphql_schema.py): fields whose W&B shape differs from nbtrack's own.
WANDB_RESOLVERS: dict[str, dict[str, Resolver]] = {
    "Project": {
        "runs": _project_runs_page,
        "createdAt": computed(lambda p: wandb_time(p.created_at)),
    },
    "Run": {
        "createdAt": computed(lambda run: wandb_time(run.created_at)),
        "updatedAt": computed(lambda run: wandb_time(run.updated_at)),
        "heartbeatAt": computed(lambda run: wandb_time(run.updated_at)),
        "history": _wandb_history,
        "historyKeys": _wandb_history_keys,
        "events": _wandb_events,
        "files": _wandb_files,
    },
}
