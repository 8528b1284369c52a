"""Charts and the rollup in a real store (SQLite, and PostgreSQL when NBTRACK_TEST_POSTGRES_URL is set).

Every chart is compared with tests/chart_reference.py over the rows as stored. A small raw_limit
makes a few thousand lines take the rollup's path, so both paths meet every case. The rollup
itself is compared with summarize() over the stored lines: whatever the order of the writes
(appends, retries that replace lines, lines that skip ahead), it is what a fresh summary says.
"""

from __future__ import annotations

import math
import random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select

from nbtrack import jsonutil
from nbtrack.store import ChartRequest, LineBatch, Store
from nbtrack.store.rollup import X_KEYS, summarize
from nbtrack.store.schema import history, history_rollup, runs
from tests.chart_reference import metric_keys, reference_chart
from tests.test_store import store  # the fixture: a fresh SQLite store, and a PostgreSQL one

__all__ = ["store"]

RUN = ("me", "charts", "run1")


def make_rows(steps: range, seed: int = 0, **extra: Any) -> list[dict[str, Any]]:
    """Rows like a training loop's, with sparse keys, spikes, NaN, infinities, bools and text."""
    chosen = random.Random(seed)
    rows = []
    for step in steps:
        row: dict[str, Any] = {
            "_step": step,
            "_runtime": step * 0.25,
            "_timestamp": 1.7e9 + step * 0.25,
            "loss": 1 / (step + 1) + chosen.uniform(0, 0.01),
            "acc": step % 13,
        }
        if step % 97 == 0:
            row["val"] = chosen.uniform(0, 1)
        if step % 41 == 0:
            row["loss"] = chosen.choice([math.nan, math.inf, -math.inf, 50.0, -50.0])
        if step % 53 == 0:
            row["note"], row["done"] = "text", True
        if step % 211 == 0:
            del row["_runtime"]  # a row without an x must not be charted on it
        rows.append({**row, **extra})
    return rows


def write(store: Store, offset: int, rows: list[dict[str, Any]], batch: int = 777) -> None:
    for start in range(0, len(rows), batch):
        store.write_history(
            *RUN, offset + start, [jsonutil.dumps_str(r) for r in rows[start : start + batch]]
        )


def stored_rows(store: Store) -> dict[int, dict[str, Any]]:
    with store._engine.connect() as conn:  # the test reads the table itself, beside the store's API
        return {
            line: jsonutil.loads(data) for line, data in conn.execute(select(history.c.line, history.c.data))
        }


def chart(store: Store, raw_limit: int, **args: Any) -> dict[str, Any]:
    request = ChartRequest(
        tuple(args["keys"]) if args.get("keys") is not None else None,
        args.get("x", "_step"),
        args.get("lo"),
        args.get("hi"),
        args.get("points", 1000),
        raw_limit,
    )
    found = store.chart(*RUN, request)
    assert found is not None
    answer = jsonutil.loads(found.to_json())
    assert answer.pop("lineCount") == store.get_run(*RUN).history_line_count  # type: ignore[union-attr]
    return dict(answer)


def assert_charts_match(
    store: Store, cases: list[dict[str, Any]], raw_limits: tuple[int, ...] = (0, 10**9)
) -> None:
    rows = stored_rows(store)
    assert store.history_keys(*RUN) == metric_keys(rows)
    for case in cases:
        for raw_limit in raw_limits:
            assert chart(store, raw_limit, **case) == reference_chart(rows, raw_limit=raw_limit, **case), (
                case,
                raw_limit,
            )


def stored_rollup(store: Store) -> set[tuple[Any, ...]]:
    with store._engine.connect() as conn:
        return {tuple(row[1:]) for row in conn.execute(select(history_rollup))}


def fresh_rollup(store: Store) -> set[tuple[Any, ...]]:
    rows = stored_rows(store)
    lines = sorted(rows)
    return set(summarize(lines, [rows[n]["_step"] for n in lines], [rows[n] for n in lines]))


CASES = [
    {},
    {"points": 7},
    {"points": 40, "keys": ["loss", "val", "absent", "_runtime"]},
    {"lo": 333, "hi": 1811, "points": 9},
    {"lo": 333.5, "hi": 340, "points": 3},
    {"x": "_runtime", "lo": 100.1, "hi": 400, "points": 11},
    {"x": "_timestamp", "lo": 1.7e9 + 10, "points": 25},
    {"x": "_timestamp", "hi": 1.7e9 + 2, "points": 25},
    {"lo": 5000, "hi": 6000},
    {"keys": ["val"], "points": 30},  # sparse: every value, some from buckets of one value
    {"keys": ["acc"], "points": 2500},  # every value of a dense key, read from the lines
]


def test_charts_match_the_reference_from_lines_and_from_the_rollup(store: Store) -> None:
    write(store, 0, make_rows(range(2400)))
    assert_charts_match(store, CASES)
    assert stored_rollup(store) == fresh_rollup(store)


def test_a_retried_post_with_other_values_leaves_the_rollup_right(store: Store) -> None:
    write(store, 0, make_rows(range(2400)))
    # Lines 950..1333 again: different values, a new spike, and "acc" gone from them.
    replaced = [{k: v for k, v in row.items() if k != "acc"} for row in make_rows(range(950, 1334), seed=7)]
    replaced[100]["loss"] = 1e6
    write(store, 950, replaced, batch=384)
    assert stored_rollup(store) == fresh_rollup(store)
    assert_charts_match(store, [{"points": 7}, {"keys": ["acc"], "points": 30}, {"lo": 1000, "hi": 1100}])
    # A key that no line holds any more is no longer one of the run's keys.
    store.write_history(*RUN, 0, [jsonutil.dumps_str({"_step": 0, "gone": 1.0})])
    assert "gone" in store.history_keys(*RUN)
    store.write_history(*RUN, 0, [jsonutil.dumps_str({"_step": 0, "loss": 2.0})])
    assert "gone" not in store.history_keys(*RUN)
    assert stored_rollup(store) == fresh_rollup(store)


def test_a_run_stored_before_the_rollup_is_charted_from_its_lines(store: Store) -> None:
    write(store, 0, make_rows(range(2400)))
    with store._engine.begin() as conn:
        conn.execute(delete(history_rollup))
    assert_charts_match(store, CASES[:6])
    # Some buckets only (a run half written by an older nbtrack), then appended to mid-bucket.
    with store._engine.begin() as conn:
        conn.execute(delete(history))
        conn.execute(runs.update().values(history_line_count=0))
    write(store, 0, make_rows(range(2350)))
    with store._engine.begin() as conn:
        conn.execute(delete(history_rollup).where(history_rollup.c.bucket.in_([3, 4, 17, 23])))
    write(store, 2350, make_rows(range(2350, 2450)))  # bucket 23 is healed: its older lines are read
    assert_charts_match(store, CASES[:6])
    assert {row[1] for row in stored_rollup(store)} == set(range(25)) - {3, 4, 17}
    # Lines an older nbtrack added to a bucket this one had summarized: its rollup is stale.
    late = make_rows(range(2450, 2480), seed=3)
    late[5]["loss"] = -1e9
    with store._engine.begin() as conn:
        pk = conn.scalar(select(runs.c.pk))
        conn.execute(
            history.insert(),
            [
                {"run_pk": pk, "line": r["_step"], "step": r["_step"], "data": jsonutil.dumps_str(r)}
                for r in late
            ],
        )
        conn.execute(runs.update().values(history_line_count=2480))
    assert_charts_match(store, CASES[:6])


def test_lines_that_skip_ahead_are_charted(store: Store) -> None:
    rows = make_rows(range(600))
    write(store, 0, rows[:250])
    write(store, 1030, rows[250:])  # lines 250..1029 never arrived
    assert stored_rollup(store) == fresh_rollup(store)
    assert_charts_match(store, [{}, {"points": 5}, {"lo": 100, "hi": 300, "points": 4}])


def test_a_small_run_is_exact_and_an_absent_run_is_none(store: Store) -> None:
    rows = [{"_step": s, "acc": s, "loss": [math.nan, -math.inf, 0.5, True, "x"][s]} for s in range(5)]
    store.write_history(*RUN, 0, [jsonutil.dumps_str(row) for row in rows])
    answer = chart(store, 20_000)
    assert answer == {
        "x": "_step",
        "exact": True,
        "series": {"acc": [[s, float(s), float(s)] for s in range(5)], "loss": [[2, 0.5, 0.5]]},
    }
    assert store.chart("me", "charts", "absent", ChartRequest(None, "_step", None, None, 10)) is None
    assert store.history_keys("me", "charts", "absent") == []


def test_write_stream_keeps_the_rollup_too(store: Store) -> None:
    store.upsert_run(*RUN)
    rows = make_rows(range(450))
    texts = [jsonutil.dumps_str(row) for row in rows]
    store.write_stream(
        *RUN, history_lines=LineBatch(0, texts[:200], [r["_step"] for r in rows[:200]], rows[:200])
    )
    store.write_stream(*RUN, history_lines=LineBatch(200, texts[200:]))
    assert stored_rollup(store) == fresh_rollup(store)
    run = store.get_run(*RUN)
    assert run is not None and run.runtime == max(r["_runtime"] for r in rows if "_runtime" in r)


@st.composite
def writes(draw: st.DrawFn) -> list[tuple[int, int, int]]:
    """(offset, count, seed) writes: appends, retries over earlier lines, and lines skipping ahead."""
    out, end = [], 0
    for _ in range(draw(st.integers(1, 6))):
        offset = draw(
            st.sampled_from(
                [end, end, max(0, end - draw(st.integers(1, 250))), end + draw(st.integers(1, 150))]
            )
        )
        count = draw(st.integers(1, 260))
        out.append((offset, count, draw(st.integers(0, 3))))
        end = max(end, offset + count)
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=writes())
def test_the_rollup_is_a_fresh_summary_whatever_the_writes(
    store: Store, plan: list[tuple[int, int, int]]
) -> None:
    with store._engine.begin() as conn:  # each example starts from an empty history
        conn.execute(delete(history_rollup))
        conn.execute(delete(history))
        conn.execute(runs.update().values(history_line_count=0))
    for offset, count, seed in plan:
        rows = make_rows(range(offset, offset + count), seed=seed)
        store.write_history(*RUN, offset, [jsonutil.dumps_str(row) for row in rows])
    assert stored_rollup(store) == fresh_rollup(store)
    with store._engine.connect() as conn:
        assert conn.scalar(
            select(func.count()).select_from(history_rollup).where(history_rollup.c.key == "_step")
        ) == len({line // 100 for line in stored_rows(store)})
    assert not set(X_KEYS) & set(store.history_keys(*RUN))


def test_a_declared_step_metric_is_an_x_axis(store: Store) -> None:
    """A W&B integration's own step (Lightning's trainer/global_step) charts like _step: rows
    holding a finite value of it are in range, on both paths (every line, and past raw_limit)."""
    rows = make_rows(range(2400))
    for row in rows:
        if row["_step"] % 3:  # logged on some rows only, as a callback does
            row["trainer/global_step"] = row["_step"] * 8
        if row["_step"] == 901:
            row["trainer/global_step"] = math.nan  # a row whose x is not a number is left out
    write(store, 0, rows)
    cases = [
        {"x": "trainer/global_step"},
        {"x": "trainer/global_step", "points": 9},
        {"x": "trainer/global_step", "lo": 2000, "hi": 9000, "points": 40, "keys": ["loss", "val"]},
        {"x": "absent", "points": 5},
        {"x": "trainer/global_step", "points": 3, "keys": ["loss", "acc"]},  # groups regrouped many times
        {"x": "trainer/global_step", "points": 1},
        {"x": "trainer/global_step", "points": 1601, "keys": ["acc"]},  # one value fewer than points
    ]
    assert_charts_match(store, cases)
    answer = chart(store, 10**9, x="trainer/global_step", keys=["acc"], lo=0, hi=40)
    assert answer["series"] == {"acc": [[x, x / 8, x / 8] for x in (8.0, 16.0, 32.0, 40.0)]}
