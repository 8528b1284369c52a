"""W&B's way of choosing runs: Mongo-style filters and order strings, as wandb.Api().runs sends them.

    chosen = select_runs(rows, {"config.lr": 0.01, "tags": {"$in": ["a"]}}, "-summary_metrics.loss")

Paths: config.KEY (config.KEY.value too, W&B's stored form), summary_metrics.KEY, and the run's
own fields (state, tags, name, display_name, displayName, group, job_type, jobType, host,
created_at, createdAt, notes); a dotted KEY reaches into nested values. Operators: $eq $ne $gt
$gte $lt $lte $in $nin $exists $regex $and $or $nor $not. A filter this server cannot read is a
BAD_REQUEST saying which part, never a silent "everything matches". $regex is RE2's syntax, run
in time linear in the text (a pattern can not make the server backtrack for minutes; back-
references and lookarounds are refused by name). Order: a path with an optional
"+" (ascending) or "-" (descending, the default); runs without a value come last either way.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import re2

from nbtrack.server.errors import ApiError
from nbtrack.store import RunRow

__all__ = ["select_runs", "times_as_seconds"]

_MISSING = object()
_MAX_REGEX = 1000
_FIELDS: dict[str, Callable[[RunRow], Any]] = {
    "state": lambda run: run.state,
    "tags": lambda run: run.tags,
    "name": lambda run: run.run_id,
    "display_name": lambda run: run.display_name,
    "displayName": lambda run: run.display_name,
    "group": lambda run: run.group,
    "job_type": lambda run: run.job_type,
    "jobType": lambda run: run.job_type,
    "host": lambda run: run.host,
    "notes": lambda run: run.notes,
    "created_at": lambda run: run.created_at,
    "createdAt": lambda run: run.created_at,
    "heartbeat_at": lambda run: run.updated_at,
    "heartbeatAt": lambda run: run.updated_at,
}


_TIME_FIELDS = frozenset({"created_at", "createdAt", "heartbeat_at", "heartbeatAt"})


def times_as_seconds(filters: Any) -> Any:
    """filters with each text compared with a run's time (`{"created_at": {"$gt": "2024-06-01"}}`,
    W&B's documented form, its times being ISO text) as the unix seconds the store holds. ISO 8601
    without an offset is UTC, as W&B's times are; other text is a BAD_REQUEST naming it."""
    if isinstance(filters, list):
        return [times_as_seconds(item) for item in filters]
    if not isinstance(filters, dict):
        return filters
    return {
        key: _time_operand(key, value) if key in _TIME_FIELDS else times_as_seconds(value)
        for key, value in filters.items()
    }


def _time_operand(field: str, value: Any) -> Any:
    if isinstance(value, list):
        return [_time_operand(field, item) for item in value]
    if isinstance(value, dict):
        return {op: item if op == "$regex" else _time_operand(field, item) for op, item in value.items()}
    if not isinstance(value, str):
        return value
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ApiError(
            "BAD_REQUEST", f"runs(filters:) {field}: {value!r:.60} is not an ISO 8601 time"
        ) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def select_runs(rows: Sequence[RunRow], filters: Any, order: str | None) -> list[RunRow]:
    """The rows that match filters (None: all), sorted by order (None: newest first)."""
    if filters is not None and not isinstance(filters, dict):
        raise ApiError("BAD_REQUEST", "runs(filters:) must hold a JSON object")
    chosen = [run for run in rows if filters is None or _matches(run, filters)]
    return _sorted(chosen, order or "-created_at")


def _value(run: RunRow, path: str) -> Any:
    head, _, rest = path.partition(".")
    if head == "config":
        value: Any = run.config
        if rest.endswith(".value"):
            plain = _dig(run.config, rest)
            return plain if plain is not _MISSING else _dig(run.config, rest[: -len(".value")])
    elif head in ("summary_metrics", "summaryMetrics", "summary"):
        value = run.summary
    elif path in _FIELDS:
        return _FIELDS[path](run)
    else:
        raise ApiError("BAD_REQUEST", f"runs(filters:/order:) cannot read {path!r:.80}")
    return _dig(value, rest) if rest else value


def _dig(value: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _matches(run: RunRow, filters: dict[str, Any]) -> bool:
    for key, condition in filters.items():
        if key in ("$and", "$or", "$nor"):
            if not isinstance(condition, list) or not all(isinstance(c, dict) for c in condition):
                raise ApiError("BAD_REQUEST", f"{key} needs a list of filters")
            results = (_matches(run, c) for c in condition)
            ok = all(results) if key == "$and" else any(results) if key == "$or" else not any(results)
        elif key.startswith("$"):
            raise ApiError("BAD_REQUEST", f"runs(filters:) has an unknown operator {key!r:.40} at the top")
        else:
            ok = _test(_value(run, key), condition)
        if not ok:
            return False
    return True


def _test(value: Any, condition: Any) -> bool:
    if not (isinstance(condition, dict) and condition and all(k.startswith("$") for k in condition)):
        return _equal(value, condition)
    return all(_operator(op, value, operand) for op, operand in condition.items())


def _operator(op: str, value: Any, operand: Any) -> bool:
    if op == "$eq":
        return _equal(value, operand)
    if op == "$ne":
        return not _equal(value, operand)
    if op in ("$gt", "$gte", "$lt", "$lte"):
        key = _sort_key(value)
        other = _sort_key(operand)
        if key is None or other is None or key[0] != other[0]:
            return False
        return {
            "$gt": key > other,
            "$gte": key >= other,
            "$lt": key < other,
            "$lte": key <= other,
        }[op]
    if op in ("$in", "$nin"):
        if not isinstance(operand, list):
            raise ApiError("BAD_REQUEST", f"{op} needs a list")
        found = any(_equal(value, item) for item in operand)
        return found if op == "$in" else not found
    if op == "$exists":
        return (value is not _MISSING and value is not None) == bool(operand)
    if op == "$regex":
        if not isinstance(operand, str) or len(operand) > _MAX_REGEX:
            raise ApiError("BAD_REQUEST", f"$regex needs a pattern of at most {_MAX_REGEX} characters")
        return isinstance(value, str) and _pattern(operand).search(value) is not None
    if op == "$not":
        return not _test(value, operand)
    raise ApiError("BAD_REQUEST", f"runs(filters:) has an unknown operator {op!r:.40}")


@functools.lru_cache(maxsize=64)
def _pattern(text: str) -> re2._Regexp[str]:
    """A $regex compiled once per filter, not once per run; RE2 bounds its memory too."""
    options = re2.Options()
    options.log_errors = False  # the client hears why; the server's log is not the place
    options.max_mem = 8 << 20
    try:
        return re2.compile(text, options=options)
    except re2.error as exc:
        why = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else exc
        raise ApiError("BAD_REQUEST", f"$regex {text!r:.80} is not a valid pattern: {why}") from None


def _equal(value: Any, wanted: Any) -> bool:
    """Mongo's equality: a list value (tags) matches a scalar it holds; NaN equals NaN."""
    if isinstance(value, list) and not isinstance(wanted, list):
        return any(_equal(item, wanted) for item in value)
    if isinstance(value, float) and isinstance(wanted, float) and math.isnan(value) and math.isnan(wanted):
        return True
    if isinstance(value, bool) != isinstance(wanted, bool):
        return False
    return value is not _MISSING and value == wanted


def _sort_key(value: Any) -> tuple[int, Any] | None:
    """Numbers sort among numbers, text among text; anything else (and NaN) has no place."""
    if isinstance(value, bool):
        return (0, int(value))
    if isinstance(value, int | float):
        return None if isinstance(value, float) and math.isnan(value) else (0, value)
    if isinstance(value, str):
        return (1, value)
    return None


def _sorted(rows: list[RunRow], order: str) -> list[RunRow]:
    descending = not order.startswith("+")
    path = order.lstrip("+-")
    if not path:
        raise ApiError("BAD_REQUEST", f"runs(order:) {order!r:.40} names no field")
    keyed = [(_sort_key(_value(run, path)), -run.created_at, run) for run in rows]
    present = sorted((k for k in keyed if k[0] is not None), key=lambda k: (k[0], k[1]), reverse=descending)
    absent = [k for k in keyed if k[0] is None]
    return [k[2] for k in present + absent]
