"""Resolvers of the read side of the schema: Query, and the fields of User, Project and Run.

Projects (W&B: models) resolve to store ProjectRows and runs (W&B: buckets) to RunRows; every lookup is
confined to the caller's entity, so another entity's project or run reads as absent.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

from graphql import GraphQLResolveInfo

from nbtrack import jsonutil
from nbtrack.server.alerts import alert_fields
from nbtrack.server.context import RequestContext
from nbtrack.server.errors import ApiError
from nbtrack.store import ChartRequest, ProjectRow, RunRow, SystemChartRequest
from nbtrack.store.rollup import BOOKKEEPING_KEYS, X_KEYS
from nbtrack.store.run_search import search_runs, search_words
from nbtrack.store.system_read import SYSTEM_X_KEYS

__all__ = [
    "FEATURES",
    "RESOLVERS",
    "Info",
    "Resolver",
    "cached_project",
    "computed",
    "numeric_id",
    "projects",
    "run_history",
    "run_key",
]

Resolver = Callable[..., Any]
Info = GraphQLResolveInfo[RequestContext]

# What this server can do beyond W&B's core protocol, for clients that ask (serverInfo.features).
FEATURES = ("NBTRACK_RUN_METRICS", "NBTRACK_HISTORY_SAMPLING", "NBTRACK_RUN_CHART")
SEARCH_DEFAULT = 50  # runs a search answers unless it asks for another number
MAX_SEARCH_RESULTS = 200  # a list to read, not an export: searchRuns' cost stays that of 200 runs
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


def projects(_root: None, info: Info, entityName: str | None = None) -> list[ProjectRow]:
    context = info.context
    if entityName is not None and entityName != context.entity:
        return []
    return context.store.list_projects(context.entity)


def _search_runs(_root: None, info: Info, text: str, first: int | None = SEARCH_DEFAULT) -> list[RunRow]:
    first = SEARCH_DEFAULT if first is None else first
    if not 1 <= first <= MAX_SEARCH_RESULTS:
        raise ApiError("BAD_REQUEST", f"searchRuns(first:) must be 1 to {MAX_SEARCH_RESULTS}, not {first}")
    if not search_words(text):
        raise ApiError("BAD_REQUEST", "searchRuns(text:) has no word to look for")
    return search_runs(info.context.store, info.context.entity, text, first)


def _project(
    _root: None, info: Info, name: str | None = None, entityName: str | None = None
) -> ProjectRow | None:
    context = info.context
    if name is None:
        return None
    if entityName is not None and entityName != context.entity:
        return None
    return cached_project(info, context.entity, name)


def cached_project(info: Info, entity: str, name: str) -> ProjectRow | None:
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


def _run_alerts(run: RunRow, info: Info) -> list[dict[str, Any]]:
    return [alert_fields(a) for a in info.context.store.read_alerts(run.entity, run.project, run.run_id)]


def _run_project(run: RunRow, info: Info) -> ProjectRow | None:
    return cached_project(info, run.entity, run.project)


def run_history(
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
    # Any metric key may be the x axis too (a step metric a W&B integration declared, as
    # Lightning's trainer/global_step); the other keys nbtrack stamps are no axis.
    if x not in X_KEYS and (not x or x in BOOKKEEPING_KEYS):
        raise ApiError("BAD_REQUEST", f"chart(x:) must be {', '.join(X_KEYS)} or a metric key, not {x!r:.40}")
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


def _run_system_chart(
    run: RunRow,
    info: Info,
    keys: list[str] | None = None,
    x: str | None = "_runtime",
    minX: float | None = None,
    maxX: float | None = None,
    points: int | None = 500,
) -> str:
    x = "_runtime" if x is None else x
    points = 500 if points is None else points
    if x not in SYSTEM_X_KEYS:
        raise ApiError(
            "BAD_REQUEST", f"systemChart(x:) must be one of {', '.join(SYSTEM_X_KEYS)}, not {x!r:.40}"
        )
    if not 1 <= points <= MAX_CHART_POINTS:
        raise ApiError("BAD_REQUEST", f"systemChart(points:) must be 1 to {MAX_CHART_POINTS}, not {points}")
    if minX is not None and maxX is not None and minX > maxX:
        raise ApiError("BAD_REQUEST", f"systemChart(minX:, maxX:) is an empty range: {minX} > {maxX}")
    request = SystemChartRequest(None if keys is None else tuple(dict.fromkeys(keys)), x, minX, maxX, points)
    chart = info.context.store.system_chart(run.entity, run.project, run.run_id, request)
    if chart is None:  # deleted between the run's lookup and this field
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


def _attr(name: str) -> Resolver:
    return lambda row, _info: getattr(row, name)


def computed(compute: Callable[[Any], Any]) -> Resolver:
    return lambda row, _info: compute(row)


# Fields a Run and a Bucket (the same run, as upsertBucket returns it) share.
_RUN_COMMON: dict[str, Resolver] = {
    "id": computed(run_key),
    "name": _attr("run_id"),
    "displayName": _attr("display_name"),
    "description": _attr("notes"),
    "config": computed(_wrapped_config),
    "historyLineCount": _attr("history_line_count"),
    "project": _run_project,
}

RESOLVERS: dict[str, dict[str, Resolver]] = {
    "Query": {
        "viewer": _viewer,
        "serverInfo": _server_info,
        "projects": projects,
        "searchRuns": _search_runs,
        "project": _project,
        "model": _project,
    },
    "Project": {
        "id": computed(lambda p: f"{p.entity}/{p.name}"),
        "entityName": _attr("entity"),
        "entity": computed(lambda p: {"id": p.entity, "name": p.entity}),
        "createdAt": _attr("created_at"),
        "lastActivity": _attr("last_activity"),
        "runs": _project_runs,
        "run": _project_run,
        "bucket": _project_bucket,
    },
    "Run": {
        **_RUN_COMMON,
        "summaryMetrics": computed(lambda run: jsonutil.dumps_str(run.summary)),
        "metrics": computed(lambda run: jsonutil.dumps_str(run.metrics)),
        "jobType": _attr("job_type"),
        "createdAt": _attr("created_at"),
        "updatedAt": _attr("updated_at"),
        "heartbeatAt": _attr("updated_at"),
        "exitCode": _attr("exit_code"),
        "lastStep": _attr("last_step"),
        "history": run_history,
        "historyKeys": _run_history_keys,
        "chart": _run_chart,
        "systemChart": _run_system_chart,
        "attempts": _run_attempts,
        "output": _run_output,
        "events": _run_events,
        "files": _run_files,
        "alerts": _run_alerts,
    },
}
