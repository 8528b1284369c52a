"""metric_x.MetricXSeries against downsample.KeyValues over every point: the same series, always."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from nbtrack.store.downsample import KeyValues
from nbtrack.store.metric_x import MetricXSeries

lines = st.lists(st.integers(0, 3000), min_size=0, max_size=400, unique=True).map(sorted)


@settings(max_examples=300, deadline=None)
@given(lines=lines, points=st.integers(1, 60), fine=st.booleans(), seed=st.integers(0, 10**6))
def test_bounded_series_equal_the_series_of_every_point(
    lines: list[int], points: int, fine: bool, seed: int
) -> None:
    every = [(line, float((line * 7919 + seed) % 101), float((line * 104729 + seed) % 997)) for line in lines]
    kept = MetricXSeries(points)
    for point in every:
        kept.add(*point)
    assert kept.count == len(every)
    assert kept.series(fine) == KeyValues(list(every)).series(points, fine)
    assert len(kept.groups) <= 20 * points + 1 + points


def test_a_million_values_keep_a_few_hundred_groups() -> None:
    kept = MetricXSeries(100)
    for line in range(1_000_000):
        kept.add(line, line * 4.0, (line % 977) / 977)
    assert len(kept.groups) <= 2001 and not kept.exact
    series = kept.series(fine=False)
    assert len(series) <= 100 and series[0][0] == 0.0 and max(s[2] for s in series) == 976 / 977
