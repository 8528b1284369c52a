"""Run.chart and Run.historyKeys through a real server, on SQLite and on PostgreSQL.

Runs are posted through the file stream as a client posts them; every chart is compared with
tests/chart_reference.py over the rows posted. 30,000 lines is enough for the full range to
come from the rollup (more than 20,000 lines in range) and for a zoom to come from the lines.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import create_engine, delete, select

from nbtrack import jsonutil
from nbtrack.store.schema import entities, history_rollup, projects, runs
from tests.chart_reference import metric_keys, reference_chart
from tests.serving import POSTGRES_URL, Client, create_key, start_server, unique_name

CHART = """query ($p: String!, $r: String!, $keys: [String!], $x: String, $minX: Float, $maxX: Float,
    $points: Int) {
  project(name: $p) { run(name: $r) {
    historyLineCount historyKeys chart(keys: $keys, x: $x, minX: $minX, maxX: $maxX, points: $points)
  } }
}"""


@dataclass
class Served:
    client: Client
    db_url: str

    def forget_rollup(self, project: str, run_id: str) -> None:
        """Delete the run's rollup rows, as if an nbtrack from before the rollup had stored it."""
        run_pk = (
            select(runs.c.pk)
            .select_from(runs.join(projects).join(entities))
            .where(entities.c.name == self.client.entity, projects.c.name == project, runs.c.run_id == run_id)
            .scalar_subquery()
        )
        engine = create_engine(self.db_url)
        with engine.begin() as conn:
            assert conn.execute(delete(history_rollup).where(history_rollup.c.run_pk == run_pk)).rowcount
        engine.dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    if request.param == "postgresql" and not POSTGRES_URL:
        pytest.skip("set NBTRACK_TEST_POSTGRES_URL to run the server tests on PostgreSQL")
    server = start_server(
        tmp_path_factory.mktemp("server"), db_url=POSTGRES_URL if request.param == "postgresql" else None
    )
    if server.db_url:
        entity = unique_name("ent")
        yield Served(Client(server.url, entity, create_key(server, entity)), server.db_url)
    else:
        assert server.dir is not None
        yield Served(Client(server.url), f"sqlite:///{server.dir / 'nbtrack.db'}")
    server.stop()
    assert "Traceback" not in server.log(), server.log_tail()


def training_rows(steps: range, seed: int = 0) -> list[dict[str, Any]]:
    chosen = random.Random(seed)
    rows = []
    for step in steps:
        row: dict[str, Any] = {
            "_step": step,
            "_runtime": step * 0.05,
            "_timestamp": 1.7e9 + step * 0.05,
            "loss": 2 / (step + 2) + chosen.gauss(0, 0.01),
            "lr": 3e-4 * 0.5 ** (step // 10_000),
        }
        if step % 1000 == 999:
            row["val_loss"] = chosen.uniform(0, 1)
        if step % 777 == 0:
            row["loss"] = chosen.choice([math.nan, math.inf, -math.inf, 100.0])
        if step % 5003 == 0:
            row["flag"], row["phase"] = True, "warmup"
        rows.append(row)
    return rows


def post(
    client: Client, project: str, run_id: str, offset: int, rows: list[dict[str, Any]], size: int
) -> None:
    for start in range(0, len(rows), size):
        lines = [jsonutil.dumps_str(row) for row in rows[start : start + size]]
        body = {"files": {"wandb-history.jsonl": {"offset": offset + start, "content": lines}}}
        response = client.stream(project, run_id, body)
        assert response.status_code == 200, response.text


def chart(client: Client, project: str, run_id: str, **args: Any) -> tuple[dict[str, Any], list[str]]:
    names = {"keys": "keys", "x": "x", "lo": "minX", "hi": "maxX", "points": "points"}
    run = client.data(CHART, p=project, r=run_id, **{names[k]: v for k, v in args.items()})["project"]["run"]
    answer = json.loads(run["chart"])
    assert answer.pop("lineCount") == run["historyLineCount"]
    return answer, run["historyKeys"]


def assert_matches(
    client: Client, project: str, run_id: str, rows: dict[int, dict[str, Any]], **args: Any
) -> None:
    answer, keys = chart(client, project, run_id, **args)
    assert keys == metric_keys(rows) == ["loss", "lr", "val_loss"]
    assert answer == reference_chart(rows, **args), args


CASES = [
    {},
    {"points": 100},
    {"lo": 13_000, "hi": 15_999, "points": 500},  # 3,000 lines: from the lines, finer than a bucket
    {"lo": 1_234.5, "hi": 27_000},  # more than 20,000 lines: rollup, with partial buckets at the ends
    {"x": "_runtime", "lo": 100.02, "hi": 1_200},
    {"x": "_timestamp", "points": 300, "keys": ["loss", "val_loss", "absent"]},
    {"keys": ["val_loss"], "points": 50},
]


def test_a_long_run_charts_as_the_reference_says(served: Served) -> None:
    client, project = served.client, unique_name("proj")
    client.upsert(project, "long")
    rows = training_rows(range(30_000))
    post(client, project, "long", 0, rows, 7_001)
    by_line = dict(enumerate(rows))
    for case in CASES:
        assert_matches(client, project, "long", by_line, **case)
    full, _ = chart(client, project, "long")
    assert full["exact"] is False and len(full["series"]["loss"]) <= 1000
    assert full["series"]["val_loss"] == [
        [s, r["val_loss"], r["val_loss"]] for s, r in by_line.items() if "val_loss" in r
    ]
    # min/max per bucket: the spikes of 100.0 survive the downsampling
    assert max(point[2] for point in full["series"]["loss"]) == 100.0


def test_a_retried_post_with_other_content_charts_the_new_lines(served: Served) -> None:
    client, project = served.client, unique_name("proj")
    client.upsert(project, "retried")
    rows = training_rows(range(25_000))
    post(client, project, "retried", 0, rows, 10_000)
    replaced = training_rows(range(9_950, 10_450), seed=9)
    replaced[17]["loss"] = -5.0
    post(client, project, "retried", 9_950, replaced, 10_000)
    by_line = dict(enumerate(rows)) | {9_950 + i: row for i, row in enumerate(replaced)}
    for case in CASES[:4]:
        assert_matches(client, project, "retried", by_line, **case)
    full, _ = chart(client, project, "retried")
    assert min(point[1] for point in full["series"]["loss"]) == -5.0


def test_a_run_stored_before_the_rollup_charts_the_same(served: Served) -> None:
    client, project = served.client, unique_name("proj")
    client.upsert(project, "old")
    rows = training_rows(range(22_000))
    post(client, project, "old", 0, rows, 10_000)
    served.forget_rollup(project, "old")
    by_line = dict(enumerate(rows))
    for case in CASES:
        assert_matches(client, project, "old", by_line, **case)


def test_a_short_run_comes_back_exactly(served: Served) -> None:
    client, project = served.client, unique_name("proj")
    client.upsert(project, "short")
    post(client, project, "short", 0, [{"_step": s, "acc": s / 4, "ok": s > 1} for s in range(4)], 10)
    answer, keys = chart(client, project, "short")
    assert keys == ["acc"]
    assert answer == {
        "x": "_step",
        "exact": True,
        "series": {"acc": [[0, 0.0, 0.0], [1, 0.25, 0.25], [2, 0.5, 0.5], [3, 0.75, 0.75]]},
    }
    client.upsert(project, "empty")
    answer, keys = chart(client, project, "empty")
    assert (answer, keys) == ({"x": "_step", "exact": True, "series": {}}, [])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"x": ""}, "chart(x:) must be _step, _runtime, _timestamp or a metric key, not ''"),
        ({"x": "_cell"}, "chart(x:) must be _step, _runtime, _timestamp or a metric key, not '_cell'"),
        ({"points": 0}, "chart(points:) must be 1 to 5000"),
        ({"points": 5001}, "chart(points:) must be 1 to 5000"),
        ({"minX": 10.0, "maxX": 9.0}, "empty range"),
    ],
)
def test_bad_chart_arguments_are_refused(served: Served, args: dict[str, Any], message: str) -> None:
    client, project = served.client, unique_name("proj")
    client.upsert(project, "r")
    response = client.graphql(CHART, p=project, r="r", **args)
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "BAD_REQUEST" and message in error["message"]


def test_a_run_charts_against_its_declared_step_metric(served: Served) -> None:
    """W&B integrations log their own step (Transformers' train/global_step) and declare it with
    define_metric(step_metric=...): chart(x:) takes it, and answers as the reference says."""
    client, project = served.client, unique_name("proj")
    client.upsert(project, "hf")
    rows = training_rows(range(3000))
    for row in rows[::2]:
        row["train/global_step"] = row["_step"] * 4
    post(client, project, "hf", 0, rows, 1000)
    stored = dict(enumerate(rows))
    for args in ({"x": "train/global_step"}, {"x": "train/global_step", "lo": 400, "hi": 900, "points": 60}):
        answer, _keys = chart(client, project, "hf", **args)
        assert answer == reference_chart(stored, **args), args
    answer, _keys = chart(client, project, "hf", x="train/global_step", keys=["lr"], hi=8)
    assert answer["series"] == {"lr": [[0.0, 3e-4, 3e-4], [8.0, 3e-4, 3e-4]]}


ATTEMPTS = """query ($p: String!, $r: String!, $attempt: Int) {
  project(name: $p) { run(name: $r) { attempts chart(attempt: $attempt) } }
}"""


def test_a_notebook_runs_attempts_chart_one_at_a_time(served: Served) -> None:
    """A re-run cell's rows (provenance.py) carry _attempt: the chart can draw each attempt, and
    neither _cell nor _attempt is a metric of its own."""
    client, project = served.client, unique_name("proj")
    client.upsert(project, "rerun")
    first = [
        {"_step": s, "_runtime": s, "_timestamp": 1.7e9 + s, "_cell": 3, "loss": 1 / (s + 1)}
        for s in range(5)
    ]
    again = [{**row, "_cell": 4, "_attempt": 1, "loss": row["loss"] / 2} for row in first[:3]]
    post(client, project, "rerun", 0, first + again, 100)

    def drawn(attempt: int | None) -> tuple[int, dict[str, Any]]:
        run = client.data(ATTEMPTS, p=project, r="rerun", attempt=attempt)["project"]["run"]
        return run["attempts"], json.loads(run["chart"])["series"]

    count, everything = drawn(None)
    assert count == 2 and sorted(everything) == ["loss"]
    assert drawn(0)[1] == {"loss": [[s, 1 / (s + 1), 1 / (s + 1)] for s in range(5)]}
    assert drawn(1)[1] == {"loss": [[s, 0.5 / (s + 1), 0.5 / (s + 1)] for s in range(3)]}
    assert drawn(2)[1] == {}  # no such attempt: no rows, so no keys
