"""Run.chart's contract, computed the slow and obvious way over every row: what the tests compare against.

Written from the contract in nbtrack/server/schema.graphql and nbtrack/store/downsample.py, not
from their code: one loop per rule.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["X_KEYS", "metric_keys", "reference_chart", "widths"]

X_KEYS = ("_step", "_runtime", "_timestamp")
ROLLUP_LINES = 100


def number(value: Any) -> float | None:
    """value as a float when it is a finite int or float (not a bool), else None."""
    if type(value) not in (int, float):
        return None
    try:
        as_float = float(value)
    except OverflowError:
        return None
    return as_float if math.isfinite(as_float) else None


def metric_keys(rows: Mapping[int, Mapping[str, Any]]) -> list[str]:
    keys = {key for row in rows.values() for key, value in row.items() if type(value) in (int, float)}
    return sorted(keys - set(X_KEYS))


def widths(coarse: bool) -> Any:
    scale = ROLLUP_LINES if coarse else 1
    while True:
        for step in (1, 2, 5):
            yield step * scale
        scale *= 10


def reference_chart(
    rows: Mapping[int, Mapping[str, Any]],
    *,
    keys: Sequence[str] | None = None,
    x: str = "_step",
    lo: float | None = None,
    hi: float | None = None,
    points: int = 1000,
    raw_limit: int = 20_000,
) -> dict[str, Any]:
    """The chart of rows (line -> row object) as Run.chart answers it, less lineCount."""
    in_range = []
    for line in sorted(rows):
        row = rows[line]
        xv = number(row.get(x))
        if xv is None or (lo is not None and xv < lo) or (hi is not None and xv > hi):
            continue
        in_range.append((line, row["_step"] if x == "_step" else xv, row))
    coarse = len(in_range) > raw_limit
    series: dict[str, list[list[float]]] = {}
    exact = True
    for key in metric_keys(rows) if keys is None else keys:
        values = [(line, xv, y) for line, xv, row in in_range if (y := number(row.get(key))) is not None]
        if len(values) <= points:
            values.sort(key=lambda v: (v[1], v[0]))
            series[key] = [[xv, y, y] for _line, xv, y in values]
            continue
        exact = False
        first, last = min(v[0] for v in values), max(v[0] for v in values)
        width = next(w for w in widths(coarse) if last // w - first // w + 1 <= points)
        groups: dict[int, list[float]] = {}
        for line, xv, y in values:
            group = groups.setdefault(line // width, [xv, y, y])
            group[0], group[1], group[2] = min(group[0], xv), min(group[1], y), max(group[2], y)
        series[key] = [groups[g] for g in sorted(groups, key=lambda g: (groups[g][0], g))]
    return {"x": x, "exact": exact, "series": series}
