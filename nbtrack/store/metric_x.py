"""One key's series on a chart whose x is a metric (a declared step metric), in bounded memory.

The rollup keeps no ranges of a metric used as x, so such a chart reads every line; a run of a
million lines must not hold a million points per key meanwhile. Points arrive in line order and
are kept as they are while there are at most `points` of them (the contract's exact answer);
past that they are merged into groups of line // base, where base is a power of ten no larger
than the width the contract would choose for the lines seen so far. That width only grows as lines
arrive, every larger width of the sequence (1, 2, 5, 10, 20, 50, ...; coarse ones too) is a
multiple of base, and a group keeps [smallest x, min, max], so the final groups merged from
these are the ones downsample.py's KeyValues.series makes from every point. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nbtrack.store.downsample import Point, group_width, merge_group

__all__ = ["MetricXSeries"]

_SLACK = 20  # groups kept per requested point before the base is raised (at most ~10 once raised)


@dataclass(slots=True)
class MetricXSeries:
    points: int  # the chart's `points`
    exact: list[Point] = field(default_factory=list)  # while count <= points
    groups: dict[int, list[float]] = field(default_factory=dict)  # line // base -> [x, min, max]
    base: int = 1
    count: int = 0
    first: int = -1  # the first and last line holding a value
    last: int = -1

    def add(self, line: int, x: float, y: float) -> None:
        """One value, its line not below any added before."""
        self.count += 1
        if self.first < 0:
            self.first = line
        self.last = line
        if self.count <= self.points:
            self.exact.append((line, x, y))
            return
        if self.exact:  # more values than points: from now on, groups
            for point in self.exact:
                self._merge(*point)
            self.exact = []
        self._merge(line, x, y)
        if len(self.groups) > _SLACK * self.points + 1:
            self._raise_base()

    def series(self, fine: bool) -> list[list[float]]:
        """The key's series as the contract says (downsample.KeyValues.series, from every point)."""
        if self.count <= self.points:
            ordered = sorted(self.exact, key=lambda point: (point[1], point[0]))
            return [[x, y, y] for _line, x, y in ordered]
        width = group_width(self.first, self.last, self.points, coarse=not fine)
        final: dict[int, list[float]] = {}
        for group, (x, low, high) in self.groups.items():
            merge_group(final, group * self.base // width, x, low, high)
        return [values for _group, values in sorted(final.items(), key=lambda item: (item[1][0], item[0]))]

    def _merge(self, line: int, x: float, y: float) -> None:
        merge_group(self.groups, line // self.base, x, y, y)

    def _raise_base(self) -> None:
        """Regroup by the largest power of ten within the (fine) width the lines seen so far need."""
        width = group_width(self.first, self.last, self.points, coarse=False)
        base = 10 ** (len(str(width)) - 1)
        if base <= self.base:
            return
        factor = base // self.base
        kept, self.groups, self.base = self.groups, {}, base
        for group, (x, low, high) in kept.items():
            merge_group(self.groups, group // factor, x, low, high)
