"""Resolvers of the read side of the schema: Query, and the fields of User, Project and Run.

Projects (W&B: models) resolve to store ProjectRows and runs (W&B: buckets) to RunRows; every lookup is
confined to the caller's entity, so another entity's project or run reads as absent.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from graphql import GraphQLResolveInfo

from nbtrack import jsonutil
from nbtrack.server.alerts import alert_fields
from nbtrack.server.context import RequestContext
from nbtrack.server.errors import ApiError
from nbtrack.server.history_export import export_version
from nbtrack.server.wandb_files import WandbFile, select_files
from nbtrack.server.wandb_query import select_runs
from nbtrack.store import ChartRequest, ProjectRow, RunRow
from nbtrack.store.line_counts import last_line, line_count
from nbtrack.store.rollup import X_KEYS
from nbtrack.store.run_queries import RunSelection, query_runs

__all__ = ["FEATURES", "RESOLVERS", "WANDB_RESOLVERS", "Info", "Resolver", "run_key"]

Resolver = Callable[..., Any]
Info = GraphQLResolveInfo[RequestContext]

# What this server can do beyond W&B's core protocol, for clients that ask (serverInfo.features).
FEATURES = ("NBTRACK_RUN_METRICS", "NBTRACK_HISTORY_SAMPLING", "NBTRACK_RUN_CHART")
MAX_CHART_POINTS = 5000  # per key: more than any screen is wide, and the answer stays under ~1 MB a key


def numeric_id(text: str) -> str:
    """A stable number for a name, for W&B clients that read ids such as projectId as integers."""
    return str(zlib.crc32(text.encode()))


def run_key(run: RunRow) -> str:
    """The opaque, stable id of a run (W&B's bucket id)."""
    return f"{run.entity}/{run.project}/{run.run_id}"


def _wrapped_config(run: RunRow) -> str:
    """The run's config in W&B's form: {"key": {"value": v}}."""
    return jsonutil.dumps_str({key: {"value": value} for key, value in run.config.items()})


def _viewer(_root: None, info: Info) -> dict[str, Any]:
    entity = info.context.entity
    return {
        "id": entity,
        "username": entity,
        "entity": entity,
        "name": entity,
        "email": None,
        "admin": False,
        "deletedAt": None,
        "apiKeys": {"edges": []},
        "flags": "{}",
        "teams": {"edges": []},
    }


def _server_info(_root: None, _info: Info) -> dict[str, Any]:
    return {"features": [{"name": name, "isEnabled": True} for name in FEATURES]}


def _projects(_root: None, info: Info, entityName: str | None = None) -> list[ProjectRow]:
    context = info.context
    if entityName is not None and entityName != context.entity:
        return []
    return context.store.list_projects(context.entity)


def _project(
    _root: None, info: Info, name: str | None = None, entityName: str | None = None
) -> ProjectRow | None:
    context = info.context
    if name is None:
        return None
    if entityName is not None and entityName != context.entity:
        return None
    return _cached_project(info, context.entity, name)


def _cached_project(info: Info, entity: str, name: str) -> ProjectRow | None:
    """The project, read once per request: each run of a listing asks for its project, the same one."""
    memo = info.context.memo
    key = ("project", entity, name)
    if key not in memo:
        memo[key] = info.context.store.get_project(entity, name)
    found: ProjectRow | None = memo[key]
    return found


def _project_runs(
    project: ProjectRow, info: Info, first: int | None = None, order: str | None = None
) -> list[RunRow]:
    if first is not None and first < 0:
        raise ApiError("BAD_REQUEST", f"runs(first:) must be >= 0, not {first}")
    if order not in (None, "-created_at", "created_at"):
        raise ApiError(
            "BAD_REQUEST", f'runs(order:) must be "-created_at" or "created_at", not {order!r:.40}'
        )
    return info.context.store.list_runs(
        project.name, project.entity, limit=first, oldest_first=order == "created_at"
    )


def _project_run(project: ProjectRow, info: Info, name: str) -> RunRow | None:
    return info.context.store.get_run(project.entity, project.name, name)


def _project_bucket(
    project: ProjectRow, info: Info, name: str, missingOk: bool | None = None
) -> RunRow | None:
    return _project_run(project, info, name)


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


def _run_alerts(run: RunRow, info: Info) -> list[dict[str, Any]]:
    return [alert_fields(a) for a in info.context.store.read_alerts(run.entity, run.project, run.run_id)]


def _run_project(run: RunRow, info: Info) -> ProjectRow | None:
    return _cached_project(info, run.entity, run.project)


def _run_history(
    run: RunRow,
    info: Info,
    keys: list[str] | None = None,
    samples: int | None = None,
    minStep: int | None = None,
    maxStep: int | None = None,
) -> str:
    if samples is not None and samples < 1:
        raise ApiError("BAD_REQUEST", f"history(samples:) must be at least 1, not {samples}")
    return info.context.store.history_json(
        run.entity, run.project, run.run_id, keys=keys, samples=samples, min_step=minStep, max_step=maxStep
    )


def _run_history_keys(run: RunRow, info: Info) -> list[str]:
    return info.context.store.history_keys(run.entity, run.project, run.run_id)


def _run_chart(
    run: RunRow,
    info: Info,
    keys: list[str] | None = None,
    x: str | None = "_step",
    minX: float | None = None,
    maxX: float | None = None,
    points: int | None = 1000,
    attempt: int | None = None,
) -> str:
    # Arguments may be null, as a GraphQL client may send them: null means the default.
    x = "_step" if x is None else x
    points = 1000 if points is None else points
    if x not in X_KEYS:
        raise ApiError("BAD_REQUEST", f"chart(x:) must be one of {', '.join(X_KEYS)}, not {x!r:.40}")
    if not 1 <= points <= MAX_CHART_POINTS:
        raise ApiError("BAD_REQUEST", f"chart(points:) must be 1 to {MAX_CHART_POINTS}, not {points}")
    if minX is not None and maxX is not None and minX > maxX:
        raise ApiError("BAD_REQUEST", f"chart(minX:, maxX:) is an empty range: {minX} > {maxX}")
    if attempt is not None and attempt < 0:
        raise ApiError("BAD_REQUEST", f"chart(attempt:) must be 0 or more, not {attempt}")
    request = ChartRequest(
        None if keys is None else tuple(dict.fromkeys(keys)), x, minX, maxX, points, attempt=attempt
    )
    chart = info.context.store.chart(run.entity, run.project, run.run_id, request)
    if chart is None:  # deleted between the run's lookup and this field: as absent as it is now
        raise ApiError("NOT_FOUND", f"run {run_key(run)} does not exist")
    return chart.to_json()


def _run_attempts(run: RunRow, info: Info) -> int:
    return info.context.store.attempts(run.entity, run.project, run.run_id)


def _run_output(run: RunRow, info: Info, offset: int | None = None, limit: int | None = None) -> list[str]:
    start = _check_window("output", offset, limit)
    return info.context.store.read_output(run.entity, run.project, run.run_id, start, limit)


def _run_events(run: RunRow, info: Info, offset: int | None = None, limit: int | None = None) -> list[str]:
    start = _check_window("events", offset, limit)
    return info.context.store.read_events(run.entity, run.project, run.run_id, start, limit)


def _check_window(field: str, offset: int | None, limit: int | None) -> int:
    """The first line to read (arguments may be null, as a GraphQL client may send them)."""
    if (offset is not None and offset < 0) or (limit is not None and limit < 0):
        raise ApiError("BAD_REQUEST", f"{field}(offset:, limit:) must be >= 0")
    return offset or 0


def _run_files(run: RunRow, info: Info) -> list[dict[str, Any]]:
    context = info.context
    return [
        {
            "name": file.name,
            "sizeBytes": file.size,
            "url": context.file_url(run.entity, run.project, run.run_id, file.name),
            "updatedAt": file.updated_at,
        }
        for file in context.files.list(run.entity, run.project, run.run_id)
    ]


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
    return _page(_projects(_root, info, entityName), first, after, str)


def _project_runs_page(
    project: ProjectRow,
    info: Info,
    first: int | None = None,
    after: str | None = None,
    order: str | None = None,
    filters: Any = None,
) -> dict[str, Any]:
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
        answers.append(jsonutil.loads(text))
    return answers


def _parquet_history(
    run: RunRow,
    info: Info,
    liveKeys: list[str] | None = None,
    minStep: int | None = None,
    maxStep: int | None = None,
) -> dict[str, Any]:
    """One signed URL of the run's history as parquet (history_export.py), no liveData: wandb-core
    reads liveData as strict JSON, where NaN and infinities cannot be written."""
    context = info.context
    version = export_version(run)
    token = context.signer.token(run.entity, run.project, run.run_id, version, purpose="history")
    path = "/".join(quote(part, safe="") for part in (run.entity, run.project, run.run_id))
    url = f"{context.base_url}/history/{path}/{version}.parquet?token={token}"
    return {"parquetUrls": [url], "liveData": []}


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
    text = _run_history(run, info, samples=samples, minStep=minStep, maxStep=maxStep)
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


def _attr(name: str) -> Resolver:
    return lambda row, _info: getattr(row, name)


def _value(compute: Callable[[Any], Any]) -> Resolver:
    return lambda row, _info: compute(row)


# Fields a Run and a Bucket (the same run, as upsertBucket returns it) share.
_RUN_COMMON: dict[str, Resolver] = {
    "id": _value(run_key),
    "name": _attr("run_id"),
    "displayName": _attr("display_name"),
    "description": _attr("notes"),
    "config": _value(_wrapped_config),
    "historyLineCount": _attr("history_line_count"),
    "project": _run_project,
}

RESOLVERS: dict[str, dict[str, Resolver]] = {
    "Query": {
        "viewer": _viewer,
        "serverInfo": _server_info,
        "projects": _projects,
        "project": _project,
        "model": _project,
        "models": _models,
    },
    "Project": {
        "id": _value(lambda p: f"{p.entity}/{p.name}"),
        "entityName": _attr("entity"),
        "entity": _value(lambda p: {"id": p.entity, "name": p.entity}),
        "runCount": _run_count,
        "internalId": _value(lambda p: numeric_id(f"{p.entity}/{p.name}")),
        "readOnly": _value(lambda _p: False),
        "isBenchmark": _value(lambda _p: False),
        "user": _value(lambda p: _owner(p.entity)),
        "createdAt": _attr("created_at"),
        "lastActivity": _attr("last_activity"),
        "runs": _project_runs,
        "run": _project_run,
        "bucket": _project_bucket,
    },
    "Run": {
        **_RUN_COMMON,
        "summaryMetrics": _value(lambda run: jsonutil.dumps_str(run.summary)),
        "metrics": _value(lambda run: jsonutil.dumps_str(run.metrics)),
        "jobType": _attr("job_type"),
        "createdAt": _attr("created_at"),
        "updatedAt": _attr("updated_at"),
        "heartbeatAt": _attr("updated_at"),
        "exitCode": _attr("exit_code"),
        "lastStep": _attr("last_step"),
        "history": _run_history,
        "historyKeys": _run_history_keys,
        "chart": _run_chart,
        "attempts": _run_attempts,
        "output": _run_output,
        "events": _run_events,
        "files": _run_files,
        "fileCount": _file_count,
        "sweepName": _value(lambda _run: None),
        "projectId": _value(lambda run: numeric_id(f"{run.entity}/{run.project}")),
        "commit": _value(lambda _run: None),
        "readOnly": _value(lambda _run: False),
        "systemMetrics": _system_metrics,
        "user": _value(lambda run: _owner(run.entity)),
        "sampledHistory": _sampled_history,
        "parquetHistory": _parquet_history,
        "logLineCount": _log_line_count,
        "eventsLineCount": _events_line_count,
        "historyTail": _history_tail,
        "eventsTail": _events_tail,
        "wandbConfig": _wandb_config,
        "alerts": _run_alerts,
    },
}

# The W&B dialect (graphql_schema.py): fields whose W&B shape differs from nbtrack's own.
WANDB_RESOLVERS: dict[str, dict[str, Resolver]] = {
    "Project": {
        "runs": _project_runs_page,
        "createdAt": _value(
            lambda p: datetime.fromtimestamp(p.created_at, UTC).isoformat(timespec="seconds")
        ),
    },
    "Run": {
        "history": _wandb_history,
        "historyKeys": _wandb_history_keys,
        "events": _wandb_events,
        "files": _wandb_files,
    },
}
