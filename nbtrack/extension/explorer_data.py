"""What the notebook's explorer shows, read through `nbtrack.Api`: a project's runs table, and a
comparison of runs (config and summary side by side, one chart per metric they share).

Each view is a plain JSON-able dict, the one state its widget syncs (explorer.py) and its static
snapshots read (explorer_snapshot.py). Every cell is already text, formatted as the CLI's tables
and the web UI format it (tables.format_cell, formatting.format_summary: "max 0.9894"), so the
front end formats no value itself. Charts are the store's chart reads (StoredRun.chart): at most
CHART_POINTS [step, min, max] points per run and metric, whatever the run's length.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nbtrack.api import Api, RunNotFoundError, StoredRun
from nbtrack.errors import UsageError
from nbtrack.formatting import format_duration
from nbtrack.tables import common_summary_keys, cut_text, format_cell, format_time, summary_cell
from nbtrack.vocabulary import SERIES_COLORS

__all__ = [
    "CHART_POINTS",
    "MAX_CHARTS",
    "MAX_COMPARED",
    "comparison",
    "resolve_runs",
    "runs_table",
]

CHART_POINTS = 300  # per run and metric: finer than a notebook's chart is wide
MAX_CHARTS = 24  # metrics charted in one comparison; the others are counted
MAX_COMPARED = len(SERIES_COLORS)  # one colour per run
MAX_SUMMARY_COLUMNS = 6  # the summary keys most runs share
MAX_CONFIG_COLUMNS = 6  # config keys whose values differ between runs first
MAX_TABLE_ROWS = 500  # the newest runs of a project; the table says how many more there are
MAX_CELL_CHARS = 80  # a long value (a JSON object, a text) is cut, with an ellipsis
MISSING = "—"  # a run without that key


def runs_table(api: Api, project: str, *, stable: bool = False) -> dict[str, Any]:
    """The runs of "project" (or "entity/project"), newest first: name, state, created, runtime,
    rows, a few summary and config columns. stable leaves out the wall-clock columns (tests).
    UsageError names a project that does not exist."""
    try:
        runs = api.runs(project)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if not runs:
        _check_project(api, project)
    total = len(runs)
    runs = runs[:MAX_TABLE_ROWS]
    rows = [run.row for run in runs]
    summary_keys = common_summary_keys(rows, MAX_SUMMARY_COLUMNS)
    config_keys = _config_columns(runs)
    columns = [{"key": "name", "group": ""}, {"key": "state", "group": ""}]
    if not stable:
        columns += [{"key": "created", "group": ""}, {"key": "runtime", "group": ""}]
    columns.append({"key": "rows", "group": ""})
    columns += [{"key": key, "group": "summary"} for key in summary_keys]
    columns += [{"key": key, "group": "config"} for key in config_keys]
    body = []
    for run in runs:
        cells = [run.name, run.state]
        if not stable:
            cells += [format_time(run.created_at), format_duration(run.runtime) if run.runtime else ""]
        cells.append(str(run.row.history_line_count))
        cells += [_summary_text(run.summary, key) for key in summary_keys]
        cells += [_text(run.config, key) for key in config_keys]
        body.append({"id": run.id, "name": run.name, "state": run.state, "cells": cells})
    return {
        "kind": "runs",
        "title": project,
        "source": _where(api),
        "columns": columns,
        "rows": body,
        "message": "" if runs else f"project {project!r} has no runs",
        "omitted": total - len(runs),  # older runs left out of the table
    }


def resolve_runs(api: Api | None, refs: Sequence[str | StoredRun]) -> list[StoredRun]:
    """The runs named: StoredRun objects as they are, "project/run_id" paths (as Api.run takes
    them), or bare run ids looked up in every project of api (None: StoredRuns only). UsageError
    names one that is not there."""
    if not refs:
        raise UsageError("compare() needs the runs to compare: run ids, 'project/run_id' paths or StoredRuns")
    if len(refs) > MAX_COMPARED:
        raise UsageError(f"compare() takes at most {MAX_COMPARED} runs at once, not {len(refs)}")
    found = []
    for ref in refs:
        if isinstance(ref, StoredRun):
            found.append(ref)
            continue
        if not isinstance(ref, str) or api is None:
            raise UsageError(f"compare() takes run ids, 'project/run_id' paths or StoredRuns, not {ref!r}")
        found.append(_run(api, ref))
    return found


def comparison(runs: Sequence[StoredRun]) -> dict[str, Any]:
    """The runs side by side: their config and summary values (a row per key, `differs` where
    they are not all the same) and a chart per metric every run has, a series per run."""
    fields = []
    for section, values_of in (("config", _config_values), ("summary", _summary_values)):
        per_run = [values_of(run) for run in runs]
        keys = sorted({key for values in per_run for key in values})
        for key in keys:
            texts = [values.get(key, MISSING) for values in per_run]
            fields.append({"section": section, "key": key, "values": texts, "differs": len(set(texts)) > 1})
    charts_of = [run.chart(points=CHART_POINTS) for run in runs]
    shared = [key for key in _metric_order(runs[0], charts_of[0]) if all(key in c for c in charts_of[1:])]
    charts = [
        {"key": key, "series": [_series(chart[key]) for chart in charts_of]} for key in shared[:MAX_CHARTS]
    ]
    return {
        "kind": "compare",
        "runs": [{"id": run.id, "name": run.name, "path": run.path, "state": run.state} for run in runs],
        "fields": fields,
        "charts": charts,
        "charts_omitted": max(0, len(shared) - MAX_CHARTS),
    }


def _run(api: Api, ref: str) -> StoredRun:
    if "/" in ref:
        try:
            return api.run(ref)
        except (RunNotFoundError, ValueError) as exc:
            raise UsageError(str(exc)) from None
    matches = []
    for project in api.projects():
        try:
            matches.append(api.run(f"{project.entity}/{project.name}/{ref}"))
        except (RunNotFoundError, ValueError):
            continue
    if not matches:
        raise UsageError(f"no run {ref!r} {_where(api)}; name it as 'project/run_id'")
    if len(matches) > 1:
        paths = ", ".join(repr(run.path) for run in matches)
        raise UsageError(f"run id {ref!r} is in more than one project ({paths}): name it by its path")
    return matches[0]


def _check_project(api: Api, project: str) -> None:
    """UsageError unless the project exists (an empty one is no error: its table says it is empty)."""
    parts = project.strip().split("/")
    names = {(p.entity, p.name) for p in api.projects()}
    if any(name == parts[-1] and (len(parts) == 1 or entity == parts[0]) for entity, name in names):
        return
    listed = ", ".join(sorted({name for _entity, name in names})) or "none"
    raise UsageError(f"no project {project!r} {_where(api)}; projects there: {listed}")


def _where(api: Api) -> str:
    return f"on {api.base_url}" if api.dir is None else f"under {api.dir.resolve()}"


def _cell(value: object) -> str:
    return cut_text(format_cell(value), MAX_CELL_CHARS)


def _text(values: dict[str, Any], key: str) -> str:
    return _cell(values[key]) if key in values else MISSING


def _summary_text(values: dict[str, Any], key: str) -> str:
    return _cell(summary_cell(values[key])) if key in values else MISSING


def _config_values(run: StoredRun) -> dict[str, str]:
    return {key: _cell(value) for key, value in run.config.items()}


def _summary_values(run: StoredRun) -> dict[str, str]:
    summary = run.summary
    return {key: _summary_text(summary, key) for key in summary if not key.startswith("_")}


def _config_columns(runs: Sequence[StoredRun]) -> list[str]:
    """Config keys for the table's columns: those whose values differ between runs (what tells
    them apart), then the others, each group in first-seen order."""
    seen: dict[str, set[str]] = {}
    for run in runs:
        for key, value in run.config.items():
            seen.setdefault(key, set()).add(_cell(value))
    differing = [key for key, values in seen.items() if len(values) > 1 or len(runs) == 1]
    return (differing + [key for key in seen if key not in differing])[:MAX_CONFIG_COLUMNS]


def _metric_order(run: StoredRun, chart: dict[str, Any]) -> list[str]:
    """The first run's charted keys: those of its summary first (as logged), then the rest sorted."""
    first = [key for key in run.summary if key in chart]
    return first + sorted(key for key in chart if key not in first)


def _series(points: Sequence[Sequence[float]]) -> dict[str, list[float]]:
    """[[x, min, max], ...] as the shared chart code draws it: xs, lo and hi."""
    return {
        "xs": [p[0] for p in points],
        "lo": [p[1] for p in points],
        "hi": [p[2] for p in points],
    }
