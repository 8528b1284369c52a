"""W&B run filters and orders in SQL (store/run_queries.py) give exactly the Python answer.

Each filter and order below is answered both ways over the same runs, on SQLite and (with
NBTRACK_TEST_POSTGRES_URL) PostgreSQL: the run ids, their order, every page and the count must be
the same. Runs hold what makes the meaning subtle: ints and floats, booleans, text, JSON null,
missing keys, nested objects, lists, NaN and ±inf, and text that merely spells "NaN".
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from nbtrack.server.wandb_query import select_runs
from nbtrack.store import Store
from nbtrack.store.run_queries import _Compiler, query_runs
from nbtrack.store.schema import runs

POSTGRES_URL = os.environ.get("NBTRACK_TEST_POSTGRES_URL")
PROJECT = "q"

FINITE_RUNS: list[dict[str, Any]] = [
    {"config": {"lr": 0.01, "opt": "adam", "flag": True, "layers": 3}, "summary": {"loss": 0.5, "acc": 1}},
    {"config": {"lr": 0.1, "opt": "sgd", "flag": False, "nest": {"a": 2}}, "summary": {"loss": 0.25}},
    {"config": {"lr": 1, "opt": "Adam", "flag": 1, "n": None}, "summary": {"loss": "text", "acc": True}},
    {"config": {"lr": 0.01, "opt": "ādam"}, "summary": {"loss": 2}, "display_name": "night-owl-3"},
    {"config": {"opt": None, "nest": {"a": "2"}}, "summary": {}, "tags": ["a", "b"], "state": "finished"},
    {"config": {"lr": 0.01, "opt": "adam"}, "summary": {"loss": 0.5}, "tags": ["b"], "state": "crashed"},
    {"config": {"lr": -3}, "summary": {"loss": {"min": 1}}, "display_name": "zeta", "group": "g"},
]
# What SQL cannot read the way Python does: the store leaves these to Python (exact=False).
GUARDED_RUNS: list[dict[str, Any]] = [
    {"config": {"lr": math.nan}, "summary": {"loss": math.inf}},
    {"config": {"lr": 0.01, "opt": "NaN or Infinity"}, "summary": {"loss": -math.inf}},
    {"config": {"lr": [0.01, 0.02], "layers": [3, [4]]}, "summary": {"loss": [1, 2]}},
]

FILTERS: list[Any] = [
    None,
    {},
    {"config.lr": 0.01},
    {"config.lr": 1.0},
    {"config.lr": 1},
    {"config.lr": True},
    {"config.flag": True},
    {"config.flag": 1},
    {"config.opt": "adam"},
    {"config.opt": None},
    {"config.n": None},
    {"config.nest.a": 2},
    {"config.nest.a": "2"},
    {"config.layers": 3},
    {"config.lr": {"$ne": 0.01}},
    {"config.opt": {"$ne": None}},
    {"config.lr": {"$gt": 0.01}},
    {"config.lr": {"$gte": 0.01, "$lt": 1}},
    {"config.flag": {"$gt": 0}},
    {"config.lr": {"$gt": True}},
    {"config.opt": {"$gt": "adam"}},
    {"config.opt": {"$lte": "Adam"}},
    {"config.lr": {"$lt": math.inf}},
    {"config.lr": {"$gt": -math.inf}},
    {"config.lr": {"$gt": math.inf}},
    {"config.lr": {"$gt": math.nan}},
    {"config.lr": math.nan},
    {"config.lr": {"$gt": None}},
    {"config.lr": {"$in": [0.01, 1]}},
    {"config.lr": {"$nin": [0.01, 1]}},
    {"config.opt": {"$in": ["adam", None]}},
    {"config.lr": {"$exists": True}},
    {"config.opt": {"$exists": False}},
    {"config.nest": {"$exists": True}},
    {"config.lr": {"$not": {"$gt": 0.05}}},
    {"summary_metrics.loss": {"$lt": 1}},
    {"summary_metrics.loss": "text"},
    {"summary_metrics.acc": {"$gte": 1}},
    {"summaryMetrics.loss": 0.5},
    {"state": "finished"},
    {"state": {"$in": ["crashed", "finished"]}},
    {"state": {"$ne": "running"}},
    {"display_name": None},
    {"display_name": "zeta"},
    {"displayName": {"$gt": "o"}},
    {"display_name": {"$exists": True}},
    {"group": "g"},
    {"tags": "b"},
    {"tags": {"$in": ["a", "z"]}},
    {"tags": {"$nin": ["b"]}},
    {"tags": 1},
    {"created_at": {"$gt": 0}},
    {"created_at": {"$gt": "0"}},
    {"$or": [{"config.lr": 0.01}, {"state": "crashed"}]},
    {"$and": [{"config.lr": 0.01}, {"config.opt": "adam"}]},
    {"$nor": [{"config.lr": 0.01}, {"tags": "b"}]},
    {"$or": [{"config.lr": {"$gt": 0.05}}, {"$and": [{"tags": "a"}, {"state": "finished"}]}]},
    # left to Python, whole or in part:
    {"display_name": {"$regex": "^n.*-\\d+$"}},
    {"config.opt": {"$regex": "(?i)adam"}, "config.lr": 0.01},
    {"$or": [{"display_name": {"$regex": "z"}}, {"config.lr": 1}]},
    {"config.lr.value": 0.01},
    {"config.nest": {"a": 2}},
    {"tags": ["a", "b"]},
]
ORDERS = [
    None,
    "+created_at",
    "-created_at",
    "-summary_metrics.loss",
    "+summary_metrics.loss",
    "summary_metrics.acc",
    "+config.lr",
    "-config.opt",
    "+config.opt",
    "+display_name",
    "-display_name",
    "+state",
]


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        opened = Store.at_root(tmp_path / "root")
    else:
        if not POSTGRES_URL:
            pytest.skip("set NBTRACK_TEST_POSTGRES_URL to run the store tests on PostgreSQL")
        opened = Store(POSTGRES_URL)
    yield opened
    opened.close()


def _fill(store: Store, entity: str, runs: list[dict[str, Any]]) -> None:
    for i, fields in enumerate(runs):
        # Two runs share a creation time: ties must fall the same way.
        store.upsert_run(entity, PROJECT, f"r{i:02d}", created_at=1000.0 + (i // 2), **fields)


def _python(store: Store, entity: str, filters: Any, order: str | None) -> list[str]:
    return [run.run_id for run in select_runs(store.list_runs(PROJECT, entity), filters, order)]


def _sql(store: Store, entity: str, filters: Any, order: str | None, first: int) -> tuple[list[str], bool]:
    """Every page of `first`, as the server's resolver reads them; and whether SQL answered alone."""
    ids: list[str] = []
    offset = 0
    while True:
        found = query_runs(store, entity, PROJECT, filters, order, offset, first)
        if not found.exact:
            return [run.run_id for run in select_runs(found.rows, filters, order)], False
        ids += [run.run_id for run in found.rows]
        if len(found.rows) < first:
            counted = query_runs(store, entity, PROJECT, filters, order, count_only=True)
            assert counted.exact and counted.total == len(ids)
            return ids, True
        offset += first


@pytest.mark.parametrize("guarded", [False, True], ids=["finite", "with-nan-and-lists"])
def test_sql_answers_exactly_as_python(store: Store, guarded: bool) -> None:
    entity = f"q{uuid.uuid4().hex[:8]}"
    _fill(store, entity, FINITE_RUNS + (GUARDED_RUNS if guarded else []))
    left_to_python = []
    for filters in FILTERS:
        for order in ORDERS:
            wanted = _python(store, entity, filters, order)
            got, exact = _sql(store, entity, filters, order, first=3)
            assert got == wanted, (filters, order)
            if not exact:
                left_to_python.append(filters)
    if not guarded:
        # Only what SQL cannot express goes to Python when no run holds NaN or a list.
        python_only = [f for f in left_to_python if f is not None and _needs_python(f)]
        assert len(python_only) == len(left_to_python), [f for f in left_to_python if not _needs_python(f)]


def _needs_python(filters: Any) -> bool:
    text = repr(filters)
    return "$regex" in text or ".value" in text or "{'a': 2}" in text or "['a', 'b']" in text


def test_a_project_with_a_nan_run_is_answered_by_python(store: Store) -> None:
    entity = f"q{uuid.uuid4().hex[:8]}"
    _fill(store, entity, FINITE_RUNS + GUARDED_RUNS[:1])
    found = query_runs(store, entity, PROJECT, {"config.lr": 0.01}, None)
    assert not found.exact  # the NaN run's config cannot be read by SQL's JSON functions
    # ...but only runs SQL could not rule out come back: here the NaN run and the three matches
    assert sorted(run.run_id for run in found.rows) == ["r00", "r03", "r05", "r07"]


def test_nan_runs_of_other_projects_never_break_a_clean_projects_query(store: Store) -> None:
    """The database may test a JSON condition on any run before the project's own conditions rule
    it out (PostgreSQL's planner does, once the runs table is big): a run of another entity whose
    summary holds NaN or -Infinity must not make a clean project's filtered query fail."""
    dirty, clean = f"d{uuid.uuid4().hex[:8]}", f"c{uuid.uuid4().hex[:8]}"
    for i in range(300):
        store.upsert_run(
            dirty, PROJECT, f"n{i:03d}", summary={"best": -math.inf, "odd": math.nan}, config={"lr": math.nan}
        )
    _fill(store, clean, FINITE_RUNS)
    for filters in ({"summary_metrics.best": {"$exists": True}}, {"config.lr": {"$gt": 0.0}}):
        # The condition alone, tested on every run of the database, as a planner may test it.
        condition = _Compiler(store._dialect).filters(filters)
        with store._snapshot() as conn:
            conn.execute(select(func.count()).select_from(runs).where(condition)).scalar()
        found = query_runs(store, clean, PROJECT, filters, "-summary_metrics.best")
        assert found.exact
        assert [r.run_id for r in found.rows] == _python(store, clean, filters, "-summary_metrics.best")
        counted = query_runs(store, clean, PROJECT, filters, None, count_only=True)
        assert counted.total == len(found.rows)


def test_a_hostile_regex_is_answered_at_once_and_a_backreference_is_refused_by_name(store: Store) -> None:
    """$regex runs in time linear in the text: a pattern that makes a backtracking engine (Python's
    re, PCRE) run for minutes on a 40-character name answers at once; what RE2 cannot run is a
    BAD_REQUEST naming the pattern and why, not a server error."""
    from nbtrack.server.errors import ApiError

    entity = f"q{uuid.uuid4().hex[:8]}"
    _fill(store, entity, [{"config": {}, "summary": {}, "display_name": "a" * 40 + "!"}])
    hostile = {"display_name": {"$regex": "^(a+)+$"}}  # exponential in a backtracking engine
    assert _python(store, entity, hostile, None) == []  # would not return for hours with re
    assert _python(store, entity, {"display_name": {"$regex": "^(a+)+!$"}}, None) == ["r00"]
    with pytest.raises(ApiError, match=r"\$regex '\(a\)\\\\1' is not a valid pattern: invalid escape"):
        _python(store, entity, {"display_name": {"$regex": r"(a)\1"}}, None)
