"""A file-stream post's write (Store.write_stream; on PostgreSQL its pipelined path, pg_stream.py)
leaves the lines, the rollup and the run's fields as the writes one at a time do, whatever the
order of the posts: appends crossing buckets, a post ahead of its predecessor, a retry with other
values. SQLite, and PostgreSQL when NBTRACK_TEST_POSTGRES_URL is set.
"""

from __future__ import annotations

from typing import Any

from nbtrack import jsonutil
from nbtrack.store import LineBatch, Store
from tests.test_store import store  # the fixture: a fresh SQLite store, and a PostgreSQL one
from tests.test_store_chart import RUN, fresh_rollup, make_rows, stored_rollup, stored_rows

__all__ = ["store"]


def post(store: Store, offset: int, rows: list[dict[str, Any]], **parts: Any) -> bool:
    lines = [jsonutil.dumps_str(row) for row in rows]
    return store.write_stream(*RUN, history_lines=LineBatch(offset, lines), **parts)


def test_posts_in_any_order_leave_the_lines_and_their_rollup(store: Store) -> None:
    store.upsert_run(*RUN)
    rows = make_rows(range(1040))
    # Posts of 130 lines (buckets are 100): the one at 390 arrives before the one at 260.
    for start in (0, 130, 390, 260, 520, 650, 780, 910):
        assert post(store, start, rows[start : start + 130])
    assert stored_rows(store) == {n: jsonutil.loads(jsonutil.dumps_str(row)) for n, row in enumerate(rows)}
    assert stored_rollup(store) == fresh_rollup(store)
    # A retry of lines 300..449 with other values: a spike, and "acc" gone from them.
    replaced = [{k: v for k, v in row.items() if k != "acc"} for row in make_rows(range(300, 450), seed=7)]
    replaced[17]["loss"] = 1e6
    assert post(store, 300, replaced)
    assert stored_rows(store)[317]["loss"] == 1e6 and "acc" not in stored_rows(store)[400]
    assert stored_rollup(store) == fresh_rollup(store)
    run = store.get_run(*RUN)
    assert run is not None
    assert (run.history_line_count, run.last_step, run.runtime) == (1040, 1039, 1039 * 0.25)
    assert (run.state, run.exit_code) == ("running", None)


def test_a_post_sets_the_summary_and_finishes_the_run_with_its_lines(store: Store) -> None:
    store.upsert_run(*RUN)
    assert post(store, 0, make_rows(range(5)), summary={"loss": 0.1}, output_lines=LineBatch(0, ["out"]))
    run = store.get_run(*RUN)
    assert run is not None and run.summary == {"loss": 0.1} and run.state == "running"
    # The last post: no lines, a summary again and the exit; the line count stays.
    assert store.write_stream(*RUN, summary={"loss": 0.05}, finish=("failed", 2))
    run = store.get_run(*RUN)
    assert run is not None
    assert (run.summary, run.state, run.exit_code, run.history_line_count) == ({"loss": 0.05}, "failed", 2, 5)
    assert store.read_output(*RUN) == ["out"]


def test_a_post_brings_back_a_run_marked_crashed_for_silence_but_not_one_that_ended(store: Store) -> None:
    store.upsert_run(*RUN)
    assert store.mark_silent_runs_crashed(-1.0) == [RUN]  # every running run is silent
    assert post(store, 0, make_rows(range(3)))
    run = store.get_run(*RUN)
    assert run is not None and (run.state, run.exit_code) == ("running", None)
    assert store.write_stream(*RUN, finish=("crashed", 1))
    assert post(store, 3, make_rows(range(3, 6)))
    run = store.get_run(*RUN)
    assert run is not None and (run.state, run.exit_code, run.history_line_count) == ("crashed", 1, 6)


def test_a_post_for_a_run_nobody_created_writes_nothing(store: Store) -> None:
    assert not post(store, 0, make_rows(range(3)), summary={"x": 1})
    assert store.get_run(*RUN) is None and stored_rows(store) == {}
