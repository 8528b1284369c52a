"""The live charts' sampler (internal/sampler.py): bounded, and it never loses an extreme."""

from __future__ import annotations

import math
import random

from nbtrack.internal.sampler import SampledHistory


def test_every_series_stays_bounded_and_keeps_its_extremes_first_and_newest_points() -> None:
    rng = random.Random(7)
    for length in (1, 2, 99, 100, 101, 1000, 25_000):
        sampled = SampledHistory(capacity=64)
        values = [rng.gauss(0, 1) for _ in range(length)]
        for step, value in enumerate(values):
            sampled.add_row(step, {"x": value, "n": step, "skip": math.nan, "flag": True})
        assert set(sampled.series) == {"x", "n"}  # NaN-only and bool keys are not charted
        series = sampled.series["x"]
        assert len(series.buckets) <= 64
        for limit in (None, 100, 10):
            steps, ys = series.points(limit)
            assert steps == sorted(set(steps)), "steps in order, each once"
            assert steps[0] == 0 and steps[-1] == length - 1
            assert max(ys) == max(values) and min(ys) == min(values)
            assert all(values[s] == y for s, y in zip(steps, ys, strict=True))
            if limit is not None:
                assert len(steps) <= limit
