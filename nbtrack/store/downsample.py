"""A chart's series from a run's history: at most `points` buckets per key, min and max of each.

The contract (Run.chart in the server's schema; tests check it against a brute-force reading):
the rows in range are those with a finite x (a finite number in the x key) within [lo, hi]; a key's
values are its finite numbers in those rows (NaN, infinities, bools, text are left out).

- A key with at most `points` values gets every one as [x, y, y], sorted by x (ties in line order).
- Otherwise its rows are grouped by line // width, the width the smallest of 1, 2, 5, 10, 20, 50,
  ... that leaves at most `points` groups between the key's first and last line in range; each
  group is [smallest x, min y, max y], sorted by x (ties in group order). When more than
  `raw_limit` rows are in range, only widths that are multiples of BUCKET_LINES count, so that a
  group is a union of rollup buckets and the rollup can answer without the lines.

So the answer does not depend on whether it came from the lines or from the rollup. Pure.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from nbtrack.store.rollup import BOOKKEEPING_KEYS, BUCKET_LINES, finite, is_number

__all__ = ["Chart", "KeyValues", "Point", "RawPoints", "group_width", "merge_group", "raw_points"]

Point = tuple[int, float, float]  # (line, x, y)
Summary = tuple[int, int, float, float, float]  # (bucket, count, x, y_min, y_max) of a whole bucket in range


@dataclass(frozen=True, slots=True)
class Chart:
    x: str
    line_count: int  # the run's historyLineCount when the chart was read
    exact: bool  # every key got every value
    series: dict[str, list[list[float]]]

    def to_json(self) -> str:
        # Every number in a series is finite: orjson's output is the JSON the contract promises.
        body = {"x": self.x, "lineCount": self.line_count, "exact": self.exact, "series": self.series}
        return orjson.dumps(body).decode()


@dataclass(slots=True)
class KeyValues:
    """One key's values in range: points read from lines, and whole buckets read from the rollup.

    A bucket is either in `points` (every value of the key there) or in `summaries`, never both.
    """

    points: list[Point] = field(default_factory=list)
    summaries: list[Summary] = field(default_factory=list)

    def count(self) -> int:
        return len(self.points) + sum(summary[1] for summary in self.summaries)

    def series(self, points: int, fine: bool) -> list[list[float]]:
        """The key's series: every value if there are at most `points`, else min/max groups."""
        if self.count() <= points:
            if any(summary[1] > 1 for summary in self.summaries):
                raise ValueError("every value was asked for, but a bucket holds only its extremes")
            exact = [(line, x, y) for line, x, y in self.points]
            exact += [(bucket * BUCKET_LINES, x, low) for bucket, _count, x, low, _high in self.summaries]
            exact.sort(key=lambda point: (point[1], point[0]))
            return [[x, y, y] for _line, x, y in exact]
        # Where each value's line is, as far as known: a summarized bucket's first line stands for
        # its lines, which is exact enough for coarse widths (multiples of BUCKET_LINES).
        starts = [line for line, _x, _y in self.points]
        starts += [summary[0] * BUCKET_LINES for summary in self.summaries]
        width = group_width(min(starts), max(starts), points, coarse=not fine)
        groups: dict[int, list[float]] = {}
        for line, x, y in self.points:
            merge_group(groups, line // width, x, y, y)
        for bucket, _count, x, low, high in self.summaries:
            merge_group(groups, bucket * BUCKET_LINES // width, x, low, high)
        ordered = sorted(groups.items(), key=lambda item: (item[1][0], item[0]))
        return [values for _group, values in ordered]


def merge_group(groups: dict[int, list[float]], group: int, x: float, low: float, high: float) -> None:
    """Fold a point (x, low, high) into groups[group]: the smallest x, the lowest low, the highest high."""
    found = groups.get(group)
    if found is None:
        groups[group] = [x, low, high]
        return
    if x < found[0]:
        found[0] = x
    if low < found[1]:
        found[1] = low
    if high > found[2]:
        found[2] = high


def group_width(first: int, last: int, points: int, *, coarse: bool) -> int:
    """The smallest width of 1, 2, 5, 10, 20, 50, ... (coarse: of 100, 200, 500, ...) giving lines
    first..last at most `points` groups of line // width."""
    scale = BUCKET_LINES if coarse else 1
    while True:
        for step in (1, 2, 5):
            width = step * scale
            if last // width - first // width + 1 <= points:
                return width
        scale *= 10


@dataclass(slots=True)
class RawPoints:
    """What a set of history rows says for a chart: its in-range lines, each key's points, its keys."""

    in_range: int = 0  # rows with a finite x within the range
    points: dict[str, list[Point]] = field(default_factory=dict)
    keys: set[str] = field(default_factory=set)  # keys with a numeric value in any row (x keys aside)


def raw_points(
    lines: Sequence[int],
    rows: Sequence[Mapping[str, Any]],
    x: str,
    lo: float | None,
    hi: float | None,
    keys: Collection[str] | None,
) -> RawPoints:
    """The points of rows (in line order) for the keys given, or for every numeric key if None."""
    found = RawPoints()
    points, numeric = found.points, found.keys
    low = -math.inf if lo is None else lo
    high = math.inf if hi is None else hi
    for line, row in zip(lines, rows, strict=True):
        xv = finite(row.get(x))
        if xv is None or not low <= xv <= high:
            if keys is None:
                numeric.update(key for key, value in row.items() if is_number(value))
            continue
        if x == "_step":
            xv = row["_step"]  # a step stays an integer
        found.in_range += 1
        items = row.items() if keys is None else [(key, row.get(key)) for key in keys]
        for key, value in items:
            y = finite(value)
            if y is None:
                if keys is None and is_number(value):
                    numeric.add(key)  # a key whose values are all NaN is a metric all the same
                continue
            if keys is None:
                numeric.add(key)
            found_points = points.get(key)
            if found_points is None:
                points[key] = [(line, xv, y)]
            else:
                found_points.append((line, xv, y))
    if keys is None:
        numeric.difference_update(BOOKKEEPING_KEYS)
        for key in BOOKKEEPING_KEYS:
            points.pop(key, None)
    return found
