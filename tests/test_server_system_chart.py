"""Run.systemChart through a real server, on SQLite and on PostgreSQL.

Events lines are posted through the file stream ("wandb-events.jsonl") as a client posts them,
and every answer is compared with a brute-force reading of the lines posted (`reference`): the
smallest power-of-two width that leaves a key at most `points` groups of line // width, each group
[smallest x, min, max], sorted by x.
"""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nbtrack import jsonutil
from nbtrack.store.system_read import MAX_KEYS, PAGE_LINES
from tests.serving import POSTGRES_URL, Client, create_key, start_server, unique_name

QUERY = """query ($p: String!, $r: String!, $keys: [String!], $x: String, $minX: Float, $maxX: Float,
    $points: Int) {
  project(name: $p) { run(name: $r) {
    eventsLineCount systemChart(keys: $keys, x: $x, minX: $minX, maxX: $maxX, points: $points)
  } }
}"""
ARGUMENTS = {"keys": "keys", "x": "x", "lo": "minX", "hi": "maxX", "points": "points"}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def client(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    if request.param == "postgresql" and not POSTGRES_URL:
        pytest.skip("set NBTRACK_TEST_POSTGRES_URL to run the server tests on PostgreSQL")
    server = start_server(
        tmp_path_factory.mktemp("server"), db_url=POSTGRES_URL if request.param == "postgresql" else None
    )
    if server.db_url:
        entity = unique_name("ent")
        yield Client(server.url, entity, create_key(server, entity))
    else:
        yield Client(server.url)
    server.stop()
    assert "Traceback" not in server.log(), server.log_tail()


def samples(count: int, seed: int = 0) -> list[dict[str, Any]]:
    """Events lines as nbtrack's sampler writes them, with the odd spike, gap and bad value."""
    chosen = random.Random(seed)
    lines = []
    for i in range(count):
        line: dict[str, Any] = {
            "_timestamp": 1.7e9 + i * 5,
            "_runtime": i * 5.0,
            "system.cpu": chosen.uniform(0, 60),
            "system.memory": 40 + i / count,
        }
        if i % 997 == 500:
            line["system.cpu"] = 100.0  # a spike no downsampling may hide
        if i % 10 == 0:
            line["system.gpu.0.gpu"] = chosen.uniform(0, 100)  # a sparser key
        if i % 333 == 7:
            line["system.memory"] = math.nan  # not a value
        if i % 500 == 3:
            line["_cell"] = 4  # bookkeeping, not a metric
        lines.append(line)
    return lines


def post(client: Client, project: str, run_id: str, lines: list[str], size: int = 4000) -> None:
    for start in range(0, len(lines), size):
        body = {"files": {"wandb-events.jsonl": {"offset": start, "content": lines[start : start + size]}}}
        response = client.stream(project, run_id, body)
        assert response.status_code == 200, response.text


def system_chart(client: Client, project: str, run_id: str, **args: Any) -> dict[str, Any]:
    variables = {ARGUMENTS[name]: value for name, value in args.items()}
    run = client.data(QUERY, p=project, r=run_id, **variables)["project"]["run"]
    answer: dict[str, Any] = json.loads(run["systemChart"])
    assert answer.pop("lineCount") == run["eventsLineCount"]
    return answer


def reference(
    rows: list[dict[str, Any]],
    keys: list[str] | None = None,
    x: str = "_runtime",
    lo: float | None = None,
    hi: float | None = None,
    points: int = 500,
) -> dict[str, Any]:
    values: dict[str, list[tuple[int, float, float]]] = {key: [] for key in keys or ()}
    for line, row in enumerate(rows):
        xv = row.get(x)
        if not isinstance(xv, float) or (lo is not None and xv < lo) or (hi is not None and xv > hi):
            continue
        for key, y in row.items():
            if (keys is None or key in keys) and not key.startswith("_") and math.isfinite(y):
                values.setdefault(key, []).append((line, xv, y))
    series, exact = {}, True
    for key, found in sorted(values.items()):
        width = 1
        while len({line // width for line, _x, _y in found}) > points:
            width *= 2
        exact = exact and width == 1
        groups: dict[int, list[float]] = {}
        for line, xv, y in found:
            group = groups.setdefault(line // width, [xv, y, y])
            group[0], group[1], group[2] = min(group[0], xv), min(group[1], y), max(group[2], y)
        ordered = sorted(groups.items(), key=lambda item: (item[1][0], item[0]))
        series[key] = [group for _gid, group in ordered]
    return {"x": x, "exact": exact, "truncated": False, "series": series}


CASES: list[dict[str, Any]] = [
    {},  # 12,000 lines: more than two pages, downsampled
    {"points": 100},
    {"lo": 20_000.0, "hi": 21_000.0},  # 201 lines: every value
    {"x": "_timestamp", "points": 300, "keys": ["system.cpu", "system.gpu.0.gpu", "absent"]},
    {"keys": ["system.gpu.0.gpu"], "points": 1200},  # 1,200 values: exact
]


def test_a_long_runs_system_chart_is_the_reference_one(client: Client) -> None:
    project = unique_name("proj")
    client.upsert(project, "long")
    rows = samples(2 * PAGE_LINES + 2000)
    post(client, project, "long", [jsonutil.dumps_str(row) for row in rows])
    for case in CASES:
        assert system_chart(client, project, "long", **case) == reference(rows, **case), case
    full = system_chart(client, project, "long")
    assert full["exact"] is False and len(full["series"]["system.cpu"]) <= 500
    assert sorted(full["series"]) == ["system.cpu", "system.gpu.0.gpu", "system.memory"]
    # min/max groups: the spikes survive the downsampling, and the x axis is runtime.
    assert max(group[2] for group in full["series"]["system.cpu"]) == 100.0
    assert full["series"]["system.cpu"][0][0] == 0.0


def test_lines_without_values_and_keys_beyond_the_limit(client: Client) -> None:
    project = unique_name("proj")
    client.upsert(project, "odd")
    wide = {"_runtime": 1.0, **{f"system.cpu.{i}.cpu_percent": float(i) for i in range(MAX_KEYS + 20)}}
    lines = [
        '{"_runtime": 0.5, "system.cpu": "busy", "system.memory": true}',  # no numbers
        '{"system.cpu": 3}',  # no x
        jsonutil.dumps_str(wide),
        '{"_runtime": 2, "system.cpu": 7, "system.memory": Infinity}',
    ]
    post(client, project, "odd", lines)
    answer = system_chart(client, project, "odd")
    assert answer["truncated"] is True and len(answer["series"]) == MAX_KEYS
    assert answer["series"]["system.cpu.0.cpu_percent"] == [[1.0, 0.0, 0.0]]
    assert "system.cpu" not in answer["series"], "the first MAX_KEYS keys met are kept"
    only = system_chart(client, project, "odd", keys=["system.cpu", "system.memory"])
    assert only == {
        "x": "_runtime",
        "exact": True,
        "truncated": False,
        "series": {"system.cpu": [[2, 7, 7]], "system.memory": []},
    }


def test_a_run_without_events_has_an_empty_system_chart(client: Client) -> None:
    project = unique_name("proj")
    client.upsert(project, "quiet")
    assert system_chart(client, project, "quiet") == {
        "x": "_runtime",
        "exact": True,
        "truncated": False,
        "series": {},
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"x": "_step"}, "systemChart(x:) must be one of _runtime, _timestamp"),
        ({"points": 0}, "systemChart(points:) must be 1 to 5000"),
        ({"lo": 3.0, "hi": 1.0}, "systemChart(minX:, maxX:) is an empty range"),
    ],
)
def test_bad_arguments_are_refused_naming_them(client: Client, args: dict[str, Any], message: str) -> None:
    project = unique_name("proj")
    client.upsert(project, "r")
    variables = {ARGUMENTS[name]: value for name, value in args.items()}
    body = client.graphql(QUERY, p=project, r="r", **variables).json()
    assert body["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    assert body["errors"][0]["message"].startswith(message), body


@pytest.mark.bench_smoke
def test_bench_system_chart_quick_runs_and_prints_its_table(tmp_path: Path) -> None:
    """benchmarks/bench_system_chart.py end to end in quick mode (its figures are not judged here)."""
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_system_chart.py"
    result = subprocess.run(
        [sys.executable, str(script), "--quick"], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "systemChart" in result.stdout and "5,000 lines" in result.stdout, result.stdout
