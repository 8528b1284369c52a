"""A chart of a run's system metrics (its events lines), in Run.chart's shape, in bounded memory.

Events lines ({"_timestamp", "_runtime", "system.cpu": ..., ...}, one every few seconds) have no
rollup: they are read in pages of PAGE_LINES, in line order, parsed, and each key's values are
folded into groups of `width` consecutive lines, each [smallest x, min y, max y]. When a key holds
more than `points` groups its width doubles and neighbouring groups merge, so whatever the run's
length a key keeps at most `points` groups (the answer and the memory stay bounded) and no
extreme is lost: the min/max rule of history charts (downsample.py). A key with at most `points`
values keeps each one as [x, y, y], and `exact` says every key did.

The x axis is _runtime or _timestamp (events lines have no step); only lines whose x is a finite
number within [lo, hi] count, and only finite numbers are values. Keys starting with "_" are
bookkeeping, not metrics. At most MAX_KEYS keys are charted, the first met in line order (a
client's lines may hold any keys; `truncated` says some were left out). Pure but for `read`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, select

from nbtrack import jsonutil
from nbtrack.store.rollup import finite
from nbtrack.store.schema import events

__all__ = [
    "MAX_KEYS",
    "PAGE_LINES",
    "SYSTEM_X_KEYS",
    "SystemChart",
    "SystemChartRequest",
    "read_system_chart",
]

SYSTEM_X_KEYS = ("_runtime", "_timestamp")
MAX_KEYS = 200  # series in one answer: a wide machine's per-core and per-GPU keys fit
PAGE_LINES = 5000  # lines parsed at a time
_INF = math.inf


@dataclass(frozen=True, slots=True)
class SystemChartRequest:
    keys: tuple[str, ...] | None  # None: every metric key of the run's events (up to MAX_KEYS)
    x: str  # one of SYSTEM_X_KEYS
    lo: float | None
    hi: float | None
    points: int


@dataclass(frozen=True, slots=True)
class SystemChart:
    x: str
    line_count: int  # the run's events lines when read
    exact: bool  # every key got every value
    truncated: bool  # keys beyond MAX_KEYS were left out
    series: dict[str, list[list[float]]]

    def to_json(self) -> str:
        # Every number in a series is finite: orjson writes plain JSON.
        body = {
            "x": self.x,
            "lineCount": self.line_count,
            "exact": self.exact,
            "truncated": self.truncated,
            "series": self.series,
        }
        return orjson.dumps(body).decode()


class _Groups:
    """One key's values: groups [group id, smallest x, min y, max y] of `width` lines, in line order."""

    __slots__ = ("groups", "width")

    def __init__(self) -> None:
        self.width = 1
        self.groups: list[list[float]] = []

    def coarsen(self) -> None:
        """Twice the width: neighbours whose lines now share a group merge (min of mins, max of maxes)."""
        self.width *= 2
        merged: list[list[float]] = []
        for gid, x, low, high in self.groups:
            parent = gid // 2
            if merged and merged[-1][0] == parent:
                last = merged[-1]
                last[1], last[2], last[3] = min(last[1], x), min(last[2], low), max(last[3], high)
            else:
                merged.append([parent, x, low, high])
        self.groups = merged

    def series(self) -> list[list[float]]:
        ordered = sorted(self.groups, key=lambda group: (group[1], group[0]))
        return [[x, low, high] for _gid, x, low, high in ordered]


class _Builder:
    """Folds events rows, in line order, into a SystemChart."""

    def __init__(self, request: SystemChartRequest) -> None:
        self._request = request
        self._low = -math.inf if request.lo is None else request.lo
        self._high = math.inf if request.hi is None else request.hi
        self._keys: dict[str, _Groups] = {key: _Groups() for key in request.keys or ()}
        self._skipped: set[str] = set()  # keys met that are no metric ("_cell") or past MAX_KEYS
        self._truncated = False
        self.lines = 0

    def add(self, line: int, row: Mapping[str, Any]) -> None:
        # Once per line and value: the loop is inlined (no call per value), a week of samples
        # being some hundred thousand lines of a dozen values.
        self.lines += 1
        x = finite(row.get(self._request.x))
        if x is None or not self._low <= x <= self._high:
            return
        keys, limit = self._keys, self._request.points
        items: Iterable[tuple[str, Any]] = (
            row.items() if self._request.keys is None else ((key, row.get(key)) for key in self._request.keys)
        )
        for key, y in items:
            kind = type(y)
            if (kind is not float and kind is not int) or not -_INF < y < _INF:
                continue
            found = keys.get(key)
            if found is None:
                if key in self._skipped:
                    continue
                if key.startswith("_") or len(keys) >= MAX_KEYS:
                    self._truncated = self._truncated or not key.startswith("_")
                    self._skipped.add(key)
                    continue
                found = keys[key] = _Groups()
            groups = found.groups
            gid = line // found.width
            if groups and groups[-1][0] == gid:
                last = groups[-1]
                if x < last[1]:
                    last[1] = x
                if y < last[2]:
                    last[2] = y
                elif y > last[3]:
                    last[3] = y
                continue
            groups.append([gid, x, y, y])
            while len(found.groups) > limit:
                found.coarsen()

    def chart(self) -> SystemChart:
        series = {key: groups.series() for key, groups in sorted(self._keys.items())}
        exact = all(groups.width == 1 for groups in self._keys.values())
        return SystemChart(self._request.x, self.lines, exact, self._truncated, series)


def read_system_chart(conn: Connection, pk: int, request: SystemChartRequest) -> SystemChart:
    """The chart of the events lines of the run whose pk is given, a page of lines at a time."""
    builder = _Builder(request)
    after = -1
    while True:
        stmt = (
            select(events.c.line, events.c.text)
            .where(events.c.run_pk == pk, events.c.line > after)
            .order_by(events.c.line)
            .limit(PAGE_LINES)
        )
        page = conn.execute(stmt).all()
        for line, text in page:
            row = jsonutil.loads(text)  # checked on the way in (filestream.py): a JSON object
            builder.add(line, row if isinstance(row, dict) else {})
        if len(page) < PAGE_LINES:
            return builder.chart()
        after = page[-1][0]
