"""The embedded store on a real SQLite file, and on PostgreSQL when NBTRACK_TEST_POSTGRES_URL is set."""

from __future__ import annotations

import itertools
import math
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine

from nbtrack import jsonutil
from nbtrack.errors import UsageError
from nbtrack.store import DB_FILENAME, LineBatch, Store, StoreError
from nbtrack.store.schema import metadata, sample_positions

POSTGRES_URL = os.environ.get("NBTRACK_TEST_POSTGRES_URL")
RUN = ("me", "mnist", "run1")


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        opened = Store.at_root(tmp_path / "root")
    else:
        if not POSTGRES_URL:
            pytest.skip("set NBTRACK_TEST_POSTGRES_URL to run the store tests on PostgreSQL")
        engine = create_engine(POSTGRES_URL)
        metadata.drop_all(engine)  # a fresh schema per test
        engine.dispose()
        opened = Store(POSTGRES_URL)
    yield opened
    opened.close()


def rows_for(steps: range, **extra: Any) -> list[str]:
    return [
        jsonutil.dumps_str({"_step": s, "_runtime": s * 0.5, "loss": 1 / (s + 1), **extra}) for s in steps
    ]


def same(a: Any, b: Any) -> bool:
    """Equality in which NaN equals NaN, for comparing what went in with what came out."""
    return jsonutil.dumps(a) == jsonutil.dumps(b)


# ---- runs ------------------------------------------------------------------------------------


def test_a_new_run_has_defaults(store: Store) -> None:
    before = time.time()
    run = store.upsert_run(*RUN)
    assert (run.entity, run.project, run.run_id) == RUN
    assert run.state == "running"
    assert before <= run.created_at <= time.time()
    assert (run.config, run.summary, run.metrics, run.tags) == ({}, {}, [], [])
    assert (run.exit_code, run.last_step, run.history_line_count, run.runtime) == (None, None, 0, 0.0)


def test_upsert_sets_given_fields_and_leaves_the_rest(store: Store) -> None:
    store.upsert_run(
        *RUN,
        display_name="brisk-sun-1",
        notes="first try",
        tags=["a", "b"],
        group="sweep",
        job_type="train",
        host="box",
        program="train.py",
        config={"lr": 0.1},
        created_at=1000.0,
    )
    run = store.upsert_run(*RUN, notes="second thoughts", state="finished")
    assert run.display_name == "brisk-sun-1"
    assert run.notes == "second thoughts"
    assert run.tags == ["a", "b"]
    assert (run.group, run.job_type, run.host, run.program) == ("sweep", "train", "box", "train.py")
    assert run.config == {"lr": 0.1}
    assert run.state == "finished"
    assert run.created_at == 1000.0
    assert run.updated_at > 1000.0
    assert store.get_run(*RUN) == run


def test_a_bad_state_is_refused_by_name(store: Store) -> None:
    with pytest.raises(ValueError, match="'paused'"):
        store.upsert_run(*RUN, state="paused")
    with pytest.raises(ValueError, match="'done'"):
        store.finish_run(*RUN, state="done", exit_code=0)
    assert store.get_run(*RUN) is None  # nothing was written


def test_every_write_creates_the_run_it_needs(store: Store) -> None:
    store.write_history("e1", "p", "a", 0, rows_for(range(2)))
    store.write_output("e2", "p", "b", 0, ["hello"])
    store.write_summary("e3", "p", "c", {"x": 1})
    store.update_config("e4", "p", "d", {"y": 2})
    store.set_metrics("e5", "p", "e", [{"name": "loss"}])
    store.finish_run("e6", "p", "f", state="crashed", exit_code=None)
    runs = {run.run_id: run for run in store.list_runs("p")}
    assert sorted(runs) == ["a", "b", "c", "d", "e", "f"]
    assert runs["a"].history_line_count == 2
    assert runs["c"].summary == {"x": 1}
    assert runs["d"].config == {"y": 2}
    assert runs["e"].metrics == [{"name": "loss"}]
    assert runs["f"].state == "crashed"
    # upsert_run arriving after the history keeps what the history set.
    run = store.upsert_run("e1", "p", "a", display_name="late")
    assert (run.display_name, run.history_line_count, run.last_step) == ("late", 2, 1)


def test_update_config_merges_and_removes(store: Store) -> None:
    store.upsert_run(*RUN, config={"lr": 0.1, "layers": 3, "drop": 0.5})
    store.update_config(*RUN, {"lr": 0.2, "batch": 64}, remove=["drop", "absent"])
    assert store.get_run(*RUN).config == {"lr": 0.2, "layers": 3, "batch": 64}  # type: ignore[union-attr]


def test_summary_and_metrics_are_replaced(store: Store) -> None:
    store.write_summary(*RUN, {"loss": 1.0, "acc": 0.5})
    store.write_summary(*RUN, {"loss": 0.5})
    store.set_metrics(*RUN, [{"name": "loss", "summary": "min"}])
    store.set_metrics(*RUN, [{"name": "acc", "summary": "max"}])
    run = store.get_run(*RUN)
    assert run is not None
    assert run.summary == {"loss": 0.5}
    assert run.metrics == [{"name": "acc", "summary": "max"}]


def test_finish_run_records_the_end(store: Store) -> None:
    store.write_history(*RUN, 0, rows_for(range(10)))
    store.finish_run(*RUN, state="failed", exit_code=3)
    run = store.get_run(*RUN)
    assert run is not None
    assert (run.state, run.exit_code, run.runtime) == ("failed", 3, 4.5)  # runtime from the history
    store.finish_run(*RUN, state="finished", exit_code=0, runtime=12.5)
    run = store.get_run(*RUN)
    assert run is not None
    assert (run.state, run.exit_code, run.runtime) == ("finished", 0, 12.5)


def test_non_finite_values_round_trip_in_config_and_summary(store: Store) -> None:
    values = {"nan": math.nan, "inf": math.inf, "ninf": -math.inf, "nested": {"x": [math.nan, 1.5]}}
    store.upsert_run(*RUN, config=values)
    store.write_summary(*RUN, values)
    run = store.get_run(*RUN)
    assert run is not None
    assert same(run.config, values)
    assert same(run.summary, values)
    assert math.isnan(run.summary["nan"]) and run.summary["ninf"] == -math.inf


# ---- history and output ------------------------------------------------------------------------


def test_history_reads_back_in_line_order_with_run_counters(store: Store) -> None:
    store.write_history(*RUN, 0, rows_for(range(0, 3)))
    store.write_history(*RUN, 3, rows_for(range(3, 5)))
    assert [row["_step"] for row in store.read_history(*RUN)] == [0, 1, 2, 3, 4]
    run = store.get_run(*RUN)
    assert run is not None
    assert (run.history_line_count, run.last_step, run.runtime) == (5, 4, 2.0)


def test_writing_the_same_lines_twice_does_not_duplicate(store: Store) -> None:
    rows = rows_for(range(100))
    store.write_history(*RUN, 0, rows)
    store.write_history(*RUN, 0, rows)  # a retry after a lost reply
    assert len(store.read_history(*RUN)) == 100
    assert store.get_run(*RUN).history_line_count == 100  # type: ignore[union-attr]


def test_overlapping_offsets_replace_the_overlap(store: Store) -> None:
    store.write_history(*RUN, 0, rows_for(range(10), pass_=1))
    store.write_history(*RUN, 5, rows_for(range(5, 15), pass_=2))
    rows = store.read_history(*RUN)
    assert [row["_step"] for row in rows] == list(range(15))
    assert [row["pass_"] for row in rows] == [1] * 5 + [2] * 10
    # Rewriting early lines never shrinks the counters.
    store.write_history(*RUN, 0, rows_for(range(2), pass_=3))
    run = store.get_run(*RUN)
    assert run is not None
    assert (run.history_line_count, run.last_step, len(store.read_history(*RUN))) == (15, 14, 15)


def test_given_steps_are_stored_without_parsing(store: Store) -> None:
    rows = rows_for(range(10, 13))
    store.write_history(*RUN, 0, rows, steps=[10, 11, 12])
    assert [row["_step"] for row in store.read_history(*RUN, min_step=11)] == [11, 12]
    run = store.get_run(*RUN)
    assert run is not None
    assert (run.last_step, run.runtime) == (12, 6.0)
    with pytest.raises(ValueError, match="2 steps for 3"):
        store.write_history(*RUN, 0, rows, steps=[1, 2])


def test_bad_history_lines_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="line 7 has no integer _step"):
        store.write_history(*RUN, 7, ['{"loss": 1}'])
    with pytest.raises(ValueError, match=">= 0"):
        store.write_history(*RUN, -1, rows_for(range(1)))
    with pytest.raises(ValueError, match=">= 0"):
        store.write_output(*RUN, -1, ["x"])
    assert store.get_run(*RUN) is None


def test_non_finite_values_round_trip_in_history(store: Store) -> None:
    row = {"_step": 0, "nan": math.nan, "inf": math.inf, "ninf": -math.inf, "list": [math.nan]}
    store.write_history(*RUN, 0, [jsonutil.dumps_str(row)])
    (back,) = store.read_history(*RUN)
    assert same(back, row)


def test_read_history_by_keys_and_steps(store: Store) -> None:
    lines = [
        {"_step": 0, "_runtime": 0.1, "loss": 1.0},
        {"_step": 1, "acc": 0.5},
        {"_step": 2, "loss": 0.5, "acc": 0.7, "lr": 0.1},
        {"_step": 3, "lr": 0.1},
    ]
    store.write_history(*RUN, 0, [jsonutil.dumps_str(line) for line in lines])
    assert store.read_history(*RUN, keys=["loss"]) == [{"_step": 0, "loss": 1.0}, {"_step": 2, "loss": 0.5}]
    assert store.read_history(*RUN, keys=["loss", "acc"], min_step=1, max_step=2) == [
        {"_step": 1, "acc": 0.5},
        {"_step": 2, "loss": 0.5, "acc": 0.7},
    ]
    assert store.read_history(*RUN, keys=["missing"]) == []
    assert store.read_history("me", "mnist", "nope") == []


def test_output_lines_replace_by_offset(store: Store) -> None:
    store.write_output(*RUN, 0, ["epoch 1", "epoch 2", "epoch 3"])
    store.write_output(*RUN, 2, ["epoch 3 (again)", "done ✓"])
    assert store.read_output(*RUN) == ["epoch 1", "epoch 2", "epoch 3 (again)", "done ✓"]
    assert store.read_output("me", "mnist", "nope") == []


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(writes=st.lists(st.tuples(st.integers(0, 30), st.integers(1, 10)), min_size=1, max_size=8))
def test_any_sequence_of_writes_leaves_the_last_value_of_each_line(
    store: Store, writes: list[tuple[int, int]]
) -> None:
    run_id = f"prop-{time.monotonic_ns()}"  # the fixture is shared by every example
    expected: dict[int, int] = {}
    for version, (offset, count) in enumerate(writes):
        rows = [jsonutil.dumps_str({"_step": offset + i, "v": version}) for i in range(count)]
        store.write_history("me", "prop", run_id, offset, rows)
        expected.update({offset + i: version for i in range(count)})
    back = store.read_history("me", "prop", run_id)
    assert [(row["_step"], row["v"]) for row in back] == sorted(expected.items())
    run = store.get_run("me", "prop", run_id)
    assert run is not None
    assert run.history_line_count == max(expected) + 1


# ---- listing and lookup ------------------------------------------------------------------------


def test_list_projects_counts_runs_newest_activity_first(store: Store) -> None:
    store.upsert_run("me", "old", "a")
    store.upsert_run("me", "old", "b")
    store.upsert_run("team", "new", "c")
    projects = store.list_projects()
    assert [(p.entity, p.name, p.run_count) for p in projects] == [("team", "new", 1), ("me", "old", 2)]
    assert projects[0].last_activity >= projects[1].last_activity >= projects[1].created_at
    assert [p.name for p in store.list_projects("me")] == ["old"]
    assert store.list_projects("nobody") == []


def test_list_runs_newest_first(store: Store) -> None:
    for i, created in enumerate([300.0, 100.0, 200.0]):
        store.upsert_run("me", "p", f"r{i}", created_at=created)
    store.upsert_run("other", "p", "x", created_at=250.0)
    assert [r.run_id for r in store.list_runs("p", "me")] == ["r0", "r2", "r1"]
    assert [r.run_id for r in store.list_runs("p")] == ["r0", "x", "r2", "r1"]
    assert store.list_runs("absent") == []


def test_get_run_without_entity_finds_the_single_match(store: Store) -> None:
    store.upsert_run("me", "p", "r1")
    store.upsert_run("you", "p", "r2")
    found = store.get_run(None, "p", "r1")
    assert found is not None and found.entity == "me"
    assert store.get_run(None, "p", "nope") is None
    assert store.get_run("you", "p", "r1") is None


def test_get_run_without_entity_refuses_an_ambiguous_id(store: Store) -> None:
    store.upsert_run("me", "p", "r1")
    store.upsert_run("you", "p", "r1")
    with pytest.raises(UsageError, match=r"several entities \(me, you\).*'me/p/r1'"):
        store.get_run(None, "p", "r1")
    assert store.get_run("you", "p", "r1") is not None


def test_history_of_many_rows_in_batches_and_its_throughput(store: Store) -> None:
    """Not a timed test: it checks 100,000 rows arrive whole and prints the rate (-s shows it)."""
    keys = [f"metric_{i}" for i in range(10)]
    rows = [
        jsonutil.dumps_str(
            {"_step": s, "_runtime": s / 100, "_timestamp": 1.7e9 + s, **dict.fromkeys(keys, s / 7)}
        )
        for s in range(100_000)
    ]
    started = time.perf_counter()
    for offset in range(0, len(rows), 2_000):
        store.write_history(*RUN, offset, rows[offset : offset + 2_000])
    elapsed = time.perf_counter() - started
    print(f"\nwrite_history: {len(rows) / elapsed:,.0f} rows/s (13 keys, batches of 2,000)")
    run = store.get_run(*RUN)
    assert run is not None
    assert (run.history_line_count, run.last_step) == (100_000, 99_999)
    assert len(store.read_history(*RUN, keys=["metric_3"], min_step=99_000)) == 1_000


# ---- SQLite specifics ---------------------------------------------------------------------------


def test_at_root_makes_the_folder_and_a_wal_database(tmp_path: Path) -> None:
    root = tmp_path / "deep" / "root"
    with Store.at_root(root) as store:
        store.upsert_run(*RUN)
    with sqlite3.connect(root / DB_FILENAME) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    with Store.at_root(root) as store:  # reopening keeps the data and the schema
        assert store.get_run(*RUN) is not None


def test_threads_and_a_second_store_write_side_by_side(tmp_path: Path) -> None:
    first, second = Store.at_root(tmp_path), Store.at_root(tmp_path)
    errors: list[BaseException] = []

    def writer(store: Store, run_id: str) -> None:
        try:
            for offset in range(0, 500, 50):
                store.write_history("me", "p", run_id, offset, rows_for(range(offset, offset + 50)))
                store.update_config("me", "p", "shared", {run_id: offset})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(s, f"r{i}")) for i, s in enumerate([first, second] * 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert all(first.get_run("me", "p", f"r{i}").history_line_count == 500 for i in range(4))  # type: ignore[union-attr]
    assert first.get_run("me", "p", "shared").config == {f"r{i}": 450 for i in range(4)}  # type: ignore[union-attr]
    first.close()
    second.close()


def test_a_damaged_database_raises_store_error(tmp_path: Path) -> None:
    (tmp_path / DB_FILENAME).write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="failed"):
        Store.at_root(tmp_path)


def test_other_databases_are_refused_before_loading_a_driver() -> None:
    with pytest.raises(UsageError, match="'mysql' is not supported"):
        Store("mysql+nosuchdriver://user@localhost/db")


# ---- what the tracking server adds ---------------------------------------------------------


def test_upsert_tells_whether_it_inserted_and_sets_summary_and_metrics(store: Store) -> None:
    run, inserted = store.upsert_run_inserted(*RUN, summary={"loss": 0.5}, metrics=[{"name": "loss"}])
    assert inserted and run.summary == {"loss": 0.5} and run.metrics == [{"name": "loss"}]
    run, inserted = store.upsert_run_inserted(*RUN, notes="again")
    assert not inserted and run.notes == "again" and run.summary == {"loss": 0.5}


def test_write_stream_applies_every_part_in_one_go(store: Store) -> None:
    store.upsert_run(*RUN)
    applied = store.write_stream(
        *RUN,
        history_lines=LineBatch(0, rows_for(range(5)), list(range(5))),
        output_lines=LineBatch(0, ["hello", "world"]),
        event_lines=LineBatch(0, ['{"cpu": 1}']),
        summary={"loss": 0.2},
        finish=("failed", 3),
    )
    run = store.get_run(*RUN)
    assert applied and run is not None
    assert (run.history_line_count, run.last_step, run.state, run.exit_code) == (5, 4, "failed", 3)
    assert run.summary == {"loss": 0.2}
    assert store.read_output(*RUN) == ["hello", "world"] and store.read_events(*RUN) == ['{"cpu": 1}']


def test_write_stream_never_creates_a_run(store: Store) -> None:
    assert not store.write_stream(*RUN, history_lines=LineBatch(0, rows_for(range(3))))
    assert store.get_run(*RUN) is None and store.list_projects() == []


def test_events_and_output_read_by_offset_and_limit(store: Store) -> None:
    store.write_events(*RUN, 0, [f'{{"n": {i}}}' for i in range(5)])
    store.write_events(*RUN, 3, ['{"n": 30}'])
    assert store.read_events(*RUN) == ['{"n": 0}', '{"n": 1}', '{"n": 2}', '{"n": 30}', '{"n": 4}']
    store.write_output(*RUN, 0, ["a", "b", "c", "d"])
    assert store.read_output(*RUN, offset=1, limit=2) == ["b", "c"]


def test_history_json_is_the_rows_as_one_array(store: Store) -> None:
    store.write_history(*RUN, 0, [*rows_for(range(3)), '{"_step": 3, "x": NaN, "y": -Infinity}'])
    text = store.history_json(*RUN)
    assert same(jsonutil.loads(text), [*store.read_history(*RUN)])
    assert "NaN" in text and "-Infinity" in text
    assert store.history_json(*RUN, keys=["x"]) == '[{"_step":3,"x":NaN}]'
    assert [r["_step"] for r in jsonutil.loads(store.history_json(*RUN, min_step=1, max_step=2))] == [1, 2]
    assert store.history_json("me", "mnist", "absent") == "[]"


@pytest.mark.parametrize(
    ("count", "samples"), [(0, 5), (3, 5), (5, 5), (10, 1), (10, 2), (10, 3), (101, 10), (1000, 7)]
)
def test_sampled_history_keeps_evenly_spaced_rows_with_the_first_and_last(
    store: Store, count: int, samples: int
) -> None:
    store.write_history(*RUN, 0, rows_for(range(count)))
    steps = [row["_step"] for row in jsonutil.loads(store.history_json(*RUN, samples=samples))]
    assert steps == sample_positions(count, samples)  # SQL and Python pick the same rows
    assert len(steps) == min(count, samples)
    if count > samples > 1:
        assert steps[0] == 0 and steps[-1] == count - 1
        gaps = [b - a for a, b in itertools.pairwise(steps)]
        assert max(gaps) - min(gaps) <= 1  # evenly spaced


def test_sampling_lines_with_gaps_picks_by_position(store: Store) -> None:
    store.write_history(*RUN, 0, rows_for(range(10)))
    store.write_history(*RUN, 50, rows_for(range(50, 60)))  # lines 10..49 never arrived
    present = [*range(10), *range(50, 60)]
    steps = [row["_step"] for row in jsonutil.loads(store.history_json(*RUN, samples=6))]
    assert steps == [present[i] for i in sample_positions(20, 6)]
    assert [row["_step"] for row in jsonutil.loads(store.history_json(*RUN, samples=1))] == [0]


def test_sampling_follows_the_step_range_and_the_keys(store: Store) -> None:
    rows = [
        jsonutil.dumps_str({"_step": s, **({"val": s} if s % 10 == 0 else {"loss": s})}) for s in range(100)
    ]
    store.write_history(*RUN, 0, rows)
    within = jsonutil.loads(store.history_json(*RUN, samples=3, min_step=20, max_step=60))
    assert [r["_step"] for r in within] == [20, 40, 60]
    keyed = jsonutil.loads(store.history_json(*RUN, keys=["val"], samples=4))
    assert keyed == [
        {"_step": 0, "val": 0},
        {"_step": 30, "val": 30},
        {"_step": 60, "val": 60},
        {"_step": 90, "val": 90},
    ]


def test_api_keys_are_stored_hashed_and_map_to_their_entity(store: Store) -> None:
    assert store.key_count() == 0
    key = store.create_key("alice")
    other = store.create_key("bob")
    assert key.startswith("nbt_") and len(key) == 44 and key != other
    assert (store.entity_for_key(key), store.entity_for_key(other)) == ("alice", "bob")
    assert store.entity_for_key(key + "x") is None and store.entity_for_key("") is None
    assert store.key_count() == 2
    assert [(k.entity, k.prefix) for k in store.list_keys()] == [("alice", key[:10]), ("bob", other[:10])]


def test_server_secret_is_made_once_and_shared(store: Store) -> None:
    first = store.server_secret("signing")
    assert len(first) == 64 and store.server_secret("signing") == first
    assert store.server_secret("other") != first


def test_list_runs_limit_and_order_and_get_project(store: Store) -> None:
    for i in range(3):
        store.upsert_run("me", "p", f"r{i}", created_at=1000.0 + i)
    assert [r.run_id for r in store.list_runs("p", "me", limit=2)] == ["r2", "r1"]
    assert [r.run_id for r in store.list_runs("p", "me", oldest_first=True)] == ["r0", "r1", "r2"]
    project = store.get_project("me", "p")
    assert project is not None and (project.name, project.run_count) == ("p", 3)
    assert store.get_project("me", "absent") is None and store.get_project("you", "p") is None


def test_history_gaps_are_the_line_ranges_below_the_count_that_hold_nothing(store: Store) -> None:
    assert store.history_gaps(*RUN) == []  # no such run
    store.write_history(*RUN, 3, rows_for(range(3, 5)))
    store.write_history(*RUN, 7, rows_for(range(7, 8)))
    store.write_history(*RUN, 10, rows_for(range(10, 13)))
    assert store.history_gaps(*RUN) == [(0, 3), (5, 7), (8, 10)]
    store.write_history(*RUN, 0, rows_for(range(0, 10)))
    assert store.history_gaps(*RUN) == []


# ---- alerts ----------------------------------------------------------------------------------


def test_alerts_are_kept_in_order_with_their_level_and_time(store: Store) -> None:
    assert store.read_alerts(*RUN) == []
    assert store.add_alert(*RUN, title="b", text="second", level="WARN", created_at=20.0) == "stored"
    assert store.add_alert(*RUN, title="a", text="first", level="INFO", created_at=10.0) == "stored"
    before = time.time()
    assert store.add_alert(*RUN, title="c", text="now", level="ERROR") == "stored"
    found = store.read_alerts(*RUN)
    assert [(a.title, a.text, a.level) for a in found] == [
        ("a", "first", "INFO"),
        ("b", "second", "WARN"),
        ("c", "now", "ERROR"),
    ]
    assert found[2].created_at >= before
    assert store.read_alerts("me", "mnist", "other") == []


def test_an_alert_is_stored_once_per_key_and_a_title_waits(store: Store) -> None:
    first = store.add_alert(*RUN, title="t", text="x", level="INFO", created_at=100.0, alert_key="k1")
    assert first == "stored"
    # The same alert delivered again (a retry, a second sync): nothing changes.
    again = store.add_alert(*RUN, title="t", text="x", level="INFO", created_at=100.0, alert_key="k1")
    assert again == "repeat"
    # The same title within wait_seconds, before or after: held back; beyond it: stored.
    assert (
        store.add_alert(*RUN, title="t", text="y", level="INFO", created_at=159.0, wait_seconds=60)
        == "waiting"
    )
    assert (
        store.add_alert(*RUN, title="t", text="y", level="INFO", created_at=41.0, wait_seconds=60)
        == "waiting"
    )
    assert (
        store.add_alert(*RUN, title="t", text="z", level="INFO", created_at=160.0, wait_seconds=60)
        == "stored"
    )
    # Another title is not held back by this one; no wait, no holding back.
    assert (
        store.add_alert(*RUN, title="u", text="", level="WARN", created_at=101.0, wait_seconds=60) == "stored"
    )
    assert store.add_alert(*RUN, title="u", text="", level="WARN", created_at=102.0) == "stored"
    assert [a.text for a in store.read_alerts(*RUN)] == ["x", "", "", "z"]


def test_alerts_are_checked_cut_and_capped(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="DEBUG"):
        store.add_alert(*RUN, title="t", text="x", level="DEBUG")
    long = "é" * 20_000
    store.add_alert(*RUN, title=long, text=long, level="INFO")
    [alert] = store.read_alerts(*RUN)
    assert len(alert.title) == len(alert.text) == 10_000
    monkeypatch.setattr("nbtrack.store.writes.ALERTS_PER_RUN", 3)
    assert [store.add_alert(*RUN, title=str(n), text="", level="INFO") for n in range(3)] == [
        "stored",
        "stored",
        "full",
    ]


def test_a_read_only_store_written_before_alerts_has_none(tmp_path: Path) -> None:
    root = tmp_path / "old"
    with Store.at_root(root) as store:
        store.upsert_run(*RUN)
    with sqlite3.connect(root / DB_FILENAME) as conn:
        conn.execute("DROP TABLE alerts")
    # Opened read-only (as for a folder nbtrack cannot write), nothing creates the table.
    with Store(f"sqlite:///{root / DB_FILENAME}", read_only=True) as reader:
        assert reader.read_alerts(*RUN) == []
    with sqlite3.connect(root / DB_FILENAME) as conn:
        assert not conn.execute("SELECT name FROM sqlite_master WHERE name = 'alerts'").fetchall()
    with Store.at_root(root) as store:  # a writer creates it (every missing table) when it opens
        assert store.add_alert(*RUN, title="t", text="", level="INFO") == "stored"
